import pytest

from qpi_utils.methods import METHODS
from qpi_utils.sweeps import (SWEEP_COLUMNS, SWEEPS, ood_observations, robustness_sweep, sweep_points, sweep_values,
                              write_sweeps)


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


def test_every_method_at_every_value_on_fresh_ood_observations(trained_run, smoke_profile, tmp_path):
    _, models = trained_run
    rows = []
    for sweep in SWEEPS:
        sweep_rows = robustness_sweep(models, sweep)
        rows += sweep_rows
        values = sweep_values(smoke_profile.physics, sweep)
        assert len(sweep_rows) == len(values) * len(METHODS)
        assert all(r["n"] >= smoke_profile.physics.sweep_observations for r in sweep_rows)
    with pytest.raises(ValueError, match="unknown sweep"):
        robustness_sweep(models, "temperature")
    assert len(rows) == sweep_points(smoke_profile) * len(METHODS)
    path = write_sweeps(rows, tmp_path / "sweeps.csv")
    assert path.read_text().splitlines()[0] == ",".join(SWEEP_COLUMNS)


def test_markdown_sweep_marks_the_best_method_of_each_value():
    from qpi_utils.sweeps import markdown_sweep

    rows = [{"sweep": "snr_db", "value": v, "method": m, "rmse": r}
            for v, m, r in ((0.0, "a", 0.2), (0.0, "b", 0.1), (20.0, "a", 0.05), (20.0, "b", 0.07),
                            (20.0, "mean_kernel", 0.01))]
    lines = markdown_sweep(rows, "snr_db").splitlines()
    assert lines[0] == "| SNR (dB) | a | b |"  # the mean kernel is left out
    assert lines[2] == "| 20 | **0.050** | 0.070 |" and lines[3] == "| 0 | 0.200 | **0.100** |"


def test_markdown_sweep_calls_overlapping_intervals_a_tie():
    from qpi_utils.sweeps import markdown_sweep

    rows = [{"sweep": "snr_db", "value": 10.0, "method": m, "rmse": r, "rmse_ci95": c}
            for m, r, c in (("a", 0.050, 0.004), ("b", 0.056, 0.003), ("c", 0.080, 0.002))]
    line = markdown_sweep(rows, "snr_db").splitlines()[2]
    assert line == "| 10 | **0.050 ± 0.004** | **0.056 ± 0.003** | 0.080 ± 0.002 |"
