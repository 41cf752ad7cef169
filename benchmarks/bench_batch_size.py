"""Training throughput against batch size, for the two networks that take most of a seed's time.

    python benchmarks/bench_batch_size.py [--profile quick] [--sizes 16 32 64 128] [--batches 6]

Step 2's observation encoder and the one-step baseline, at the profile's model, under the
precision training picks (``mixed_precision: auto``: bf16 autocast on a CPU with native bf16), with
the kit's losses on random tensors: samples/s of forward + backward + Adam step at each batch size
(timed as ``bench_train.py`` times them),
and the ratio to the profile's own batch size, all measured in this run. A larger batch that trains
more samples per second is only a candidate: fewer optimiser steps per epoch may need more epochs
(or a larger learning rate) to reach the same validation error, which only training shows.
"""

from __future__ import annotations

import argparse

import torch

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.losses import alignment_loss
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.train import one_step_loss, resolve_mixed_precision

from bench_train import rate, update  # a sibling script: python puts benchmarks/ on the path


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
            mean, logvar = encoder(obs)
            update(opt, alignment_loss(mean.float(), logvar.float(), target, target))
        return step

    def one_step_step(b):
        batch = {"observation": torch.rand(b, 2, 64, 64), "kernel": torch.rand(b, 1, 64, 64)}
        opt = torch.optim.Adam(one.parameters(), prof.one_step.lr)

        def step():
            update(opt, loss3(one, batch)[0])
        return step

    bf16 = lambda tcfg: resolve_mixed_precision(tcfg.mixed_precision) == "bf16"
    print(f"profile {args.profile}: torch threads {torch.get_num_threads()}, bf16 autocast "
          f"{bf16(prof.one_step)}, {args.batches} batches per size (samples/s; ratio to the profile's batch size)")
    for name, make, tcfg in (("step 2 observation encoder", alignment_step, prof.alignment),
                             ("one-step", one_step_step, prof.one_step)):
        own = tcfg.batch_size
        rates = {b: rate(make(b), b, args.batches, bf16(tcfg)) for b in sorted(set(args.sizes) | {own})}
        print(f"{name} (profile batch {own}):")
        for b, r in rates.items():
            print(f"  batch {b:4d} {r:8.1f}   {r / rates[own]:.2f}x")


if __name__ == "__main__":
    main()
