"""The notebook chain: run every numbered notebook in order with papermill.

``qpi reproduce --profile P`` executes ``notebooks/01_*.ipynb`` ... ``09_*.ipynb`` into
``<run>/notebooks/`` (executed copies kept), each with the same ``PROFILE`` and ``RUN_DIR``.
After each notebook it copies the figures written so far (``<run>/figures``) to
``figures/<profile>/``, the tables (``<run>/results``) to ``results/<profile>/`` and the training
logs (``<run>/logs``) to ``results/<profile>/logs/``, so a late
failure keeps what the earlier notebooks made. It stops at the first failing notebook, naming
it and the failing cell's error. Executed notebooks are stripped of widget state (progress-bar
widgets keep their plain-text form), which would otherwise make up most of their size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from qpi_utils.config import get_profile
from qpi_utils.files import atomic_path, write_text
from qpi_utils.widgets import STATIC_WIDGETS_VARIABLE
from qpi_utils.runs import RunLayout, project_root

from .evaluate import write_provenance

__all__ = ["NOTEBOOKS", "ChainError", "notebook_paths", "run_chain", "strip_notebook"]

NOTEBOOKS = ("01_simulate", "02_kernel_vae", "03_alignment", "04_one_step", "05_results", "06_robustness",
             "07_tsne", "08_real_data", "09_ablations")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_PNG_CHARS = 100_000  # embedded figures larger than this (base64) are stored as JPEG
JPEG_QUALITY = 85

CELL_TIMEOUT = int(os.environ.get("QPI_CELL_TIMEOUT", 4 * 3600))  # s; a hung cell fails instead of blocking CI


class ChainError(RuntimeError):
    """A notebook of the chain failed; the message names it and the cell's error."""


