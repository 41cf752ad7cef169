import numpy as np
import pytest

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


def test_a_paired_difference_finds_what_overlapping_intervals_hide():
    """Two methods whose errors differ little but consistently, kernel by kernel, against the
    spread between kernels: the paired interval excludes zero (a is better) where their unpaired
    intervals would overlap; equal methods tie; only observations both scored count."""
    from qpi_utils.metrics import paired_difference

    rng = np.random.default_rng(0)
    rows_a, rows_b = [], []
    for kernel in range(20):
        level = rng.uniform(0.02, 0.2)  # kernels differ a lot
        for obs in range(10):
            noise = rng.normal(0, 0.002)
            rows_a.append({"kernel": kernel, "observation": obs, "rmse": level + noise})
            rows_b.append({"kernel": kernel, "observation": obs, "rmse": level + noise + 0.004})
    out = paired_difference(rows_a, rows_b)
    assert out["verdict"] == "a" and out["ci_high"] < 0 and out["a_better_kernels"] == 20
    assert out["difference"] == pytest.approx(-0.004)
    spread = np.std([r["rmse"] for r in rows_a])
    assert 2 * 1.96 * spread / np.sqrt(20) > 0.004  # unpaired, the two means would overlap
    assert paired_difference(rows_a, rows_a)["verdict"] == "tie"
    subset = paired_difference(rows_a, rows_b[:50])  # b scored kernels 0-4 only
    assert subset["kernels"] == 5 and subset["observations"] == 50
    with pytest.raises(ValueError, match="share no scored observation"):
        paired_difference(rows_a[:10], rows_b[10:20])


def test_seeds_are_separate_units_in_a_paired_difference():
    """Kernel 0 of seed 0 and kernel 0 of seed 1 are different kernels."""
    from qpi_utils.metrics import paired_difference

    rows = lambda shift: [{"seed": s, "kernel": 0, "observation": o, "rmse": 0.1 + shift * (s + 1)}
                          for s in (0, 1) for o in range(3)]
    out = paired_difference(rows(0.0), rows(0.01))
    assert out["kernels"] == 2 and out["difference"] == pytest.approx(-0.015)
