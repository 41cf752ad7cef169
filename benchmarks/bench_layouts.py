"""What did not make training faster on this CPU: channels_last memory layout, with and
without bf16, against the plain fp32 reference, measured in the same run.

    python benchmarks/bench_layouts.py [--profile quick] [--batches 6]

One-step baseline training steps (forward + backward + Adam) at the profile's batch size, in
samples/s, for: fp32 (reference), fp32 + channels_last, bf16 autocast, bf16 + channels_last.
(torch.compile was also tried: on this 2-core CPU it compiled for minutes and then ran slower;
it is not timed here.)
"""

from __future__ import annotations

import argparse

import torch
from bench_train import rate, update  # this folder: run as `python benchmarks/bench_layouts.py`

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.models import build_one_step
from qpi_utils.train import one_step_loss


def measure(prof, bf16: bool, channels_last: bool, batches: int) -> float:
    torch.manual_seed(0)
    model, _ = build_one_step(prof.model)
    b = prof.one_step.batch_size
    batch = {"observation": torch.rand(b, 2, 64, 64), "kernel": torch.rand(b, 1, 64, 64)}
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    loss_fn = one_step_loss(prof.one_step)
    return rate(lambda: update(opt, loss_fn(model, batch)[0]), b, batches, bf16)  # timed as bench_train times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--batches", type=int, default=6)
    args = ap.parse_args()
    prof = get_profile(args.profile, {"model.pretrained": None})
    ref = measure(prof, False, False, args.batches)
    print(f"one-step training, profile {args.profile}, batch {prof.one_step.batch_size}, torch threads "
          f"{torch.get_num_threads()} (samples/s; ratio to fp32)")
    print(f"{'fp32 (reference)':28s} {ref:8.1f}   1.00x")
    for name, bf16, cl in (("fp32 + channels_last", False, True), ("bf16", True, False),
                           ("bf16 + channels_last", True, True)):
        r = measure(prof, bf16, cl, args.batches)
        print(f"{name:28s} {r:8.1f}   {r / ref:.2f}x")


if __name__ == "__main__":
    main()
