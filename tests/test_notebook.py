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
