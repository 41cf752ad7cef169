"""The sub-pixel hybrid's design choices, one at a time, against the sub-pixel least squares it
builds on: the latent refinement alone, plus the prior-centred least squares, plus the position
refinement; on fresh observations of the OOD kernels (as the robustness sweeps make them) under
one condition each: clean, 10 dB noise, 1 px position error, unlabelled defects in a 16 px band,
and 0.5 px error with 20 dB noise together.

    python benchmarks/hybrid_variants.py --run-dir runs/quick-seeds/seed-0 [--profile quick] [--per-kernel 3]

Prints RMSE [0, 1] (mean over observations, 95 % interval with kernels as the units) and seconds
per image. The hybrid's latent settings are the ones chosen on validation. One seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from qpi_utils.baselines import hybrid
from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.methods import NeedsPositions, load_models, predict_dataset
from qpi_utils.metrics import errors
from qpi_utils.sweeps import kernel_interval, ood_observations

CONDITIONS = {"clean": {}, "10 dB": {"snr_db": 10.0}, "position error 1 px": {"position_error": 1.0},
              "outside band 16 px": {"outside_margin": 16.0},
              "0.5 px and 20 dB": {"position_error": 0.5, "snr_db": 20.0}}


def run_arguments(doc: str) -> argparse.Namespace:
    """--profile, --run-dir (a trained run) and --per-kernel, shared by the hybrid benchmarks."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--per-kernel", type=int, default=3, help="observations per OOD kernel and condition")
    return ap.parse_args()


def main() -> None:
    args = run_arguments(__doc__)
    prof = get_profile(args.profile)
    models = load_models(prof, args.run_dir, ("least_squares_subpixel", "least_squares_auto", "hybrid",
                                              "hybrid_subpixel"))
    ph = models.hybrid_physics
    print(f"hybrid settings chosen on validation: {models.hybrid_settings}")

    def sub(**change):
        cfg = dataclasses.replace(ph, **change)
        return NeedsPositions(lambda x, p: hybrid(models.observation_encoder, models.kernel_vae, x, cfg, positions=p))

    methods = {**{k: v for k, (v, _) in models.methods().items()},
               "hybrid_subpixel, latent only": sub(hybrid_residual=False),
               # the profile's own position step (0 in quick: off) against the 0.05 px/step it had before
               "hybrid_subpixel, position refinement 0.05 px/step": sub(hybrid_position_lr=0.05)}
    print("condition | method | n | RMSE [0,1] | 95 % interval | s / image")
    for i, (name, change) in enumerate(CONDITIONS.items()):
        test, pairs, target = ood_observations(models, args.per_kernel, 20_000 + i, **change)
        for method, fn in methods.items():
            t0 = time.perf_counter()
            pred = predict_dataset(fn, test, pairs, device=models.device)
            seconds = (time.perf_counter() - t0) / len(pairs)
            rmse = errors(pred, target)["rmse"]
            print(f"{name} | {method} | {len(pairs)} | {rmse.mean():.4f} | ± {kernel_interval(rmse, pairs[:, 0]):.4f} | "
                  f"{seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()
