import pytest

from qpi_utils.notebook import REQUIRES, SOLVE_EXERCISES, check, ensure, setup
from qpi_utils.runs import MissingArtefactError


def test_setup_gives_the_profile_and_a_notebook_layout(tmp_path, capsys):
    profile, run = setup("smoke", tmp_path)
    assert profile.name == "smoke" and run.root == tmp_path.resolve() and run.context == "notebook"
    assert "profile: smoke" in capsys.readouterr().out


def test_missing_pieces_are_named_or_made(tmp_path, capsys):
    profile, run = setup("smoke", tmp_path / "a", quiet=True)
    with pytest.raises(MissingArtefactError, match="run notebook 01_simulate.ipynb first"):
        ensure(profile, run, "kernel_vae", make_missing=False)
    setup("smoke", tmp_path / "a", requires=("data",), quiet=True)
    assert "the simulated dataset is missing: making it now, as notebook 01_simulate does" in capsys.readouterr().out
    assert run.data.joinpath("meta.json").is_file()
    with pytest.raises(MissingArtefactError, match="run notebook 02_kernel_vae.ipynb first"):
        ensure(profile, run, "alignment", make_missing=False)  # the data are there now; step 1 is not
    with pytest.raises(ValueError, match="unknown artefact"):
        setup("smoke", tmp_path / "a", requires=("tsne",), quiet=True)


def test_every_artefact_knows_what_it_needs():
    assert REQUIRES["alignment"] == ("data", "kernel_vae") and REQUIRES["data"] == ()
    assert all(need in REQUIRES for needs in REQUIRES.values() for need in needs)


def test_a_late_notebook_opened_alone_makes_what_it_needs(tmp_path, capsys):
    """What notebook 05 does first in an empty run directory (a fresh Colab runtime): it simulates
    and trains what notebooks 01-04 would have made, saying so."""
    profile, run = setup("smoke", tmp_path / "run", requires=("alignment", "one_step"), quiet=True)
    out = capsys.readouterr().out
    for what in ("the simulated dataset is missing", "the step-1 kernel VAE is missing",
                 "the step-2 observation encoder is missing", "the one-step baseline is missing"):
        assert what in out
    assert all(run.model(step).is_file() for step in ("kernel_vae", "alignment", "one_step"))


def test_a_self_check_says_right_not_yet_or_no_answer(capsys, monkeypatch):
    monkeypatch.delenv(SOLVE_EXERCISES, raising=False)
    calls = []

    def solution():
        calls.append(1)
        return (0.5, 2)

    assert check(..., solution) is None and not calls  # unanswered: the solution does not run
    assert "No answer yet" in capsys.readouterr().out
    assert check((0.5001, 2), solution, atol=1e-3) is True and "Right" in capsys.readouterr().out
    assert check((0.6, 2), solution, atol=1e-3) is False and "Not yet" in capsys.readouterr().out
    assert check((0.5, 2, 3), solution) is False  # another shape is wrong, not an error
    assert check("6-fold", lambda: "6-fold") is True and check("4-fold", lambda: "6-fold") is False
    assert check({"a"}, lambda: {"a"}) is True and check("x", lambda: 1.0) is False
    monkeypatch.setenv(SOLVE_EXERCISES, "1")
    assert check(..., solution) is True  # the test suite: the solution answers its own check


def test_an_exercise_gets_a_run_directory_of_its_own(tmp_path):
    _, run = setup("smoke", tmp_path / "run", quiet=True)
    assert run.exercise("02-alpha0") == run.root / "exercises" / "02-alpha0"
    for bad in ("", "../data", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="one plain folder name"):
            run.exercise(bad)


def _fake_colab(monkeypatch, tmp_path, mounted: list):
    """A stand-in for Colab: ``google.colab`` importable, its ``drive.mount`` recording the call
    and Drive's mount point redirected into tmp_path."""
    import sys
    import types

    import qpi_utils.notebook as nb

    drive = types.SimpleNamespace(mount=lambda where: mounted.append(where))
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(nb, "DRIVE_ROOT", str(tmp_path / "drive"))
    monkeypatch.setattr(nb, "DRIVE_RUNS", str(tmp_path / "drive" / "MyDrive" / "qpi-kit" / "runs"))
    monkeypatch.delenv("QPI_RUN_DIR", raising=False)
    monkeypatch.delenv("QPI_DRIVE", raising=False)
    monkeypatch.delenv("QPI_PROFILE", raising=False)
    monkeypatch.setattr(nb, "_has_gpu", lambda: False)


def test_colab_without_a_gpu_says_so_and_keeps_the_run_on_drive(tmp_path, monkeypatch, capsys):
    """On a Colab CPU runtime the first cell says in one sentence that there is no GPU and how to
    switch, runs `quick`, mounts Drive once and keeps the run there: no notebook needs editing."""
    mounted = []
    _fake_colab(monkeypatch, tmp_path, mounted)
    profile, run = setup(None)
    out = capsys.readouterr().out
    assert profile.name == "quick"
    assert "no GPU" in out and "Runtime > Change runtime type > T4 GPU" in out and "`quick`" in out
    assert mounted == [str(tmp_path / "drive")]
    assert run.root == (tmp_path / "drive" / "MyDrive" / "qpi-kit" / "runs" / "quick").resolve()
    # a given run directory, $QPI_RUN_DIR or QPI_DRIVE=0 keep Drive out of it
    assert setup("smoke", tmp_path / "own", quiet=True)[1].root == (tmp_path / "own").resolve()
    monkeypatch.setenv("QPI_DRIVE", "0")
    assert not str(setup("smoke", quiet=True)[1].root).startswith(str(tmp_path / "drive"))
    assert mounted == [str(tmp_path / "drive")]


def test_a_gpu_profile_on_a_cpu_is_named_with_the_way_out(tmp_path, monkeypatch, capsys):
    import qpi_utils.notebook as nb

    monkeypatch.setattr(nb, "_has_gpu", lambda: False)
    setup("colab", tmp_path)
    out = capsys.readouterr().out
    assert "no GPU, and the `colab` profile is sized for one" in out and 'PROFILE = "quick"' in out
    setup("smoke", tmp_path)
    assert "GPU" not in capsys.readouterr().out  # nothing to say off Colab on a CPU profile
