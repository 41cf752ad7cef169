"""Profiles (``smoke``, ``quick``, ``colab``, ``paper``): every size and hyperparameter, defined once
and validated; dotted-key overrides. See ``docs/library.md``."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import QpiError
from .simulate import IMAGE_SIZE

__all__ = ["ProfileError", "SimulationConfig", "ModelConfig", "TrainConfig", "PhysicsConfig", "Profile",
           "PROFILE_NAMES", "get_profile", "profile_from_dict", "resolve_init", "parse_override",
           "default_profile_name", "KIT_PRIOR"]

KIT_PRIOR = "qpi-kit/"  # model.pretrained names of the kit's own priors (qpi_utils.prior), not Hugging Face ids


class ProfileError(QpiError, ValueError):
    """A profile name, key or value is not valid."""


@dataclass(frozen=True)
class SimulationConfig:
    """How the synthetic dataset is made (see :mod:`qpi_utils.simulate`).

    Lengths are in pixels of the 64x64 image; frequencies in cycles per pixel.
    """

    n_kernels: int = 100
    n_observations: int = 500  # per kernel
    image_size: int = IMAGE_SIZE
    min_scatterers: int = 1
    max_scatterers: int = 100
    snr_db: float | None = None  # white Gaussian noise: 20 log10(std(signal)/std(noise)); None = off
    line_noise: float = 0.0  # std of per-scan-line offsets, as a fraction of std(signal)
    outside_margin: float = 0.0  # width (px) of the band outside the field of view holding
    # unlabelled scatterers (in Y, not in M), at the same areal density as inside; 0 = off
    frequency_range: tuple[float, float] = (0.06, 0.18)
    decay_range: tuple[float, float] = (4.0, 12.0)
    supersample: int = 4  # analytic samples per pixel side when computing the kernel spectrum
    position_error: float = 0.0  # std (px) of the error of the labelled positions that M is
    # built from (Y always uses the true positions); models an imperfect defect finder
    seed: int = 0
    # splits (qpi_utils.splits.make_splits): test sets as in the paper, validation carved out of training
    ood_fraction: float = 0.2  # of all kernels: the OOD test kernels
    id_test_fraction: float = 0.2  # of each training kernel's observations: the ID test set
    val_kernel_fraction: float = 0.1  # of all kernels: validation kernels (from the non-OOD ones)
    val_fraction: float = 0.1  # of each training kernel's observations: validation
    split_seed: int = 0
    # learning curves (qpi learning-curves): train on a fraction of the training kernels (stratified)
    # and of each one's training observations; test and validation kernels unchanged
    train_kernel_fraction: float = 1.0
    train_observation_fraction: float = 1.0
    # training-only kernels beyond the paper's n_kernels (qpi_utils.prior.draw_far_kernels): drawn by the
    # same sampler, none within extra_min_distance of this dataset's validation or OOD kernels, all their
    # observations training data (the first extra_train_observations of each; 0 = all); the test sets
    # and validation kernels are those the n_kernels alone give
    extra_train_kernels: int = 0
    extra_train_observations: int = 0
    extra_min_distance: float = 0.2


@dataclass(frozen=True)
class ModelConfig:
    """The diffusers ``AutoencoderKL`` used for every network of the kit.

    ``architecture="sdxl"`` is the SDXL-VAE (block_out_channels 128/256/512/512, 2 layers per
    block), initialised from ``pretrained`` when the weights can be loaded. ``"small"`` is a
    compact config of the same family with the same 4x8x8 latent at 64x64.
    """

    architecture: str = "small"
    block_out_channels: tuple[int, ...] = (16, 32, 64, 64)
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 8
    pretrained: str | None = None  # Hugging Face id, e.g. "madebyollin/sdxl-vae-fp16-fix"
    allow_random_init: bool = False  # if the pretrained weights cannot be loaded: train from random
    # weights (recorded as pretrained: false) instead of stopping with an error


@dataclass(frozen=True)
class TrainConfig:
    """One training run (Adam + StepLR + gradient clipping), with model selection on validation.

    Selection rule (the same for every network): after each epoch the kernel RMSE on [0, 1] of
    the validation split is measured (see :mod:`qpi_utils.splits`); the weights of the epoch
    with the lowest value are the trained model, and training stops once ``patience`` epochs in
    a row have not improved on it (``epochs`` is the most it may run).
    """

    epochs: int = 10  # at most
    patience: int | None = None  # epochs without a lower validation RMSE before stopping; None = run all
    batch_size: int = 8
    lr: float = 1e-4
    schedule: str = "step"  # "step": StepLR (lr_step_size, lr_gamma), stepped per epoch; "onecycle":
    # OneCycleLR over all `epochs` (warm-up over the first 5 % of steps to lr, then cosine decay to ~0),
    # stepped per batch: `epochs` is then part of the schedule, not only a cap
    lr_step_size: int = 10  # StepLR: epochs between decays
    lr_gamma: float = 0.5
    grad_clip: float = 1.0
    alpha: float = 0.7  # weight of the symmetric loss (step 1 only)
    beta: float = 1e-6  # weight of the KL term
    kl_reduction: str = "sum"  # the KL over the latent's 256 values: "sum" (the kit) or "mean" (the authors' code)
    seed: int = 0
    mixed_precision: str = "auto"  # "auto" = fp16 on CUDA, bf16 on a CPU with native bf16 (AVX-512
    # BF16 / AMX), else fp32; or "no", "fp16", "bf16"
    max_train_samples: int | None = None  # cap samples per epoch (None = all)
    checkpoint_every: int = 1  # epochs between checkpoints (and at least every 15 min, and at the end)
    # ablations (the paper's and ours); defaults are the kit's method
    init: str = "auto"  # where the network starts (see resolve_init): kernel_vae: "auto" = the model
    # section's (pretrained weights, or random); alignment: "kernel_encoder" (the step-1 encoder, M
    # channel at zero) or "random"; one_step: "kernel_vae" (the step-1 VAE, M channel at zero: the
    # start step 2 gets; the kit's baseline) or "model" (the model section's weights). The paper's
    # one-step baseline (step one_step_paper) trains with its own section (by default the one_step
    # section's values) and always
    # starts from the model section's weights: the pretrained VAE where named, else random
    sym_angles: str = "group"  # symmetric loss angles: "group" (all k 2pi/n) or "authors" (their code's, both signs)
    augment_snr_db: tuple[float, ...] | None = None  # noise augmentation: (lo, hi) dB, each training
    # observation gets white noise at an SNR drawn uniformly from it (step 2 and one-step); None = off
    # realistic training data (step 2 and one-step): train and select the epoch on a copy of the
    # dataset with the same kernels, defects and splits, re-rendered with scan-line offsets (std, as
    # a fraction of std(signal)), unlabelled defects in a band of this width (px) outside the view,
    # and labelled positions off by Gaussian errors of this std (px); add white noise with
    # augment_snr_db. Real maps have all four; the kit's clean data have none.
    realistic_data: bool = False
    realistic_line_noise: float = 0.1
    realistic_outside_margin: float = 16.0
    realistic_position_error: float = 0.3


@dataclass(frozen=True)
class PhysicsConfig:
    """The physics baselines, the hybrid and the robustness sweeps (qpi_utils.baselines)."""

    # chosen on validation observations; reaches down to 1e-6 because with sub-pixel positions the
    # forward model is exact on clean data and the best lambda is tiny (CG's stopping regularises too)
    ls_lambda_grid: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    ls_calibration_observations: int = 64  # validation observations lambda is chosen on
    ls_iterations: int = 60
    hybrid_steps: int = 30
    hybrid_lr: float = 0.05
    hybrid_mu: float = 0.01
    # the sub-pixel hybrid (baselines.hybrid with positions): px per Adam step the labelled
    # positions may move (0 keeps them), and the prior-centred least squares after the latent
    hybrid_position_lr: float = 0.05
    hybrid_residual: bool = True
    hybrid_calibration_observations: int = 32  # validation observations its lr, mu and steps are chosen on
    hybrid_test_observations: int | None = 500  # per setting (ID, OOD), seeded subset; None = the whole test set
    sweep_observations: int = 100  # per sweep point, drawn for the OOD kernels
    sweep_snr_db: tuple[float, ...] = (30.0, 20.0, 10.0, 5.0, 0.0)
    sweep_scatterers: tuple[int, ...] = (1, 5, 20, 50, 100)
    sweep_outside_margin: tuple[float, ...] = (0.0, 8.0, 16.0, 24.0)
    sweep_position_error: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class PriorConfig:
    """The kernel prior (:mod:`qpi_utils.prior`): the model section's VAE pretrained on a corpus of
    simulated kernels, the role the SDXL-VAE plays for the paper. Made once by ``qpi pretrain``;
    a profile uses it with ``model.pretrained = "qpi-kit/<name>"``.

    The corpus rule: ``n_kernels`` kernels drawn by the simulator's own sampler over the
    simulation section's ranges, minus every kernel of the same symmetry within ``min_distance``
    (the normalised parameter distance of :func:`qpi_utils.prior.parameter_distance`) of a held-out
    kernel (validation or OOD test) of the datasets of ``protected_seeds``, so that those kernels
    stay unseen. A run whose held-out kernels come closer than that refuses the prior."""

    name: str = "kernel-prior-small"
    n_kernels: int = 20000
    n_validation: int = 512  # a second corpus, drawn by the same rule: the prior's epochs are chosen on it
    min_distance: float = 0.2
    protected_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # simulation.seed = split_seed = s, as `qpi seeds` runs them
    supersample: int = 2  # analytic samples per pixel side (the datasets use 4: the difference is < 1e-3 of the peak)
    seed: int = 2506


@dataclass(frozen=True)
class Profile:
    name: str
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    kernel_vae: TrainConfig = field(default_factory=TrainConfig)  # step 1
    alignment: TrainConfig = field(default_factory=TrainConfig)  # step 2
    one_step: TrainConfig = field(default_factory=TrainConfig)  # the kit's baseline (from step 1)
    one_step_paper: TrainConfig = field(default_factory=TrainConfig)  # the paper's baseline (from the model's weights)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    prior: PriorConfig = field(default_factory=PriorConfig)  # the corpus of `qpi pretrain`
    pretrain: TrainConfig = field(default_factory=TrainConfig)  # and its training

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


_SDXL = {  # the SDXL-VAE architecture, initialised from the fp16-fixed pretrained weights
    "architecture": "sdxl",
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "pretrained": "madebyollin/sdxl-vae-fp16-fix",
}

def _paper_trainings(**steps: tuple[int, int, int]) -> dict:
    """The three training sections with the paper's optimiser settings (Adam, lr 1e-4 for step 1:
    v1's text; 5e-5 for step 2 and the baseline: the authors' code; alpha 0.7, beta 1e-6: the
    authors' code, the defaults), from (max epochs, batch size, StepLR step size) per step, with
    early stopping on validation (patience 20 epochs for step 1, 5 for the others). Step 1 of the SDXL-VAE checkpoints every
    10 epochs: each checkpoint is about 1 GB."""
    out = {}
    for step, (epochs, batch_size, lr_step_size) in steps.items():
        out[step] = {"epochs": epochs, "batch_size": batch_size, "lr": 1e-4 if step == "kernel_vae" else 5e-5,
                     "lr_step_size": lr_step_size, "patience": 20 if step == "kernel_vae" else 5,
                     **({"checkpoint_every": 10} if step == "kernel_vae" else {})}
    return out


_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "simulation": {"n_kernels": 10, "n_observations": 8, "max_scatterers": 30},
        "model": {"block_out_channels": (8, 16, 16, 16), "norm_num_groups": 4},
        "kernel_vae": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "lr_step_size": 1},
        "alignment": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "lr_step_size": 1},
        "one_step": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "lr_step_size": 1},
        "prior": {"name": "kernel-prior-smoke", "n_kernels": 40, "n_validation": 10, "protected_seeds": (0,)},
        "pretrain": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "schedule": "onecycle"},
        "physics": {"ls_lambda_grid": (1e-3, 1e-1), "ls_calibration_observations": 8, "ls_iterations": 20,
                    "hybrid_steps": 3, "hybrid_test_observations": 8, "hybrid_calibration_observations": 4, "sweep_observations": 6, "sweep_snr_db": (20.0, 0.0),
                    "sweep_scatterers": (1, 30), "sweep_outside_margin": (0.0, 16.0),
                    "sweep_position_error": (0.0, 2.0)},
    },
    "quick": {
        # 100 kernels as in the paper (kernel diversity is what OOD generalisation needs), fewer
        # observations per kernel and a small VAE so the chain fits a 2-core CPU. Every network
        # starts from the kit prior (the SDXL-VAE's role, see `prior` below) or from step 1, and
        # trains a one-cycle schedule; validation keeps the best epoch. Step 2 and both one-step
        # baselines get the same schedule (12 one-cycle epochs, batch 32); each network's learning
        # rate is chosen by one rule on validation (qpi_lab.learning_rates; results/quick/learning_rates.json).
        "simulation": {"n_kernels": 100, "n_observations": 100},
        "model": {"block_out_channels": (16, 32, 64, 64), "norm_num_groups": 8,
                  "pretrained": "qpi-kit/kernel-prior-small"},
        "kernel_vae": {"epochs": 30, "batch_size": 8, "lr": 1e-4, "schedule": "onecycle"},
        "alignment": {"epochs": 12, "batch_size": 32, "lr": 3e-3, "schedule": "onecycle"},
        "one_step": {"epochs": 12, "batch_size": 32, "lr": 1e-3, "schedule": "onecycle"},
        "one_step_paper": {"epochs": 12, "batch_size": 32, "lr": 1e-3, "schedule": "onecycle"},
        # the kit prior (`qpi pretrain --profile quick`, committed as priors/kernel-prior-small.safetensors):
        # 20,000 corpus kernels, one-cycle over 6 epochs at batch 32 (about 3,750 steps)
        "prior": {"name": "kernel-prior-small"},
        "pretrain": {"epochs": 6, "batch_size": 32, "lr": 2e-3, "schedule": "onecycle", "checkpoint_every": 1},
        # the hybrid costs ~0.15 s per image on 2 CPU cores at 10 steps: a seeded subset of each
        # test set (its size is the table's n column), and small sweeps (3 observations per OOD kernel
        # and point; methods compared paired per kernel). Position refinement off:
        # measured at 19451c4 (benchmarks/hybrid_variants.py, results/benchmarks/hybrid_variants_quick.txt)
        # it changed no error beyond 0.001 and doubled the sub-pixel hybrid's cost where it acted
        "physics": {"hybrid_steps": 10, "hybrid_test_observations": 200, "sweep_observations": 60,
                    "hybrid_position_lr": 0.0},
    },
    "colab": {
        # A free Colab T4, about 40 min of compute: the paper's pretrained SDXL-VAE and hyperparameters on
        # the quick profile's data size, step 2 and the one-step baseline at about equal training
        # FLOPs. Estimated with qpi_lab.budget (counted FLOPs at an assumed sustained rate; the
        # README gives the numbers); `qpi doctor --profile colab` measures a step on your GPU.
        "simulation": {"n_kernels": 100, "n_observations": 100},
        "model": _SDXL,
        **_paper_trainings(kernel_vae=(150, 8, 50), alignment=(16, 32, 6), one_step=(6, 32, 2)),
        "physics": {"hybrid_steps": 10, "hybrid_test_observations": 200, "sweep_observations": 100},
    },
    "paper": {
        "simulation": {"n_kernels": 100, "n_observations": 500},
        "model": _SDXL,
        # The paper's text bounds the epochs (at most 350 for step 1, 40 for step 2); these are ours.
        **_paper_trainings(kernel_vae=(200, 8, 50), alignment=(30, 8, 10), one_step=(30, 8, 10)),
    },
}

PROFILE_NAMES = tuple(_PROFILES)


TRAIN_SECTIONS = {"kernel_vae": "kernel_vae", "alignment": "alignment", "one_step": "one_step",
                  "one_step_paper": "one_step_paper"}  # trained step -> the profile section it trains with


def resolve_init(profile: Profile, step: str) -> str:
    """Where ``step``'s network starts. ``auto``: step 1 from the model section's weights (the
    pretrained VAE where named, else random); step 2 from the step-1 encoder; the kit's one-step
    baseline from the step-1 VAE (the start step 2 gets). The paper's one-step baseline
    (``one_step_paper``) always from the model section's weights, as the paper starts both methods
    from the same pretrained VAE."""
    if step == "one_step_paper":
        return "model"
    init = getattr(profile, TRAIN_SECTIONS[step]).init
    if init != "auto":
        return init
    return {"kernel_vae": "model", "alignment": "kernel_encoder", "one_step": "kernel_vae"}[step]


def default_profile_name() -> str:
    """``$QPI_PROFILE`` if set; else ``colab`` on a CUDA GPU (about 40 min of compute on a T4) and
    ``quick`` on a CPU. ``paper`` (about 10 h on a T4) runs only when asked for by name."""
    name = os.environ.get("QPI_PROFILE")
    if name:
        return name
    try:
        import torch

        return "colab" if torch.cuda.is_available() else "quick"
    except ImportError:
        return "quick"


def _build(cls, section: str, values: Mapping[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ProfileError(
            f"unknown key(s) {', '.join(section + '.' + k for k in unknown)}; "
            f"valid keys of '{section}': {', '.join(sorted(names))}"
        )
    clean = {}
    for key, value in values.items():
        clean[key] = _coerce(f"{section}.{key}", value, str(names[key].type))
    return cls(**clean)


def _coerce(key: str, value: Any, annotation: str) -> Any:
    """Check ``value`` against the field's annotation ("int", "float | None", "tuple[float, ...]",
    ...): tuples from lists, ints accepted as floats, numbers finite, None only where allowed."""
    annotation = annotation.replace(" ", "")
    if annotation.endswith("|None"):
        return None if value is None else _coerce(key, value, annotation[: -len("|None")])
    if annotation.startswith("tuple["):
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise ProfileError(f"{key} must be a non-empty list, got {value!r}")
        inner = annotation[len("tuple["):-1].split(",")[0]
        return tuple(_coerce(key, v, inner) for v in value)
    if annotation == "bool":
        if not isinstance(value, bool):
            raise ProfileError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{key} must be an integer, got {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProfileError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise ProfileError(f"{key} must be a string, got {value!r}")
        return value
    raise ProfileError(f"{key}: unsupported field type {annotation}")  # a schema bug, not a user error


def _check(profile: Profile) -> Profile:
    s, m = profile.simulation, profile.model

    def need(cond: bool, msg: str):
        if not cond:
            raise ProfileError(f"profile '{profile.name}': {msg}")

    need(s.n_kernels >= 5, f"simulation.n_kernels must be >= 5 (one per symmetry class), got {s.n_kernels}")
    need(s.n_observations >= 2, f"simulation.n_observations must be >= 2, got {s.n_observations}")
    need(s.image_size == IMAGE_SIZE, f"simulation.image_size must be {IMAGE_SIZE} (the paper's size and the model's 8x8 latent), got {s.image_size}")
    need(1 <= s.min_scatterers <= s.max_scatterers,
         f"need 1 <= simulation.min_scatterers <= max_scatterers, got {s.min_scatterers}, {s.max_scatterers}")
    need(0 <= s.seed < 2**32 and 0 <= s.split_seed < 2**32,
         f"simulation.seed and split_seed must be in [0, 2**32), got {s.seed}, {s.split_seed}")
    need(s.position_error >= 0, f"simulation.position_error must be >= 0 px, got {s.position_error}")
    snrs = [("simulation.snr_db", s.snr_db)] + [("physics.sweep_snr_db", v) for v in profile.physics.sweep_snr_db]
    for key, snr in snrs:  # 20 log10(signal/noise): beyond this range the noise over- or underflows
        need(snr is None or -40 <= snr <= 200, f"{key} must be in [-40, 200] dB, got {snr}")
    need(s.line_noise >= 0, f"simulation.line_noise must be >= 0, got {s.line_noise}")
    need(0 <= s.outside_margin <= 31, f"simulation.outside_margin must be in [0, 31] px, got {s.outside_margin}")
    need(len(s.frequency_range) == 2 and 0 < s.frequency_range[0] <= s.frequency_range[1] <= 0.3,
         f"simulation.frequency_range must be [lo, hi] with 0 < lo <= hi <= 0.3 cycles/px, got {s.frequency_range}")
    need(len(s.decay_range) == 2 and 1 <= s.decay_range[0] <= s.decay_range[1] <= 30,
         f"simulation.decay_range must be [lo, hi] px with 1 <= lo <= hi <= 30, got {s.decay_range}")
    need(1 <= s.supersample <= 16, f"simulation.supersample must be in [1, 16], got {s.supersample}")
    need(0 < s.ood_fraction < 1, f"simulation.ood_fraction must be in (0, 1), got {s.ood_fraction}")
    need(0 < s.id_test_fraction < 1, f"simulation.id_test_fraction must be in (0, 1), got {s.id_test_fraction}")
    need(0 < s.val_kernel_fraction < 1 - s.ood_fraction,
         f"simulation.val_kernel_fraction must be in (0, 1 - ood_fraction), got {s.val_kernel_fraction}")
    need(0 < s.train_kernel_fraction <= 1 and 0 < s.train_observation_fraction <= 1,
         f"simulation.train_kernel_fraction and train_observation_fraction must be in (0, 1], got "
         f"{s.train_kernel_fraction}, {s.train_observation_fraction}")
    need(s.extra_train_kernels >= 0 and 0 <= s.extra_train_observations <= s.n_observations,
         f"simulation.extra_train_kernels must be >= 0 and extra_train_observations in [0, n_observations="
         f"{s.n_observations}], got {s.extra_train_kernels}, {s.extra_train_observations}")
    need(s.extra_min_distance >= 0, f"simulation.extra_min_distance must be >= 0, got {s.extra_min_distance}")
    need(0 < s.val_fraction < 1 - s.id_test_fraction,
         f"simulation.val_fraction must be in (0, 1 - id_test_fraction), got {s.val_fraction}")
    need(m.architecture in ("small", "sdxl"), f"model.architecture must be 'small' or 'sdxl', got {m.architecture!r}")
    need(len(m.block_out_channels) == 4,
         f"model.block_out_channels must have 4 entries (3 downsamplings: 64x64 -> 8x8 latent), got {m.block_out_channels}")
    need(m.norm_num_groups >= 1, f"model.norm_num_groups must be >= 1, got {m.norm_num_groups}")
    need(all(c > 0 and c % m.norm_num_groups == 0 for c in m.block_out_channels),
         f"model.block_out_channels {m.block_out_channels} must be positive multiples of norm_num_groups={m.norm_num_groups}")
    need(m.layers_per_block >= 1, f"model.layers_per_block must be >= 1, got {m.layers_per_block}")
    need(m.latent_channels == 4, f"model.latent_channels must be 4 (the paper's 4x8x8 latent), got {m.latent_channels}")
    q = profile.prior
    need(q.n_kernels >= 5 and q.n_validation >= 5, f"prior.n_kernels and n_validation must be >= 5, got "
         f"{q.n_kernels}, {q.n_validation}")
    need(q.min_distance >= 0, f"prior.min_distance must be >= 0, got {q.min_distance}")
    need(1 <= q.supersample <= 16, f"prior.supersample must be in [1, 16], got {q.supersample}")
    need(bool(q.name) and "/" not in q.name, f"prior.name must be one plain name, got {q.name!r}")
    for name in ("kernel_vae", "alignment", "one_step", "one_step_paper", "pretrain"):
        t: TrainConfig = getattr(profile, name)
        need(t.epochs >= 1, f"{name}.epochs must be >= 1, got {t.epochs}")
        need(t.batch_size >= 1, f"{name}.batch_size must be >= 1, got {t.batch_size}")
        need(t.lr > 0, f"{name}.lr must be > 0, got {t.lr}")
        need(t.lr_step_size >= 1, f"{name}.lr_step_size must be >= 1, got {t.lr_step_size}")
        need(t.schedule in ("step", "onecycle"), f"{name}.schedule must be 'step' or 'onecycle', got {t.schedule!r}")
        need(0 < t.lr_gamma <= 1, f"{name}.lr_gamma must be in (0, 1], got {t.lr_gamma}")
        need(t.grad_clip > 0, f"{name}.grad_clip must be > 0, got {t.grad_clip}")
        need(t.alpha >= 0 and t.beta >= 0, f"{name}.alpha and beta must be >= 0")
        need(t.mixed_precision in ("auto", "no", "fp16", "bf16"),
             f"{name}.mixed_precision must be auto/no/fp16/bf16, got {t.mixed_precision!r}")
        need(t.max_train_samples is None or t.max_train_samples > 0,
             f"{name}.max_train_samples must be a positive integer or null, got {t.max_train_samples!r}")
        # training seeds per epoch as seed * 1_000_003 + epoch: torch takes seeds below 2**64
        need(0 <= t.seed < 2**32, f"{name}.seed must be in [0, 2**32), got {t.seed}")
        need(t.checkpoint_every >= 1, f"{name}.checkpoint_every must be >= 1, got {t.checkpoint_every}")
        need(t.patience is None or t.patience >= 1, f"{name}.patience must be >= 1 or null, got {t.patience!r}")
        inits = {"kernel_vae": ("auto",), "alignment": ("auto", "kernel_encoder", "random"),
                 "one_step": ("auto", "kernel_vae", "model"), "one_step_paper": ("auto", "model"),
                 "pretrain": ("auto",)}[name]
        need(t.init in inits, f"{name}.init must be one of {', '.join(inits)}, got {t.init!r}")
        need(t.kl_reduction in ("sum", "mean"), f"{name}.kl_reduction must be 'sum' or 'mean', got {t.kl_reduction!r}")
        need(t.sym_angles in ("group", "authors"), f"{name}.sym_angles must be 'group' or 'authors', got {t.sym_angles!r}")
        need(t.realistic_line_noise >= 0 and t.realistic_position_error >= 0 and 0 <= t.realistic_outside_margin <= 31,
             f"{name}: realistic_line_noise and realistic_position_error must be >= 0 and realistic_outside_margin "
             f"in [0, 31] px, got {t.realistic_line_noise}, {t.realistic_position_error}, {t.realistic_outside_margin}")
        need(not (t.realistic_data and name in ("kernel_vae", "pretrain")),
             f"{name}.realistic_data must be false: it trains on kernels, not observations")
        need(t.augment_snr_db is None or (len(t.augment_snr_db) == 2 and -40 <= t.augment_snr_db[0] <= t.augment_snr_db[1] <= 200),
             f"{name}.augment_snr_db must be [lo, hi] dB with -40 <= lo <= hi <= 200, or null, got {t.augment_snr_db!r}")
    p = profile.physics
    need(all(v > 0 for v in p.ls_lambda_grid), f"physics.ls_lambda_grid values must be > 0, got {p.ls_lambda_grid}")
    need(p.ls_calibration_observations >= 1, f"physics.ls_calibration_observations must be >= 1, got {p.ls_calibration_observations}")
    need(p.ls_iterations >= 1, f"physics.ls_iterations must be >= 1, got {p.ls_iterations}")
    need(p.hybrid_steps >= 0, f"physics.hybrid_steps must be >= 0, got {p.hybrid_steps}")
    need(p.hybrid_calibration_observations >= 2,
         f"physics.hybrid_calibration_observations must be >= 2, got {p.hybrid_calibration_observations}")
    need(p.hybrid_position_lr >= 0, f"physics.hybrid_position_lr must be >= 0 (px per step), got {p.hybrid_position_lr}")
    need(isinstance(p.hybrid_residual, bool), f"physics.hybrid_residual must be true or false, got {p.hybrid_residual!r}")
    need(p.hybrid_lr > 0 and p.hybrid_mu >= 0, f"physics.hybrid_lr must be > 0 and hybrid_mu >= 0, got {p.hybrid_lr}, {p.hybrid_mu}")
    need(p.hybrid_test_observations is None or p.hybrid_test_observations >= 1,
         f"physics.hybrid_test_observations must be >= 1 or null, got {p.hybrid_test_observations}")
    need(p.sweep_observations >= 1, f"physics.sweep_observations must be >= 1, got {p.sweep_observations}")
    need(all(1 <= v for v in p.sweep_scatterers), f"physics.sweep_scatterers must be >= 1, got {p.sweep_scatterers}")
    need(all(0 <= v <= 31 for v in p.sweep_outside_margin),
         f"physics.sweep_outside_margin values must be in [0, 31] px, got {p.sweep_outside_margin}")
    need(all(v >= 0 for v in p.sweep_position_error),
         f"physics.sweep_position_error values must be >= 0 px, got {p.sweep_position_error}")
    return profile


_SECTIONS = {
    "simulation": SimulationConfig,
    "model": ModelConfig,
    "kernel_vae": TrainConfig,
    "alignment": TrainConfig,
    "one_step": TrainConfig,
    "one_step_paper": TrainConfig,
    "physics": PhysicsConfig,
    "prior": PriorConfig,
    "pretrain": TrainConfig,
}


def profile_from_dict(data: Mapping[str, Any]) -> Profile:
    """Build and validate a :class:`Profile` from a nested dict (as written by ``to_dict``)."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"a profile must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_SECTIONS) - {"name"})
    if unknown:
        raise ProfileError(f"unknown profile section(s) {unknown}; valid: {sorted(_SECTIONS)}")
    name = data.get("name", "custom")
    if not isinstance(name, str):
        raise ProfileError(f"profile name must be a string, got {name!r}")
    parts = {}
    for section, cls in _SECTIONS.items():
        values = data.get(section, {})
        if not isinstance(values, Mapping):
            raise ProfileError(f"profile section '{section}' must be a mapping, got {values!r}")
        parts[section] = _build(cls, section, values)
    return _check(Profile(name=name, **parts))


