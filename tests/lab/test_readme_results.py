"""The README's generated results tables say, cell by cell, what the committed results files say.

``tests/test_committed_results.py`` finds each README number somewhere under ``results/``; a number
copied into the wrong cell (another method's, another setting's) would pass it. Here the tables
``tools/readme_results.py`` knows are rendered from the files and compared with the README.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("readme_results", ROOT / "tools" / "readme_results.py")
readme_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_results)
RESULTS = ROOT / "results" / "quick"


def test_the_pages_tables_are_what_the_results_files_say():
    tables = readme_results.render(RESULTS)
    texts = {page: page.read_text() for page in readme_results.PAGES}
    assert {ROOT / "README.md", ROOT / "docs" / "results.md"} <= set(texts)
    missing = [h for h in tables if not any(h in t for t in texts.values())]
    assert not missing, f"generated tables on no page: {missing}"
    for page, text in texts.items():
        _, changed = readme_results.update(text, RESULTS)
        assert not changed, (f"{page.relative_to(ROOT)}: tables differ from the results files "
                             f"(python tools/readme_results.py --write): {changed}")


def test_a_number_in_the_wrong_cell_is_caught():
    """Swap two methods' OOD RMSE in the seeds table: every number still exists in the results
    files, but the table no longer says what they say."""
    text = (ROOT / "docs" / "results.md").read_text()
    lines = text.split("\n")
    ood = {ln.split(" | ")[1]: i for i, ln in enumerate(lines)
           if ln.startswith("| OOD | ") and ln.count("|") == 7 and "±" in ln}  # the seeds table, not the paired one
    a, b = lines[ood["one_step"]].split(" | "), lines[ood["two_step"]].split(" | ")
    a[2], b[2] = b[2], a[2]
    lines[ood["one_step"]], lines[ood["two_step"]] = " | ".join(a), " | ".join(b)
    fixed, changed = readme_results.update("\n".join(lines), RESULTS)
    assert changed == [readme_results.seeds_block(RESULTS)[0]]
    assert fixed == text  # and rendering puts them back


def test_missing_results_are_named_not_a_traceback():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "readme_results.py"), "--profile", "paper"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "not found: regenerate the results of profile paper" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_readme_quotes_the_chain_time_once_and_from_its_file():
    """One source of truth: the README gives the chain's time from nothing in one place, and that
    number is the sum of ``results/quick/chain_times.json`` (what `qpi reproduce` recorded)."""
    import json
    import re

    text = (ROOT / "README.md").read_text()
    total = sum(json.loads((RESULTS / "chain_times.json").read_text()).values()) / 60
    quotes = re.findall(r"from nothing the\s+notebook chain took (\d+\.\d) min", text)
    assert quotes == [f"{total:.1f}"], (quotes, f"{total:.1f}")
    assert "50.8 min" not in text  # the time of the chain before notebook 09 joined it



def test_the_readme_quotes_the_test_suites_time_from_its_file():
    """`make test`'s time is what tools/record_time.py recorded for `bash .ci/run` on a fresh clone."""
    import json
    import re

    record = json.loads((ROOT / "results" / "make_test_time.json").read_text())
    assert record["command"] == "bash .ci/run" and "+dirty" not in record["git_commit"]
    quotes = re.findall(r"`make test` on a fresh clone took\s+(\d+\.\d) min", (ROOT / "README.md").read_text())
    assert quotes == [f"{record['minutes']:.1f}"], quotes


