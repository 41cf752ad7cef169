"""The registry of methods (qpi_utils.methods): one function and one line make a method that the
table, the sweeps and the real maps all run."""
import numpy as np
import pytest

from qpi_utils import methods as M
from qpi_utils.baselines import defect_average
from qpi_utils.evaluate import score
from qpi_utils.realdata import extract_kernels
from qpi_utils.sweeps import robustness_sweep


def _blurred_defect_average(models, x, positions=None):
    """A new baseline for the test: the defect average, smoothed."""
    from scipy.ndimage import gaussian_filter

    return M.numpy_method(lambda y, m: np.stack([gaussian_filter(k, 1.0) for k in defect_average(y, m)]))(x)


def test_a_new_baseline_is_one_function_and_one_registry_line(trained_run, smoke_profile, monkeypatch):
    run, _ = trained_run
    monkeypatch.setitem(M.METHODS, "blurred_average", M.Method("blurred_average", _blurred_defect_average,
                                                               real_maps=True))
    models = M.load_models(smoke_profile, run, ("two_step", "blurred_average"))
    rows = score(models, progress=False).rows
    assert [(r["setting"], r["method"]) for r in rows] == [(s, m) for s in ("ID", "OOD")
                                                           for m in ("two_step", "blurred_average")]
    assert {r["method"] for r in robustness_sweep(models, "snr_db")} >= {"blurred_average"}
    windows = np.asarray(models.ds.observations[:2, 0], np.float64), np.asarray(models.ds.activation_maps[:2, 0], np.float64)
    assert "blurred_average" in extract_kernels(*windows)  # a real map's windows, no network loaded


def test_networks_and_flags_come_from_the_registry():
    assert M.NETWORKS == {name: m.networks for name, m in M.METHODS.items() if m.networks}
    assert {n for n, m in M.METHODS.items() if m.positions} == {"least_squares_subpixel", "least_squares_auto",
                                                                "hybrid_subpixel"}
    assert M.METHODS["hybrid"].subset and not M.METHODS["two_step"].subset


def test_every_method_draws_kernels_not_a_flat_image(trained_run):
    _, models = trained_run
    pairs = models.splits.ood_test[:3]
    for name, (fn, _) in models.methods().items():
        pred = M.predict_dataset(fn, models.ds, pairs)
        assert pred.shape == (3, 64, 64) and np.isfinite(pred).all(), name
        if name != "mean_kernel":  # smoke-trained networks draw faint kernels, but never a constant image
            assert np.ptp(pred, axis=(1, 2)).min() > 0.05, f"{name} predicts a flat image"


def test_load_models_names_an_unknown_method(trained_run, smoke_profile):
    with pytest.raises(ValueError, match="unknown method.*'nonsense'"):
        M.load_models(smoke_profile, trained_run[0], ("two_step", "nonsense"))
