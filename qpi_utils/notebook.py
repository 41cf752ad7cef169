"""The notebooks' one set-up call, :func:`setup`, which makes what an opened notebook needs, and
the exercises' self-check. See ``docs/library.md``."""

from __future__ import annotations

import os
import sys

import numpy as np

from .config import Profile, get_profile, resolve_init
from .data import save_dataset, simulate_dataset
from .plots import pyplot
from .runs import ARTEFACTS, RunLayout
from .train import TRAINERS

__all__ = ["REQUIRES", "setup", "ensure", "check", "SOLVE_EXERCISES"]

# what each artefact needs first
REQUIRES = {"data": (), "kernel_vae": ("data",), "alignment": ("data", "kernel_vae"), "one_step": ("data",),
            "one_step_paper": ("data",)}
# ... and the one-step baseline the step-1 VAE when it starts from it (config.resolve_init)
NOTEBOOK_DPI = 110  # figures in the notebook: legible legends and ticks, still small files

GPU_PROFILES = ("colab", "paper")  # sized for a GPU: hours on a CPU
NO_GPU = ("This runtime has no GPU, and the `{name}` profile is sized for one (hours on a CPU). On Colab, "
          "switch: Runtime > Change runtime type > T4 GPU, then run the notebook again; or set "
          "PROFILE = \"quick\" (sized for a 2-core CPU) in the parameters cell.")
COLAB_CPU = ("This Colab runtime has no GPU, so the notebooks run the `quick` profile (sized for a 2-core CPU). "
             "For the paper's model: Runtime > Change runtime type > T4 GPU, then run the notebook again.")
DRIVE_ROOT = "/content/drive"  # where Colab mounts Google Drive
DRIVE_RUNS = DRIVE_ROOT + "/MyDrive/qpi-kit/runs"  # on Colab every notebook keeps its run here


def _on_colab() -> bool:
    return "google.colab" in sys.modules


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def colab_run_dir(profile_name: str) -> str | None:
    """On Colab, the one place every notebook keeps its run: Google Drive (mounted here if it is
    not yet; Colab asks for permission once per runtime), so work survives a disconnect and the
    next notebook finds it. None elsewhere, with ``$QPI_RUN_DIR`` set, or with ``$QPI_DRIVE=0``."""
    if not _on_colab() or os.environ.get("QPI_RUN_DIR") or os.environ.get("QPI_DRIVE", "1") == "0":
        return None
    if not os.path.ismount(DRIVE_ROOT):
        from google.colab import drive  # only importable on Colab

        print("Mounting Google Drive to keep this run across disconnects (set QPI_DRIVE=0 to keep it on the "
              "runtime's disk instead)", flush=True)
        drive.mount(DRIVE_ROOT)
    return f"{DRIVE_RUNS}/{profile_name}"


def ensure(profile: Profile, run: RunLayout, artefact: str, make_missing: bool = True) -> None:
    """Make ``artefact`` (and what it needs) if it is not in ``run`` yet, or raise
    :class:`~qpi_utils.runs.MissingArtefactError` naming the notebook that makes it."""
    needs = REQUIRES[artefact]
    if artefact in ("one_step", "one_step_paper") and resolve_init(profile, artefact) == "kernel_vae":
        needs = (*needs, "kernel_vae")
    for needed in needs:
        ensure(profile, run, needed, make_missing)
    if run.artefact(artefact).is_file():
        return
    if not make_missing:
        run.require(artefact)
    what, _, notebook = ARTEFACTS[artefact]
    print(f"{what} is missing: making it now, as notebook {notebook} does", flush=True)
    if artefact == "data":
        save_dataset(simulate_dataset(profile.simulation, profile=profile.name), run.data)
    else:
        TRAINERS[artefact](profile, run)


SOLVE_EXERCISES = "QPI_SOLVE_EXERCISES"  # set (the test suite does): each self-check checks its solution


def _same(answer, expected, atol: float, rtol: float) -> bool:
    if isinstance(expected, (str, bool, set, frozenset)) or expected is None:
        return answer == expected
    try:
        a, e = np.asarray(answer, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == e.shape and bool(np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True))


def check(answer, solution, atol: float = 0.0, rtol: float = 1e-6) -> bool | None:
    """An exercise's self-check: compare ``answer`` (the student's, ``...`` until answered) with
    ``solution()`` (the hidden solution cell's function, called only once there is an answer, so
    a solution that trains never runs unasked). Numbers and arrays must agree within ``atol`` +
    ``rtol`` * |expected|; strings, booleans and sets exactly. Prints one line; returns True or
    False, or None while unanswered. With ``$QPI_SOLVE_EXERCISES`` set the solution answers itself
    (how the test suite runs every solution through its check)."""
    if answer is ... or answer is None:
        if not os.environ.get(SOLVE_EXERCISES):
            print("No answer yet: replace the ... in the exercise cell, run it, then run this cell again.")
            return None
        answer = expected = solution()
    else:
        expected = solution()
    ok = _same(answer, expected, atol, rtol)
    tolerance = f" (within {atol:g})" if atol else ""
    print(f"Right{tolerance}: {answer!r}." if ok else f"Not yet: {answer!r} is not what the solution gets{tolerance}; "
          "look at the hint, or open the solution cell.")
    return ok


def setup(profile: str | None = None, run_dir: str | os.PathLike | None = None, requires: tuple[str, ...] = (),
          overrides: dict | list | None = None, make_missing: bool = True,
          quiet: bool = False) -> tuple[Profile, RunLayout]:
    """The profile (``None``: ``$QPI_PROFILE``, else the default for this machine) and its run
    directory (``None``: ``$QPI_RUN_DIR``; on Colab, Google Drive: :func:`colab_run_dir`; else
    ``<checkout>/runs/<profile>``), with every artefact in ``requires`` present (see
    :func:`ensure`). Prints both unless ``quiet``, and says so when a GPU profile meets a runtime
    without a GPU (on Colab, how to switch)."""
    prof = get_profile(profile, overrides)
    if not quiet and not _has_gpu():
        if prof.name in GPU_PROFILES:
            print(NO_GPU.format(name=prof.name))
        elif _on_colab():
            print(COLAB_CPU)
    run = RunLayout.for_profile(prof, run_dir or colab_run_dir(prof.name), context="notebook")
    # figures shown in the notebook at NOTEBOOK_DPI (the chain stores the large ones as JPEG); the files
    # written by save_figure have their own, higher resolution
    pyplot().rcParams["figure.dpi"] = NOTEBOOK_DPI
    if not quiet:
        print(f"profile: {prof.name}; run directory: {run.display(run.root)}")
    unknown = [a for a in requires if a not in REQUIRES]
    if unknown:
        raise ValueError(f"requires names unknown artefact(s) {unknown}; choose from {', '.join(REQUIRES)}")
    for artefact in requires:
        ensure(prof, run, artefact, make_missing)
    return prof, run
