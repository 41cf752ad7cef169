import json
from pathlib import Path

import nbformat as nbf
import pytest

from qpi_lab.chain import NOTEBOOKS, WIDGET_MIME, ChainError, run_chain, strip_notebook
from qpi_utils.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The suite's one execution of every notebook: the chain of `qpi reproduce --profile smoke`
    (01-09, as CI and `make reproduce` run it), in an empty folder outside the checkout (as a
    pip-installed kit runs them: nothing may be read from the project root), with every exercise's
    solution answering its self-check ($QPI_SOLVE_EXERCISES). Returns (tmp, executed notebook paths)."""
    import os

    from qpi_utils.notebook import SOLVE_EXERCISES

    tmp = tmp_path_factory.mktemp("chain")
    before = os.environ.get(SOLVE_EXERCISES)
    os.environ[SOLVE_EXERCISES] = "1"
    try:
        (tmp / "outside").mkdir()
        times = run_chain("smoke", tmp / "run", tmp / "figures", tmp / "results", progress=False,
                          workdir=tmp / "outside")
        assert set(times) == set(NOTEBOOKS)
    finally:
        if before is None:
            os.environ.pop(SOLVE_EXERCISES, None)
        else:
            os.environ[SOLVE_EXERCISES] = before
    return tmp, {p.stem: p for p in sorted((tmp / "run" / "notebooks").glob("*.ipynb"))}


def test_smoke_chain_runs_every_notebook_and_collects_outputs(executed):
    """`qpi reproduce --profile smoke`: the whole chain, as CI and `make reproduce` run it."""
    tmp, notebooks = executed
    assert set(notebooks) == set(NOTEBOOKS)
    figures = {p.name for p in (tmp / "figures").glob("*.png")}
    assert {"kernel_explorer.png", "dataset_examples.png", "kernel_vae_loss.png", "predictions_OOD.png",
            "tsne_kernel_latents.png", "tsne_observation_latents.png", "symmetric_loss_rotation.png"} <= figures
    table = (tmp / "results" / "table.csv").read_text().splitlines()
    assert table[0].startswith("setting,method,n,mae,mse,rmse,mae_pm1,mse_pm1,rmse_pm1")
    assert len(table) == 1 + 2 * len(METHODS)  # header, (ID, OOD) x every method
    assert set(json.loads((tmp / "results" / "chain_times.json").read_text())) == set(NOTEBOOKS)
    prov = json.loads((tmp / "results" / "provenance.json").read_text())  # the lab's, beside notebook 05's table
    assert prov["methods"] == list(METHODS) and set(prov["training"]) == {"kernel_vae", "alignment", "one_step", "one_step_paper"}


def _printed(cell) -> str:
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_marked_outputs_match_the_committed_notebooks(executed):
    """What nbval checked, on the suite's one execution: every cell marked ``# NBVAL_CHECK_OUTPUT``
    prints, at the smoke profile, what the committed (quick-profile) notebook printed."""
    _, notebooks = executed
    checked = 0
    for name, path in notebooks.items():
        committed = {c.source: c for c in nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells}
        for cell in nbf.read(path, as_version=4).cells:
            if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in cell.source:
                assert _printed(cell) == _printed(committed[cell.source]), f"{name}: {cell.source.splitlines()[1]}"
                checked += 1
    assert checked >= len(NOTEBOOKS)


def test_every_exercise_solution_passes_its_self_check(executed):
    _, notebooks = executed
    for name, path in notebooks.items():
        checks = [_printed(c) for c in nbf.read(path, as_version=4).cells if "self-check" in c.metadata.get("tags", [])]
        assert 2 <= len(checks) <= 4, f"{name}: {len(checks)} exercises"
        assert all(text.startswith("Right") for text in checks), f"{name}: {checks}"


def _fake_notebooks(folder: Path, failing: str = "") -> None:
    folder.mkdir()
    for name in NOTEBOOKS:
        nb = nbf.v4.new_notebook()
        params = nbf.v4.new_code_cell("PROFILE = None\nRUN_DIR = None")
        params.metadata["tags"] = ["parameters"]
        body = "raise ValueError('kernel has the wrong symmetry')" if name == failing else "x = 1"
        if name == "01_simulate":  # a figure, written where the chain collects figures from
            body = ("import os, pathlib\np = pathlib.Path(RUN_DIR) / 'figures'\np.mkdir(parents=True)\n"
                    "(p / 'made_by_01.png').write_bytes(b'png')")
        nb.cells = [params, nbf.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbf.write(nb, folder / f"{name}.ipynb")


def test_chain_stops_at_the_first_failing_notebook_and_names_it(tmp_path):
    _fake_notebooks(tmp_path / "nbs", failing="03_alignment")
    with pytest.raises(ChainError, match=r"03_alignment.ipynb failed in cell \d+: ValueError: kernel has the wrong symmetry"):
        run_chain("smoke", tmp_path / "run", tmp_path / "fig", tmp_path / "res", notebooks_dir=tmp_path / "nbs",
                  progress=False)
    done = {p.stem for p in (tmp_path / "run" / "notebooks").glob("*.ipynb")}
    assert done == {"01_simulate", "02_kernel_vae", "03_alignment"}  # nothing after the failure
    # what the notebooks before the failure made is collected all the same
    assert (tmp_path / "fig" / "made_by_01.png").is_file()
    assert set(json.loads((tmp_path / "res" / "chain_times.json").read_text())) == {"01_simulate", "02_kernel_vae"}


def test_a_notebook_with_merge_markers_is_named_before_anything_runs(tmp_path):
    _fake_notebooks(tmp_path / "nbs")
    broken = tmp_path / "nbs" / "04_one_step.ipynb"
    text = broken.read_text()
    broken.write_text("<<<<<<< HEAD\n" + text + "=======\n" + text + ">>>>>>> theirs\n")
    with pytest.raises(ChainError, match=r"04_one_step.ipynb is not a readable notebook .*merge conflict"):
        run_chain("smoke", tmp_path / "run", tmp_path / "fig", tmp_path / "res", notebooks_dir=tmp_path / "nbs",
                  progress=False)
    assert not (tmp_path / "run" / "notebooks").exists() or not any((tmp_path / "run" / "notebooks").iterdir())


ALL_NOTEBOOKS = NOTEBOOKS


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_committed_notebooks_have_the_parts_students_need(name):
    """A chapter: objectives, time, a link to the paper with its version, the method's code where it
    teaches one, a summary, and 2-4 exercises each with a starter, a hint, a hidden solution and a
    self-check, in that order."""
    nb = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "colab-badge" in first.source
    card = nb.cells[1].source
    assert "**You will**" in card and "**Time**" in card and "https://arxiv.org/abs/2506.05325v1" in card
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert sum("parameters" in t for t in tags) == 1 and not any("injected-parameters" in t for t in tags)
    assert any("NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code")
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    for c in nb.cells:
        if c.cell_type == "code":
            limit = 40 if "method" in c.metadata.get("tags", []) else 15
            assert len(c.source.splitlines()) <= limit, f"{name}: code cells stay short (logic lives in qpi_utils)"
    if name in ("02_kernel_vae", "03_alignment", "04_one_step"):  # the method on screen: its loss and a step
        method = "\n".join(c.source for c in nb.cells if "method" in c.metadata.get("tags", []))
        assert "def " in method and "loss" in method and ".backward()" in method and "optimizer.step()" in method
    assert nb.cells[-1].source.startswith("## Summary")
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("### Exercise ")]
    assert 2 <= len(starts) <= 4
    for n, i in enumerate(starts, 1):
        task, starter, hint, solution, check = nb.cells[i:i + 5]
        assert "exercise" in starter.metadata.get("tags", []) and f"answer_{n} = ..." in starter.source
        assert hint.source.startswith("<details><summary>Hint</summary>")
        assert "solution" in solution.metadata.get("tags", []) and solution.metadata.get("jupyter", {}).get("source_hidden")
        assert f"def solution_{n}():" in solution.source
        assert "self-check" in check.metadata.get("tags", []) and f"check(answer_{n}, solution_{n}" in check.source


def test_exercises_that_simulate_or_train_use_a_run_of_their_own():
    """No exercise can damage the run it sits in: an exercise that trains or saves works under
    ``run.exercise(...)``, and none writes into ``run`` itself."""
    for name in ALL_NOTEBOOKS:
        nb = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        for c in nb.cells:
            tags = c.metadata.get("tags", [])
            if {"exercise", "solution"} & set(tags):
                assert "save_dataset" not in c.source and "qpi.setup(PROFILE, RUN_DIR" not in c.source, name
                if "train_" in c.source and "exercise" in tags:
                    assert "run.exercise(" in c.source, name


def test_strip_notebook_removes_widget_state_and_injected_parameters():
    nb = nbf.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    nb.metadata["papermill"] = {"input_path": "/home/me/qpi/notebooks/x.ipynb", "duration": 1.0}
    injected = nbf.v4.new_code_cell("PROFILE = 'smoke'")
    injected.metadata["tags"] = ["injected-parameters"]
    bar = nbf.v4.new_code_cell("train()")
    bar.outputs = [nbf.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "a"}, "text/plain": "epoch 1/2"}),
                   nbf.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "b"}}),
                   nbf.v4.new_output("stream", name="stdout", text="done\n")]
    nb.cells = [injected, bar]
    out = strip_notebook(json.loads(nbf.writes(nb)))
    assert "widgets" not in out["metadata"] and len(out["cells"]) == 1
    outputs = out["cells"][0]["outputs"]
    assert [o["output_type"] for o in outputs] == ["display_data", "stream"]
    assert list(outputs[0]["data"]) == ["text/plain"] and "".join(outputs[0]["data"]["text/plain"]) == "epoch 1/2"
    assert "input_path" not in out["metadata"].get("papermill", {})


def test_large_embedded_figures_become_jpeg_and_small_ones_stay_png():
    import base64
    import io

    import numpy as np
    from PIL import Image

    def png(size):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
        return base64.b64encode(buf.getvalue()).decode()

    nb = nbf.v4.new_notebook()
    cell = nbf.v4.new_code_cell("plot()")
    cell.outputs = [nbf.v4.new_output("display_data", data={"image/png": png(400)}),
                    nbf.v4.new_output("display_data", data={"image/png": png(8)})]
    nb.cells = [cell]
    out = strip_notebook(json.loads(nbf.writes(nb)))["cells"][0]["outputs"]
    assert list(out[0]["data"]) == ["image/jpeg"] and list(out[1]["data"]) == ["image/png"]
    assert Image.open(io.BytesIO(base64.b64decode(out[0]["data"]["image/jpeg"]))).size == (400, 400)


def test_committed_notebooks_are_small_and_use_the_one_setup_call():
    paths = [ROOT / "notebooks" / f"{name}.ipynb" for name in NOTEBOOKS]
    # nine chapters with legible figures (110 dpi; large ones as JPEG, qpi_lab.chain.strip_notebook)
    assert sum(p.stat().st_size for p in paths) < 5 * 1024 * 1024
    for path in paths:
        nb = nbf.read(path, as_version=4)
        assert "widgets" not in nb.metadata, path.name
        assert "input_path" not in nb.metadata.get("papermill", {}), path.name
        assert any({"image/png", "image/jpeg"} & set(o.get("data", {})) for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", [])), f"{path.name}: the committed outputs hold its figures"
        assert WIDGET_MIME not in path.read_text(), path.name
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        assert sum("qpi.setup(PROFILE, RUN_DIR" in c for c in code) == 1, path.name
        assert not any("from qpi_utils" in c for c in code), f"{path.name}: import the package once, as qpi"
        assert nb.cells[-1].source.startswith("## Summary"), f"{path.name} ends with its summary"


def test_one_repository_address_everywhere():
    from qpi_utils import REPOSITORY

    owner_name = REPOSITORY.split("/", 1)[1]
    for name in NOTEBOOKS:
        nb = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert f"colab.research.google.com/github/{owner_name}/blob/main/notebooks/{name}.ipynb" in nb.cells[0].source
        install = next(c.source for c in nb.cells if "%pip install" in c.source)
        assert f"git+https://{REPOSITORY}" in install and "pip install -q -e .." in install, name
        text = "".join(c.source for c in nb.cells)
        assert text.count("github.com/") == text.count(REPOSITORY), f"{name}: another repository address"
    assert f"git+https://{REPOSITORY}" in (ROOT / "docs" / "setup.md").read_text()
    readme = (ROOT / "README.md").read_text()  # every chapter's badge, to this repository
    assert all(f"colab.research.google.com/github/{owner_name}/blob/main/notebooks/{name}.ipynb" in readme
               for name in NOTEBOOKS)


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_a_colab_badge_opens_a_gpu_runtime(name):
    """Colab reads the accelerator from the notebook's metadata: the badge opens a GPU (T4) runtime,
    where the default profile is colab, instead of a CPU one that quietly falls back to quick."""
    meta = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).metadata
    assert meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == "T4"
