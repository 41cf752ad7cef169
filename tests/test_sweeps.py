import pytest

from qpi_utils.methods import METHODS
from qpi_utils.sweeps import (SWEEP_COLUMNS, SWEEPS, ood_observations, robustness_sweep, robustness_sweeps, sweep_points,
                              sweep_values, write_sweeps)


def test_fresh_observations_are_of_the_ood_kernels_under_the_asked_condition(trained_run):
    import numpy as np

    _, models = trained_run
    test, pairs, target = ood_observations(models, per_kernel=3, seed=7, position_error=1.0)
    ood = np.asarray(models.splits.ood_kernels)
    assert len(pairs) == 3 * len(ood) and target.shape == (len(pairs), 64, 64)
    assert np.array_equal(np.asarray(test.kernels), np.asarray(models.ds.kernels)[ood])
    assert test.meta["simulation"]["position_error"] == 1.0 and test.meta["seed"] == 7
    again = ood_observations(models, per_kernel=3, seed=7, position_error=1.0)[0]
    assert np.array_equal(np.asarray(again.observations), np.asarray(test.observations))  # seeded
    val = np.asarray(models.splits.val_kernels)  # other kernels when asked: the benchmarks' validation data
    held, val_pairs, val_target = ood_observations(models, per_kernel=2, seed=7, kernels=val)
    assert np.array_equal(np.asarray(held.kernels), np.asarray(models.ds.kernels)[val]) and len(val_pairs) == 2 * len(val)
    assert np.array_equal(val_target, np.asarray(held.kernels)[val_pairs[:, 0]])


def test_the_realistic_sweep_adds_every_corruption_of_a_real_map(smoke_profile):
    """Its points are the SNR sweep's values with the realistic copy's hidden defects, position
    errors and scan-line offsets as well; the other sweeps change one field each."""
    from qpi_utils.sweeps import sweep_change

    a = smoke_profile.alignment
    assert sweep_values(smoke_profile.physics, "realistic") == smoke_profile.physics.sweep_snr_db
    assert sweep_change(smoke_profile, "realistic", 20) == {
        "snr_db": 20.0, "line_noise": a.realistic_line_noise, "outside_margin": a.realistic_outside_margin,
        "position_error": a.realistic_position_error}
    assert a.realistic_outside_margin > 0 and a.realistic_position_error > 0 and a.realistic_line_noise > 0
    assert sweep_change(smoke_profile, "snr_db", 20) == {"snr_db": 20.0}
    assert sweep_change(smoke_profile, "scatterers", 5) == {"min_scatterers": 5, "max_scatterers": 5}
    with pytest.raises(ValueError, match="unknown sweep 'humidity'"):
        sweep_change(smoke_profile, "humidity", 1)


def test_every_method_at_every_value_on_fresh_ood_observations(trained_run, smoke_profile, tmp_path, monkeypatch):
    import qpi_utils.sweeps as sweeps

    _, models = trained_run
    calls = []
    real_predict = sweeps.predict_dataset
    monkeypatch.setattr(sweeps, "predict_dataset", lambda *a, **k: calls.append(1) or real_predict(*a, **k))
    rows = robustness_sweeps(models)
    monkeypatch.setattr(sweeps, "predict_dataset", real_predict)
    # the clean point opening outside_margin and position_error is scored once, not twice
    assert len(calls) == (sweep_points(smoke_profile) - 1) * len(METHODS)
    for sweep in SWEEPS:
        sweep_rows = [r for r in rows if r["sweep"] == sweep]
        values = sweep_values(smoke_profile.physics, sweep)
        assert len(sweep_rows) == len(values) * len(METHODS)
        assert all(r["n"] >= smoke_profile.physics.sweep_observations for r in sweep_rows)
        assert all(r["seconds"] >= 0 for r in sweep_rows)  # each method timed at each point
    with pytest.raises(ValueError, match="unknown sweep"):
        robustness_sweep(models, "temperature")
    # the clean point opens two sweeps: scored once, and what an uncached sweep scores there
    assert smoke_profile.physics.sweep_outside_margin[0] == smoke_profile.physics.sweep_position_error[0] == 0
    clean = lambda sweep, rs: {r["method"]: (r["n"], r["rmse"], r["rmse_ci95"]) for r in rs
                               if r["sweep"] == sweep and r["value"] == 0}
    fresh = robustness_sweep(models, "position_error")
    assert clean("position_error", rows) == clean("outside_margin", rows) == clean("position_error", fresh)
    assert len(clean("position_error", rows)) == len(METHODS)
    assert len(rows) == sweep_points(smoke_profile) * len(METHODS)
    path = write_sweeps(rows, tmp_path / "sweeps.csv")
    assert path.read_text().splitlines()[0] == ",".join(SWEEP_COLUMNS)
    from qpi_utils.sweeps import plot_sweep

    for sweep in ("snr_db", "realistic", "scatterers"):  # the SNR axes run from clean to noisy
        ax = plot_sweep(rows, sweep).axes[0]
        assert ax.xaxis_inverted() == (sweep != "scatterers") and len(ax.get_lines()) > 0
        assert "SNR" in ax.get_xlabel() if sweep != "scatterers" else "defects" in ax.get_xlabel()
