"""Step 1's selection rule revisited (qpi_lab.step1_selection): the kept epoch against the last."""

import json

import numpy as np

from qpi_lab.step1_selection import decide, main
from qpi_utils.files import write_csv


def _row(kept_train, last_train, kept_val, last_val, two_step_id=0.05):
    return {"kept": {"train_kernels": kept_train, "val_kernels": kept_val},
            "last": {"train_kernels": last_train, "val_kernels": last_val}, "two_step_test": {"ID": two_step_id}}


def test_the_rule_changes_only_for_a_gain_that_matters_and_costs_no_validation():
    # the audit's case: the last epoch 0.013 better on training kernels, validation no worse
    assert decide([_row(0.0346, 0.0215, 0.040, 0.040)])["change_the_rule"] is True
    assert decide([_row(0.0346, 0.0215, 0.040, 0.041)])["change_the_rule"] is False  # validation worse
    assert decide([_row(0.0050, 0.0048, 0.009, 0.009)])["change_the_rule"] is False  # below a tenth of 0.05


def test_the_measurement_reads_a_seeds_run(tmp_path, trained_run):
    run, _ = trained_run
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "seed-0").symlink_to(run)
    write_csv(tmp_path / "results" / "seeds" / "seed-0" / "table.csv",
              [{"setting": "ID", "method": "two_step", "rmse": 0.05}, {"setting": "OOD", "method": "two_step", "rmse": 0.08}])
    out = tmp_path / "step1.json"
    assert main(["--profile", "smoke", "--run-dir", str(tmp_path / "runs"), "--seeds", "0",
                 "--results-dir", str(tmp_path / "results"), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    (seed,) = record["seeds"]
    assert 0 <= seed["kept_epoch"] <= seed["last_epoch"]
    for which in ("kept", "last"):
        values = list(seed[which].values())
        assert len(values) == 3 and all(0 < v < 1 for v in values) and np.isfinite(values).all()
    assert record["verdict"] == decide(record["seeds"]) and record["decision_rule"]
