"""Time to accuracy: seconds each network needed to reach a validation RMSE, before and after a
change of schedules, read from the training logs of two runs of the same data (issue 29).

    python benchmarks/time_to_accuracy.py --before RUN_A --after RUN_B

Both runs must hold the same dataset (content hash) and score validation the same way. Per
network, the **target** is the best validation RMSE (on [0, 1]) the *before* run reached; for each
run it prints the training seconds (the sum of the logged epoch seconds, the start's evaluation
not counted) until the first epoch at or below the target, or "not reached". Methods add the
step-1 seconds their network started from (two-step and the kit's one-step start from step 1; the
paper's one-step does not). No training is run.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

NETWORKS = ("kernel_vae", "alignment", "one_step", "one_step_paper")
STARTS_FROM_STEP_1 = ("alignment", "one_step")


def history(run: Path, step: str) -> list[dict] | None:
    path = run / "logs" / f"{step}.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return [{"val_rmse": float(r["val_rmse"]), "seconds": float(r["seconds"])} for r in csv.DictReader(f)]


def seconds_to(rows: list[dict], target: float) -> float | None:
    """Cumulative training seconds until the first epoch whose validation RMSE is <= ``target``."""
    total = 0.0
    for r in rows:
        total += r["seconds"]
        if r["val_rmse"] <= target + 1e-12:
            return total
    return None


def data_hash(run: Path) -> str:
    try:
        return json.loads((run / "data" / "meta.json").read_text())["content_hash"]
    except (OSError, ValueError, KeyError):
        raise SystemExit(f"error: {run}/data/meta.json is missing or has no content hash: not a run directory")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="run directory trained with the old schedules")
    ap.add_argument("--after", type=Path, required=True, help="run directory trained with the new schedules")
    args = ap.parse_args()
    if data_hash(args.before) != data_hash(args.after):
        raise SystemExit("error: the two runs hold different datasets: their validation RMSEs are not comparable")
    print(f"before: {args.before}\nafter:  {args.after}\ndataset {data_hash(args.after)[:16]} in both\n")
    print("| network | target: best validation RMSE before | before: s to target | after: s to target "
          "| after: best validation RMSE | after: its total s |")
    print("|---|---|---|---|---|---|")
    step1 = {}
    for step in NETWORKS:
        old, new = history(args.before, step), history(args.after, step)
        if new is None:
            continue
        if old is None:
            old = history(args.before, "one_step") if step == "one_step_paper" else None
        if old is None:
            print(f"| {step} | - | not trained before | - | {min(r['val_rmse'] for r in new):.4f} "
                  f"| {sum(r['seconds'] for r in new):.0f} |")
            continue
        target = min(r["val_rmse"] for r in old)
        offset = {k: step1.get(k, 0.0) if step in STARTS_FROM_STEP_1 else 0.0 for k in ("before", "after")}
        t_old, t_new = seconds_to(old, target), seconds_to(new, target)
        fmt = lambda t, k: "not reached" if t is None else f"{t + offset[k]:.0f}"
        label = step if step != "one_step_paper" else "one_step_paper (target: the kit's one-step before)"
        print(f"| {label} | {target:.4f} | {fmt(t_old, 'before')} | {fmt(t_new, 'after')} "
              f"| {min(r['val_rmse'] for r in new):.4f} | {sum(r['seconds'] for r in new) + offset['after']:.0f} |")
        if step == "kernel_vae":
            step1 = {"before": sum(r["seconds"] for r in old), "after": sum(r["seconds"] for r in new)}
    print("\nseconds include step 1's full training for networks that start from it (alignment, one_step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
