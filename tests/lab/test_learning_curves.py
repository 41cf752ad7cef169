"""qpi learning-curves (qpi_lab.learning_curves) at the smoke profile: both methods trained on
fractions of the training data, the full size read from the seeds run, paired differences per point."""
import json
import shutil
from pathlib import Path

from qpi_lab.cli import main
from qpi_lab.learning_curves import AXES, FRACTIONS, METHODS
from qpi_utils.files import read_csv


def test_learning_curves_train_smaller_runs_and_pair_the_two_methods(tmp_path, capsys, trained_run):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "seed-0").symlink_to(trained_run[0])  # the smoke profile's seed 0, trained: the full size
    out = tmp_path / "res"
    assert main(["learning-curves", "--profile", "smoke", "--seeds", "0", "--run-dir", str(tmp_path / "lc"),
                 "--base-run-dir", str(seeds), "--results-dir", str(out), "--no-progress"]) == 0
    rows = read_csv(out / "learning_curves.csv")
    assert {(r["axis"], float(r["fraction"]), r["setting"], r["method"]) for r in rows} == {
        (a, f, s, m) for a in AXES for f in FRACTIONS for s in ("ID", "OOD") for m in METHODS}
    kernels = {float(r["fraction"]): int(r["train_kernels"]) for r in rows if r["axis"] == "kernels"}
    assert kernels[0.25] < kernels[1.0]  # fewer kernels trained on
    step1 = {float(r["fraction"]): int(r["step1_kernels"]) for r in rows if r["axis"] == "kernels"}
    assert step1 == kernels  # smoke has no training-only kernels: step 1 trains on every training kernel
    paired = read_csv(out / "learning_curves_paired.csv")
    assert len(paired) == len(AXES) * len(FRACTIONS) * 2
    assert all(float(r["ci_low"]) <= float(r["two_step_minus_one_step_paper"]) <= float(r["ci_high"]) for r in paired)
    assert not (tmp_path / "lc" / "kernels" / "1" ).exists()  # the full size is the seeds run itself
    assert json.loads((out / "learning_curves_provenance.json").read_text())["methods"] == list(METHODS)

    # notebook 05's learning-curve cells, as committed, on these results: the figure is drawn and
    # the answer is read off the paired rows, one line per setting and axis
    import qpi_utils as qpi
    from IPython.display import Markdown, display

    run = qpi.runs.as_layout(tmp_path / "nb", "smoke")
    run.results.mkdir(parents=True)
    for name in ("learning_curves.csv", "learning_curves_paired.csv"):
        shutil.copy(out / name, run.results / name)
    book = json.loads((Path(__file__).resolve().parents[2] / "notebooks" / "05_results.ipynb").read_text())
    code = ["".join(c["source"]) for c in book["cells"] if c["cell_type"] == "code"]
    cells = [next(c for c in code if 'find_result(run, f"learning_curves{s}.csv")' in c),
             next(c for c in code if '"two-step ahead"' in c)]
    capsys.readouterr()
    namespace = {"qpi": qpi, "run": run, "Markdown": Markdown, "display": display}
    for cell in cells:
        exec(cell, namespace)
    printed = capsys.readouterr().out.splitlines()
    answers = [line for line in printed if line.startswith(("ID, fewer training", "OOD, fewer training"))]
    assert len(answers) == 4 and all(line.count(":") == 1 + len(FRACTIONS) for line in answers), printed
    assert (run.figures / "learning_curves.png").is_file()
