"""The rule that chooses each network's learning rate, on validation only (issue 29).

Every trained network of a profile gets the same procedure, so no method is tuned harder than
another:

1. Step 1 (``kernel_vae``) is cheap: each learning rate of :data:`GRID` trains the profile's full
   schedule; the lowest best validation RMSE (validation kernels, on [0, 1]) wins.
2. Step 2 and both one-step baselines start from that step-1 VAE (step 2, the kit's one-step) or
   from the model section's weights (the paper's one-step). Each learning rate of the grid trains
   a short one-cycle schedule of :data:`TRIAL_EPOCHS` epochs on the same data; the lowest best
   validation RMSE (validation observations, on [0, 1]) wins.
3. Ties (within :data:`TIE`, relative) go to the smaller rate, the safer one on another machine.

Each trial is a run variant of the given run (``variants/lr-<step>-<rate>``), reading its dataset
in place. ``qpi learning-rates --profile P`` writes ``results/<P>/learning_rates.json``; the
profile then names the chosen rates, and a test keeps the two equal.
"""

from __future__ import annotations

import shutil
import time

from qpi_utils.config import TRAIN_SECTIONS, Profile, get_profile
from qpi_utils.runs import RunLayout
from qpi_utils.train import TRAINERS

GRID = {"kernel_vae": (1e-4, 3e-4, 1e-3), "alignment": (1e-3, 3e-3), "one_step": (1e-3, 3e-3),
        "one_step_paper": (1e-3, 3e-3)}
TRIAL_EPOCHS = 4  # one-cycle epochs of a step-2 / one-step trial (step 1 trains its full schedule)
TIE = 0.01
RULE = ("per network, each learning rate of the grid trains on the run's training split (step 1: the "
        "profile's schedule; step 2 and both one-step baselines: one-cycle over %d epochs, from the chosen "
        "step-1 VAE where they start from it); the lowest best validation RMSE on [0,1] wins, ties within "
        "%g %% go to the smaller rate" % (TRIAL_EPOCHS, TIE * 100))


def _choose(scores: dict[float, float]) -> float:
    best = min(scores.values())
    return min(lr for lr, v in scores.items() if v <= best * (1 + TIE))


def choose_learning_rates(profile: Profile, layout: RunLayout, steps=tuple(GRID), progress: bool = True,
                          overrides: dict | None = None) -> dict:
    """Run the rule for ``steps`` on ``layout``'s dataset; returns, per step, the grid, the trials'
    best validation RMSEs and seconds, and the chosen rate."""
    overrides = dict(overrides or {})
    out: dict = {"rule": RULE, "trial_epochs": TRIAL_EPOCHS, "steps": {}}
    kernel_vae_lr = profile.kernel_vae.lr
    for step in steps:
        section = TRAIN_SECTIONS[step]
        scores, seconds = {}, {}
        for lr in GRID[step]:
            ov = {**overrides, f"{section}.lr": lr, "kernel_vae.lr": kernel_vae_lr}
            if step == "kernel_vae":
                ov["kernel_vae.lr"] = lr
            else:
                ov[f"{section}.epochs"] = TRIAL_EPOCHS
                ov[f"{section}.schedule"] = "onecycle"
                ov[f"{section}.patience"] = None
            trial = get_profile(profile.name, ov)
            variant = layout.variant(f"lr-{step}-{lr:g}")
            if step != "kernel_vae":  # the chosen step-1 VAE, trained once, is every later trial's start
                source = layout.variant(f"lr-kernel_vae-{kernel_vae_lr:g}").model("kernel_vae")
                target = variant.model("kernel_vae")
                if source.is_file() and not target.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
            t0 = time.perf_counter()
            summary = TRAINERS[step](trial, variant, progress=progress)
            scores[lr] = float(summary["best_val_rmse"])
            seconds[lr] = round(time.perf_counter() - t0, 1)
            print(f"learning rate {step} {lr:g}: best validation RMSE {scores[lr]:.4f} "
                  f"(epoch {summary['best_epoch']}, {seconds[lr]:.0f} s)", flush=True)
        chosen = _choose(scores)
        if step == "kernel_vae":
            kernel_vae_lr = chosen
        out["steps"][step] = {"grid": list(GRID[step]), "best_val_rmse": {f"{k:g}": v for k, v in scores.items()},
                              "seconds": {f"{k:g}": v for k, v in seconds.items()}, "chosen": chosen,
                              "epochs": profile.kernel_vae.epochs if step == "kernel_vae" else TRIAL_EPOCHS}
        print(f"learning rate {step}: {chosen:g}", flush=True)
    return out
