"""The generated results tables of the README and the docs pages, rendered from the committed results files.

    python tools/readme_results.py          # report which tables differ from what the files say
    python tools/readme_results.py --write  # rewrite them in README.md and docs/*.md (temporary file, rename)

Each table between the results markers of a page (:data:`PAGES`) that this script knows (by its
header row) is rendered from ``results/<profile>/``: the README's headline table and the ID/OOD
table over seeds (``table_seeds.csv``), their paired comparisons (``table_seeds_paired.csv``), how the
networks trained (``provenance.json``), every ablation's rows with their paired difference to the
first variant (``ablations/<name>.csv``, ``<name>_paired.csv``), the robustness sweeps
(``sweeps.csv``; bold = the lowest mean, ▲/▼ = ahead of / behind two-step by the paired rule), the
real-map scores (``ablations/realistic_training_real_maps.csv``), the same-seed spread
(``same_seed_spread.json``), the learning curves (``learning_curves*.csv``) and the data-design
rule's candidates (``data_design.json``).
``tests/lab/test_readme_results.py`` checks that the README says what this renders: the number
check of ``tests/lab/test_committed_results.py`` finds a number somewhere in the results, this
finds it in the right cell. The other tables (benchmarks, printed notebook output) are written by
hand.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- results -->\n)(.*?)(\n<!-- /results -->)", re.S)
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))  # every page whose numbers are checked


def rows(path: Path) -> list[dict]:
    """The rows of a results CSV."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def pm(mean, ci, d: int = 4) -> str:
    """``mean ± ci`` at ``d`` decimals, as the README prints intervals."""
    return f"{float(mean):.{d}f} ± {float(ci):.{d}f}"


def seeds_block(results: Path) -> list[str]:
    """The ID/OOD table over seeds (``table_seeds.csv``)."""
    out = ["| setting | method | RMSE [0,1] | RMSE [-1,1] | affine-invariant RMSE [0,1] "
           "| paper RMSE [-1,1] (v1 Table 1) |", "|---|---|---|---|---|---|"]
    for r in rows(results / "table_seeds.csv"):
        paper = float(r["paper_rmse_pm1"]) if r["paper_rmse_pm1"] not in ("", "nan") else math.nan
        out.append(f"| {r['setting']} | {r['method']} | {pm(r['rmse_mean'], r['rmse_ci95'])} | "
                   f"{pm(r['rmse_pm1_mean'], r['rmse_pm1_ci95'])} | "
                   f"{pm(r['rmse_affine_mean'], r['rmse_affine_ci95'])} | "
                   f"{'-' if math.isnan(paper) else f'{paper:.4f}'} |")
    return out


HEADLINE = {"two-step (the paper's method)": "two_step",
            "one-step as the paper's (from the prior)": "one_step_paper",
            "one-step from step 1 (the kit's)": "one_step",
            "least squares, known M": "least_squares", "sub-pixel hybrid": "hybrid_subpixel"}


def headline_block(results: Path) -> list[str]:
    """The README's first table: five methods' RMSE [0,1] over seeds (``table_seeds.csv``)."""
    cells = {(r["setting"], r["method"]): pm(r["rmse_mean"], r["rmse_ci95"])
             for r in rows(results / "table_seeds.csv") if not r.get("variant")}
    out = ["| setting | " + " | ".join(HEADLINE) + " |", "|---|" + "---|" * len(HEADLINE)]
    for setting, label in (("ID", "in domain"), ("OOD", "out of domain")):
        out.append(f"| {label} | " + " | ".join(cells[(setting, m)] for m in HEADLINE.values()) + " |")
    return out


VERDICTS = {"a": "a lower", "b": "b lower", "tie": "tie (interval covers 0)"}


def paired_block(results: Path) -> list[str]:
    """The paired comparisons over seeds (``table_seeds_paired.csv``): a - b per kernel, its interval, the verdict."""
    out = ["| setting | a | b | a - b, RMSE [0,1] (95 % paired interval) | verdict | a lower on |",
           "|---|---|---|---|---|---|"]
    for r in rows(results / "table_seeds_paired.csv"):
        out.append(f"| {r['setting']} | {r['a']} | {r['b']} | {float(r['difference']):+.4f} "
                   f"[{float(r['ci_low']):+.4f}, {float(r['ci_high']):+.4f}] | {VERDICTS[r['verdict']]} | "
                   f"{r['a_better_kernels']} of {r['kernels']} kernels |")
    return out


