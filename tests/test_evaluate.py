"""Scoring (qpi_utils.evaluate): the rows, the per-sample errors and the record of the choices."""
import csv
import json

import numpy as np
import pytest

from qpi_utils.evaluate import TABLE_COLUMNS, example_predictions, markdown_table, score, write_scores
from qpi_utils.methods import METHODS


def test_score_rows_every_method_on_both_test_sets_and_writes_them(tmp_path, trained_run, smoke_profile):
    _, models = trained_run
    scores = score(models, progress=False)
    assert [(r["setting"], r["method"]) for r in scores.rows] == [(s, m) for s in ("ID", "OOD") for m in METHODS]
    slow = {r["n"] for r in scores.rows if METHODS[r["method"]].subset}
    assert slow == {smoke_profile.physics.hybrid_test_observations}  # the slow methods on a seeded subset
    assert len(scores.per_sample) == sum(r["n"] for r in scores.rows)
    assert scores.record["least_squares_lambda"]["chosen"] == models.ls_lambda
    assert scores.record["methods"] == list(METHODS)
    write_scores(scores, models, tmp_path)
    table = list(csv.DictReader(open(tmp_path / "table.csv")))
    assert tuple(table[0]) == TABLE_COLUMNS and len(table) == len(scores.rows)
    assert json.loads((tmp_path / "scores.json").read_text())["selection_rule"] == scores.record["selection_rule"]
    diagnostics = json.loads((tmp_path / "diagnostics.json").read_text())
    assert set(diagnostics["alignment_mse"]) == {"ID", "OOD"} and "ood_kernels" in diagnostics["vae_ceiling_rmse"]
    assert "paper RMSE" in markdown_table(scores.rows)


def test_scoring_twice_gives_the_same_numbers(trained_run):
    """The table is reproducible: same run, same rows (the hybrids' subsets are seeded)."""
    _, models = trained_run
    a, b = (score(models, progress=False).rows for _ in range(2))
    assert [r["rmse"] for r in a] == pytest.approx([r["rmse"] for r in b], rel=1e-6)


def test_example_predictions_hold_every_method(trained_run):
    _, models = trained_run
    ex = example_predictions(models, "OOD", n=2)
    assert ex["observations"].shape == (2, 2, 64, 64) and ex["truth"].shape == (2, 64, 64)
    assert set(ex["predictions"]) == set(METHODS) - {"mean_kernel"}
    assert all(np.ptp(p) > 0 for p in ex["predictions"].values())  # no flat image
