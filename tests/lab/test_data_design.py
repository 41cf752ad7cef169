"""Tests of the data-design rule (qpi_lab.data_design): how many training-only kernels a profile
simulates is chosen on validation, and every candidate keeps the paper's test sets."""
import json

import numpy as np
from hypothesis import given, strategies as st

import qpi_lab.data_design as data_design
from qpi_lab.cli import main
from qpi_lab.data_design import TIE, _choose
from qpi_utils.checkpoints import load_data
from qpi_utils.config import get_profile
from qpi_utils.runs import RunLayout


@given(st.lists(st.tuples(st.integers(1, 10_000), st.floats(0.001, 1.0, allow_nan=False)), min_size=1, max_size=6,
                unique_by=lambda r: r[0]))
def test_choice_is_the_cheapest_candidate_within_the_tie_of_the_best(scores):
    rows = [{"train_observations": n, "best_val_rmse": v} for n, v in scores]
    chosen = _choose(rows)
    best = min(v for _, v in scores)
    assert chosen["best_val_rmse"] <= best * (1 + TIE)
    assert all(r["train_observations"] >= chosen["train_observations"] for r in rows
               if r["best_val_rmse"] <= best * (1 + TIE))


def test_rule_trains_every_candidate_on_the_same_test_sets(tmp_path, monkeypatch, capsys):
    """`qpi data-design` at smoke: each candidate trains step 1 and step 2 in its own run and is
    scored on both halves of validation; the training-only kernels add training pairs and leave
    every other split alone; the record names the rule, the candidates and the provenance."""
    monkeypatch.setattr(data_design, "CANDIDATES", ((0, 0), (6, 3)))
    assert main(["data-design", "--profile", "smoke", "--run-dir", str(tmp_path), "--results-dir",
                 str(tmp_path / "results"), "--no-progress"]) == 0
    out = json.loads((tmp_path / "results" / "data_design.json").read_text())
    assert out["rule"] == data_design.RULE and out["provenance"]["profile"]["name"] == "smoke"
    assert "chosen" in capsys.readouterr().out
    rows = {(r["extra_train_kernels"], r["extra_train_observations"]): r for r in out["candidates"]}
    assert set(rows) == {(0, 0), (6, 3)}
    assert out["chosen"] in [{"extra_train_kernels": k, "extra_train_observations": o} for k, o in rows]
    assert rows[(6, 3)]["train_kernels"] == rows[(0, 0)]["train_kernels"] + 6
    assert rows[(6, 3)]["train_observations"] == rows[(0, 0)]["train_observations"] + 6 * 3
    for r in rows.values():
        assert 0 < r["val_id"] < 1 and 0 < r["val_ood"] < 1 and 0 < r["best_val_rmse"] < 1
        assert set(r["seconds"]) == {"simulate", "kernel_vae", "alignment"}
    splits = {}
    for extra, obs in rows:
        prof = get_profile("smoke", {"simulation.extra_train_kernels": extra, "simulation.extra_train_observations": obs})
        splits[extra] = load_data(prof, RunLayout(tmp_path / f"extra-{extra}x{obs}", prof.name, "cli"))[1]
    for name in ("val_id", "val_ood", "id_test", "ood_test"):
        assert np.array_equal(splits[0].pairs(name), splits[6].pairs(name))
