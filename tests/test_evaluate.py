import csv
import json

import numpy as np
import pytest

from qpi_utils.data import save_dataset
from qpi_utils.evaluate import TABLE_COLUMNS, errors, evaluate
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
    rows = evaluate(smoke_profile, tmp_path, tmp_path / "results", progress=False)
    assert [(r["setting"], r["method"]) for r in rows] == [
        (s, m) for s in ("ID", "OOD") for m in ("mean_kernel", "one_step", "two_step")]
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
