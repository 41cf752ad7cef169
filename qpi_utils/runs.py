"""The run directory: :class:`RunLayout` knows where every artefact of a run lives and says what
makes a missing one. See ``docs/library.md``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .config import Profile
from .errors import QpiError
from .files import FetchError, data_dir, fetch_verified

__all__ = ["STEPS", "MissingArtefactError", "RunLayout", "ARTEFACTS", "project_root", "resolve_run_dir", "as_layout",
           "COMMITTED_FILES", "committed_file", "find_result"]

STEPS = ("kernel_vae", "alignment", "one_step", "one_step_paper")  # the trained networks of a run, in training order

# artefact -> (what it is, the CLI command that makes it, the notebook that makes it)
ARTEFACTS = {
    "data": ("the simulated dataset", "simulate", "01_simulate"),
    "kernel_vae": ("the step-1 kernel VAE", "train-kernel-vae", "02_kernel_vae"),
    "alignment": ("the step-2 observation encoder", "train-alignment", "03_alignment"),
    "one_step": ("the one-step baseline", "train-one-step", "04_one_step"),
    "one_step_paper": ("the paper's one-step baseline", "train-one-step-paper", "04_one_step"),
    "results": ("the ID/OOD results table", "evaluate", "05_results"),
}


class MissingArtefactError(QpiError, FileNotFoundError):
    """An artefact a step needs is not in the run directory; the message says what makes it."""


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The kit's checkout (the nearest parent holding pyproject.toml and qpi_utils/), else the
    current directory. Notebooks run from notebooks/ and the CLI from the top level both land
    on the same run directories this way."""
    here = Path(start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "qpi_utils").is_dir():
            return cand
    return here


def resolve_run_dir(profile_name: str, run_dir: str | os.PathLike | None = None) -> Path:
    """Absolute run directory: ``run_dir`` if given, else ``$QPI_RUN_DIR``, else
    ``<project root>/runs/<profile>``."""
    chosen = run_dir or os.environ.get("QPI_RUN_DIR")
    return Path(chosen).resolve() if chosen else project_root() / "runs" / profile_name


@dataclass(frozen=True)
class RunLayout:
    """Paths under one run directory. ``context`` ("cli" or "notebook") chooses how missing
    artefacts are explained; ``profile_name`` goes into the suggested commands."""

    root: Path
    profile_name: str = "quick"
    context: str = "cli"
    data_from: Path | None = None  # a variant's run reads its dataset from here (see variant)

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())
        if self.data_from is not None:
            object.__setattr__(self, "data_from", Path(self.data_from).resolve())
        if self.context not in ("cli", "notebook"):
            raise ValueError(f"context must be 'cli' or 'notebook', got {self.context!r}")

    @classmethod
    def for_profile(cls, profile: Profile | str, run_dir: str | os.PathLike | None = None,
                    context: str = "cli") -> "RunLayout":
        name = profile if isinstance(profile, str) else profile.name
        return cls(resolve_run_dir(name, run_dir), name, context)

    # directories ------------------------------------------------------------------------------
    data = property(lambda self: self.data_from or self.root / "data")
    data_realistic = property(lambda self: self.root / "data-realistic")  # checkpoints.load_realistic_data
    checkpoints = property(lambda self: self.root / "checkpoints")
    models = property(lambda self: self.root / "models")
    logs = property(lambda self: self.root / "logs")
    figures = property(lambda self: self.root / "figures")
    results = property(lambda self: self.root / "results")
    notebooks = property(lambda self: self.root / "notebooks")

    # files ------------------------------------------------------------------------------------
    def model(self, step: str) -> Path:
        return self.models / f"{step}.pt"

    def checkpoint(self, step: str) -> Path:
        return self.checkpoints / f"{step}.pt"

    def log(self, step: str) -> Path:
        return self.logs / f"{step}.csv"

    def figure(self, name: str) -> Path:
        """``figures/<name>``, ``.png`` added when ``name`` has no suffix."""
        return self.figures / (name if Path(name).suffix else f"{name}.png")

    def result(self, name: str) -> Path:
        return self.results / name

    def exercise(self, name: str) -> Path:
        """``exercises/<name>``: a run directory of its own for a notebook exercise that simulates or
        trains, so that no exercise can overwrite this run's data or models."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"an exercise name is one plain folder name, got {name!r}")
        return self.root / "exercises" / name

    def variant(self, name: str) -> "RunLayout":
        """``variants/<name>``: a run of its own for networks trained with other settings on this run's
        dataset (read in place, never copied or written), e.g. notebook 09's step 1 without the
        symmetric loss. Its fingerprints record those settings, so it never mixes with this run."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"a variant name is one plain folder name, got {name!r}")
        return RunLayout(self.root / "variants" / name, self.profile_name, self.context, data_from=self.data)

    # missing artefacts ------------------------------------------------------------------------
    def artefact(self, name: str) -> Path:
        """The file whose presence means ``name`` (a key of :data:`ARTEFACTS`) is made: the
        dataset's ``meta.json`` (written last) or ``models/<step>.pt``."""
        return self.data / "meta.json" if name == "data" else self.model(name)

    def how_to_make(self, artefact: str) -> str:
        """How to make ``artefact`` (a key of :data:`ARTEFACTS`), in this layout's context."""
        what, cmd, notebook = ARTEFACTS[artefact]
        if self.context == "notebook":
            return f"run notebook {notebook}.ipynb first"
        return f"run `qpi {cmd} --profile {self.profile_name} --run-dir {self.display(self.root)}` first"

    def require(self, artefact: str, path: Path | None = None) -> Path:
        """The artefact's path (its ``data/meta.json`` or ``models/<step>.pt``, or ``path``);
        :class:`MissingArtefactError` naming it and what makes it when it is not there."""
        what = ARTEFACTS[artefact][0]
        path = self.artefact(artefact) if path is None else path
        if not Path(path).is_file():
            raise MissingArtefactError(f"{what} is missing ({self.display(path)} not found): "
                                       f"{self.how_to_make(artefact)}")
        return Path(path)

    def display(self, path: str | os.PathLike) -> str:
        """``path`` relative to the checkout when inside it (outputs carry no machine's paths)."""
        path = Path(path).resolve()
        try:
            return str(path.relative_to(project_root()))
        except ValueError:
            return str(path)


