"""Why the sub-pixel hybrid fails on realistic observations: each corruption of the realistic
test copy alone, then together, with what the hybrid's acceptance rule did.

    python benchmarks/hybrid_realistic.py --run-dir runs/quick-seeds/seed-0 [--profile quick] [--per-kernel 3]

The realistic copy of the test sets (``qpi ablation realistic_training``) re-renders observations
with scan-line offsets (0.1 of the signal std), unlabelled defects in a 16 px band outside the
view, 0.3 px errors in the labelled positions, and white noise (20 dB there). On it the sub-pixel
hybrid scores worse than two-step. Here fresh observations of the run's OOD kernels (as the
robustness sweeps make them) carry one corruption at a time, then pairs, then all four.

The sub-pixel hybrid has two stages (:func:`qpi_utils.baselines.hybrid`): the latent refinement
gives a decoded kernel; a least-squares fit centred on it, lambda by the discrepancy principle,
replaces it where some lambda brings the residual down to the estimated noise level ("bound met");
elsewhere the decoded kernel is kept. For each condition this prints RMSE [0, 1] (mean over
observations, 95 % interval with kernels as units) of two-step, least squares with lambda by the
rule, the binned hybrid and the sub-pixel hybrid; then the fraction of observations where the
bound was met, and on those the RMSE of the fit the rule accepted against that of the decoded
kernel it replaced: when the accepted fit is worse, the rule accepted a wrong model. (The bound was
met where the sub-pixel hybrid's kernel differs from its latent stage's decoded kernel: with the
position refinement off, as in ``quick``, an observation that fails the bound gets that kernel.)
One seed; the hybrid's latent settings are the ones chosen on validation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from qpi_utils.baselines import hybrid
from qpi_utils.config import get_profile
from qpi_utils.methods import NeedsPositions, load_models, predict_dataset
from qpi_utils.metrics import errors
from qpi_utils.sweeps import kernel_interval, ood_observations

from hybrid_variants import run_arguments  # a sibling script: python puts benchmarks/ on the path

LINE, BAND, POS, SNR = {"line_noise": 0.1}, {"outside_margin": 16.0}, {"position_error": 0.3}, {"snr_db": 20.0}
CONDITIONS = {"clean": {}, "20 dB": SNR, "line offsets 0.1": LINE, "outside band 16 px": BAND,
              "position error 0.3 px": POS, "0.3 px and 20 dB": {**POS, **SNR},
              "line offsets and 20 dB": {**LINE, **SNR},
              "band and 20 dB": {**BAND, **SNR}, "all four (realistic copy)": {**LINE, **BAND, **POS, **SNR}}


def main() -> None:
    args = run_arguments(__doc__)
    prof = get_profile(args.profile)
    models = load_models(prof, args.run_dir, ("two_step", "least_squares_auto", "hybrid", "hybrid_subpixel"))
    ph = models.hybrid_physics
    latent_only = dataclasses.replace(ph, hybrid_residual=False)
    if ph.hybrid_position_lr > 0:  # then a failed bound is refined again, not answered with the decoded kernel
        raise SystemExit(f"profile {args.profile}: physics.hybrid_position_lr is {ph.hybrid_position_lr}; this "
                         "benchmark reads the acceptance rule off the output and needs it 0 (as in quick)")
    print(f"hybrid settings chosen on validation: {models.hybrid_settings}; position refinement "
          f"{ph.hybrid_position_lr} px/step")
    print("condition | method | n | RMSE [0,1] | 95 % interval")
    summary = []
    for i, (name, change) in enumerate(CONDITIONS.items()):
        test, pairs, target = ood_observations(models, args.per_kernel, 30_000 + i, **change)
        preds = {}
        methods = {k: v for k, (v, _) in models.methods().items()}
        methods["hybrid_subpixel, edge check off"] = NeedsPositions(  # without baselines.EDGE_CHECK
            lambda x, p: hybrid(models.observation_encoder, models.kernel_vae, x, ph, positions=p, edge_check=None))
        for method, fn in methods.items():
            preds[method] = predict_dataset(fn, test, pairs, device=models.device)
            rmse = errors(preds[method], target)["rmse"]
            print(f"{name} | {method} | {len(pairs)} | {rmse.mean():.4f} | ± {kernel_interval(rmse, pairs[:, 0]):.4f}",
                  flush=True)
        # the sub-pixel hybrid's two stages, kept apart: where its kernel is not the decoded kernel
        # of its latent stage, the rule accepted the least-squares fit (the bound was met)
        decoded = predict_dataset(NeedsPositions(lambda x, p: hybrid(models.observation_encoder, models.kernel_vae, x,
                                                                     latent_only, positions=p)),
                                  test, pairs, device=models.device)
        fitted = preds["hybrid_subpixel"]
        met = np.abs(fitted - decoded).reshape(len(pairs), -1).max(1) > 1e-6
        r_dec, r_fit = errors(decoded, target)["rmse"], errors(fitted, target)["rmse"]
        line = (f"{name}: bound met for {met.mean():.0%} of {len(met)}; there, the accepted fit "
                f"{r_fit[met].mean():.4f} vs the decoded kernel it replaced {r_dec[met].mean():.4f}"
                if met.any() else f"{name}: bound met for none of {len(met)}")
        summary.append(line)
        print(line, flush=True)
    print("\nacceptance rule of the sub-pixel hybrid, per condition:")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
