"""What a shorter patience would have saved: the stopping rule replayed on recorded validation curves.

    python benchmarks/patience_replay.py [--run-dir runs/quick-seeds] [--patience 1 2 3 4]

Reads each seed's training logs (``<run-dir>/seed-N/logs/{alignment,one_step}.csv``: validation
RMSE and wall seconds per epoch, written by ``qpi seeds``) and replays the kit's rule (keep the
epoch with the lowest validation RMSE, stop after ``patience`` epochs without a lower one) for
each patience: the epoch it would have kept, its validation RMSE, the epochs it would have run and
their recorded seconds, and the ratio of those seconds to the patience the run used (the largest
asked for; the profile's is 4). No training is run: a replay is exact for every patience up to the
one the run used, since the curve up to its stop is the same.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def replay(val: list[float], patience: int) -> tuple[int, int]:
    """(epochs run, kept epoch), both 1-based, under the rule with ``patience`` on the curve ``val``."""
    if patience < 1:
        raise ValueError(f"patience must be >= 1 epoch, got {patience}")
    if not val:
        raise ValueError("an empty validation curve")
    best = 0
    for i in range(1, len(val)):
        if val[i] < val[best]:
            best = i
        elif i - best >= patience:
            return i + 1, best + 1
    return len(val), best + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=Path("runs/quick-seeds"))
    ap.add_argument("--patience", type=int, nargs="+", default=[1, 2, 3, 4])
    args = ap.parse_args()
    if min(args.patience) < 1:
        ap.error(f"--patience: every value must be an integer >= 1 (epochs without improvement), got {args.patience}")
    seeds = sorted(args.run_dir.glob("seed-*/logs"))
    if not seeds:
        raise SystemExit(f"no seed-*/logs under {args.run_dir}: run `qpi seeds` there first")
    ref = max(args.patience)
    print(f"validation curves of {args.run_dir}; ratio: seconds against patience {ref}")
    print(f"{'seed':6s} {'network':10s} {'patience':>8s} {'epochs':>6s} {'kept':>5s} {'val RMSE':>9s} {'seconds':>8s} {'ratio':>6s}")
    for logs in seeds:
        for step in ("alignment", "one_step"):
            path = logs / f"{step}.csv"
            if not path.is_file():
                continue
            with path.open() as f:
                rows = list(csv.DictReader(f))
            missing = {"val_rmse", "seconds"} - set(rows[0] if rows else {})
            if missing:
                raise SystemExit(f"{path}: no epochs, or no column(s) {', '.join(sorted(missing))}: "
                                 "not a training log written by qpi")
            val = [float(r["val_rmse"]) for r in rows]
            secs = [float(r["seconds"]) for r in rows]
            full = sum(secs[:replay(val, ref)[0]])
            for p in args.patience:
                run, kept = replay(val, p)
                t = sum(secs[:run])
                print(f"{logs.parent.name:6s} {step:10s} {p:8d} {run:6d} {kept:5d} {val[kept - 1]:9.5f} {t:8.1f} "
                      f"{t / full:5.2f}x")


if __name__ == "__main__":
    main()
