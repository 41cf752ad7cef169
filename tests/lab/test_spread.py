"""The same seed trained twice (qpi_lab.spread): weights compared bit for bit, scores against the seeds' spread."""

import json
import shutil

import torch

from qpi_lab.spread import main
from qpi_utils.files import write_csv


def _results(folder, two_step_id):
    write_csv(folder / "table.csv", [{"setting": "ID", "method": "two_step", "rmse": two_step_id}])
    (folder / "provenance.json").write_text(json.dumps({"git_commit": "abc", "machine": {"cpu": "X", "cpu_count": 2}}))


def test_two_runs_are_compared_network_by_network_and_against_the_seeds(tmp_path, trained_run):
    run, _ = trained_run
    second = tmp_path / "second"
    shutil.copytree(run, second)
    blob = torch.load(second / "models" / "alignment.pt", weights_only=True)
    name = next(iter(blob["state_dict"]))
    blob["state_dict"][name] = blob["state_dict"][name] + 0.25
    torch.save(blob, second / "models" / "alignment.pt")
    _results(tmp_path / "r1", 0.030)
    _results(tmp_path / "r2", 0.032)
    write_csv(tmp_path / "seeds.csv", [{"variant": "", "setting": "ID", "method": "two_step", "rmse_std": 0.004}])
    out = tmp_path / "spread.json"
    assert main(["--first", str(run), "--second", str(second), "--first-results", str(tmp_path / "r1"),
                 "--second-results", str(tmp_path / "r2"), "--seeds-table", str(tmp_path / "seeds.csv"),
                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["same_dataset"] is True
    assert record["networks"]["kernel_vae"]["identical"] is True
    assert record["networks"]["alignment"]["identical"] is False
    assert abs(record["networks"]["alignment"]["max_abs_difference"] - 0.25) < 1e-6
    (row,) = record["scores"]
    assert abs(row["difference"] - 0.002) < 1e-12 and abs(row["difference_over_seed_std"] - 0.5) < 1e-9


def test_a_run_without_its_dataset_is_named(tmp_path, capsys):
    assert main(["--first", str(tmp_path / "a"), "--second", str(tmp_path / "b"), "--first-results", str(tmp_path),
                 "--second-results", str(tmp_path), "--seeds-table", str(tmp_path / "s.csv"),
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "a/data/meta.json not found" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def _compare_machines():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "compare_machines.py"
    spec = importlib.util.spec_from_file_location("compare_machines", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _committed_run(folder, val_rmse, dataset="h0"):
    """A folder shaped like results/quick: logs/, table.csv, provenance.json."""
    (folder / "logs").mkdir(parents=True)
    write_csv(folder / "logs" / "alignment.csv", [{"epoch": e, "train_loss": 1.0 / e, "val_rmse": v, "seconds": 10 + e}
                                                  for e, v in enumerate(val_rmse, 1)])
    write_csv(folder / "table.csv", [{"setting": "OOD", "method": "two_step", "rmse": val_rmse[-1]}])
    (folder / "provenance.json").write_text(json.dumps({"git_commit": "abc", "dataset": {"content_hash": dataset},
                                                        "machine": {"cpu": "X", "cpu_count": 2}}))


def test_another_machines_run_is_compared_through_the_committed_logs_and_table(tmp_path):
    main_ = _compare_machines()
    _committed_run(tmp_path / "first", [0.2, 0.1])
    second = tmp_path / "second"
    _committed_run(second / "results", [0.2, 0.1])
    (second / "results" / "logs").rename(second / "logs")
    (second / "logs" / "alignment.csv").write_text((second / "logs" / "alignment.csv").read_text().replace(",12\n", ",99\n"))
    out = tmp_path / "m.json"
    assert main_(["--first", str(tmp_path / "first"), "--second", str(second), "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["agree"] and record["training_logs"]["alignment"]["identical_epochs"] == 2  # wall seconds aside
    # one epoch's validation RMSE drifts: the record says which network and by how much
    (second / "logs" / "alignment.csv").write_text((second / "logs" / "alignment.csv").read_text().replace("0.2,", "0.2001,"))
    assert main_(["--first", str(tmp_path / "first"), "--second", str(second), "--out", str(out)]) == 1
    drift = json.loads(out.read_text())["training_logs"]["alignment"]
    assert drift["identical_epochs"] == 1 and abs(drift["max_val_rmse_difference"] - 1e-4) < 1e-9


def test_comparing_machines_names_what_is_missing(tmp_path, capsys):
    _committed_run(tmp_path / "first", [0.1])
    assert _compare_machines()(["--first", str(tmp_path / "first"), "--second", str(tmp_path / "nothing"),
                                "--out", str(tmp_path / "m.json")]) == 2
    assert "second logs" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
