"""Networks, diffusers ``AutoencoderKL`` throughout: the kernel VAE (1 channel, latent 4x8x8 at
64x64), the observation encoder (2 channels (Y, M)) and the one-step network (2 in, 1 out).
Images enter and leave on [-1, 1]. Pretrained weights and the RGB adaptation: ``docs/library.md``."""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import KIT_PRIOR, ModelConfig
from .errors import QpiError
from .files import FetchError
from .runs import committed_file, project_root
from .simulate import IMAGE_SIZE
from .validate import check_memory

__all__ = ["ModelInfo", "ModelConfigError", "PretrainedWeightsError", "load_pretrained_rgb",
           "autoencoder_config", "build_kernel_vae", "build_one_step", "ObservationEncoder",
           "build_observation_encoder", "adapt_rgb_autoencoder", "latent_shape", "to_model_scale",
           "from_model_scale", "count_parameters", "kernel_latents", "KIT_PRIOR", "load_kit_prior"]

PRIOR_FREE_KEYS = ("pretrained", "allow_random_init")  # model settings a prior's weights do not depend on

log = logging.getLogger(__name__)


class ModelConfigError(QpiError, ValueError):
    """A model or checkpoint does not fit the requested configuration."""


@dataclass
class ModelInfo:
    """What every result produced by a model records about it."""

    architecture: str
    pretrained: bool
    source: str  # Hugging Face id / path the weights came from, or "random init (...)"
    parameters: int

    def to_dict(self) -> dict:
        return asdict(self)


def to_model_scale(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> [-1, 1] (what the VAE sees)."""
    return x * 2.0 - 1.0


def from_model_scale(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * 0.5


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def autoencoder_config(cfg: ModelConfig, in_channels: int, out_channels: int) -> dict:
    """Keyword arguments for ``diffusers.AutoencoderKL`` (4 blocks: 64x64 -> 8x8 latent). A network
    that would not fit in free memory while it trains is refused before it is built."""
    n = len(cfg.block_out_channels)
    # parameters: 3x3 convolutions of each block's resnets (encoder L, decoder L + 1 per block) and the
    # attention mid-blocks; 1.5x covers norms, shortcuts and biases (0.98 M and 84 M for quick and sdxl
    # are within it). Training holds weights, gradients and Adam's two moments: 16 bytes each.
    c, layers = cfg.block_out_channels, cfg.layers_per_block
    params = 1.5 * (sum(18 * ch * ch * (2 * layers + 1) for ch in c) + 40 * c[-1] ** 2)
    check_memory(16 * params, f"a network with block_out_channels {tuple(c)} and layers_per_block {layers} "
                              f"(about {params / 1e6:.0f} M parameters)")
    return dict(
        in_channels=in_channels,
        out_channels=out_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=IMAGE_SIZE,
    )


@torch.no_grad()
def adapt_rgb_autoencoder(rgb_vae, cfg: ModelConfig, in_channels: int, out_channels: int):
    """A new ``AutoencoderKL`` with ``in_channels``/``out_channels`` whose weights are those of
    the 3-channel ``rgb_vae``, with the first and last convolutions combined from the RGB
    filters (``docs/library.md``) rather than re-initialised."""
    from diffusers import AutoencoderKL

    if rgb_vae.config.in_channels != 3 or rgb_vae.config.out_channels != 3:
        raise ModelConfigError(f"expected an RGB autoencoder, got in={rgb_vae.config.in_channels}, "
                               f"out={rgb_vae.config.out_channels}")
    model = AutoencoderKL(**autoencoder_config(cfg, in_channels, out_channels))
    state = rgb_vae.state_dict()
    w_in = state["encoder.conv_in.weight"]  # (C, 3, 3, 3)
    state["encoder.conv_in.weight"] = w_in.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)
    w_out, b_out = state["decoder.conv_out.weight"], state["decoder.conv_out.bias"]  # (3, C, 3, 3), (3,)
    state["decoder.conv_out.weight"] = w_out.mean(dim=0, keepdim=True).repeat(out_channels, 1, 1, 1)
    state["decoder.conv_out.bias"] = b_out.mean().repeat(out_channels)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelConfigError(f"pretrained weights do not fit the architecture: missing {missing[:5]}, "
                               f"unexpected {unexpected[:5]}")
    return model


class PretrainedWeightsError(ModelConfigError):
    """The profile asks for pretrained weights that cannot be loaded here."""


def _hub_reachable(host: str = "huggingface.co") -> bool:
    """Can the hub's name be resolved at all? (Without network this fails at once, where a
    download attempt would retry for half a minute.)"""
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def load_pretrained_rgb(name: str):
    """The RGB ``AutoencoderKL`` ``name`` (a Hugging Face id or a local folder): from a local
    folder or the hub's cache first, then from the hub when it can be reached. Raises OSError."""
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(name, local_files_only=True)
    except OSError as exc:
        if Path(name).exists():
            raise
        if not _hub_reachable():  # say so, rather than the cache's "file not found"
            raise OSError(f"{name}: not in the local Hugging Face cache, and the hub cannot be reached (no network, "
                          "or HF_HUB_OFFLINE is set)") from exc
    return AutoencoderKL.from_pretrained(name)