def headline_paired_block(results: Path) -> list[str]:
    """The README's paired rows: two-step minus each one-step baseline (``table_seeds_paired.csv``)."""
    out = ["| setting | two-step minus | difference, RMSE [0,1] (95 % paired interval) | verdict | two-step lower on |",
           "|---|---|---|---|---|"]
    names = {"one_step_paper": "one-step as the paper's", "one_step": "one-step from step 1"}
    for r in rows(results / "table_seeds_paired.csv"):
        if r["a"] == "two_step" and r["b"] in names:
            verdict = {"a": "two-step lower", "b": "one-step lower", "tie": "tie (interval covers 0)"}[r["verdict"]]
            out.append(f"| {r['setting']} | {names[r['b']]} | {float(r['difference']):+.4f} "
                       f"[{float(r['ci_low']):+.4f}, {float(r['ci_high']):+.4f}] | {verdict} | "
                       f"{r['a_better_kernels']} of {r['kernels']} kernels |")
    return out


def training_block(results: Path) -> list[str]:
    """How seed 0's networks trained (``provenance.json``)."""
    t = json.loads((results / "provenance.json").read_text())["training"]
    names = {"kernel_vae": "step 1: kernel VAE", "alignment": "step 2: observation encoder",
             "one_step": "one-step from step 1 (the kit's)", "one_step_paper": "one-step as the paper's (from the prior)"}
    out = ["| network | epochs run (kept) | best validation RMSE [0,1] | wall time | training samples/s |",
           "|---|---|---|---|---|"]
    for k, label in names.items():
        v = t[k]
        early = ", stopped early" if v["stopped_early"] else ""
        out.append(f"| {label} | {v['epochs_run']} ({v['best_epoch']}){early} | {v['best_val_rmse']:.4f} | "
                   f"{v['wall_seconds']:.2f} s | {v['train_samples_per_second']:.2f} |")
    return out


ABLATION_TITLES = {"symmetric_loss": "symmetric loss (v1 Table 2)", "angles": "rotation angles",
                   "kl_reduction": "KL term", "warm_start": "start of step 2",
                   "pretraining": "pretraining (later version, Table III)",
                   "noise_augmentation": "noise augmentation (later version)",
                   "realistic_training": "realistic training data (kit)"}
AGAINST_FIRST = {"a": "behind", "b": "ahead", "tie": "tie"}  # a = the first variant, b = this one


def ablations_block(results: Path) -> list[str]:
    """Every ablation's rows (``ablations/<name>.csv``): each variant and method, ID and OOD, the
    paper's number, and out of domain the paired difference to the first variant (``<name>_paired.csv``)."""
    out = ["| ablation | variant | method | ID RMSE [0,1] | OOD RMSE [0,1] | OOD RMSE [-1,1] | paper OOD RMSE [-1,1] "
           "| OOD, this minus the first variant (paired) |", "|---|---|---|---|---|---|---|---|"]
    for name, title in ABLATION_TITLES.items():
        path = results / "ablations" / f"{name}.csv"
        if not path.is_file():  # said in the table, not left out silently
            out.append(f"| {title} | not made with this profile yet: `qpi ablation {name} --profile {results.name} "
                       "--seeds 0 1 2` | | | | | | |")
            continue
        data = rows(path)
        paired_path = results / "ablations" / f"{name}_paired.csv"
        paired = ({r["b"]: r for r in rows(paired_path) if r["setting"] == "OOD"} if paired_path.is_file() else {})
        cell = {(r["variant"], r["setting"], r["method"]): r for r in data}
        shown = title
        for variant in dict.fromkeys(r["variant"] for r in data):
            for method in dict.fromkeys(r["method"] for r in data if r["variant"] == variant):
                ood = cell.get((variant, "OOD", method))
                if ood is not None and ood.get("note"):
                    out.append(f"| {shown} | {variant} | {method} | {ood['note']} | | | "
                               f"{_paper(ood)} | |")
                    shown = ""
                    continue
                idr = cell.get((variant, "ID", method))
                pr = paired.get(f"{variant}: {method}")
                against = "-" if pr is None else (
                    f"{-float(pr['difference']):+.4f} [{-float(pr['ci_high']):+.4f}, {-float(pr['ci_low']):+.4f}], "
                    f"{AGAINST_FIRST[pr['verdict']]}")
                out.append(f"| {shown} | {variant} | {method} | "
                           f"{pm(idr['rmse_mean'], idr['rmse_ci95']) if idr else '-'} | "
                           f"{pm(ood['rmse_mean'], ood['rmse_ci95'])} | {pm(ood['rmse_pm1_mean'], ood['rmse_pm1_ci95'])} | "
                           f"{_paper(ood)} | {against} |")
                shown = ""
    return out


def _paper(row: dict) -> str:
    value = row.get("paper_rmse_pm1", "")
    return "-" if value in ("", "nan") or math.isnan(float(value)) else f"{float(value):.4f}"


