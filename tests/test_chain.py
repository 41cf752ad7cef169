import json
from pathlib import Path

import nbformat as nbf
import pytest

from qpi_utils.chain import NOTEBOOKS, WIDGET_MIME, ChainError, run_chain, strip_notebook
from qpi_utils.cli import main
from qpi_utils.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_chain_runs_every_notebook_and_collects_outputs(tmp_path):
    """`qpi reproduce --profile smoke`: the whole chain, as CI and `make reproduce` run it."""
    code = main(["reproduce", "--profile", "smoke", "--run-dir", str(tmp_path / "run"), "--no-progress",
                 "--figures-dir", str(tmp_path / "figures"), "--results-dir", str(tmp_path / "results")])
    assert code == 0
    for name in NOTEBOOKS:
        assert (tmp_path / "run" / "notebooks" / f"{name}.ipynb").is_file()
    figures = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert {"kernel_explorer.png", "dataset_examples.png", "kernel_vae_loss.png", "predictions_OOD.png",
            "tsne_kernel_latents.png", "tsne_observation_latents.png"} <= figures
    table = (tmp_path / "results" / "table.csv").read_text().splitlines()
    assert table[0].startswith("setting,method,n,mae,mse,rmse,mae_pm1,mse_pm1,rmse_pm1")
    assert len(table) == 1 + 2 * len(METHODS)  # header, (ID, OOD) x every method
    assert set(json.loads((tmp_path / "results" / "chain_times.json").read_text())) == set(NOTEBOOKS)


def _fake_notebooks(folder: Path, failing: str) -> None:
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


def test_committed_notebooks_have_the_parts_students_need():
    for name in NOTEBOOKS:
        nb = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        first = nb.cells[0]
        assert first.cell_type == "markdown" and "colab-badge" in first.source, name
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert sum("parameters" in t for t in tags) == 1, name
        assert not any("injected-parameters" in t for t in tags), name
        assert any("NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code"), name
        assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", [])), name
        code_lines = [len(c.source.splitlines()) for c in nb.cells if c.cell_type == "code"]
        assert max(code_lines) <= 15, f"{name}: code cells stay short (logic lives in qpi_utils)"


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
    assert sum(p.stat().st_size for p in paths) < 3 * 1024 * 1024
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
        assert "## Exercises" in nb.cells[-1].source, f"{path.name} ends with exercises"


def test_one_repository_address_everywhere():
    from qpi_utils import REPOSITORY

    owner_name = REPOSITORY.split("/", 1)[1]
    for name in NOTEBOOKS:
        nb = nbf.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert f"colab.research.google.com/github/{owner_name}/blob/main/notebooks/{name}.ipynb" in nb.cells[0].source
        install = nb.cells[1].source
        assert f"git+https://{REPOSITORY}" in install and "pip install -q -e .." in install, name
        text = "".join(c.source for c in nb.cells)
        assert text.count("github.com/") == text.count(REPOSITORY), f"{name}: another repository address"
    assert f"git+https://{REPOSITORY}" in (ROOT / "README.md").read_text()


def test_a_late_notebook_opened_alone_makes_what_it_needs(tmp_path):
    """Notebook 05 in an empty run directory (a fresh Colab runtime): it simulates and trains what
    notebooks 01-04 would have made, then runs to the end."""
    import papermill as pm

    out = tmp_path / "05.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "05_results.ipynb"), str(out), cwd=str(ROOT / "notebooks"),
                        parameters={"PROFILE": "smoke", "RUN_DIR": str(tmp_path / "run")}, progress_bar=False,
                        kernel_name="python3")
    text = out.read_text()
    for what in ("the simulated dataset is missing", "the step-1 kernel VAE is missing",
                 "the one-step baseline is missing"):
        assert what in text
    assert (tmp_path / "run" / "results" / "table.csv").is_file()