def _zero_extra_inputs(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A 1-channel input convolution's weight (C, 1, k, k) widened to ``in_channels``: the first
    channel (Y) keeps the filter, the others (M) start at zero, so the network starts as it was."""
    if weight.shape[1] != 1:
        raise ModelConfigError(f"expected a 1-channel input convolution, got {weight.shape[1]} channels")
    return torch.cat([weight] + [torch.zeros_like(weight)] * (in_channels - 1), dim=1)


def priors_dir() -> Path:
    """Where `qpi pretrain` writes priors and where they are looked for first: ``$QPI_PRIORS_DIR``,
    else the checkout's ``priors/``."""
    return Path(os.environ.get("QPI_PRIORS_DIR") or project_root() / "priors")


def kit_prior_file(name: str) -> Path | None:
    """``<name>.safetensors``: one made here by `qpi pretrain` (:func:`priors_dir`), else the one
    committed with the kit (fetched with its checksum outside a checkout), else None."""
    own = priors_dir() / f"{name}.safetensors"
    return own if own.is_file() else committed_file(f"priors/{name}.safetensors")


def load_kit_prior(cfg: ModelConfig):
    """The kit prior ``cfg.pretrained`` (``"qpi-kit/<name>"``): (a 1-channel ``AutoencoderKL``,
    the provenance it was saved with, its corpus' kernel parameters as a dict of (N,) arrays).
    Raises :class:`PretrainedWeightsError` when the file is not there or its architecture is
    not ``cfg``'s."""
    from diffusers import AutoencoderKL
    from safetensors import safe_open

    name = cfg.pretrained[len(KIT_PRIOR):]
    try:
        path = kit_prior_file(name)
    except FetchError as exc:
        raise PretrainedWeightsError(f"kit prior {cfg.pretrained!r}: {exc}") from None
    if path is None:
        raise PretrainedWeightsError(f"kit prior {cfg.pretrained!r} is neither in {priors_dir()} nor committed with "
                                     "this version of the kit: make it with `qpi pretrain --set prior.name="
                                     f"{name}`, or set model.pretrained to null")
    with safe_open(str(path), framework="pt") as fh:
        provenance = json.loads(fh.metadata()["provenance"])
        state = {k: fh.get_tensor(k) for k in fh.keys() if not k.startswith("corpus.")}
        corpus = {k[len("corpus."):]: fh.get_tensor(k).numpy() for k in fh.keys() if k.startswith("corpus.")}
    made_for = {k: v for k, v in provenance["model"].items() if k not in PRIOR_FREE_KEYS}
    wanted = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k not in PRIOR_FREE_KEYS}
    if made_for != wanted:
        differ = sorted(k for k in wanted if made_for.get(k) != wanted[k])
        raise PretrainedWeightsError(f"kit prior {cfg.pretrained!r} ({path}) was trained for another architecture: "
                                     + ", ".join(f"model.{k} {made_for.get(k)!r} there, {wanted[k]!r} here" for k in differ))
    model = AutoencoderKL(**autoencoder_config(cfg, 1, 1))
    model.load_state_dict(state)
    return model, provenance, corpus


def _autoencoder(cfg: ModelConfig, in_channels: int, out_channels: int):
    """(model, ModelInfo): pretrained and adapted when the profile asks for it. Weights that
    cannot be loaded stop with :class:`PretrainedWeightsError`, unless the profile allows random
    initialisation (``model.allow_random_init``), which is then warned about and recorded."""
    from diffusers import AutoencoderKL

    if cfg.pretrained and cfg.pretrained.startswith(KIT_PRIOR):
        prior, _, _ = load_kit_prior(cfg)
        if out_channels != 1:
            raise ModelConfigError(f"a kit prior decodes 1 channel, {out_channels} asked for")
        model = AutoencoderKL(**autoencoder_config(cfg, in_channels, 1))
        state = prior.state_dict()
        state["encoder.conv_in.weight"] = _zero_extra_inputs(state["encoder.conv_in.weight"], in_channels)
        model.load_state_dict(state)
        return model, ModelInfo(cfg.architecture, True, cfg.pretrained, count_parameters(model))
    if cfg.pretrained:
        try:
            rgb = load_pretrained_rgb(cfg.pretrained)
        except OSError as exc:  # no network, no cache, or no such repository
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            if not cfg.allow_random_init:
                raise PretrainedWeightsError(
                    f"pretrained weights {cfg.pretrained!r} cannot be loaded ({reason}): connect to the internet "
                    "once (they are cached), or pass --set model.allow_random_init=true to train from random "
                    "weights (results then record pretrained: false)") from None
            msg = (f"could not load pretrained weights {cfg.pretrained!r} ({reason}); "
                   "falling back to RANDOM initialisation: results will record pretrained=false")
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            log.warning(msg)
        else:
            model = adapt_rgb_autoencoder(rgb, cfg, in_channels, out_channels)
            return model, ModelInfo(cfg.architecture, True, cfg.pretrained, count_parameters(model))
        source = f"random init (pretrained {cfg.pretrained} unavailable)"
    else:
        source = "random init"
    with torch.random.fork_rng(devices=[]):  # same start weights for a profile, RNG untouched
        torch.manual_seed(0)
        model = AutoencoderKL(**autoencoder_config(cfg, in_channels, out_channels))
    return model, ModelInfo(cfg.architecture, False, source, count_parameters(model))