SWEEPS = [("snr_db", "SNR (dB)"), ("scatterers", "labelled defects"), ("outside_margin", "outside band (px)"),
          ("position_error", "position error (px)"), ("realistic", "SNR (dB), realistic")]
SWEEP_METHODS = ["one_step_paper", "one_step", "two_step", "least_squares", "least_squares_subpixel",
                 "least_squares_auto", "hybrid", "hybrid_subpixel"]


def sweep_mark(r: dict) -> str:
    """Against two-step, paired per kernel (``minus_two_step`` and its interval), as notebook 06 marks it:
    ▲ ahead (lower RMSE), ▼ behind, nothing a tie."""
    if r["method"] == "two_step" or r.get("minus_two_step_low", "") in ("", "nan"):
        return ""
    low, high = float(r["minus_two_step_low"]), float(r["minus_two_step_high"])
    return " ▲" if high < 0 else " ▼" if low > 0 else ""


def sweeps_block(results: Path) -> list[str]:
    """The sweep tables (``sweeps.csv``): bold = the lowest mean; ▲/▼ = ahead of / behind two-step, paired."""
    data = rows(results / "sweeps.csv")
    out = []
    for key, title in SWEEPS:
        if out:
            out.append("")
        out.append(f"| {title} | " + " | ".join(SWEEP_METHODS) + " |")
        out.append("|---" * (len(SWEEP_METHODS) + 1) + "|")
        values = []
        for r in data:
            if r["sweep"] == key and r["value"] not in values:
                values.append(r["value"])
        for v in values:
            cell = {r["method"]: r for r in data if r["sweep"] == key and r["value"] == v}
            best = min(SWEEP_METHODS, key=lambda m: float(cell[m]["rmse"]))
            cells = []
            for m in SWEEP_METHODS:
                text = f"{float(cell[m]['rmse']):.3f} ± {float(cell[m]['rmse_ci95']):.3f}"
                cells.append((f"**{text}**" if m == best else text) + sweep_mark(cell[m]))
            out.append(f"| {float(v):g} | " + " | ".join(cells) + " |")
    return out


def real_maps_block(results: Path) -> list[str]:
    """Held-out real-map scores of the realistic-training ablation
    (``ablations/realistic_training_real_maps.csv``)."""
    csv_rows = rows(results / "ablations" / "realistic_training_real_maps.csv")
    r = {(x["variant"], x["map"], x["method"]): x for x in csv_rows}
    out = ["| map | least squares | two-step, clean training | two-step, realistic training | hybrid, clean training "
           "| hybrid, realistic training |", "|---|---|---|---|---|---|"]
    for m in ("FeSe", "Cu(111)"):
        ls = float(r[("clean", m, "least_squares")]["heldout_mean"])
        cells = [f"{ls:.3f}"]
        for method in ("two_step", "hybrid"):
            for variant in ("clean", "realistic"):
                x = r[(variant, m, method)]
                cells.append(f"{float(x['heldout_mean']):.3f} ± {float(x['heldout_ci95']):.3f}")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out




SPREAD_METHODS = ("two_step", "one_step_paper")


def spread_block(results: Path) -> list[str]:
    """The same seed trained twice (``same_seed_spread.json``, ``python -m qpi_lab.spread``): per
    setting and method the two runs' test RMSE, their difference and the standard deviation over
    seeds; then whether each network's weights came out bit for bit the same."""
    record = json.loads((results / "same_seed_spread.json").read_text())
    out = ["| setting | method | first run | second run | difference | std over seeds |", "|---|---|---|---|---|---|"]
    for r in record["scores"]:
        if r["method"] in SPREAD_METHODS:
            std = "-" if r["seed_std"] is None else f"{float(r['seed_std']):.4f}"
            out.append(f"| {r['setting']} | {r['method']} | {float(r['first']):.4f} | {float(r['second']):.4f} | "
                       f"{float(r['difference']):+.4f} | {std} |")
    same = [step for step, w in record["networks"].items() if w["identical"]]
    out.append(f"| weights | {len(record['networks'])} networks | | | {len(same)} bit for bit the same | |")
    return out


VERDICT = {"a": "two-step ahead", "b": "one-step ahead", "tie": "tie"}


