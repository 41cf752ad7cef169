"""Training throughput (samples/s, forward + backward + Adam step) of each step.

    python benchmarks/bench_train.py [--profile quick] [--batches 6]

Prints samples/s for step 1 (kernel VAE with symmetric loss), step 2 (observation encoder
only, as the kit trains it) and the one-step baseline, plus a reference measured in the same
run: step 2 done naively, also running the frozen decoder on the predicted latent. Their
ratio is what not running the decoder saves. Uses the profile's model and batch sizes.
"""

from __future__ import annotations

import argparse
import time

import torch

from qpi_utils.config import PROFILE_NAMES, get_profile
from qpi_utils.losses import alignment_loss
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.train import kernel_vae_loss, one_step_loss


def update(optimizer, loss) -> None:
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def rate(fn, batch: int, batches: int) -> float:
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

    r1 = rate(step1, b1, args.batches)  # before the VAE is frozen for step 2

    b2 = prof.alignment.batch_size
    obs = torch.rand(b2, 2, 64, 64) * 2 - 1
    target = torch.randn(b2, 4, 8, 8)
    enc, _ = build_observation_encoder(prof.model, vae, info)
    vae.requires_grad_(False)
    opt2 = torch.optim.Adam(enc.parameters(), prof.alignment.lr)

    def step2():
        mean, logvar = enc(obs)
        update(opt2, alignment_loss(mean, logvar, target, target))

    def step2_with_decoder():  # the naive reference: decode although the loss does not need it
        mean, logvar = enc(obs)
        rec = vae.decode(mean).sample
        update(opt2, alignment_loss(mean, logvar, target, target) + 0.0 * rec.mean())

    one, _ = build_one_step(prof.model)
    b3 = prof.one_step.batch_size
    batch3 = {"observation": torch.rand(b3, 2, 64, 64), "kernel": torch.rand(b3, 1, 64, 64)}
    loss3 = one_step_loss(prof.one_step)
    opt3 = torch.optim.Adam(one.parameters(), prof.one_step.lr)

    def step3():
        update(opt3, loss3(one, batch3)[0])

    r2 = rate(step2, b2, args.batches)
    r2n, r3 = rate(step2_with_decoder, b2, args.batches), rate(step3, b3, args.batches)
    print(f"profile {args.profile}: {info.parameters / 1e6:.2f} M parameters per VAE, torch threads {torch.get_num_threads()}")
    print(f"step 1 kernel VAE (batch {b1})              : {r1:8.1f} samples/s")
    print(f"step 2 alignment, encoder only (batch {b2}) : {r2:8.1f} samples/s")
    print(f"step 2 reference, decoder run too          : {r2n:8.1f} samples/s   ratio {r2 / r2n:.2f}x")
    print(f"one-step baseline (batch {b3})             : {r3:8.1f} samples/s")


if __name__ == "__main__":
    main()