def build_kernel_vae(cfg: ModelConfig):
    """Step 1: 1 channel in, 1 out. Returns (AutoencoderKL, ModelInfo)."""
    return _autoencoder(cfg, 1, 1)


@torch.no_grad()
def build_one_step(cfg: ModelConfig, kernel_vae=None, kernel_info: "ModelInfo | None" = None):
    """The one-step baseline: (Y, M) in, kernel out. Returns (AutoencoderKL, ModelInfo).

    Initialised from the trained step-1 VAE when given (the same start step 2 gets: the Y
    channel takes the kernel encoder's input filter, the M channel starts at zero, the decoder
    is the kernel decoder), otherwise as :func:`build_kernel_vae` would (pretrained or random)."""
    if kernel_vae is None:
        return _autoencoder(cfg, 2, 1)
    from diffusers import AutoencoderKL

    model = AutoencoderKL(**autoencoder_config(cfg, 2, 1))
    state = dict(kernel_vae.state_dict())
    state["encoder.conv_in.weight"] = _zero_extra_inputs(state["encoder.conv_in.weight"], 2)
    model.load_state_dict(state)
    pretrained = bool(kernel_info.pretrained) if kernel_info else False
    return model, ModelInfo(cfg.architecture, pretrained, "kernel VAE of step 1", count_parameters(model))


class ObservationEncoder(nn.Module):
    """Step 2: the kernel encoder's structure with 2 input channels; outputs the latent
    distribution's mean and log-variance, each (B, 4, 8, 8)."""

    def __init__(self, cfg: ModelConfig, in_channels: int = 2):
        super().__init__()
        from diffusers import AutoencoderKL

        vae = AutoencoderKL(**autoencoder_config(cfg, in_channels, 1))
        self.encoder, self.quant_conv = vae.encoder, vae.quant_conv
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[1] != self.in_channels:
            raise ModelConfigError(f"observation encoder expects {self.in_channels} channels (Y, M), got {x.shape[1]}")
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)  # the clamp diffusers applies


@torch.no_grad()
def build_observation_encoder(cfg: ModelConfig, kernel_vae=None, kernel_info: ModelInfo | None = None):
    """Step 2's encoder. Initialised from the trained kernel encoder when given (it already maps
    kernels into the latent space; the Y channel takes the kernel encoder's input filter, the M
    channel starts at zero), otherwise at random. Returns (ObservationEncoder, ModelInfo)."""
    enc = ObservationEncoder(cfg)
    if kernel_vae is None:
        return enc, ModelInfo(cfg.architecture, False, "random init", count_parameters(enc))
    state = {k[len("encoder."):]: v for k, v in kernel_vae.state_dict().items() if k.startswith("encoder.")}
    state["conv_in.weight"] = _zero_extra_inputs(state["conv_in.weight"], 2)
    enc.encoder.load_state_dict(state)
    if enc.quant_conv is not None and kernel_vae.quant_conv is not None:
        enc.quant_conv.load_state_dict(kernel_vae.quant_conv.state_dict())
    pretrained = bool(kernel_info.pretrained) if kernel_info else False
    return enc, ModelInfo(cfg.architecture, pretrained, "kernel encoder of step 1", count_parameters(enc))


@torch.no_grad()
def latent_shape(encoder_fn, in_channels: int, device="cpu") -> tuple[int, ...]:
    """Shape (C, H, W) of the latent mean for one 64x64 input with ``in_channels`` channels."""
    x = torch.zeros(1, in_channels, IMAGE_SIZE, IMAGE_SIZE, device=device)
    out = encoder_fn(x)
    mean = out[0] if isinstance(out, tuple) else out.latent_dist.mean
    return tuple(mean.shape[1:])


@torch.no_grad()
def kernel_latents(vae, kernels, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel encoder's latent mean and log-variance of (K, 64, 64) kernels on [0, 1]
    (numpy or memory-mapped), each (K, 4, 8, 8), on the CPU."""
    means, logvars = [], []
    device = next(vae.parameters()).device
    for start in range(0, len(kernels), batch_size):
        x = torch.from_numpy(np.array(kernels[start:start + batch_size], dtype=np.float32))[:, None]
        post = vae.encode(to_model_scale(x.to(device))).latent_dist
        means.append(post.mean.cpu())
        logvars.append(post.logvar.cpu())
    return torch.cat(means), torch.cat(logvars)