def curves_block(results: Path) -> list[str]:
    """The learning curves (``learning_curves.csv``, ``learning_curves_paired.csv``, ``qpi
    learning-curves``): per axis, training-set size and setting, both methods' RMSE over seeds and
    their paired difference per kernel."""
    scores = {(r["axis"], r["fraction"], r["setting"], r["method"]): r for r in rows(results / "learning_curves.csv")}
    out = ["| axis | fraction | training kernels, observations | setting | two-step RMSE [0,1] "
           "| one-step (paper's) RMSE [0,1] | paired, two-step minus one-step [95 %] | verdict |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows(results / "learning_curves_paired.csv"):
        two, one = (scores[(r["axis"], r["fraction"], r["setting"], m)] for m in ("two_step", "one_step_paper"))
        step1 = two.get("step1_kernels") or two["train_kernels"]  # older files: every kernel was step 1's
        kernels = two["train_kernels"] if step1 == two["train_kernels"] else f"{two['train_kernels']} ({step1} for step 1)"
        out.append(f"| {r['axis']} | {float(r['fraction']):g} | {kernels}, {two['train_observations']} "
                   f"| {r['setting']} | {pm(two['rmse_mean'], two['rmse_ci95'])} "
                   f"| {pm(one['rmse_mean'], one['rmse_ci95'])} | {float(r['two_step_minus_one_step_paper']):+.4f} "
                   f"[{float(r['ci_low']):+.4f}, {float(r['ci_high']):+.4f}] | {VERDICT[r['verdict']]} |")
    return out


def design_block(results: Path) -> list[str]:
    """The data-design rule's candidates (``data_design.json``, ``qpi data-design``): per number of
    training-only kernels, two-step's best validation RMSE, its two halves, step 2's training time,
    and which candidate the rule chose."""
    record = json.loads((results / "data_design.json").read_text())
    chosen = (record["chosen"]["extra_train_kernels"], record["chosen"]["extra_train_observations"])
    out = ["| training-only kernels x observations | training kernels, observations | step-2 validation RMSE [0,1] "
           "| of training kernels (val_id) | of validation kernels (val_ood) | step 2 (s) | chosen |",
           "|---|---|---|---|---|---|---|"]
    for r in record["candidates"]:
        key = (r["extra_train_kernels"], r["extra_train_observations"])
        out.append(f"| {key[0]} x {key[1]} | {r['train_kernels']}, {r['train_observations']} | "
                   f"{r['best_val_rmse']:.4f} | {r['val_id']:.4f} | {r['val_ood']:.4f} | "
                   f"{r['seconds']['alignment']:.0f} | {'yes' if key == chosen else ''} |")
    return out


def render(results: Path) -> dict[str, list[str]]:
    """{header row of a README table: the table's lines as the results files say}."""
    tables = {}
    for lines in (headline_block(results), headline_paired_block(results), seeds_block(results), paired_block(results),
                  training_block(results), ablations_block(results),
                  real_maps_block(results)):
        tables[lines[0]] = lines
    if (results / "same_seed_spread.json").is_file():
        lines = spread_block(results)
        tables[lines[0]] = lines
    if (results / "data_design.json").is_file():
        lines = design_block(results)
        tables[lines[0]] = lines
    if (results / "learning_curves_paired.csv").is_file():
        lines = curves_block(results)
        tables[lines[0]] = lines
    # the sweep tables sit in one block: keyed by the first one's header
    sweeps = sweeps_block(results)
    tables[sweeps[0]] = sweeps
    return tables


def update(text: str, results: Path) -> tuple[str, list[str]]:
    """(README text with every known table re-rendered, headers of the tables that changed)."""
    tables, changed = render(results), []

    def one(match):
        body = match.group(2).split("\n")
        new = body
        if body[0] in tables:
            new = tables[body[0]]
        if new != body:
            changed.append(body[0])
        return match.group(1) + "\n".join(new) + match.group(3)

    return BLOCK.sub(one, text), changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--write", action="store_true", help="rewrite the pages' tables (default: only report)")
    args = ap.parse_args()
    results = ROOT / "results" / args.profile
    updated = {}
    try:
        for page in PAGES:
            updated[page] = update(page.read_text(), results)
    except FileNotFoundError as exc:
        print(f"error: {exc.filename} not found: regenerate the results of profile {args.profile} first",
              file=sys.stderr)
        return 2
    except (KeyError, StopIteration) as exc:
        print(f"error: the results under {results} or a page lack a row or table this script renders "
              f"({exc!r})", file=sys.stderr)
        return 2
    changed = 0
    for page, (text, headers) in updated.items():
        for header in headers:
            print(f"{page.relative_to(ROOT)}: differs from the results files: {header}")
        if args.write and headers:
            fd, tmp = tempfile.mkstemp(dir=page.parent, prefix=f".{page.name}.", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, page)
            print(f"rewrote {len(headers)} table(s) in {page.relative_to(ROOT)}")
        changed += len(headers)
    return 1 if changed and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
