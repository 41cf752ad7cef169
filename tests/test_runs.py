import pytest

from qpi_utils.config import get_profile
from qpi_utils.runs import MissingArtefactError, RunLayout, as_layout, project_root, resolve_run_dir


def test_run_directory_follows_the_environment_and_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("QPI_RUN_DIR", str(tmp_path / "r"))
    assert resolve_run_dir("quick") == (tmp_path / "r").resolve()
    monkeypatch.delenv("QPI_RUN_DIR")
    root = project_root()
    assert (root / "pyproject.toml").is_file() and resolve_run_dir("smoke") == root / "runs" / "smoke"
    monkeypatch.chdir(root / "notebooks")  # notebooks and CLI share run directories
    assert resolve_run_dir("smoke") == root / "runs" / "smoke"


def test_layout_owns_every_path(tmp_path):
    run = RunLayout(tmp_path, "smoke")
    assert run.data == tmp_path.resolve() / "data"
    assert run.model("kernel_vae") == run.models / "kernel_vae.pt"
    assert run.checkpoint("one_step") == run.checkpoints / "one_step.pt"
    assert run.log("alignment") == run.logs / "alignment.csv"
    assert run.figure("sweep_snr_db") == run.figures / "sweep_snr_db.png"
    assert run.figure("a.svg") == run.figures / "a.svg"
    assert run.result("table.csv") == run.results / "table.csv"
    assert as_layout(tmp_path, get_profile("smoke")) == run
    assert as_layout(run, "quick") is run


@pytest.mark.parametrize("context, artefact, expected", [
    ("cli", "data", "`qpi simulate --profile smoke"),
    ("cli", "alignment", "`qpi train-alignment --profile smoke"),
    ("notebook", "data", "run notebook 01_simulate.ipynb first"),
    ("notebook", "one_step", "run notebook 04_one_step.ipynb first"),
])
def test_missing_artefacts_are_explained_in_the_callers_words(tmp_path, context, artefact, expected):
    run = RunLayout(tmp_path, "smoke", context)
    with pytest.raises(MissingArtefactError, match="is missing") as info:
        run.require(artefact)
    assert expected in str(info.value)
    assert isinstance(info.value, FileNotFoundError)  # the CLI reports it as a clear error


def test_paths_inside_the_checkout_are_shown_relative():
    root = project_root()
    run = RunLayout(root / "runs" / "smoke", "smoke")
    assert run.display(run.data) == "runs/smoke/data"


def test_an_unknown_context_is_refused(tmp_path):
    with pytest.raises(ValueError, match="context must be"):
        RunLayout(tmp_path, "smoke", "gui")
