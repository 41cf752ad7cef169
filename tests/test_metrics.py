import numpy as np

from qpi_utils.metrics import errors


def test_errors_on_both_scales():
    t = np.zeros((2, 4, 4))
    p = np.full((2, 4, 4), 0.1)
    p[1] = 0.2
    e = errors(p, t)
    assert np.allclose(e["mae"], [0.1, 0.2]) and np.allclose(e["mse"], [0.01, 0.04])
    assert np.allclose(e["rmse"], [0.1, 0.2])
    assert np.allclose(e["mae_pm1"], [0.2, 0.4]) and np.allclose(e["mse_pm1"], [0.04, 0.16])
    assert np.allclose(e["rmse_pm1"], [0.2, 0.4])
