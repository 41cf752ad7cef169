"""The lab's evaluation: the table written with provenance, reused only for the very same evaluation."""
import csv
import json

import pytest

from qpi_lab.evaluate import evaluate
from tests.lab.test_provenance import commits_with_and_without_a_code_change
from qpi_utils.evaluate import TABLE_COLUMNS
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
    assert prov["pretrained"] == {"kernel_vae": False, "observation_encoder": False, "one_step": False, "one_step_paper": False}
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


def _copy_run(run, to):
    import shutil

    for name in ("data", "models"):
        shutil.copytree(run / name, to / name)
    return to


def test_evaluate_reuses_its_rows_only_for_this_very_evaluation(tmp_path, trained_run, smoke_profile, monkeypatch):
    """``reuse=True`` (``qpi seeds`` or ``qpi ablation`` run again) returns the rows already written
    when code, profile, data, networks, methods and test sets are the same; any difference
    evaluates again. A later commit that changed no code is the same code."""
    import qpi_lab.evaluate as E
    import qpi_lab.provenance as P
    from qpi_utils.config import get_profile

    made, pages_only, code_changed = commits_with_and_without_a_code_change()
    run = _copy_run(trained_run[0], tmp_path / "run")
    commit = {"now": made}
    monkeypatch.setattr(P, "git_commit", lambda: commit["now"])
    methods = ("two_step", "least_squares")
    rows = evaluate(smoke_profile, run, progress=False, methods=methods)
    stamp = (run / "results" / "table.csv").stat().st_mtime_ns
    again = evaluate(smoke_profile, run, progress=False, methods=methods, reuse=True)
    assert (run / "results" / "table.csv").stat().st_mtime_ns == stamp  # read back, not evaluated again
    assert [(r["setting"], r["method"], r["n"]) for r in again] == [(r["setting"], r["method"], r["n"]) for r in rows]
    for a, b in zip(again, rows):
        assert a["rmse"] == pytest.approx(b["rmse"], rel=1e-5) and a["pretrained"] == b["pretrained"]
    commit["now"] = pages_only
    assert E.previous_rows(smoke_profile, run, methods) is not None  # a commit that changed pages only
    assert E.previous_rows(smoke_profile, run, ("two_step",)) is None  # other methods
    assert E.previous_rows(get_profile("smoke", {"physics.ls_iterations": 7}), run, methods) is None  # other profile
    assert E.previous_rows(smoke_profile, run, methods, noise_snr_db=10.0) is None  # other test sets
    commit["now"] = made + "+dirty-0123456789ab"
    assert E.previous_rows(smoke_profile, run, methods) is None  # uncommitted code
    commit["now"] = code_changed
    assert E.previous_rows(smoke_profile, run, methods) is None  # other code
    evaluate(smoke_profile, run, progress=False, methods=methods, reuse=True)
    assert (run / "results" / "table.csv").stat().st_mtime_ns != stamp  # evaluated again
    # a noisy test set in its own folder is read back the same way
    noisy = tmp_path / "noisy"
    first = evaluate(smoke_profile, run, noisy, progress=False, methods=methods, noise_snr_db=10.0)
    stamp = (noisy / "table.csv").stat().st_mtime_ns
    second = evaluate(smoke_profile, run, noisy, progress=False, methods=methods, noise_snr_db=10.0, reuse=True)
    assert (noisy / "table.csv").stat().st_mtime_ns == stamp
    assert [r["rmse"] for r in second] == pytest.approx([r["rmse"] for r in first], rel=1e-5)


def test_evaluate_on_the_realistic_copy_of_the_test_sets(tmp_path, trained_run, smoke_profile, tiny_dataset):
    import dataclasses

    from qpi_utils.checkpoints import load_realistic_data
    from qpi_utils.data import simulate_dataset

    from qpi_utils.methods import load_models

    run = trained_run[0]
    models = load_models(smoke_profile, run, ("mean_kernel", "least_squares_subpixel"))
    tcfg = dataclasses.replace(smoke_profile.alignment, realistic_data=True, realistic_position_error=1.0)
    copy = load_realistic_data(smoke_profile, tmp_path / "copy", tcfg, tiny_dataset, progress=False)
    clean = evaluate(smoke_profile, run, tmp_path / "clean", progress=False, models=models)
    real = evaluate(smoke_profile, run, tmp_path / "real", progress=False, models=models, test_data=copy)
    rmse = lambda rows, m: [r["rmse"] for r in rows if r["method"] == m and r["setting"] == "OOD"][0]
    # sub-pixel least squares is exact on the clean positions and not on positions 1 px off
    assert rmse(real, "least_squares_subpixel") > 1.5 * rmse(clean, "least_squares_subpixel")
    assert rmse(real, "mean_kernel") == pytest.approx(rmse(clean, "mean_kernel"))  # same kernels, same pairs
    prov = json.loads((tmp_path / "real" / "provenance.json").read_text())
    assert prov["test_data"]["simulation"]["position_error"] == 1.0
    other = simulate_dataset(dataclasses.replace(smoke_profile.simulation, seed=9), progress=False)
    with pytest.raises(ValueError, match="test_data must hold the run's kernels"):
        evaluate(smoke_profile, run, tmp_path / "other", progress=False, models=models, test_data=other)