def notebook_paths(notebooks_dir: str | os.PathLike | None = None) -> list[Path]:
    nb_dir = Path(notebooks_dir) if notebooks_dir else project_root() / "notebooks"
    paths = [nb_dir / f"{name}.ipynb" for name in NOTEBOOKS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ChainError(f"notebook(s) {', '.join(missing)} not found in {nb_dir}; run from a checkout of the kit "
                         "or pass --notebooks-dir")
    return paths


def strip_notebook(nb: dict) -> dict:
    """Drop papermill's injected-parameters cell (the notebook keeps its own defaults) and all
    widget state: the notebook-level ``widgets`` metadata and widget views in outputs (their
    ``text/plain`` form stays), and papermill's record of this machine's paths; large embedded
    figures become JPEG (see :func:`_as_jpeg`). Returns ``nb``, changed in place."""
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nb.get("metadata", {}).pop("widgets", None)
    for where in ("input_path", "output_path", "parameters", "environment_variables"):  # this machine's paths
        nb.get("metadata", {}).get("papermill", {}).pop(where, None)
    for cell in nb["cells"]:
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None and WIDGET_MIME in data:
                data.pop(WIDGET_MIME)
                if not data:
                    continue
            if data is not None and len(data.get("image/png", "")) > MAX_PNG_CHARS:
                data["image/jpeg"] = _as_jpeg(data.pop("image/png"))
            outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


BATCH_ENVIRONMENT = {
    # figures drawn into the notebook, whatever MPLBACKEND the caller set (a script's Agg would
    # leave the executed notebooks without their figures)
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    # nobody moves a slider in a batch run: widgets render their first state as a plain figure
    # (a live ipywidgets `interactive` drawing into its Output area could hang a frontend-less
    # kernel under the inline backend)
    STATIC_WIDGETS_VARIABLE: "1",
}


@contextlib.contextmanager
def _inline_figures():
    """Kernels started now see :data:`BATCH_ENVIRONMENT`; the caller's values come back after."""
    old = {k: os.environ.get(k) for k in BATCH_ENVIRONMENT}
    os.environ.update(BATCH_ENVIRONMENT)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _as_jpeg(png_base64) -> str:
    """A figure embedded in a notebook, re-encoded as JPEG: maps with colorbars compress badly as
    PNG, and the full-resolution PNGs are in figures/ anyway."""
    import base64
    import io

    from PIL import Image

    png = base64.b64decode("".join(png_base64) if isinstance(png_base64, list) else png_base64)
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _strip_file(path: Path) -> None:
    nb = strip_notebook(json.loads(path.read_text()))
    write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _copy_tree_files(src: Path, dst: Path, pattern: str) -> list[Path]:
    out = []
    for f in sorted(src.glob(pattern)):
        if f.is_file() and not f.name.startswith("."):
            with atomic_path(dst / f.name) as tmp:
                shutil.copyfile(f, tmp)
            out.append(dst / f.name)
    return out


def run_chain(profile_name: str, run: RunLayout | str | os.PathLike, figures_dir: str | os.PathLike | None = None,
              results_dir: str | os.PathLike | None = None, notebooks_dir: str | os.PathLike | None = None,
              update_notebooks: bool = False, progress: bool = True, only: list[str] | None = None,
              overrides: list[str] | None = None, workdir: str | os.PathLike | None = None) -> dict:
    """Execute the chain; returns {notebook: seconds}. ``update_notebooks`` writes the executed
    notebooks (stripped, see :func:`strip_notebook`) back over the sources: how the committed
    outputs are regenerated. ``overrides`` ("section.key=value", as ``--set``) reach every
    notebook's ``OVERRIDES`` parameter; a variant's figures and tables then default to
    ``<run>/collected`` so the committed ones are not overwritten, and it cannot update the
    committed notebooks. ``workdir``: the folder the notebooks run in (default: their own); the
    test suite runs them in an empty folder outside the checkout, as a pip-installed kit would."""
    if overrides and update_notebooks:
        raise ChainError("--set and --update-notebooks together would commit a variant as the profile's notebooks")
    import nbformat as nbf
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    layout = run if isinstance(run, RunLayout) else RunLayout(Path(run), profile_name)
    root = project_root()
    collected = layout.root / "collected" if overrides else None
    figures_dir = Path(figures_dir) if figures_dir else (collected / "figures" if collected else root / "figures" / profile_name)
    results_dir = Path(results_dir) if results_dir else (collected / "results" if collected else root / "results" / profile_name)
    layout.notebooks.mkdir(parents=True, exist_ok=True)
    times_file = results_dir / "chain_times.json"  # merged, so a partial re-run keeps the others
    times = json.loads(times_file.read_text()) if (only and times_file.is_file()) else {}
    for src in notebook_paths(notebooks_dir):  # every notebook readable before the first one runs
        try:
            nbf.read(str(src), as_version=4)
        except Exception as exc:  # JSON errors, merge markers, a schema violation: name the file, not nbformat's frames
            raise ChainError(f"{src} is not a readable notebook ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}); a merge conflict leaves '<<<<<<<' lines in it") from None
    for src in notebook_paths(notebooks_dir):
        name = src.stem
        if only and name not in only:
            continue
        dst = layout.notebooks / src.name
        scores = layout.result("scores.json")
        scored_before = scores.stat().st_mtime_ns if scores.is_file() else None
        t0 = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        try:
            with _inline_figures():
                pm.execute_notebook(str(src), str(dst), parameters={"PROFILE": profile_name, "RUN_DIR": str(layout.root),
                                                                   "OVERRIDES": list(overrides or [])},
                                    cwd=str(workdir or src.parent), progress_bar=progress, kernel_name="python3",
                                    execution_timeout=CELL_TIMEOUT)
            if scores.is_file() and scores.stat().st_mtime_ns != scored_before:
                # the notebook scored the methods (05): the lab adds the table's provenance
                write_provenance(get_profile(profile_name, list(overrides or [])), layout)
        except PapermillExecutionError as exc:
            raise ChainError(f"notebook {src.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                             f"(executed copy with the traceback: {dst})") from None
        finally:  # whatever the notebook made so far is kept, even when it failed
            _copy_tree_files(layout.figures, figures_dir, "*.png")
            _copy_tree_files(layout.results, results_dir, "*")
            _copy_tree_files(layout.logs, results_dir / "logs", "*.csv")
        times[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {times[name]:.0f} s", flush=True)
        _strip_file(dst)
        if update_notebooks:
            shutil.copyfile(dst, src)
        write_text(times_file, json.dumps(times, indent=2) + "\n")
    return times
