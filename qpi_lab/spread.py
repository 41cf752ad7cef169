"""The same seed trained twice: how far apart are the two runs, against the spread over seeds?

    python -m qpi_lab.spread --first runs/quick-seeds/seed-0 --second runs/quick-repeat/seed-0 \\
        --first-results results/quick/seeds/seed-0 --second-results DIR --seeds-table results/quick/table_seeds.csv

Both runs simulate the same dataset (same seed: bit-identical, the content hash says so) and train
every network from it. Compared: each network's weights (bit for bit, and the largest difference),
each method's test RMSE per setting, and that difference against the standard deviation of the
same cell over seeds (``table_seeds.csv``). Written to ``results/<profile>/same_seed_spread.json``
with the CPU, core and thread counts of both runs (their ``provenance.json``): what a user on
another machine can expect to match.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from qpi_utils.files import read_csv, write_text
from qpi_utils.runs import STEPS

NETWORKS = tuple(STEPS)


def weights(first: Path, second: Path) -> dict:
    """Per network: identical (bit for bit) and the largest absolute weight difference."""
    out = {}
    for step in NETWORKS:
        a, b = first / "models" / f"{step}.pt", second / "models" / f"{step}.pt"
        if not (a.is_file() and b.is_file()):
            continue
        sa = torch.load(a, map_location="cpu", weights_only=True)
        sb = torch.load(b, map_location="cpu", weights_only=True)
        diff = max(float((sa["state_dict"][k].double() - sb["state_dict"][k].double()).abs().max())
                   for k in sa["state_dict"])
        out[step] = {"identical": diff == 0.0, "max_abs_difference": diff,
                     "kept_epochs": [sa["summary"]["best_epoch"], sb["summary"]["best_epoch"]],
                     "best_val_rmse": [sa["summary"]["best_val_rmse"], sb["summary"]["best_val_rmse"]]}
    return out


def scores(first_results: Path, second_results: Path, seeds_table: Path) -> list[dict]:
    """Per (setting, method): both runs' test RMSE [0, 1], their difference, and the seeds' std."""
    a = {(r["setting"], r["method"]): float(r["rmse"]) for r in read_csv(first_results / "table.csv")}
    b = {(r["setting"], r["method"]): float(r["rmse"]) for r in read_csv(second_results / "table.csv")}
    std = {(r["setting"], r["method"]): float(r["rmse_std"]) for r in read_csv(seeds_table) if not r.get("variant")}
    rows = []
    for key in sorted(a.keys() & b.keys()):
        d = b[key] - a[key]
        rows.append({"setting": key[0], "method": key[1], "first": a[key], "second": b[key], "difference": d,
                     "seed_std": std.get(key), "difference_over_seed_std":
                         abs(d) / std[key] if std.get(key) else None})
    return rows


def machine(results: Path) -> dict:
    prov = json.loads((results / "provenance.json").read_text())
    return {"commit": prov.get("git_commit"), **{k: prov.get("machine", {}).get(k)
                                                  for k in ("cpu", "cpu_count", "torch_threads", "cpu_native_bf16")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=Path, required=True, help="run directory of the first training")
    ap.add_argument("--second", type=Path, required=True, help="run directory of the second training")
    ap.add_argument("--first-results", type=Path, required=True, help="the first run's table.csv and provenance.json")
    ap.add_argument("--second-results", type=Path, required=True)
    ap.add_argument("--seeds-table", type=Path, required=True, help="table_seeds.csv: the spread over seeds")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    for path in (args.first / "data" / "meta.json", args.second / "data" / "meta.json"):
        if not path.is_file():
            print(f"spread: error: {path} not found: both runs need their dataset", file=sys.stderr)
            return 2
    hashes = [json.loads((d / "data" / "meta.json").read_text())["content_hash"] for d in (args.first, args.second)]
    rows = scores(args.first_results, args.second_results, args.seeds_table)
    record = {"command": "python -m qpi_lab.spread " + " ".join(argv if argv is not None else sys.argv[1:]),
              "same_dataset": hashes[0] == hashes[1], "dataset_hash": hashes,
              "machines": [machine(args.first_results), machine(args.second_results)],
              "networks": weights(args.first, args.second), "scores": rows}
    write_text(args.out, json.dumps(record, indent=2) + "\n")
    for r in rows:
        ratio = r["difference_over_seed_std"]
        print(f"{r['setting']:>3} {r['method']:<24} {r['first']:.4f} {r['second']:.4f} {r['difference']:+.4f}"
              + (f"  ({ratio:.2f} of the seeds' std)" if ratio is not None else ""))
    for step, w in record["networks"].items():
        print(f"{step}: {'identical' if w['identical'] else 'differs'} (largest weight difference "
              f"{w['max_abs_difference']:.3g}; kept epochs {w['kept_epochs']})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
