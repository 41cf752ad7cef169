"""The kit prior's corpus and pretraining (``qpi pretrain``): the lab makes the prior once and
commits it as ``priors/<name>.safetensors``; training reads it (:func:`qpi_utils.models.load_kit_prior`)
and checks the corpus rule against its own dataset (:func:`qpi_utils.prior.check_held_out`).

The corpus rule (:class:`qpi_utils.config.PriorConfig`): kernels drawn by the simulator's own
sampler, none within ``min_distance`` (:func:`qpi_utils.prior.parameter_distance`) of a validation or
OOD test kernel of the datasets of ``protected_seeds``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from qpi_utils.checkpoints import digest, free_train_keys, load_blob
from qpi_utils.config import PriorConfig, Profile, SimulationConfig
from qpi_utils.files import atomic_path
from qpi_utils.imaging import minmax_normalise
from qpi_utils.models import PRIOR_FREE_KEYS, build_kernel_vae, priors_dir, to_model_scale
from qpi_utils.plots import plot_history, save_figure
from qpi_utils.prior import draw_far_kernels
from qpi_utils.runs import RunLayout, as_layout
from qpi_utils.simulate import KERNEL_ORIGIN, PARAM_NAMES, kernel_spectrum, render_observations, sample_kernel_params
from qpi_utils.splits import make_splits
from qpi_utils.train import Validation, fit, kernel_vae_loss, reconstruct

from .provenance import provenance

__all__ = ["held_out_parameters", "corpus_parameters", "render_kernels", "train_prior", "write_prior"]


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
    return draw_far_kernels(n, rng, held_out_parameters(simulation, prior.protected_seeds), simulation,
                            prior.min_distance)


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


class _CorpusKernels(torch.utils.data.Dataset):
    """The prior's corpus as :class:`~qpi_utils.data.KernelDataset` items."""

    def __init__(self, kernels: np.ndarray, symmetry: np.ndarray):
        self.kernels = torch.from_numpy(kernels)[:, None]
        self.symmetry = np.asarray(symmetry, np.int64)

    def __len__(self):
        return len(self.kernels)

    def __getitem__(self, i):
        return {"kernel": self.kernels[i], "symmetry": int(self.symmetry[i]), "kernel_id": int(i)}


def _corpus_kernels(layout: RunLayout, params: dict, supersample: int, progress: bool) -> np.ndarray:
    """The corpus rendered once and kept in the prior's run (``corpus/<hash>.npy``): a resumed
    training does not render it again."""
    path = layout.root / "corpus" / f"kernels-{digest({k: v.tolist() for k, v in params.items()})}.npy"
    if path.is_file():
        return np.load(path)
    kernels = render_kernels(params, supersample, progress)
    with atomic_path(path) as tmp:
        np.save(tmp, kernels)
    return kernels


def train_prior(profile: Profile, run: RunLayout | str | Path, progress: bool = True, restart: bool = False,
                stop_after: int | None = None) -> dict:
    """The kit prior: the model section's VAE, from random weights, trained with step 1's loss
    (``profile.pretrain``) on the corpus of ``profile.prior`` (:func:`qpi_utils.prior.corpus_parameters`),
    keeping the epoch that reconstructs the validation corpus best. ``run``: the prior's own run
    directory (no dataset needed). Returns the summary with ``history`` and the corpus parameters
    (``corpus``), which ``qpi pretrain`` commits with the weights."""
    layout = as_layout(run, profile)
    pc, sim, tcfg = profile.prior, profile.simulation, profile.pretrain
    params = corpus_parameters(pc, sim)
    val_params = corpus_parameters(pc, sim, validation=True)
    kernels = _corpus_kernels(layout, params, pc.supersample, progress)
    val = to_model_scale(torch.from_numpy(_corpus_kernels(layout, val_params, pc.supersample, progress))[:, None])
    model_cfg = dataclasses.replace(profile.model, pretrained=None)
    vae, info = build_kernel_vae(model_cfg)
    fingerprint = {"profile": profile.name, "step": "pretrain",
                   "model": {k: v for k, v in dataclasses.asdict(model_cfg).items() if k not in PRIOR_FREE_KEYS},
                   "train": {k: v for k, v in dataclasses.asdict(tcfg).items()
                             if k not in free_train_keys(dataclasses.asdict(tcfg))},
                   "prior": dataclasses.asdict(pc),
                   "ranges": {"frequency": list(sim.frequency_range), "decay": list(sim.decay_range)}}
    summary = fit(step="pretrain", model=vae, train_set=_CorpusKernels(kernels, params["symmetry"]),
                   validation=Validation(reconstruct, val, val, "validation corpus"), loss_fn=kernel_vae_loss(tcfg),
                   tcfg=tcfg, layout=layout, fingerprint=fingerprint, info=info, progress=progress, restart=restart,
                   stop_after=stop_after)
    return {**summary, "corpus": params, "fingerprint": fingerprint}


def write_prior(profile: Profile, run: RunLayout | str | Path, out: Path | None = None, progress: bool = True,
                restart: bool = False, command: str = "") -> tuple[dict, Path]:
    """:func:`train_prior`, then the weights, the corpus parameters and the provenance in one
    safetensors file, ``out`` (default ``<priors_dir>/<prior.name>.safetensors``), written
    atomically: what ``model.pretrained = "qpi-kit/<prior.name>"`` loads. Returns (summary, out)."""
    layout = as_layout(run, profile)
    summary = train_prior(profile, layout, progress=progress, restart=restart)
    history, corpus, fp = summary.pop("history"), summary.pop("corpus"), summary.pop("fingerprint")
    save_figure(plot_history(history, "pretrain", best_epoch=summary["best_epoch"]), layout.figure("pretrain_loss"),
                close=True)
    blob = load_blob(layout.model("pretrain"), "pretrain", fp)
    tensors = {k: v.contiguous() for k, v in blob["state_dict"].items()}
    tensors.update({f"corpus.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in corpus.items()})
    out = Path(out) if out else priors_dir() / f"{profile.prior.name}.safetensors"
    record = provenance(profile, None, {"model": fp["model"], "prior": fp["prior"], "pretrain": fp["train"],
                                        "ranges": fp["ranges"], "summary": summary, "history": history,
                                        "command": command})
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata={"provenance": json.dumps(record, default=str)})
    return summary, out
