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

A second table times the solver against the numpy one it replaced (``qpi_utils/baselines.py`` at
``--reference-commit``, read from git and run in this process): least squares at the chosen
lambda and with lambda by the discrepancy rule, binned and sub-pixel, both in float64. Their
kernels differ by CG's own rounding sensitivity; the last column measures that sensitivity as
the reference's change when Y is scaled by 1 + 1e-14.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from qpi_utils import baselines
from qpi_utils.baselines import least_squares, least_squares_path
from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.data import simulate_dataset
from qpi_lab.provenance import git_commit


def _timed(fn, repeats: int = 2):
    """(result, best wall time of ``repeats`` runs in s)."""
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


ROOT = Path(__file__).resolve().parents[1]
# the last commit whose least-squares iterations ran in numpy (scipy FFTs, one-core updates)
REFERENCE_COMMIT = "ac32653"


def reference_baselines(commit: str):
    """``qpi_utils/baselines.py`` as it was at ``commit``, as a module of this checkout's
    ``qpi_utils`` (its imports resolve to today's modules); None, with the reason printed, when git
    cannot show it (a shallow clone, no git)."""
    try:
        out = subprocess.run(["git", "show", f"{commit}:qpi_utils/baselines.py"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    except OSError as exc:
        print(f"reference solver not measured: {exc}")
        return None
    if out.returncode != 0:
        print(f"reference solver not measured: git cannot show qpi_utils/baselines.py at {commit}: "
              f"{out.stderr.strip()}")
        return None
    module = types.ModuleType("qpi_utils._baselines_reference")
    module.__package__ = "qpi_utils"
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(out.stdout, f"{commit}:qpi_utils/baselines.py", "exec"), module.__dict__)
    return module


def compare_backends(ref, y, m, pos, lam, grid, iters) -> None:
    """Images/s of the reference module's and today's solver, the ratio, their largest kernel
    difference and the reference's own change under a 1e-14 relative change of Y."""
    print(f"{'solver':42s} {'reference':>10s} {'today':>8s} {'ratio':>7s} {'max |diff|':>11s} "
          f"{'ref. sensitivity':>17s}  (images/s)")
    for label, positions in (("binned (M)", None), ("sub-pixel positions", pos)):
        cases = ((f"least squares, lambda {lam:g}", lambda mod, yy: mod.least_squares(
                     yy, m, lam=lam, iterations=iters, positions=positions)),
                 ("least squares, discrepancy rule", lambda mod, yy: mod.least_squares_discrepancy(
                     yy, m, grid=grid, iterations=iters, positions=positions)[0]))
        for name, fn in cases:
            old, t_old = _timed(lambda: fn(ref, y))
            new, t_new = _timed(lambda: fn(baselines, y))
            drift = float(np.abs(fn(ref, y * (1 + 1e-14)) - old).max())
            print(f"{name + ', ' + label.split(' ')[0]:42s} {len(y) / t_old:10.1f} {len(y) / t_new:8.1f} "
                  f"{t_old / t_new:6.2f}x {float(np.abs(old - new).max()):11.2e} {drift:17.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--reference-commit", default=REFERENCE_COMMIT,
                    help="the commit whose qpi_utils/baselines.py is the reference solver (default: %(default)s)")
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
    print()
    print(f"the solver against the numpy solver of {args.reference_commit} (float64 both):")
    ref = reference_baselines(args.reference_commit)
    if ref is not None:
        lam = grid[len(grid) // 2]
        compare_backends(ref, y, m, pos, lam, grid, iters)


if __name__ == "__main__":
    main()
