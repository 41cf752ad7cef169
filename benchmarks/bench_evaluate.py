"""Evaluation throughput: images/s of every method of the table, and ratios to two-step.

    python benchmarks/bench_evaluate.py [--profile quick] [--images 64] [--repeats 3]

Simulates ``--images`` observations with the profile's simulator and runs every method of
:mod:`qpi_utils.methods` on them as evaluation does (batches of 64, CPU, fp32), with networks of
the profile's architecture at random weights (speed does not depend on the weights) and the
least-squares lambda fixed to the middle of its grid. Each method runs once to warm up, then
``--repeats`` times; the fastest run counts (as ``timeit`` does: on a shared machine the slower
runs measure the neighbours). Prints images/s per method and its ratio to two-step, all measured
in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.data import simulate_dataset
from qpi_utils.methods import TrainedModels, predict_dataset
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.runs import RunLayout
from qpi_utils.splits import splits_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per method; the fastest counts")
    args = ap.parse_args()
    prof = get_profile(args.profile, {"model.pretrained": None})
    torch.manual_seed(0)
    sim = dataclasses.replace(prof.simulation, n_kernels=10, n_observations=max(2, -(-args.images // 10)))
    ds = simulate_dataset(sim, progress=False)
    splits = splits_for(sim, ds.symmetry, ds.n_observations)
    vae, info = build_kernel_vae(prof.model)
    enc, _ = build_observation_encoder(prof.model, vae, info)
    one, _ = build_one_step(prof.model)
    grid = prof.physics.ls_lambda_grid
    models = TrainedModels(prof, ds, splits, vae.eval(), enc.eval(), one.eval(),
                           {"kernel_vae": info, "observation_encoder": info, "one_step": info}, "cpu",
                           float(grid[len(grid) // 2]), {}, RunLayout.for_profile(prof, "/tmp/unused", context="cli"),
                           ls_subpixel_lambda=float(grid[len(grid) // 2]),
                           one_step_paper=build_one_step(prof.model)[0].eval())  # the same network: timing only
    pairs = np.array([(k, o) for k in range(ds.n_kernels) for o in range(ds.n_observations)])[:args.images]
    rates = {}
    for name, (fn, _) in models.methods().items():
        predict_dataset(fn, ds, pairs[:2], progress=False)  # warm-up
        best = float("inf")
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            predict_dataset(fn, ds, pairs, progress=False)
            best = min(best, time.perf_counter() - t0)
        rates[name] = len(pairs) / best
    print(f"profile {args.profile}: {len(pairs)} images, fastest of {max(1, args.repeats)} runs, "
          f"torch threads {torch.get_num_threads()}, "
          f"least squares {prof.physics.ls_iterations} iterations, hybrid {prof.physics.hybrid_steps} steps")
    print(f"{'method':24s} {'images/s':>10s}   vs two_step")
    for name, r in rates.items():
        print(f"{name:24s} {r:10.1f}   {r / rates['two_step']:8.3g}x")


if __name__ == "__main__":
    main()
