"""Do two runs of the chain compute the same numbers? (Evidence that a change moved code, not results.)

    python tools/compare_runs.py BASE_RUN NEW_RUN [--record results/equivalence.json --base-commit C --new-commit C]

Each argument is a run directory made by ``qpi reproduce --profile P --run-dir DIR --results-dir DIR/res``
at one commit. Compared: every trained network's weights (bit for bit), every number of the results
tables (``table.csv``, ``per_sample.csv``, ``sweeps.csv``; timing columns left out, since wall time is
not a result) and ``diagnostics.json``, and the printed output of the real-data notebook (its scores
exist only there). Exit 0 and "identical" when everything matches; otherwise the first differences.
With ``--record`` the verdict is written as a JSON file that ``tests/lab/test_committed_results.py``
reads: results made at the base commit then count as made at the new one.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import torch

TIMING = {"seconds", "seconds_per_image"}
TABLES = ("table.csv", "per_sample.csv", "sweeps.csv")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]


def _notebook_text(path: Path) -> list[str]:
    """Printed lines of a notebook's code cells, timing lines and the run directory left out."""
    out = []
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            out += [line for line in text.splitlines() if " s)" not in line and "seconds" not in line
                    and not line.startswith("profile: ")  # the run directory differs between the two runs
                    and not line.startswith("<Figure size ")  # a figure's repr: its pixels follow the display dpi
                    and "not made for profile" not in line]  # where an optional table is missing: wording, not a result
    return out


def _not_in_order(base: list[str], new: list[str]) -> list[str]:
    """The lines of ``base`` that ``new`` does not print in the same order (new may print more:
    cells added since, such as exercises)."""
    missing, at = [], 0
    for line in base:
        try:
            at = new.index(line, at) + 1
        except ValueError:
            missing.append(line)
    return missing


def compare(base: Path, new: Path) -> tuple[list[str], list[str]]:
    """(what was compared, the differences found)."""
    compared, diffs = [], []
    for model in sorted((base / "models").glob("*.pt")):
        other = new / "models" / model.name
        a = torch.load(model, map_location="cpu", weights_only=True)["state_dict"]
        b = torch.load(other, map_location="cpu", weights_only=True)["state_dict"] if other.is_file() else {}
        same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        compared.append(f"models/{model.name} ({len(a)} tensors)")
        if not same:
            diffs.append(f"models/{model.name}: weights differ")
    for name in TABLES:
        pa, pb = base / "res" / name, new / "res" / name
        if not pa.is_file():
            continue
        ra, rb = _rows(pa), (_rows(pb) if pb.is_file() else [])
        compared.append(f"res/{name} ({len(ra)} rows)")
        if ra != rb:
            first = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y), min(len(ra), len(rb)))
            diffs.append(f"res/{name}: row {first} differs ({ra[first] if first < len(ra) else None} vs "
                         f"{rb[first] if first < len(rb) else None})")
    for name in ("diagnostics.json",):
        pa, pb = base / "res" / name, new / "res" / name
        if pa.is_file():
            compared.append(f"res/{name}")
            if not pb.is_file() or json.loads(pa.read_text()) != json.loads(pb.read_text()):
                diffs.append(f"res/{name} differs")
    nb = "notebooks/08_real_data.ipynb"
    if (base / nb).is_file():
        ta, tb = _notebook_text(base / nb), _notebook_text(new / nb) if (new / nb).is_file() else []
        compared.append(f"{nb} printed output ({len(ta)} lines)")
        missing = _not_in_order(ta, tb)
        if missing:
            diffs.append(f"{nb}: printed lines of the base run missing from the new one: {missing[:4]}")
    return compared, diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--record", type=Path, help="write the verdict to this JSON file (only when identical)")
    ap.add_argument("--base-commit", help="the commit BASE was made at (with --record)")
    ap.add_argument("--new-commit", help="the commit NEW was made at (with --record)")
    ap.add_argument("--command", default="", help="how the runs were made (with --record)")
    args = ap.parse_args(argv)
    for run in (args.base, args.new):
        if not (run / "models").is_dir():
            print(f"compare_runs: {run} holds no models/: not a run directory", file=sys.stderr)
            return 2
    compared, diffs = compare(args.base, args.new)
    for line in compared:
        print("compared", line)
    if diffs:
        print("DIFFERENT:\n  " + "\n  ".join(diffs))
        return 1
    print("identical")
    if args.record:
        if not (args.base_commit and args.new_commit):
            print("compare_runs: --record needs --base-commit and --new-commit", file=sys.stderr)
            return 2
        records = json.loads(args.record.read_text()) if args.record.is_file() else []
        records.append({"base_commit": args.base_commit, "new_commit": args.new_commit, "identical": True,
                        "compared": compared, "command": args.command})
        args.record.write_text(json.dumps(records, indent=2) + "\n")
        print(f"recorded in {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
