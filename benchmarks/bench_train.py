"""Training throughput (samples/s, forward + backward + Adam step) of each network, fp32 vs bf16.

    python benchmarks/bench_train.py [--profile quick] [--batches 6]

For step 1 (kernel VAE with symmetric loss), step 2 (observation encoder only, as the kit trains
it) and the one-step baseline, at the profile's model and batch sizes, prints samples/s in fp32
and under bf16 autocast (what ``mixed_precision: auto`` picks on a CPU with native bf16,
:func:`qpi_utils.train.cpu_has_native_bf16`) and their ratio, all measured in this run. Also a
reference for step 2: the naive version that runs the frozen decoder too (ratio = what not
running it saves). The kit's training losses are used as they are.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.losses import alignment_loss
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.train import cpu_has_native_bf16, kernel_vae_loss, one_step_loss


def update(optimizer, loss) -> None:
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def rate(fn, batch: int, batches: int, bf16: bool) -> float:
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    with ctx():
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(batches):
            fn()
    return batch * batches / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILE_NAMES)
    ap.add_argument("--batches", type=int, default=6)
    args = ap.parse_args()
    prof = get_profile(args.profile, {"model.pretrained": None})
    torch.manual_seed(0)

    vae, info = build_kernel_vae(prof.model)
    b1 = prof.kernel_vae.batch_size
    batch1 = {"kernel": torch.rand(b1, 1, 64, 64), "symmetry": torch.tensor([0, 2, 3, 4, 6] * (b1 // 5 + 1))[:b1]}
    loss1 = kernel_vae_loss(prof.kernel_vae)  # the profile's step-1 loss, as training uses it
    opt1 = torch.optim.Adam(vae.parameters(), prof.kernel_vae.lr)

    def step1():
        update(opt1, loss1(vae, batch1)[0])

    b2 = prof.alignment.batch_size
    obs = torch.rand(b2, 2, 64, 64) * 2 - 1
    target = torch.randn(b2, 4, 8, 8)
    enc, _ = build_observation_encoder(prof.model, vae, info)
    opt2 = torch.optim.Adam(enc.parameters(), prof.alignment.lr)

    def step2():
        mean, logvar = enc(obs)
        update(opt2, alignment_loss(mean.float(), logvar.float(), target, target))

    def step2_with_decoder():  # the naive reference: decode although the loss does not need it
        mean, logvar = enc(obs)
        rec = vae.decode(mean).sample
        update(opt2, alignment_loss(mean.float(), logvar.float(), target, target) + 0.0 * rec.float().mean())

    one, _ = build_one_step(prof.model)
    b3 = prof.one_step.batch_size
    batch3 = {"observation": torch.rand(b3, 2, 64, 64), "kernel": torch.rand(b3, 1, 64, 64)}
    loss3 = one_step_loss(prof.one_step)
    opt3 = torch.optim.Adam(one.parameters(), prof.one_step.lr)

    def step3():
        update(opt3, loss3(one, batch3)[0])

    print(f"profile {args.profile}: {info.parameters / 1e6:.2f} M parameters per VAE, torch threads "
          f"{torch.get_num_threads()}, native bf16 on this CPU: {cpu_has_native_bf16()}")
    print(f"{'network (batch)':44s} {'fp32':>10s} {'bf16':>10s}   bf16/fp32  (samples/s)")
    rates = {}
    for name, fn, b in (("step 1 kernel VAE", step1, b1), ("step 2 alignment, encoder only", step2, b2),
                        ("step 2 reference, decoder run too", step2_with_decoder, b2),
                        ("one-step baseline", step3, b3)):
        if name.startswith("step 2"):
            vae.requires_grad_(False)
        r32, r16 = rate(fn, b, args.batches, False), rate(fn, b, args.batches, True)
        rates[name] = (r32, r16)
        print(f"{name + f' ({b})':44s} {r32:10.1f} {r16:10.1f}   {r16 / r32:8.2f}x")
    a, ref = rates["step 2 alignment, encoder only"], rates["step 2 reference, decoder run too"]
    print(f"step 2 without the decoder vs with it: {a[0] / ref[0]:.2f}x (fp32), {a[1] / ref[1]:.2f}x (bf16)")


if __name__ == "__main__":
    main()
