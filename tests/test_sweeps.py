import pytest

from qpi_utils.methods import METHODS
from qpi_utils.sweeps import SWEEP_COLUMNS, SWEEPS, robustness_sweep, write_sweeps


def test_every_method_at_every_value_on_fresh_ood_observations(trained_run, smoke_profile, tmp_path):
    _, models = trained_run
    rows = []
    for sweep in SWEEPS:
        sweep_rows = robustness_sweep(models, sweep)
        rows += sweep_rows
        values = getattr(smoke_profile.physics, {"snr_db": "sweep_snr_db", "scatterers": "sweep_scatterers",
                                                 "outside_margin": "sweep_outside_margin",
                                                 "position_error": "sweep_position_error"}[sweep])
        assert len(sweep_rows) == len(values) * len(METHODS)
        assert all(r["n"] >= smoke_profile.physics.sweep_observations for r in sweep_rows)
    with pytest.raises(ValueError, match="unknown sweep"):
        robustness_sweep(models, "temperature")
    path = write_sweeps(rows, tmp_path / "sweeps.csv")
    assert path.read_text().splitlines()[0] == ",".join(SWEEP_COLUMNS)
