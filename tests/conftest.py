import dataclasses
import os

import numpy as np
import pytest

from qpi_utils.config import get_profile

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def smoke_profile():
    return get_profile("smoke")


@pytest.fixture(scope="session")
def tiny_dataset(smoke_profile):
    """10 kernels (2 per symmetry class) x 8 observations, noiseless."""
    from qpi_utils.simulate import simulate_dataset

    return simulate_dataset(smoke_profile.simulation, profile="smoke", progress=False)


@pytest.fixture(scope="session")
def shared_data_dir():
    """../shared/data (real STM files), or $QPI_DATA_DIR."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("QPI_DATA_DIR") or os.path.join(here, "..", "..", "shared", "data")
    return os.path.abspath(path)


def replace_sim(profile, **kw):
    return dataclasses.replace(profile.simulation, **kw)


def rotate(image: np.ndarray, angle: float, origin: float) -> np.ndarray:
    """Rotate an image by ``angle`` (rad) about pixel (origin, origin), cubic spline."""
    from scipy.ndimage import affine_transform

    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = np.array([origin, origin]) - rot @ np.array([origin, origin])
    return affine_transform(image, rot, offset=offset, order=3, mode="constant")
