"""The same seed trained on another machine, compared through what the kit commits of the first run.

    python tools/compare_machines.py --first results/quick --second RUN_DIR --out results/quick/same_seed_machines.json

``qpi_lab.spread`` compares two runs' weights bit for bit, so both runs must be on one disk. A run
on another machine leaves only what was committed: its per-epoch training logs (``logs/*.csv``:
training loss terms, validation RMSE and learning rate after every epoch), its test table
(``table.csv``) and its ``provenance.json`` (dataset hash, commit, machine). ``--first`` is such a
committed folder (``results/quick``, the chain's seed-0 run); ``--second`` is a run directory
trained from nothing with the same profile and seed (its ``logs/``, ``results/table.csv``,
``results/provenance.json``). Compared: the dataset hash, every logged number of every epoch of
each network both trained (wall seconds left out), and each method's test RMSE that both tables
hold. Exit 0 when the two agree everywhere, 1 when they differ (the record says where), 2 when
an input is missing.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

TIMING = {"seconds"}


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def logs(first: Path, second: Path) -> dict:
    """Per network logged in both: epochs compared, epochs whose every logged number is the same,
    and the largest validation-RMSE difference."""
    out = {}
    for a in sorted(first.glob("*.csv")):
        b = second / a.name
        if not b.is_file():
            continue
        ra, rb = _csv(a), _csv(b)
        n = min(len(ra), len(rb))
        same = sum(all(ra[i][k] == rb[i].get(k) for k in ra[i] if k not in TIMING) for i in range(n))
        diff = max((abs(float(ra[i]["val_rmse"]) - float(rb[i]["val_rmse"])) for i in range(n)), default=0.0)
        out[a.stem] = {"epochs": [len(ra), len(rb)], "compared": n, "identical_epochs": same,
                       "max_val_rmse_difference": diff}
    return out


def scores(first: Path, second: Path) -> list[dict]:
    """Per (setting, method) in both tables: each run's test RMSE on [0, 1] and their difference."""
    a = {(r["setting"], r["method"]): float(r["rmse"]) for r in _csv(first)}
    b = {(r["setting"], r["method"]): float(r["rmse"]) for r in _csv(second)}
    return [{"setting": k[0], "method": k[1], "first": a[k], "second": b[k], "difference": b[k] - a[k]}
            for k in sorted(a.keys() & b.keys())]


def machine(provenance: Path) -> dict:
    prov = json.loads(provenance.read_text())
    return {"commit": prov.get("git_commit"), "created": prov.get("created"),
            "dataset_hash": (prov.get("dataset") or {}).get("content_hash"),
            **{k: (prov.get("machine") or {}).get(k) for k in ("platform", "cpu", "cpu_count", "torch_threads",
                                                               "cpu_native_bf16")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=Path, required=True, help="committed results of the first run (logs/, table.csv, provenance.json)")
    ap.add_argument("--second", type=Path, required=True, help="run directory of the second (logs/, results/)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    inputs = {"first logs": args.first / "logs", "first table": args.first / "table.csv",
              "first provenance": args.first / "provenance.json", "second logs": args.second / "logs",
              "second table": args.second / "results" / "table.csv",
              "second provenance": args.second / "results" / "provenance.json"}
    missing = [f"{name} ({path})" for name, path in inputs.items() if not path.exists()]
    if missing:
        print(f"compare_machines: error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    machines = [machine(inputs["first provenance"]), machine(inputs["second provenance"])]
    networks = logs(inputs["first logs"], inputs["second logs"])
    rows = scores(inputs["first table"], inputs["second table"])
    agree = (machines[0]["dataset_hash"] == machines[1]["dataset_hash"] and bool(networks) and bool(rows)
             and all(n["identical_epochs"] == n["compared"] == max(n["epochs"]) for n in networks.values())
             and all(r["difference"] == 0.0 for r in rows))
    record = {"command": "python tools/compare_machines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "same_dataset": machines[0]["dataset_hash"] == machines[1]["dataset_hash"], "machines": machines,
              "training_logs": networks, "scores": rows, "agree": agree}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    for step, n in networks.items():
        print(f"{step}: {n['identical_epochs']} of {n['compared']} epochs identical in every logged number "
              f"(epochs {n['epochs'][0]} and {n['epochs'][1]}; largest validation difference {n['max_val_rmse_difference']:.3g})")
    for r in rows:
        print(f"{r['setting']:>3} {r['method']:<16} {r['first']:.6f} {r['second']:.6f} {r['difference']:+.2g}")
    print(("the two runs agree" if agree else "the two runs differ") + f"; wrote {args.out}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
