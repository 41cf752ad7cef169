"""Misused solvers and metrics: clear errors (one case a line)."""
import numpy as np
import pytest

from qpi_utils.baselines import defect_average, least_squares
from qpi_utils.metrics import errors

Y = np.random.default_rng(0).random((2, 64, 64))
M = np.zeros((2, 64, 64))
M[:, 10, 10] = 1

CASES = [
    (defect_average, (Y, M[:1]), {}, "differ in shape"),
    (defect_average, (Y[:0], M[:0]), {}, "the batch is empty"),
    (defect_average, (Y, -M), {}, "must count defects"),
    (least_squares, (Y, M), {"lam": float("nan")}, "lam must be a finite number > 0"),
    (least_squares, (Y, M), {"lam": -1.0}, "lam must be a finite number > 0"),
    (least_squares, (Y, M), {"iterations": -5}, "iterations must be an integer >= 1"),
    (least_squares, (Y, M), {"iterations": 2.5}, "iterations must be an integer >= 1"),
    (least_squares, (Y, np.zeros_like(M)), {}, "activation map 0 .* has no defect"),
    (least_squares, (Y[:, :32], M[:, :32]), {}, r"must be \(64, 64\) or \(N, 64, 64\)"),
    (least_squares, (np.full_like(Y, np.nan), M), {}, "contains NaN"),
    (errors, (Y, Y[:1]), {}, "must be .* of one shape"),
]


@pytest.mark.parametrize("fn, args, kwargs, message", CASES)
def test_misuse_is_named(fn, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn(*args, **kwargs)


def test_hybrid_settings_need_one_kernel_per_observation():
    import torch

    from qpi_utils.baselines import choose_hybrid_settings
    from qpi_utils.config import PhysicsConfig

    x = torch.zeros(3, 2, 64, 64)
    with pytest.raises(ValueError, match=r"kernels must be \(3, 64, 64\), one per observation"):
        choose_hybrid_settings(None, None, x, np.zeros((2, 64, 64)), PhysicsConfig())
    with pytest.raises(ValueError, match=r"observations must be \(B, 2, 64, 64\)"):
        choose_hybrid_settings(None, None, x[:, :1], np.zeros((3, 64, 64)), PhysicsConfig())
