"""Training throughput against batch size, for the two networks that take most of a seed's time.

    python benchmarks/bench_batch_size.py [--profile quick] [--sizes 16 32 64 128] [--batches 6]

Step 2's observation encoder and the one-step baseline, at the profile's model, under the
precision training picks (``mixed_precision: auto``: bf16 autocast on a CPU with native bf16), with
the kit's losses on random tensors: samples/s of forward + backward + Adam step at each batch size,
and the ratio to the profile's own batch size, all measured in this run. A larger batch that trains
more samples per second is only a candidate: fewer optimiser steps per epoch may need more epochs
(or a larger learning rate) to reach the same validation error, which only training shows.
"""

from __future__ import annotations

import argparse
import time

import torch

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.losses import alignment_loss
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.train import one_step_loss, resolve_mixed_precision


def _rate(step, batch: int, batches: int) -> float:
    step()  # warm-up (oneDNN picks its kernels for this shape)
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    return batch * batches / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--batches", type=int, default=6)
    args = ap.parse_args()
    prof = get_profile(args.profile, {"model.pretrained": None})
    torch.manual_seed(0)
    vae, info = build_kernel_vae(prof.model)
    vae.requires_grad_(False)
    encoder, _ = build_observation_encoder(prof.model, vae, info)
    one, _ = build_one_step(prof.model)
    loss3 = one_step_loss(prof.one_step)

    def alignment_step(b):
        obs, target = torch.rand(b, 2, 64, 64) * 2 - 1, torch.randn(b, 4, 8, 8)
        opt = torch.optim.Adam(encoder.parameters(), prof.alignment.lr)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16(prof.alignment)):
                mean, logvar = encoder(obs)
            loss = alignment_loss(mean.float(), logvar.float(), target, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    def one_step_step(b):
        batch = {"observation": torch.rand(b, 2, 64, 64), "kernel": torch.rand(b, 1, 64, 64)}
        opt = torch.optim.Adam(one.parameters(), prof.one_step.lr)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16(prof.one_step)):
                loss = loss3(one, batch)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
        return step

    bf16 = lambda tcfg: resolve_mixed_precision(tcfg.mixed_precision) == "bf16"
    print(f"profile {args.profile}: torch threads {torch.get_num_threads()}, bf16 autocast "
          f"{bf16(prof.one_step)}, {args.batches} batches per size (samples/s; ratio to the profile's batch size)")
    for name, make, own in (("step 2 observation encoder", alignment_step, prof.alignment.batch_size),
                            ("one-step", one_step_step, prof.one_step.batch_size)):
        rates = {b: _rate(make(b), b, args.batches) for b in sorted(set(args.sizes) | {own})}
        print(f"{name} (profile batch {own}):")
        for b, r in rates.items():
            print(f"  batch {b:4d} {r:8.1f}   {r / rates[own]:.2f}x")


if __name__ == "__main__":
    main()
