"""The hybrids' decoder precision: float32 against autocast (bf16 on a CPU with native bf16, fp16 on
CUDA), speed and error on validation kernels, and the stated rule that keeps or drops autocast.

    python benchmarks/hybrid_precision.py --run-dir runs/quick-seeds/seed-0 [--profile quick] [--per-kernel 6]

The hybrids spend most of their time in the frozen VAE decoder: every refinement step decodes the
latent and back-propagates through the decoder. Autocast runs those passes in bf16 (where the CPU
has native bf16: ``qpi_utils.train.cpu_has_native_bf16``); the final latent is decoded, and the
physics and least squares are solved, in float32/float64 either way. Measured on fresh observations
of the run's *validation* kernels (``Splits.val_kernels``; never a test set), with the hybrid
settings the run chose on validation, in three conditions: clean, white noise at 20 dB, and all
four corruptions of the realistic test copy (scan-line offsets 0.1, unlabelled defects in a 16 px
band, 0.3 px position errors, 20 dB).

The rule: autocast is kept when, for both hybrids in every condition, its mean RMSE [0, 1] is at
most 1 % above float32's. Per condition it prints images/s and mean RMSE for each, the paired
difference (autocast - float32) with its 95 % interval over kernels, and the speed ratio. The last
line is the verdict; ``qpi_utils.baselines.DECODER_AUTOCAST`` must equal it
(``tests/test_baselines.py`` compares them with the committed output).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from qpi_utils.baselines import DECODER_AUTOCAST, decoder_precision, hybrid
from qpi_utils.config import get_profile
from qpi_utils.methods import NeedsPositions, load_models, predict_dataset
from qpi_utils.metrics import errors
from qpi_utils.sweeps import kernel_interval, ood_observations

from hybrid_variants import run_arguments  # a sibling script: python puts benchmarks/ on the path

CONDITIONS = {"clean": {}, "20 dB": {"snr_db": 20.0},
              "realistic copy": {"line_noise": 0.1, "outside_margin": 16.0, "position_error": 0.3, "snr_db": 20.0}}
TOLERANCE = 0.01  # autocast may cost at most this fraction of float32's mean RMSE


def verdict(rmse_fp32: list[float], rmse_autocast: list[float], tolerance: float = TOLERANCE) -> bool:
    """The rule: True (keep autocast) when every autocast mean RMSE is at most ``tolerance`` above
    the float32 one of the same (hybrid, condition)."""
    if len(rmse_fp32) != len(rmse_autocast) or not rmse_fp32:
        raise ValueError(f"need one float32 and one autocast RMSE per case, got {len(rmse_fp32)} and "
                         f"{len(rmse_autocast)}")
    return all(a <= f * (1 + tolerance) for f, a in zip(rmse_fp32, rmse_autocast))


def main() -> None:
    args = run_arguments(__doc__)
    models = load_models(get_profile(args.profile), args.run_dir, ("hybrid", "hybrid_subpixel"))
    ph = models.hybrid_physics
    dtype = decoder_precision(models.device, True)
    print(f"{len(models.splits.val_kernels)} validation kernels x {args.per_kernel} observations per condition; "
          f"device {models.device}, autocast dtype {dtype or 'none (float32: no native bf16 here)'}; "
          f"hybrid settings chosen on validation: {models.hybrid_settings}")

    def method(name, autocast):
        if name == "hybrid":
            return lambda x: hybrid(models.observation_encoder, models.kernel_vae, x, ph, decoder_autocast=autocast)
        return NeedsPositions(lambda x, p: hybrid(models.observation_encoder, models.kernel_vae, x, ph, positions=p,
                                                  decoder_autocast=autocast))

    print("condition | method | n | float32 images/s | autocast images/s | speed ratio | float32 RMSE [0,1] | "
          "autocast RMSE [0,1] | difference (95 % interval over kernels)")
    fp32, auto = [], []
    for i, (condition, change) in enumerate(CONDITIONS.items()):
        test, pairs, target = ood_observations(models, args.per_kernel, 50_000 + i, kernels=models.splits.val_kernels,
                                               **change)
        for name in ("hybrid", "hybrid_subpixel"):
            rmse, speed = {}, {}
            for autocast in (False, True):
                start = time.perf_counter()
                with torch.no_grad():
                    pred = predict_dataset(method(name, autocast), test, pairs, device=models.device)
                speed[autocast] = len(pairs) / (time.perf_counter() - start)
                rmse[autocast] = errors(pred, target)["rmse"]
            diff = rmse[True] - rmse[False]
            fp32.append(float(rmse[False].mean()))
            auto.append(float(rmse[True].mean()))
            print(f"{condition} | {name} | {len(pairs)} | {speed[False]:.1f} | {speed[True]:.1f} | "
                  f"{speed[True] / speed[False]:.2f}x | {fp32[-1]:.5f} | {auto[-1]:.5f} | "
                  f"{diff.mean():+.5f} ± {kernel_interval(diff, pairs[:, 0]):.5f}", flush=True)
    print(f"rule: keep autocast if its mean RMSE is at most {TOLERANCE:.0%} above float32's everywhere")
    print(f"current DECODER_AUTOCAST: {DECODER_AUTOCAST}")
    print(f"decoder autocast kept: {verdict(fp32, auto)}")


if __name__ == "__main__":
    main()
