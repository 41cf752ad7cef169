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