def test_the_ablation_rows_carry_each_variants_paired_difference_to_the_first(tmp_path):
    """A variant's paired column is this minus the first variant, out of domain, with the verdict
    read the right way round (the paired file holds first minus this)."""
    import csv

    folder = tmp_path / "ablations"
    folder.mkdir()
    cols = ["variant", "setting", "method", "rmse_mean", "rmse_ci95", "rmse_pm1_mean", "rmse_pm1_ci95",
            "paper_rmse_pm1", "note"]
    with open(folder / "warm_start.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for variant, r in (("step-1 encoder", 0.05), ("random init", 0.06)):
            for setting in ("ID", "OOD"):
                w.writerow({"variant": variant, "setting": setting, "method": "two_step", "rmse_mean": r,
                            "rmse_ci95": 0.01, "rmse_pm1_mean": 2 * r, "rmse_pm1_ci95": 0.02, "paper_rmse_pm1": "nan",
                            "note": ""})
    with open(folder / "warm_start_paired.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["setting", "a", "b", "difference", "ci_low", "ci_high", "verdict"])
        w.writeheader()
        w.writerow({"setting": "OOD", "a": "step-1 encoder: two_step", "b": "random init: two_step",
                    "difference": -0.01, "ci_low": -0.015, "ci_high": -0.005, "verdict": "a"})
    lines = readme_results.ablations_block(tmp_path)
    (random_row,) = [ln for ln in lines if "| random init |" in ln]
    assert random_row.endswith("| +0.0100 [+0.0050, +0.0150], behind |")
    (first_row,) = [ln for ln in lines if "| step-1 encoder |" in ln]
    assert first_row.startswith("| start of step 2 |") and first_row.endswith("| - |")
    # an ablation without its table is named, with the command that makes it
    (missing,) = [ln for ln in lines if ln.startswith("| symmetric loss")]
    assert "not made with this profile yet: `qpi ablation symmetric_loss" in missing


def test_the_same_seed_spread_table_reads_its_record(tmp_path):
    import json

    record = {"scores": [{"setting": "OOD", "method": "two_step", "first": 0.0666, "second": 0.0671,
                          "difference": 0.0005, "seed_std": 0.003},
                         {"setting": "OOD", "method": "least_squares", "first": 0.038, "second": 0.038,
                          "difference": 0.0, "seed_std": 0.001}],
              "networks": {"kernel_vae": {"identical": True}, "alignment": {"identical": False}}}
    (tmp_path / "same_seed_spread.json").write_text(json.dumps(record))
    lines = readme_results.spread_block(tmp_path)
    assert lines[2] == "| OOD | two_step | 0.0666 | 0.0671 | +0.0005 | 0.0030 |"
    assert not any("least_squares" in ln for ln in lines)  # the paper's two networks only
    assert lines[-1].startswith("| weights | 2 networks |") and "1 bit for bit the same" in lines[-1]


def test_the_learning_curve_rows_say_which_kernels_step_1_trained_on(tmp_path):
    """With training-only kernels, a point's kernel count is every kernel the networks that read
    observations saw, with step 1's share beside it; files made before the column have none."""
    import csv

    for step1, shown in ((17, "| 157 (17 for step 1), 2000 |"), (None, "| 157, 2000 |")):
        cols = ["axis", "fraction", "setting", "method", "train_kernels", "train_observations", "rmse_mean",
                "rmse_ci95"] + (["step1_kernels"] if step1 else [])
        with open(tmp_path / "learning_curves.csv", "w", newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            for method in ("two_step", "one_step_paper"):
                w.writerow({"axis": "kernels", "fraction": 0.25, "setting": "OOD", "method": method,
                            "train_kernels": 157, "train_observations": 2000, "rmse_mean": 0.05, "rmse_ci95": 0.01,
                            **({"step1_kernels": step1} if step1 else {})})
        with open(tmp_path / "learning_curves_paired.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["axis", "fraction", "setting", "two_step_minus_one_step_paper", "ci_low", "ci_high",
                                   "verdict"])
            w.writeheader()
            w.writerow({"axis": "kernels", "fraction": 0.25, "setting": "OOD", "two_step_minus_one_step_paper": -0.01,
                        "ci_low": -0.02, "ci_high": 0.0, "verdict": "tie"})
        (row,) = readme_results.curves_block(tmp_path)[2:]
        assert shown in row
