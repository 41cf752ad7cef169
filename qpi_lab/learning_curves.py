"""When does latent alignment beat one-step? Learning curves over the training set's size (issue 29).

``qpi learning-curves --profile quick --seeds 0 1 2 --base-run-dir runs/quick-seeds`` trains
two-step and the paper's one-step baseline on less of each seed's data, along two axes:

* ``kernels``: a fraction of the training kernels (stratified by symmetry; the paper's kernels,
  step 1's, and the training-only ones of ``simulation.extra_train_kernels`` each cut by it), with
  all their training observations;
* ``observations``: every training kernel, with a fraction of its training observations.

Everything else is the profile's: the same schedules, learning rates and validation split, the
same test sets (the ID test keeps only the kept kernels' observations:
:func:`qpi_utils.splits.subsample_training`). The full size (fraction 1) is the seeds run itself,
whose networks are reused. Per point: each method's RMSE over seeds (mean and 95 % interval) and
the paired difference two-step minus one-step (kernels as units), on the ID and OOD test sets.
Writes ``results/<profile>/learning_curves.csv`` and ``learning_curves_paired.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qpi_utils.config import get_profile
from qpi_utils.metrics import paired_difference

from .seeds import _interval, per_sample_rows, run_table, seed_overrides

AXES = {"kernels": "simulation.train_kernel_fraction", "observations": "simulation.train_observation_fraction"}
FRACTIONS = (0.25, 0.5, 1.0)
METHODS = ("two_step", "one_step_paper")


def point_dir(root: Path, axis: str, fraction: float, seed: int) -> Path:
    return Path(root) / axis / f"{fraction:g}" / f"seed-{seed}"


def run_learning_curves(profile_name: str, seeds, root: str | Path, base_root: str | Path,
                        overrides: dict | None = None, progress: bool = True) -> tuple[list[dict], list[dict]]:
    """(rows, paired rows): per axis, fraction, setting and method the RMSE over ``seeds``; per
    axis, fraction and setting the paired difference two-step minus one-step."""
    rows, paired = [], []
    for axis, key in AXES.items():
        for fraction in FRACTIONS:
            samples, sizes = [], {}
            for seed in seeds:
                base = Path(base_root) / f"seed-{seed}"
                profile = get_profile(profile_name, {**(overrides or {}), **seed_overrides(seed), key: fraction})
                run = base if fraction >= 1 else point_dir(Path(root), axis, fraction, seed)
                run_table(profile, run, methods=METHODS, base_dir=None if fraction >= 1 else base, progress=progress)
                samples += [r for r in per_sample_rows(run / "results", seed) if r["method"] in METHODS]
                sizes[seed] = _sizes(profile, run)
            for setting in ("ID", "OOD"):
                for method in METHODS:
                    per_seed = np.array([np.mean([float(r["rmse"]) for r in samples if r["seed"] == s
                                                  and r["setting"] == setting and r["method"] == method])
                                         for s in seeds])
                    mean, _, ci = _interval(per_seed)
                    rows.append({"axis": axis, "fraction": fraction, "setting": setting, "method": method,
                                 "seeds": len(seeds), "train_kernels": sizes[seeds[0]][0],
                                 "step1_kernels": sizes[seeds[0]][1], "train_observations": sizes[seeds[0]][2],
                                 "rmse_mean": mean, "rmse_ci95": ci})
                of = lambda m: [r for r in samples if r["setting"] == setting and r["method"] == m]
                d = paired_difference(of("two_step"), of("one_step_paper"))
                paired.append({"axis": axis, "fraction": fraction, "setting": setting,
                               "two_step_minus_one_step_paper": d["difference"], "ci_low": d["ci_low"],
                               "ci_high": d["ci_high"], "kernels": d["kernels"], "verdict": d["verdict"]})
    return rows, paired


def _sizes(profile, run: Path) -> tuple[int, int, int]:
    """(training kernels, those of them step 1 trains on, training observations) the point trained
    on: the training-only kernels (``simulation.extra_train_kernels``) feed only the networks that
    read observations."""
    from qpi_utils.checkpoints import load_data
    _, splits = load_data(profile, run)
    step1 = int((splits.train_kernels < profile.simulation.n_kernels).sum())
    return len(splits.train_kernels), step1, len(splits.train)
