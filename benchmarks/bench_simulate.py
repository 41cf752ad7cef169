"""Simulator throughput against a plain per-scatterer loop, measured in the same run.

    python benchmarks/bench_simulate.py [--kernels 100 --observations 500]

Prints observations/s of ``simulate_dataset`` (vectorised, band-limited, sub-pixel exact) at
the requested size, observations/s of :func:`qpi_utils.simulate.observation_direct` (a Python
loop over scatterers evaluating the analytic field pixel by pixel) on a sample of the same
observations, and their ratio. Defaults: the paper-size set (100 kernels x 500 observations).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from qpi_utils.config import get_profile
from qpi_utils.data import simulate_dataset
from qpi_utils.simulate import KernelParams, observation_direct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", type=int, default=100)
    ap.add_argument("--observations", type=int, default=500)
    ap.add_argument("--loop-observations", type=int, default=20, help="observations timed with the loop")
    args = ap.parse_args()

    cfg = dataclasses.replace(get_profile("paper").simulation, n_kernels=args.kernels,
                              n_observations=args.observations)
    t0 = time.perf_counter()
    ds = simulate_dataset(cfg, progress=False)
    fast_s = time.perf_counter() - t0
    n_fast = args.kernels * args.observations
    fast_rate = n_fast / fast_s

    # The loop reference renders a sample of the same observations (same scatterer counts).
    rng = np.random.default_rng(0)
    picks = rng.integers(0, [args.kernels, args.observations], size=(args.loop_observations, 2))
    t0 = time.perf_counter()
    for k, o in picks:
        p = ds.params(int(k))
        params = KernelParams(**{**p, "symmetry": int(p["symmetry"])})
        pos = np.asarray(ds.positions[k, o], dtype=np.float64)
        observation_direct(params, pos[np.isfinite(pos[:, 0])], supersample=cfg.supersample)
    loop_rate = args.loop_observations / (time.perf_counter() - t0)

    print(f"dataset: {args.kernels} kernels x {args.observations} observations, "
          f"{cfg.min_scatterers}-{cfg.max_scatterers} scatterers each")
    print(f"vectorised simulate_dataset : {fast_rate:10.1f} observations/s  ({fast_s:.1f} s in all)")
    print(f"per-scatterer loop (direct) : {loop_rate:10.1f} observations/s  ({args.loop_observations} timed)")
    print(f"ratio vectorised / loop     : {fast_rate / loop_rate:10.1f}x")


if __name__ == "__main__":
    main()
