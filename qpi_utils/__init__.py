"""qpi-kit: machine-learning extraction of QPI kernels from STM images.

What the notebooks import, one module per concept, in the order of the method:

* physics -- :mod:`~qpi_utils.simulate` (the kernel model, observations at continuous positions,
  activation maps) and :mod:`~qpi_utils.physics` (the forward operator Y = M (*) A and its adjoint);
* data -- :mod:`~qpi_utils.data` (the on-disk format, a simulated dataset, torch views) and
  :mod:`~qpi_utils.splits` (ID/OOD and validation splits);
* learning -- :mod:`~qpi_utils.models`, :mod:`~qpi_utils.losses`, :mod:`~qpi_utils.train` (the
  training loop and :data:`~qpi_utils.train.TRAINERS`), :mod:`~qpi_utils.checkpoints`;
* methods and results -- :mod:`~qpi_utils.baselines` (physics and hybrid), :mod:`~qpi_utils.methods`
  (the one registry of methods), :mod:`~qpi_utils.metrics`, :mod:`~qpi_utils.evaluate` (scoring),
  :mod:`~qpi_utils.analysis`, :mod:`~qpi_utils.sweeps`, :mod:`~qpi_utils.paper` (the paper's numbers);
* around them -- :mod:`~qpi_utils.config` (profiles), :mod:`~qpi_utils.runs` (the run directory),
  :mod:`~qpi_utils.notebook` (the notebooks' ``setup``), :mod:`~qpi_utils.realdata`,
  :mod:`~qpi_utils.plots`, :mod:`~qpi_utils.widgets`, :mod:`~qpi_utils.files`, :mod:`~qpi_utils.imaging`.

The lab that makes the committed tables (the ``qpi`` command, the notebook chain, seeds and
ablations, FLOP budgets, provenance) is the separate package :mod:`qpi_lab`, which imports this
one; this package never imports it.

Notebooks import the package once and use the modules by name::

    import qpi_utils as qpi
    profile, run = qpi.setup(PROFILE, RUN_DIR)
    ds = qpi.data.simulate_dataset(profile.simulation)

Submodules are imported on first use, so ``import qpi_utils`` itself is light.
"""

import importlib

__version__ = "0.1.0"
# The kit's public repository, in one place: the notebooks' Colab badges and install cells and
# the README use it, and tests/lab/test_chain.py fails when one of them disagrees.
REPOSITORY = "github.com/qpi-kit/qpi-kit"

SUBMODULES = ("analysis", "baselines", "checkpoints", "config", "data", "evaluate", "files", "imaging", "losses",
              "methods", "metrics", "models", "notebook", "physics", "plots", "paper", "prior", "realdata", "runs", "simulate",
              "splits", "sweeps", "train", "widgets")

__all__ = ["setup", "__version__", "REPOSITORY", *SUBMODULES]


def __getattr__(name: str):
    # PEP 562: ``qpi_utils.train`` etc. import on first use (torch and diffusers load only then)
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "setup":
        return importlib.import_module(f"{__name__}.notebook").setup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
