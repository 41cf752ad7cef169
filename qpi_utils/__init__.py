"""qpi-kit: machine-learning extraction of QPI kernels from STM images.

One module per concept, in the order of the method:

* physics -- :mod:`~qpi_utils.simulate` (the kernel model, rendering observations at continuous
  positions, activation maps) and :mod:`~qpi_utils.physics` (the forward operator Y = M (*) A,
  forward and adjoint, numpy and torch);
* data -- :mod:`~qpi_utils.data` (the on-disk format, making a simulated dataset, torch views),
  :mod:`~qpi_utils.splits` (ID/OOD splits), :mod:`~qpi_utils.authors_csv` (the authors' files);
* learning -- :mod:`~qpi_utils.models`, :mod:`~qpi_utils.losses`, :mod:`~qpi_utils.train`,
  :mod:`~qpi_utils.checkpoints` (loading what a run trained);
* methods and results -- :mod:`~qpi_utils.baselines`, :mod:`~qpi_utils.methods`,
  :mod:`~qpi_utils.metrics`, :mod:`~qpi_utils.evaluate`, :mod:`~qpi_utils.analysis`,
  :mod:`~qpi_utils.sweeps`, :mod:`~qpi_utils.provenance`;
* around them -- :mod:`~qpi_utils.config` (profiles), :mod:`~qpi_utils.runs` (the run
  directory), :mod:`~qpi_utils.notebook` (the notebooks' ``setup``), :mod:`~qpi_utils.budget`
  (FLOPs and time of a profile), :mod:`~qpi_utils.realdata`, :mod:`~qpi_utils.plots`, :mod:`~qpi_utils.widgets`,
  :mod:`~qpi_utils.chain`, :mod:`~qpi_utils.cli`, and the helpers :mod:`~qpi_utils.files`
  (atomic writes) and :mod:`~qpi_utils.imaging` (min-max scaling, rotation).

Notebooks import the package once and use the modules by name::

    import qpi_utils as qpi
    profile, run = qpi.setup(PROFILE, RUN_DIR)
    ds = qpi.data.simulate_dataset(profile.simulation)

Submodules are imported on first use, so ``import qpi_utils`` itself is light.
"""

import importlib

__version__ = "0.1.0"
# The kit's public repository, in one place: the notebooks' Colab badges and install cells and
# the README use it, and tests/test_chain.py fails when one of them disagrees.
REPOSITORY = "github.com/qpi-kit/qpi-kit"

SUBMODULES = ("analysis", "authors_csv", "baselines", "budget", "chain", "checkpoints", "cli", "config", "data",
              "evaluate", "files", "imaging", "losses", "methods", "metrics", "models", "notebook", "physics", "plots",
              "paper", "provenance", "realdata", "runs", "seeds", "simulate", "splits", "sweeps", "train", "widgets")

__all__ = ["setup", "__version__", "REPOSITORY", *SUBMODULES]


def __getattr__(name: str):
    # PEP 562: ``qpi_utils.train`` etc. import on first use (torch and diffusers load only then)
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "setup":
        return importlib.import_module(f"{__name__}.notebook").setup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
