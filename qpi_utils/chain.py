"""The notebook chain: run every numbered notebook in order with papermill.

``qpi reproduce --profile P`` executes ``notebooks/01_*.ipynb`` ... ``08_*.ipynb`` into
``<run>/notebooks/`` (executed copies kept), each with the same ``PROFILE`` and absolute
``RUN_DIR``; then copies the figures the notebooks wrote (``<run>/figures``) to
``figures/<profile>/`` and the tables (``<run>/results``) to ``results/<profile>/``. It stops at
the first failing notebook, naming it and the failing cell's error.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .config import project_root

__all__ = ["NOTEBOOKS", "ChainError", "notebook_paths", "run_chain"]

NOTEBOOKS = ("01_simulate", "02_kernel_vae", "03_alignment", "04_one_step", "05_results", "06_robustness",
             "07_tsne", "08_real_data")


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


def _strip_injected(path: Path) -> None:
    """Drop papermill's injected-parameters cell so the notebook keeps its own defaults."""
    nb = json.loads(path.read_text())
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _copy_tree_files(src: Path, dst: Path, pattern: str) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for f in sorted(src.glob(pattern)):
        if f.is_file() and not f.name.startswith("."):
            tmp = dst / f".{f.name}.tmp-{os.getpid()}"
            shutil.copyfile(f, tmp)
            os.replace(tmp, dst / f.name)
            out.append(dst / f.name)
    return out


def run_chain(profile_name: str, run_dir: str | os.PathLike, figures_dir: str | os.PathLike | None = None,
              results_dir: str | os.PathLike | None = None, notebooks_dir: str | os.PathLike | None = None,
              update_notebooks: bool = False, progress: bool = True, only: list[str] | None = None) -> dict:
    """Execute the chain; returns {notebook: seconds}. ``update_notebooks`` writes the executed
    notebooks back over the sources (how the committed outputs are regenerated)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    run_dir = Path(run_dir).resolve()
    root = project_root()
    figures_dir = Path(figures_dir) if figures_dir else root / "figures" / profile_name
    results_dir = Path(results_dir) if results_dir else root / "results" / profile_name
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    for src in notebook_paths(notebooks_dir):
        name = src.stem
        if only and name not in only:
            continue
        dst = out_dir / src.name
        t0 = time.perf_counter()
        print(f"[{name}] running ...", flush=True)
        try:
            pm.execute_notebook(str(src), str(dst), parameters={"PROFILE": profile_name, "RUN_DIR": str(run_dir)},
                                cwd=str(src.parent), progress_bar=progress, kernel_name="python3",
                                execution_timeout=CELL_TIMEOUT)
        except PapermillExecutionError as exc:
            raise ChainError(f"notebook {src.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                             f"(executed copy with the traceback: {dst})") from None
        times[name] = round(time.perf_counter() - t0, 1)
        print(f"[{name}] done in {times[name]:.0f} s", flush=True)
        if update_notebooks:
            shutil.copyfile(dst, src)
            _strip_injected(src)
    _copy_tree_files(run_dir / "figures", figures_dir, "*.png")
    _copy_tree_files(run_dir / "results", results_dir, "*")
    times_file = results_dir / "chain_times.json"  # merged, so a partial re-run keeps the others
    previous = json.loads(times_file.read_text()) if (only and times_file.is_file()) else {}
    times_file.write_text(json.dumps({**previous, **times}, indent=2) + "\n")
    return times
