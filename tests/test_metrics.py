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


def test_affine_invariant_rmse_ignores_contrast_and_offset_but_not_shape():
    rng = np.random.default_rng(0)
    t = rng.random((3, 8, 8))
    e = errors(3.0 * t + 0.5, t)  # same shape, other contrast and background
    assert np.allclose(e["rmse_affine"], 0.0, atol=1e-12) and (e["rmse"] > 0.5).all()
    flat = errors(np.full_like(t, t.mean()), t)  # a flat image explains nothing: the target's own spread
    assert np.allclose(flat["rmse_affine"], t.reshape(3, -1).std(1))
    other = errors(rng.random((3, 8, 8)), t)
    assert (other["rmse_affine"] > 0.5 * t.reshape(3, -1).std(1)).all()
