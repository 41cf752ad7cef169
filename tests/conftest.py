import dataclasses
import os

import pytest

from qpi_utils.config import get_profile

os.environ.setdefault("MPLBACKEND", "Agg")


# The files that take longest in `make test` (measured with --durations on two workers), started
# first: pytest-xdist hands out whole files (--dist loadfile), so a long file started late is a long
# tail with one core idle. make test turns off xdist's own reordering (files with the most tests
# first) so that this order holds; every other file keeps its place after these.
LONGEST_FIRST = ("lab/test_chain.py", "lab/test_benchmarks.py", "lab/test_seeds.py", "lab/test_budget.py",
                 "lab/test_probe.py", "browser/test_explorer_jupyterlab.py", "lab/test_cli.py",
                 "browser/test_book.py", "lab/test_book.py")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.relpath(str(item.path), here).replace(os.sep, "/"), len(rank)))


def pytest_configure(config):
    # make test runs the suite in parallel workers (pytest-xdist), one per core: a worker's torch
    # using every core would only oversubscribe them. Notebook kernels and subprocesses inherit it.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def smoke_profile():
    return get_profile("smoke")


@pytest.fixture(scope="session")
def tiny_dataset(smoke_profile):
    """10 kernels (2 per symmetry class) x 8 observations, noiseless."""
    from qpi_utils.data import simulate_dataset

    return simulate_dataset(smoke_profile.simulation, profile="smoke", progress=False)


@pytest.fixture(scope="session")
def shared_data_dir():
    """../shared/data (real STM files), or $QPI_DATA_DIR."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("QPI_DATA_DIR") or os.path.join(here, "..", "..", "shared", "data")
    return os.path.abspath(path)


def replace_sim(profile, **kw):
    return dataclasses.replace(profile.simulation, **kw)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_dataset, smoke_profile):
    """A smoke run directory with the dataset and every trained network (qpi_utils.train.TRAINERS),
    and its loaded :class:`qpi_utils.methods.TrainedModels` (trained once for every test that needs them)."""
    from qpi_utils.data import save_dataset
    from qpi_utils.methods import load_models
    from qpi_utils.train import TRAINERS

    run = tmp_path_factory.mktemp("trained_run")
    save_dataset(tiny_dataset, run / "data")
    for fn in TRAINERS.values():
        fn(smoke_profile, run, progress=False)
    return run, load_models(smoke_profile, run)


@pytest.fixture
def run_dir(tmp_path, tiny_dataset):
    """A run directory holding the tiny dataset (nothing trained yet)."""
    from qpi_utils.data import save_dataset

    save_dataset(tiny_dataset, tmp_path / "data")
    return tmp_path
