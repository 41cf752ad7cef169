"""Step 1's selection rule revisited (qpi_lab.step1_selection): the kept epoch against the last."""

import json

import numpy as np

from qpi_lab.step1_selection import decide, main


def _row(kept_train, last_train, kept_val, last_val, step2_val=0.05):
    return {"kept": {"train_kernels": kept_train, "val_kernels": kept_val},
            "last": {"train_kernels": last_train, "val_kernels": last_val}, "step2_best_val_rmse": step2_val}


def test_the_rule_changes_only_for_a_gain_that_matters_and_costs_no_validation():
    # the audit's case: the last epoch 0.013 better on training kernels, validation no worse
    assert decide([_row(0.0346, 0.0215, 0.040, 0.040)])["change_the_rule"] is True
    assert decide([_row(0.0346, 0.0215, 0.040, 0.041)])["change_the_rule"] is False  # validation worse
    assert decide([_row(0.0050, 0.0048, 0.009, 0.009)])["change_the_rule"] is False  # below a tenth of 0.05


def test_the_measurement_reads_a_seeds_run(tmp_path, trained_run):
    run, _ = trained_run
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "seed-0").symlink_to(run)
    out = tmp_path / "step1.json"
    assert main(["--profile", "smoke", "--run-dir", str(tmp_path / "runs"), "--seeds", "0",
                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    (seed,) = record["seeds"]
    assert 0 <= seed["kept_epoch"] <= seed["last_epoch"] and 0 < seed["step2_best_val_rmse"] < 1
    for which in ("kept", "last"):
        values = list(seed[which].values())
        assert len(values) == 3 and all(0 < v < 1 for v in values) and np.isfinite(values).all()
    assert record["verdict"] == decide(record["seeds"]) and record["decision_rule"]


def test_a_run_without_step_1_is_named(tmp_path, capsys):
    (tmp_path / "seed-0").mkdir()
    assert main(["--profile", "smoke", "--run-dir", str(tmp_path), "--seeds", "0", "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "seed 0:" in err and "Traceback" not in err and not (tmp_path / "o.json").exists()