def as_layout(run: "RunLayout | str | os.PathLike", profile: Profile | str) -> RunLayout:
    """``run`` as a :class:`RunLayout` (a plain path becomes one with the CLI's wording)."""
    if isinstance(run, RunLayout):
        return run
    return RunLayout(Path(run), profile if isinstance(profile, str) else profile.name, "cli")


# path in the repository -> SHA-256 of every results file and kit prior committed at this version
# of the kit (written by `python -m qpi_lab.manifest --write`; a test keeps it equal to the files)
COMMITTED_FILES = Path(__file__).with_name("committed_files.json")
REPOSITORY_FILES = "https://raw.githubusercontent.com/qpi-kit/qpi-kit/main/"


def committed_file(relative: str) -> Path | None:
    """A file committed with the kit (``relative`` to the repository, e.g.
    ``"results/quick/ablations/angles.md"`` or ``"priors/kernel-prior-small.safetensors"``): the
    checkout's copy when running in a checkout, otherwise a copy downloaded from the repository
    into the data cache and checked against the SHA-256 this version recorded for it
    (:func:`qpi_utils.files.fetch_verified`). None when the kit has no such file. Raises
    :class:`~qpi_utils.files.FetchError` when it exists but cannot be fetched."""
    manifest = json.loads(COMMITTED_FILES.read_text())
    if relative not in manifest:
        return None
    local = project_root() / relative
    if local.is_file():
        return local
    return fetch_verified(relative, REPOSITORY_FILES + relative, manifest[relative], data_dir() / "committed")


def find_result(run: RunLayout, relative: str) -> Path | str:
    """A results table for ``run``'s profile (``relative`` to ``results/<profile>/``): the run's own
    (``<run>/results/...``, what the lab writes with ``--results-dir``) if it made one, else the
    kit's committed copy (:func:`committed_file`). Otherwise a one-line reason (str) to print."""
    own = run.results / relative
    if own.is_file():
        return own
    try:
        found = committed_file(f"results/{run.profile_name}/{relative}")
    except FetchError as exc:
        return f"the kit's committed {relative} for profile {run.profile_name} cannot be read here: {exc}"
    return found or (f"{relative} is not made for profile {run.profile_name} yet, and the kit commits none "
                     "for it")
