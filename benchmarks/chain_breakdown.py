"""Where a profile's time goes, from what its runs recorded (no new measurement).

    python benchmarks/chain_breakdown.py [--profile quick]

Reads ``results/<profile>/table_seeds_provenance.json`` (per-seed wall time of ``qpi seeds``),
each seed's ``provenance.json`` (committed copies under ``results/<profile>/seeds/seed-N/``, or
``--seeds-run-dir``'s ``seed-N/results/``), else the chain's own ``results/<profile>/provenance.json`` (training seconds per step, inference seconds
per method and test set), ``results/<profile>/chain_times.json`` (seconds per notebook) and
``results/<profile>/sweeps.csv`` (notebook 06: seconds per method and sweep point), and prints the
breakdown with each part's share.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def breakdown(prov: dict) -> dict:
    parts = {f"train {k}": float(v["wall_seconds"]) for k, v in prov.get("training", {}).items()}
    inference = {}
    for key, seconds in prov.get("inference_seconds", {}).items():
        method = key.split("/")[1]
        inference[method] = inference.get(method, 0.0) + float(seconds)
    parts.update({f"evaluate {k}": v for k, v in inference.items()})
    return parts


def sweep_seconds(path: Path) -> tuple[dict, int]:
    """(seconds per method over the sweep points of ``sweeps.csv``, how many points were left out
    as copies). ``qpi_utils.sweeps.robustness_sweeps`` scores a point that simulates the same data
    as an earlier one once and copies its rows, ``seconds`` included; a point whose rows (every
    method's n, RMSE and seconds) equal an earlier point's is such a copy and is not counted again."""
    points: dict = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            if row.get("seconds") not in (None, ""):
                points.setdefault((row["sweep"], row["value"]), []).append(
                    (row["method"], row["n"], row["rmse"], float(row["seconds"])))
    per_method, seen, shared = {}, set(), 0
    for rows in points.values():
        key = tuple(rows)
        if key in seen:
            shared += 1
            continue
        seen.add(key)
        for method, _, _, seconds in rows:
            per_method[method] = per_method.get(method, 0.0) + seconds
    return per_method, shared


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds-run-dir", type=Path, default=None, help="the `qpi seeds` run directory, if kept")
    args = ap.parse_args()
    res = ROOT / "results" / args.profile
    chain = res / "chain_times.json"
    if chain.is_file():
        times = json.loads(chain.read_text())
        total = sum(times.values())
        print(f"notebook chain ({chain.relative_to(ROOT)}): {total / 60:.1f} min")
        for name, s in times.items():
            print(f"  {name:16s} {s:8.1f} s  {100 * s / total:5.1f} %")
    sweeps = res / "sweeps.csv"
    if sweeps.is_file():
        per_method, shared = sweep_seconds(sweeps)
        if per_method:
            total = sum(per_method.values())
            print(f"robustness sweeps, notebook 06 ({sweeps.relative_to(ROOT)}): {total / 60:.1f} min of method time"
                  + (f" ({shared} point(s) shared by two sweeps counted once)" if shared else ""))
            for name, s in sorted(per_method.items(), key=lambda kv: -kv[1]):
                print(f"  {name:26s} {s:8.1f} s  {100 * s / total:5.1f} %")
    provs = sorted((res / "seeds").glob("seed-*/provenance.json"))
    if args.seeds_run_dir:
        provs = sorted(args.seeds_run_dir.glob("seed-*/results/provenance.json"))
    if not provs and (res / "provenance.json").is_file():
        provs = [res / "provenance.json"]
    for p in provs:
        parts = breakdown(json.loads(p.read_text()))
        total = sum(parts.values())
        where = p.relative_to(ROOT) if p.is_relative_to(ROOT) else p
        print(f"training and evaluation ({where}): {total / 60:.1f} min")
        for name, s in sorted(parts.items(), key=lambda kv: -kv[1]):
            print(f"  {name:26s} {s:8.1f} s  {100 * s / total:5.1f} %")
    seeds = res / "table_seeds_provenance.json"
    if seeds.is_file():
        sp = json.loads(seeds.read_text())
        print(f"qpi seeds ({seeds.relative_to(ROOT)}): {sp['total_seconds'] / 60:.1f} min for seeds "
              f"{sp['seeds']}: " + ", ".join(f"seed {k} {v / 60:.1f} min" for k, v in sp["seconds_per_seed"].items()))


if __name__ == "__main__":
    main()
