import csv
import json

import numpy as np
import pytest

from qpi_utils.data import save_dataset
from qpi_utils.evaluate import METHODS, SWEEPS, TABLE_COLUMNS, errors, evaluate, load_models, robustness_sweep
from qpi_utils.train import train_alignment, train_kernel_vae, train_one_step


def test_errors_on_both_scales():
    t = np.zeros((2, 4, 4))
    p = np.full((2, 4, 4), 0.1)
    p[1] = 0.2
    e = errors(p, t)
    assert np.allclose(e["mae"], [0.1, 0.2]) and np.allclose(e["mse"], [0.01, 0.04])
    assert np.allclose(e["rmse"], [0.1, 0.2])
    assert np.allclose(e["mae_pm1"], [0.2, 0.4]) and np.allclose(e["mse_pm1"], [0.04, 0.16])
    assert np.allclose(e["rmse_pm1"], [0.2, 0.4])


def test_evaluate_writes_the_table_with_provenance(tmp_path, tiny_dataset, smoke_profile):
    save_dataset(tiny_dataset, tmp_path / "data")
    for fn in (train_kernel_vae, train_alignment, train_one_step):
        fn(smoke_profile, tmp_path, progress=False)
    models = load_models(smoke_profile, tmp_path)
    assert models.ls_lambda in smoke_profile.physics.ls_lambda_grid
    rows = evaluate(smoke_profile, tmp_path, tmp_path / "results", progress=False, models=models)
    assert [(r["setting"], r["method"]) for r in rows] == [(s, m) for s in ("ID", "OOD") for m in METHODS]
    hybrid_n = {r["setting"]: r["n"] for r in rows if r["method"] == "hybrid"}
    assert hybrid_n == {"ID": smoke_profile.physics.hybrid_test_observations,
                        "OOD": smoke_profile.physics.hybrid_test_observations}
    assert all(r["seconds_per_image"] > 0 for r in rows)
    with open(tmp_path / "results" / "table.csv") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == TABLE_COLUMNS
    for r in table:
        assert float(r["rmse_pm1"]) == pytest.approx(2 * float(r["rmse"]), rel=1e-4)
        assert float(r["mse"]) >= float(r["rmse"]) ** 2 - 1e-9  # mean of squares >= square of mean
    n_id = len(tiny_dataset.symmetry) - 2  # training kernels
    assert int(table[0]["n"]) == n_id * 2  # 2 of 8 observations each in the ID test
    prov = json.loads((tmp_path / "results" / "provenance.json").read_text())
    assert prov["profile"]["name"] == "smoke"
    assert prov["pretrained"] == {"kernel_vae": False, "observation_encoder": False, "one_step": False}
    assert set(prov["versions"]) >= {"torch", "diffusers", "accelerate", "numpy"}
    assert prov["dataset"]["content_hash"] == tiny_dataset.meta["content_hash"]
    assert "paper RMSE" in (tmp_path / "results" / "table.md").read_text()
    per = list(csv.DictReader(open(tmp_path / "results" / "per_sample.csv")))
    assert len(per) == sum(int(r["n"]) for r in table)
    assert json.loads((tmp_path / "results" / "provenance.json").read_text())["least_squares_lambda"]["chosen"] \
        == models.ls_lambda

    # robustness sweeps: every method at every value, on fresh observations of the OOD kernels
    for sweep in SWEEPS:
        sweep_rows = robustness_sweep(models, sweep)
        values = getattr(smoke_profile.physics, {"snr_db": "sweep_snr_db", "scatterers": "sweep_scatterers",
                                                 "outside_margin": "sweep_outside_margin",
                                                 "position_error": "sweep_position_error"}[sweep])
        assert len(sweep_rows) == len(values) * len(METHODS)
        assert all(r["n"] >= smoke_profile.physics.sweep_observations for r in sweep_rows)
    with pytest.raises(ValueError, match="unknown sweep"):
        robustness_sweep(models, "temperature")
