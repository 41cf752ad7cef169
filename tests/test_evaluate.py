import csv
import json

import pytest

from qpi_utils.evaluate import TABLE_COLUMNS, evaluate, example_predictions
from qpi_utils.methods import METHODS


def test_evaluate_writes_the_table_with_provenance(tmp_path, trained_run, tiny_dataset, smoke_profile):
    run, models = trained_run
    assert models.ls_lambda in smoke_profile.physics.ls_lambda_grid
    rows = evaluate(smoke_profile, run, tmp_path / "results", progress=False, models=models)
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
    n_id = len(tiny_dataset.symmetry) - 2 - 1  # training kernels: all but 2 OOD and 1 validation kernel
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
    assert prov["least_squares_subpixel_lambda"]["chosen"] == models.ls_subpixel_lambda
    # the simulator places defects off the pixel grid: the exact forward model fits better than the binned one
    rmse = {(r["setting"], r["method"]): r["rmse"] for r in rows}
    for setting in ("ID", "OOD"):
        assert rmse[(setting, "least_squares_subpixel")] < rmse[(setting, "least_squares")]


def test_example_predictions_hold_every_method(trained_run):
    _, models = trained_run
    ex = example_predictions(models, "OOD", n=2)
    assert ex["observations"].shape == (2, 2, 64, 64) and ex["truth"].shape == (2, 64, 64)
    assert set(ex["predictions"]) == set(METHODS) - {"mean_kernel"}
    assert all(p.shape == (2, 64, 64) for p in ex["predictions"].values())
