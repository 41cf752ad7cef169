"""Least squares over a lambda grid: one multi-shift CG path against one CG solve per lambda.

    python benchmarks/bench_least_squares.py [--profile quick] [--images 64]

Simulates ``--images`` observations with the profile's simulator (the 20 % OOD kernels are not
needed for speed: any kernels do) and solves least squares for every lambda of the profile's grid
(``physics.ls_lambda_grid``) with ``physics.ls_iterations`` CG iterations, binned to M's pixels and
at the labelled sub-pixel positions, two ways, in this run:

* reference: :func:`qpi_utils.baselines.least_squares` once per lambda (K solves: what
  ``choose_regularisation`` and ``least_squares_discrepancy`` did before the path solver);
* measured: :func:`qpi_utils.baselines.least_squares_path`, every lambda from one sequence of
  operator applications.

Prints images/s (all lambdas of one image), the ratio, and the largest difference between the two
kernels (on [0, 1]) over every image and lambda: the speed costs no accuracy.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from qpi_utils.baselines import least_squares, least_squares_path
from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.data import simulate_dataset
from qpi_utils.provenance import git_commit


def _timed(fn, repeats: int = 2):
    """(result, best wall time of ``repeats`` runs in s)."""
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--images", type=int, default=64)
    args = ap.parse_args()
    prof = get_profile(args.profile)
    sim = dataclasses.replace(prof.simulation, n_kernels=10, n_observations=max(2, -(-args.images // 10)))
    ds = simulate_dataset(sim, progress=False)
    pairs = [(k, o) for k in range(ds.n_kernels) for o in range(ds.n_observations)][:args.images]
    y = np.stack([ds.observations[k, o] for k, o in pairs]).astype(np.float64)
    m = np.stack([ds.activation_maps[k, o] for k, o in pairs]).astype(np.float64)
    pos = np.stack([ds.positions[k, o] for k, o in pairs])
    grid, iters = tuple(prof.physics.ls_lambda_grid), prof.physics.ls_iterations
    print(f"profile {args.profile}: {len(pairs)} images, {len(grid)} lambdas {grid}, {iters} CG iterations, "
          f"torch threads {torch.get_num_threads()}, commit {git_commit()}")
    print(f"{'operator':22s} {'per-lambda CG':>14s} {'one path':>10s} {'ratio':>7s} {'max |diff|':>11s}  (images/s)")
    for label, positions in (("binned (M)", None), ("sub-pixel positions", pos)):
        ref, t_ref = _timed(lambda: np.stack([least_squares(y, m, lam=lam, iterations=iters, positions=positions)
                                              for lam in grid], 1))
        path, t_path = _timed(lambda: least_squares_path(y, m, grid=grid, iterations=iters, positions=positions))
        diff = float(np.abs(ref - path).max())
        print(f"{label:22s} {len(y) / t_ref:14.1f} {len(y) / t_path:10.1f} {t_ref / t_path:6.2f}x {diff:11.2e}")


if __name__ == "__main__":
    main()
