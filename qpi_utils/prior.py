"""The kit's kernel prior (the SDXL-VAE's role on a CPU) and the rule that keeps OOD kernels out of
its corpus and out of a dataset's training-only kernels. See ``docs/library.md``."""

from __future__ import annotations

import numpy as np

from .config import KIT_PRIOR, Profile, SimulationConfig
from .errors import DatasetError, QpiError
from .simulate import PARAM_NAMES, sample_kernel_params
from .splits import make_splits

__all__ = ["PriorLeakError", "normalised_parameters", "parameter_distance", "draw_far_kernels", "check_held_out",
           "extra_kernel_params", "check_extra_kernels", "variant_prior"]


class PriorLeakError(QpiError, ValueError):
    """A run's held-out kernel lies too close to a kernel the prior was trained on."""


def normalised_parameters(params: dict, simulation: SimulationConfig) -> np.ndarray:
    """(K, 4) coordinates in [0, 1): orientation / (2 pi / n) (0 for isotropic kernels), frequency
    and decay over the simulation's ranges, phase / 2 pi. ``params``: dict of (K,) arrays."""
    sym = np.asarray(params["symmetry"], np.int64)
    period = np.where(sym > 0, 2 * np.pi / np.maximum(sym, 1), 1.0)
    (f0, f1), (d0, d1) = simulation.frequency_range, simulation.decay_range
    return np.stack([np.where(sym > 0, np.asarray(params["orientation"]) / period, 0.0) % 1.0,
                     (np.asarray(params["frequency"]) - f0) / max(f1 - f0, 1e-12),
                     np.asarray(params["phase"]) / (2 * np.pi) % 1.0,
                     (np.asarray(params["decay"]) - d0) / max(d1 - d0, 1e-12)], axis=1)


def parameter_distance(a: dict, b: dict, simulation: SimulationConfig) -> np.ndarray:
    """(len(a), len(b)) distances between two sets of kernels (``docs/library.md``): circular in
    orientation and phase, infinite between different symmetries."""
    x, y = normalised_parameters(a, simulation), normalised_parameters(b, simulation)
    d = np.abs(x[:, None, :] - y[None, :, :])
    d[..., [0, 2]] = np.minimum(d[..., [0, 2]], 1.0 - d[..., [0, 2]])
    dist = np.sqrt((d ** 2).sum(-1))
    same = np.asarray(a["symmetry"])[:, None] == np.asarray(b["symmetry"])[None, :]
    return np.where(same, dist, np.inf)


def draw_far_kernels(n: int, rng: np.random.Generator, held: dict, simulation: SimulationConfig,
                     min_distance: float) -> dict:
    """``n`` kernels' parameters (dict of (n,) arrays) drawn by the simulator's sampler over
    ``simulation``'s ranges, none within ``min_distance`` of a kernel of ``held`` (the rule of
    the kit prior's corpus, and of a dataset's training-only kernels). Deterministic given ``rng``."""
    kept = {k: [] for k in PARAM_NAMES}
    count = 0
    while count < n:  # draw in blocks; the classes stay balanced because the sampler cycles them
        block = sample_kernel_params(max(2 * (n - count), 10), rng, simulation.frequency_range, simulation.decay_range)
        far = parameter_distance(block, held, simulation).min(axis=1) >= min_distance
        take = np.flatnonzero(far)[: n - count]
        for k in PARAM_NAMES:
            kept[k].append(block[k][take])
        count += len(take)
    return {k: np.concatenate(v) for k, v in kept.items()}


