"""How long a profile's chain takes: counted FLOPs, and a measured training step.

:func:`chain_flops` counts, with ``torch.utils.flop_counter.FlopCounterMode``, the FLOPs of one
training step per sample of each network (forward and backward, at the profile's architecture, on
torch's meta device: shapes only, no arithmetic, so the 84 M-parameter networks count in a second
and attention is counted as the matrix products it is) and of inference, and multiplies by what the profile runs: samples
times epochs for the three trainings, test images times methods for the evaluation, and the
hybrid's decoder passes on its subset and the sweeps. :func:`estimate_seconds` divides by a
*sustained* rate: :data:`SUSTAINED_TFLOPS` gives the assumptions used in docs/setup.md (a fraction of
each GPU's fp16 peak typical of small-image convolution networks); they are estimates, not
measurements. :func:`measure_training` times real training steps on this machine's device, which
is what ``qpi doctor`` reports for your GPU.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from qpi_utils.config import TRAIN_SECTIONS, Profile
from qpi_utils.losses import alignment_loss
from qpi_utils.models import build_kernel_vae, build_observation_encoder, build_one_step
from qpi_utils.runs import STEPS
from qpi_utils.simulate import sample_kernel_params
from qpi_utils.splits import splits_for
from qpi_utils.sweeps import sweep_points
from qpi_utils.train import kernel_vae_loss, one_step_loss

__all__ = ["SUSTAINED_TFLOPS", "flops_per_sample", "chain_flops", "split_sizes", "training_samples", "estimate_seconds",
           "measure_training"]

# Assumed sustained throughput (TFLOP/s) of the kit's networks in fp16 (GPUs) or fp32 (CPU):
# T4: 65 TFLOP/s fp16 tensor-core peak, ~12 % reached by 64x64 convolutions at batch 8-32;
# A100: 312 peak, ~20 %. Stated in docs/setup.md; `qpi doctor` measures the real rate.
SUSTAINED_TFLOPS = {"T4": 8.0, "A100": 60.0}


def _networks(profile: Profile):
    cfg = dataclasses.replace(profile.model, pretrained=None)  # FLOPs do not depend on the weights
    vae, info = build_kernel_vae(cfg)
    encoder, _ = build_observation_encoder(cfg, vae, info)
    one_step, _ = build_one_step(cfg)
    return vae, encoder, one_step


def _training_steps(profile: Profile, vae, encoder, one_step, batch: int, device="cpu"):
    """One callable per network doing a training step (forward + backward) on ``batch`` samples."""
    kernels = {"kernel": torch.rand(batch, 1, 64, 64, device=device),
               "symmetry": torch.tensor([0, 2, 3, 4, 6] * batch)[:batch]}
    pairs = {"observation": torch.rand(batch, 2, 64, 64, device=device),
             "kernel": torch.rand(batch, 1, 64, 64, device=device)}
    step1, one = kernel_vae_loss(profile.kernel_vae), one_step_loss(profile.one_step)

    def alignment():
        mean, logvar = encoder(pairs["observation"])
        alignment_loss(mean, logvar, torch.zeros_like(mean), torch.zeros_like(logvar)).backward()

    one_step_training = lambda: one(one_step, pairs)[0].backward()
    return {"kernel_vae": lambda: step1(vae, kernels)[0].backward(), "alignment": alignment,
            "one_step": one_step_training, "one_step_paper": one_step_training}


def _count(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def flops_per_sample(profile: Profile) -> dict[str, float]:
    """FLOPs per sample: training step of each network, two-step and one-step inference, and
    one hybrid step (decoder forward and backward)."""
    with torch.device("meta"):  # the networks' parameters without memory or initialisation
        vae, encoder, one_step = _networks(profile)
    # inputs on meta too; the losses' small tables (symmetry angles) stay on the CPU
    out = {step: _count(fn) for step, fn in _training_steps(profile, vae, encoder, one_step, 1, "meta").items()}
    x = torch.rand(1, 2, 64, 64, device="meta")
    with torch.no_grad():
        out["two_step_inference"] = _count(lambda: vae.decode(encoder(x)[0]))
        out["one_step_inference"] = _count(lambda: one_step.decode(one_step.encode(x).latent_dist.mean))
    z = torch.zeros(1, 4, 8, 8, requires_grad=True, device="meta")
    out["hybrid_step"] = _count(lambda: vae.decode(z).sample.sum().backward())
    return out


def chain_flops(profile: Profile, per_sample: dict[str, float] | None = None) -> dict[str, float]:
    """FLOPs of each part of the chain at this profile (training, evaluation, sweeps)."""
    f = per_sample or flops_per_sample(profile)
    ph, n = profile.physics, split_sizes(profile)
    samples = training_samples(profile)
    hybrid_images = sum(min(k, ph.hybrid_test_observations or k) for k in (n["id_test"], n["ood_test"]))
    inference = f["two_step_inference"] + f["one_step_inference"]
    sweep_images = sweep_points(profile) * max(ph.sweep_observations, n["ood_kernels"])
    return {
        **{step: f[step] * samples[step] for step in STEPS},
        "evaluation": inference * (n["id_test"] + n["ood_test"]) + f["hybrid_step"] * ph.hybrid_steps * hybrid_images,
        "sweeps": (inference + f["hybrid_step"] * ph.hybrid_steps) * sweep_images,
    }


def split_sizes(profile: Profile) -> dict[str, int]:
    """Sizes of the splits :func:`qpi_utils.splits.make_splits` makes for this profile (it is run
    on the profile's class layout, so the counts cannot drift from the real splits).
    ``train_kernels`` counts the kernels step 1 trains on: the paper's, not the training-only
    ones (``simulation.extra_train_kernels``), whose observations ``train`` counts."""
    s = profile.simulation
    n_all = s.n_kernels + s.extra_train_kernels  # the extras' classes do not change any count
    symmetry = sample_kernel_params(n_all, np.random.default_rng(0))["symmetry"]  # classes in turn
    sp = splits_for(s, symmetry, s.n_observations)
    return {"train_kernels": int(np.sum(sp.train_kernels < s.n_kernels)), "val_kernels": len(sp.val_kernels),
            "ood_kernels": len(sp.ood_kernels), **{name: len(sp.pairs(name)) for name in sp.NAMES}}


def training_samples(profile: Profile) -> dict[str, int]:
    """Samples each training sees in all its epochs (kernels for step 1, observations otherwise)."""
    n = split_sizes(profile)
    out = {}
    for step, per_epoch in (("kernel_vae", n["train_kernels"]), ("alignment", n["train"]), ("one_step", n["train"]),
                            ("one_step_paper", n["train"])):
        t = getattr(profile, TRAIN_SECTIONS[step])
        out[step] = min(per_epoch, t.max_train_samples or per_epoch) * t.epochs
    return out


def estimate_seconds(flops: dict[str, float], tflops: float) -> float:
    """Seconds for ``flops`` (a dict of parts) at a sustained ``tflops``."""
    return sum(flops.values()) / (tflops * 1e12)


def measure_training(profile: Profile, device: str | None = None, steps: int = 3) -> dict[str, float]:
    """Seconds per training sample of each network, measured on ``device`` (default: CUDA if
    available) at the profile's batch sizes, after one warm-up step."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    nets = [n.to(device) for n in _networks(profile)]
    out = {}
    for step in STEPS:
        batch = getattr(profile, TRAIN_SECTIONS[step]).batch_size
        fn = _training_steps(profile, *nets, batch, device)[step]
        autocast = torch.autocast("cuda", dtype=torch.float16) if device == "cuda" else torch.autocast("cpu", enabled=False)
        with autocast:
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            if device == "cuda":
                torch.cuda.synchronize()
        out[step] = (time.perf_counter() - t0) / (steps * batch)
    return out
