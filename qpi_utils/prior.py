"""A kernel prior the CPU can afford: the small VAE pretrained on a corpus of simulated kernels.

The paper fine-tunes the SDXL-VAE, pretrained on millions of natural images, on 80 kernels; that
prior is what lets step 1 generalise to unseen kernels. The quick profile's small VAE, trained on
70 kernels from random weights, has no such prior. The simulator makes kernels of the family for
free, so the kit pretrains the small VAE on a large corpus of them once (``qpi pretrain``; the
weights are committed as ``priors/<name>.safetensors``, as the paper downloads the SDXL-VAE), and
a profile starts from it with ``model.pretrained = "qpi-kit/<name>"``.

What keeps the OOD test out of domain (:class:`qpi_utils.config.PriorConfig` states the rule):
the corpus holds no kernel near a held-out one. The distance between two kernels of the same
symmetry is the Euclidean distance of their four continuous parameters, each scaled to [0, 1]
over its range (orientation over its period 2 pi / n, phase over 2 pi, both circular; frequency
and decay over the simulation's ranges); kernels of different symmetry are infinitely far apart.
The corpus drops every kernel within ``min_distance`` of a validation or OOD test kernel of the
datasets of ``protected_seeds``, and :func:`check_held_out` refuses the prior for a run whose
held-out kernels come closer to the corpus (a dataset of another seed, say) than that.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import PriorConfig, SimulationConfig
from .errors import QpiError
from .imaging import minmax_normalise
from .simulate import (KERNEL_ORIGIN, PARAM_NAMES, kernel_spectrum, render_observations,
                       sample_kernel_params)
from .splits import make_splits

__all__ = ["PriorLeakError", "normalised_parameters", "parameter_distance", "held_out_parameters",
           "corpus_parameters", "render_kernels", "check_held_out"]


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
    """(len(a), len(b)) distances between two sets of kernels (module docstring): circular in
    orientation and phase, infinite between different symmetries."""
    x, y = normalised_parameters(a, simulation), normalised_parameters(b, simulation)
    d = np.abs(x[:, None, :] - y[None, :, :])
    d[..., [0, 2]] = np.minimum(d[..., [0, 2]], 1.0 - d[..., [0, 2]])
    dist = np.sqrt((d ** 2).sum(-1))
    same = np.asarray(a["symmetry"])[:, None] == np.asarray(b["symmetry"])[None, :]
    return np.where(same, dist, np.inf)


def _dataset_parameters(simulation: SimulationConfig) -> dict:
    """The kernel parameters :func:`qpi_utils.data.simulate_dataset` draws for ``simulation``
    (the same stream: the first child of ``SeedSequence(seed)``), without rendering anything."""
    children = np.random.SeedSequence(simulation.seed).spawn(simulation.n_kernels + 1)
    return sample_kernel_params(simulation.n_kernels, np.random.default_rng(children[0]),
                                simulation.frequency_range, simulation.decay_range)


def held_out_parameters(simulation: SimulationConfig, seeds) -> dict:
    """Parameters of every validation and OOD test kernel of the datasets ``simulation`` makes with
    ``seed = split_seed = s`` for each s in ``seeds`` (how ``qpi seeds`` varies them)."""
    parts = []
    for seed in seeds:
        sim = dataclasses.replace(simulation, seed=int(seed), split_seed=int(seed))
        params = _dataset_parameters(sim)
        splits = make_splits(params["symmetry"], sim.n_observations, sim.ood_fraction, sim.id_test_fraction,
                             sim.split_seed, sim.val_kernel_fraction, sim.val_fraction)
        held = np.concatenate([splits.val_kernels, splits.ood_kernels])
        parts.append({k: v[held] for k, v in params.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in PARAM_NAMES}


def corpus_parameters(prior: PriorConfig, simulation: SimulationConfig, validation: bool = False) -> dict:
    """The corpus rule (:class:`~qpi_utils.config.PriorConfig`): ``prior.n_kernels`` kernels
    (``n_validation`` from an independent stream with ``validation``) drawn by the simulator's
    sampler, none within ``min_distance`` of a protected held-out kernel. Deterministic."""
    n = prior.n_validation if validation else prior.n_kernels
    rng = np.random.default_rng([prior.seed, int(validation)])
    held = held_out_parameters(simulation, prior.protected_seeds)
    kept = {k: [] for k in PARAM_NAMES}
    count = 0
    while count < n:  # draw in blocks; the classes stay balanced because the sampler cycles them
        block = sample_kernel_params(max(2 * (n - count), 10), rng, simulation.frequency_range, simulation.decay_range)
        far = parameter_distance(block, held, simulation).min(axis=1) >= prior.min_distance
        take = np.flatnonzero(far)[: n - count]
        for k in PARAM_NAMES:
            kept[k].append(block[k][take])
        count += len(take)
    return {k: np.concatenate(v) for k, v in kept.items()}


def render_kernels(params: dict, supersample: int, progress: bool = True, chunk: int = 256) -> np.ndarray:
    """(K, 64, 64) float32 kernels on [0, 1] (min-max scaled, as datasets store them), the
    scatterer on pixel (32, 32); rendered as :func:`qpi_utils.data.simulate_dataset` renders them."""
    from tqdm.auto import tqdm

    k_total = len(params["symmetry"])
    out = np.empty((k_total, 2 * KERNEL_ORIGIN, 2 * KERNEL_ORIGIN), np.float32)
    origin = np.array([[[KERNEL_ORIGIN, KERNEL_ORIGIN]]], dtype=np.float64)
    for start in tqdm(range(0, k_total, chunk), desc="render the corpus", unit="chunk", disable=not progress):
        part = {k: v[start:start + chunk] for k, v in params.items()}
        for i, spec in enumerate(kernel_spectrum(part, supersample=supersample)):
            out[start + i] = minmax_normalise(render_observations(spec, origin)[0])[0]
    return out


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