def check_held_out(corpus: dict, ds_params: dict, held_out: np.ndarray, simulation: SimulationConfig,
                   min_distance: float, name: str) -> float:
    """Raise :class:`PriorLeakError` when a held-out kernel (indices ``held_out`` into the dataset's
    parameters ``ds_params``) lies within ``min_distance`` of the prior's corpus ``corpus``; else
    return the smallest distance found."""
    held = {k: np.asarray(v)[held_out] for k, v in ds_params.items()}
    nearest = parameter_distance(held, corpus, simulation).min(axis=1)
    closest = int(np.argmin(nearest))
    if nearest[closest] < min_distance:
        raise PriorLeakError(
            f"the prior {name!r} was trained on a kernel {nearest[closest]:.3f} from held-out kernel "
            f"{int(held_out[closest])} of this dataset (the rule keeps them {min_distance} apart): it protects other "
            "seeds' datasets. Make a prior for this one (`qpi pretrain --set prior.protected_seeds=[...]`) or set "
            "model.pretrained to null")
    return float(nearest[closest])


def extra_kernel_params(cfg: SimulationConfig, params: dict) -> dict:
    """The parameters of ``cfg.extra_train_kernels`` training-only kernels for a dataset whose
    first ``cfg.n_kernels`` kernels have ``params``: drawn by the simulator's sampler from a stream
    of their own (``[seed, 1]``), none within ``cfg.extra_min_distance``
    (:func:`qpi_utils.prior.parameter_distance`) of a validation or OOD kernel of the splits those
    kernels get, so the held-out kernels stay unseen (:func:`check_extra_kernels` checks it again
    when the data are read)."""
    splits = make_splits(params["symmetry"], cfg.n_observations, cfg.ood_fraction, cfg.id_test_fraction,
                         cfg.split_seed, cfg.val_kernel_fraction, cfg.val_fraction)
    held = np.concatenate([splits.val_kernels, splits.ood_kernels])
    return draw_far_kernels(cfg.extra_train_kernels, np.random.default_rng([cfg.seed, 1]),
                            {k: np.asarray(v)[held] for k, v in params.items()}, cfg, cfg.extra_min_distance)


def check_extra_kernels(cfg: SimulationConfig, params: dict, held_out: np.ndarray, where: str) -> None:
    """Raise :class:`DatasetError` when a training-only kernel (the last ``cfg.extra_train_kernels``
    of ``params``) lies within ``cfg.extra_min_distance`` of a held-out kernel (indices
    ``held_out``): the splits the data are read with are not the ones they were drawn for."""
    n = cfg.extra_train_kernels
    if not n:
        return
    extra = {k: np.asarray(v)[-n:] for k, v in params.items()}
    held = {k: np.asarray(v)[held_out] for k, v in params.items()}
    nearest = parameter_distance(held, extra, cfg).min(axis=1)
    if nearest.min() < cfg.extra_min_distance:
        i = int(np.argmin(nearest))
        raise DatasetError(f"{where}: held-out kernel {int(held_out[i])} lies {nearest[i]:.3f} from a training-only "
                           f"kernel (simulation.extra_min_distance {cfg.extra_min_distance}): the data were drawn for "
                           "other splits (split_seed, ood_fraction or val_kernel_fraction changed); simulate them again")


def variant_prior(profile: Profile, variant: str, loss_change: dict) -> dict:
    """The overrides that start a variant of step 1's loss from a kit prior pretrained with the same
    change (``loss_change``: pretrain settings such as ``{"alpha": 0.0}``), named
    ``<profile's prior>-<variant>``; {} when the profile starts from no kit prior. A variant that
    removes a loss from step 1 but starts from a prior trained with it would keep what it removes.
    The ablations (``qpi ablation``) make that prior with ``qpi pretrain``'s code; notebook 09 loads it.

    >>> from qpi_utils.config import get_profile
    >>> variant_prior(get_profile("quick"), "without-alpha-0", {"alpha": 0.0})["model.pretrained"]
    'qpi-kit/kernel-prior-small-without-alpha-0'
    """
    start = profile.model.pretrained or ""
    if not loss_change or not start.startswith(KIT_PRIOR):
        return {}
    name = f"{start[len(KIT_PRIOR):]}-{variant}"
    return {**{f"pretrain.{k}": v for k, v in loss_change.items()}, "prior.name": name,
            "model.pretrained": KIT_PRIOR + name}