def parse_override(text: str) -> tuple[str, Any]:
    """``"simulation.n_kernels=20"`` -> ``("simulation.n_kernels", 20)`` (value parsed as JSON)."""
    if "=" not in text:
        raise ProfileError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string such as mixed_precision=fp16
    return key.strip(), value


def get_profile(name: str | None = None, overrides: Mapping[str, Any] | list[str] | None = None) -> Profile:
    """The named profile (default :func:`default_profile_name`) with dotted-key overrides.

    >>> get_profile("smoke", {"simulation.n_kernels": 20}).simulation.n_kernels
    20
    """
    name = name or default_profile_name()
    if name not in _PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")
    data: dict[str, Any] = {sec: dict(vals) for sec, vals in _PROFILES[name].items()}
    # the paper's one-step baseline trains as the kit's does unless the profile says otherwise
    data.setdefault("one_step_paper", {k: v for k, v in data.get("one_step", {}).items() if k != "init"})
    data["name"] = name
    if overrides:
        items = (parse_override(o) for o in overrides) if isinstance(overrides, list) else overrides.items()
        for key, value in items:
            if key.count(".") != 1:
                raise ProfileError(f"override key {key!r} must be section.key, e.g. simulation.n_kernels")
            section, sub = key.split(".")
            if section not in _SECTIONS:
                raise ProfileError(f"override {key!r}: unknown section {section!r}; valid: {sorted(_SECTIONS)}")
            data.setdefault(section, {})[sub] = value
    return profile_from_dict(data)
