"""qpi learning-curves (qpi_lab.learning_curves) at the smoke profile: both methods trained on
fractions of the training data, the full size read from the seeds run, paired differences per point."""
import json

from qpi_lab.cli import main
from qpi_lab.learning_curves import AXES, FRACTIONS, METHODS
from qpi_utils.files import read_csv


def test_learning_curves_train_smaller_runs_and_pair_the_two_methods(tmp_path, capsys):
    seeds = tmp_path / "seeds"
    assert main(["seeds", "--profile", "smoke", "--seeds", "0", "--run-dir", str(seeds),
                 "--results-dir", str(tmp_path / "seeds-res"), "--no-progress"]) == 0
    out = tmp_path / "res"
    assert main(["learning-curves", "--profile", "smoke", "--seeds", "0", "--run-dir", str(tmp_path / "lc"),
                 "--base-run-dir", str(seeds), "--results-dir", str(out), "--no-progress"]) == 0
    rows = read_csv(out / "learning_curves.csv")
    assert {(r["axis"], float(r["fraction"]), r["setting"], r["method"]) for r in rows} == {
        (a, f, s, m) for a in AXES for f in FRACTIONS for s in ("ID", "OOD") for m in METHODS}
    kernels = {float(r["fraction"]): int(r["train_kernels"]) for r in rows if r["axis"] == "kernels"}
    assert kernels[0.25] < kernels[1.0]  # fewer kernels trained on
    paired = read_csv(out / "learning_curves_paired.csv")
    assert len(paired) == len(AXES) * len(FRACTIONS) * 2
    assert all(float(r["ci_low"]) <= float(r["two_step_minus_one_step_paper"]) <= float(r["ci_high"]) for r in paired)
    assert not (tmp_path / "lc" / "kernels" / "1" ).exists()  # the full size is the seeds run itself
    assert json.loads((out / "learning_curves_provenance.json").read_text())["methods"] == list(METHODS)
