"""Least squares binned, at sub-pixel positions, and with lambda chosen per observation without
ground truth (discrepancy principle), on a trained run's ID/OOD test sets, clean and noisy.

    python benchmarks/least_squares_variants.py --run-dir runs/quick-seeds/seed-0 [--profile quick]

Writes the usual evaluation files under ``<out>/clean`` and ``<out>/snr<dB>`` and prints
RMSE, affine-invariant RMSE and seconds per image per method. One run: no interval.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_lab.evaluate import evaluate
from qpi_utils.methods import load_models

METHODS = ("least_squares", "least_squares_subpixel", "least_squares_auto")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--out", default="results/benchmarks/least_squares_variants")
    ap.add_argument("--snr-db", type=float, nargs="*", default=[10.0])
    args = ap.parse_args()
    prof = get_profile(args.profile)
    models = load_models(prof, args.run_dir, METHODS)
    print(f"lambda chosen on validation: binned {models.ls_lambda}, sub-pixel {models.ls_subpixel_lambda}")
    print("test noise | setting | method | n | RMSE [0,1] | affine-inv. RMSE | s / image")
    for snr in (None, *args.snr_db):
        out = Path(args.out) / ("clean" if snr is None else f"snr{snr:g}")
        for r in evaluate(prof, args.run_dir, out, progress=False, models=models, methods=METHODS, noise_snr_db=snr):
            print(f"{'clean' if snr is None else f'{snr:g} dB'} | {r['setting']} | {r['method']} | {r['n']} | "
                  f"{r['rmse']:.4f} | {r['rmse_affine']:.4f} | {r['seconds_per_image']:.3f}")


if __name__ == "__main__":
    main()
