"""The sub-pixel hybrid's edge check, its thresholds chosen on validation kernels by the stated
rule (:func:`qpi_lab.calibrate.choose_edge_check`).

    python benchmarks/edge_check.py --run-dir runs/quick-seeds/seed-0 [--profile quick] [--per-kernel 2]

The edge check (:class:`qpi_utils.baselines.EdgeCheck`) redoes the sub-pixel hybrid's
least-squares stage on the image's interior where the fit leaves clearly more residual at the
edge than inside: the ripples of unlabelled defects just outside the view. Its two thresholds are
chosen here, not on any test set: on fresh observations of the run's *validation* kernels
(``Splits.val_kernels``: held out from training and from every test set), in six conditions of
equal weight -- clean, white noise at 20 dB, unlabelled defects in a 16 px band outside the view
alone, with 20 dB and with 30 dB, and all four corruptions of the realistic test copy (scan-line
offsets 0.1, that band, 0.3 px position errors, 20 dB) -- so that a check which helps on
realistic data but hurts clean data is not chosen. The rule: the lowest mean RMSE [0, 1] over all of them, ties to the check that
acts least. ``qpi_utils.baselines.EDGE_CHECK`` must equal the choice printed on the last line
(``tests/test_baselines.py`` compares them with the committed output).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from qpi_lab.calibrate import choose_edge_check
from qpi_utils.baselines import EDGE_CHECK, hybrid
from qpi_utils.config import get_profile
from qpi_utils.data import stack_pairs
from qpi_utils.methods import load_models
from qpi_utils.sweeps import ood_observations

from hybrid_variants import run_arguments  # a sibling script: python puts benchmarks/ on the path

LINE, BAND, POS, SNR = {"line_noise": 0.1}, {"outside_margin": 16.0}, {"position_error": 0.3}, {"snr_db": 20.0}
CONDITIONS = {"clean": {}, "20 dB": SNR, "outside band 16 px": BAND, "band and 20 dB": {**BAND, **SNR},
              "band and 30 dB": {**BAND, "snr_db": 30.0}, "all four (realistic copy)": {**LINE, **BAND, **POS, **SNR}}


def validation_observations(models, per_kernel: int, seed: int, **change):
    """Fresh observations of the run's validation kernels with the simulation changed by
    ``change``: ((N, 2, 64, 64) (Y, M), (N, S, 2) labelled positions, (N, 64, 64) true kernels)."""
    ds, pairs, kernels = ood_observations(models, per_kernel, seed, kernels=models.splits.val_kernels, **change)
    positions = np.asarray(ds.positions[pairs[:, 0], pairs[:, 1]], np.float64)
    return stack_pairs(ds, pairs), positions, kernels


def main() -> None:
    args = run_arguments(__doc__)
    prof = get_profile(args.profile)
    models = load_models(prof, args.run_dir, ("hybrid_subpixel",))
    ph = models.hybrid_physics
    latent_only = dataclasses.replace(ph, hybrid_residual=False)
    print(f"{len(models.splits.val_kernels)} validation kernels x {args.per_kernel} observations per condition; "
          f"hybrid settings chosen on validation: {models.hybrid_settings}")
    parts = [validation_observations(models, args.per_kernel, 40_000 + i, **change)
             for i, change in enumerate(CONDITIONS.values())]
    x = torch.cat([p[0] for p in parts]).to(models.device)
    positions = np.concatenate([np.pad(p[1], ((0, 0), (0, max(q[1].shape[1] for q in parts) - p[1].shape[1]), (0, 0)),
                                       constant_values=np.nan) for p in parts])
    kernels = np.concatenate([p[2] for p in parts])
    with torch.no_grad():
        decoded = torch.cat([hybrid(models.observation_encoder, models.kernel_vae, x[i:i + 64], latent_only,
                                    positions=positions[i:i + 64]) for i in range(0, len(x), 64)])
    check, scores = choose_edge_check(x, positions, decoded, kernels, ph)
    print("ratio,noise fraction,max SNR dB | mean RMSE [0,1] over all conditions")
    for key, value in scores.items():
        print(f"{key} | {value:.5f}")
    if check is not None:  # the choice per condition (the same cached fits, one condition at a time)
        print("condition | n | check off | chosen check")
        start = 0
        for name, part in zip(CONDITIONS, parts):
            rows = slice(start, start + len(part[0]))
            start += len(part[0])
            _, per = choose_edge_check(x[rows], positions[rows], decoded[rows], kernels[rows], ph, check.band,
                                       (check.ratio,), (check.noise_fraction,), (check.max_snr_db,))
            on = per[f"{check.ratio:g},{check.noise_fraction:g},{check.max_snr_db:g}"]
            print(f"{name} | {len(part[0])} | {per['off']:.4f} | {on:.4f}")
    print(f"current EDGE_CHECK: {EDGE_CHECK}")
    print(f"chosen: {check}")


if __name__ == "__main__":
    main()
