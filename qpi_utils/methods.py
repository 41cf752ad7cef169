"""The one registry of methods (:data:`METHODS`) that tables, sweeps, seeds and real maps read: each
maps the loaded run and a (B, 2, S, S) (Y, M) batch on [0, 1] to (B, 1, S, S) kernels on [0, 1].
A new baseline is one function plus one line in :data:`METHODS` (``docs/library.md``)."""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .baselines import (choose_hybrid_settings, choose_regularisation, defect_average, hybrid, least_squares,
                        least_squares_discrepancy)
from .checkpoints import load_data, load_kernel_vae, load_observation_encoder, load_one_step
from .config import Profile
from .data import ObservationDataset, QPIDataset, stack_pairs
from .models import from_model_scale, to_model_scale
from .runs import RunLayout, as_layout
from .simulate import IMAGE_SIZE
from .splits import Splits
from .validate import network_batch

__all__ = ["Method", "METHODS", "NETWORKS", "NeedsPositions", "TrainedModels", "load_models", "gpu_autocast",
           "predict_two_step", "predict_one_step", "predict_dataset", "numpy_method"]


class NeedsPositions:
    """A method that takes, besides the (B, 2, 64, 64) (Y, M) tensor, the labelled defects'
    continuous positions: ``fn(x, positions)`` with positions a (B, S, 2) float array of (x, y)
    in pixels, NaN for unused slots. :func:`predict_dataset` passes them from the dataset."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
        return self.fn(x, positions)


def gpu_autocast(x: torch.Tensor):
    """fp16 autocast for inference on a CUDA tensor (the SDXL-VAE is fp16-safe: the fp16-fix
    weights); a no-op on the CPU, where results stay fp32 and bit-reproducible."""
    return torch.autocast("cuda", dtype=torch.float16, enabled=x.is_cuda)


@torch.no_grad()
def predict_two_step(encoder, decoder_vae, observations: torch.Tensor) -> torch.Tensor:
    """(B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64) kernels on [0, 1]. Numpy or torch, any
    real dtype, on any device: converted to the encoder's (qpi_utils.validate)."""
    observations = network_batch("observations", observations, encoder, channels=2)
    with gpu_autocast(observations):
        mean, _ = encoder(to_model_scale(observations))
        return from_model_scale(decoder_vae.decode(mean).sample).float()


@torch.no_grad()
def predict_one_step(model, observations: torch.Tensor) -> torch.Tensor:
    """(B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64) kernels on [0, 1] (posterior mean).
    Numpy or torch, any real dtype, on any device: converted to the model's (qpi_utils.validate)."""
    observations = network_batch("observations", observations, model, channels=2)
    with gpu_autocast(observations):
        mean = model.encode(to_model_scale(observations)).latent_dist.mean
        return from_model_scale(model.decode(mean).sample).float()


@torch.no_grad()
def predict_dataset(predict, ds: QPIDataset, pairs: np.ndarray, batch_size: int = 64, device="cpu",
                    progress: bool = False, desc: str = "predict") -> np.ndarray:
    """Run ``predict((B, 2, 64, 64) tensor) -> (B, 1, 64, 64)`` over the pairs; (N, 64, 64) float32.
    A :class:`NeedsPositions` method also gets the pairs' labelled positions from ``ds``."""
    from tqdm.auto import tqdm

    data = ObservationDataset(ds, pairs)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    positions = None
    if isinstance(predict, NeedsPositions):
        positions = np.asarray(ds.positions[data.pairs[:, 0], data.pairs[:, 1]], np.float64) if len(data) else None
    out = []
    for i, batch in enumerate(tqdm(loader, desc=desc, disable=not progress, leave=False)):
        x = batch["observation"].to(device)
        pred = predict(x) if positions is None else predict(x, positions[i * batch_size:i * batch_size + len(x)])
        out.append(pred.float().cpu().numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)


@dataclass
class TrainedModels:
    """Everything a trained run holds, loaded once (eval mode, frozen, on ``device``)."""

    profile: Profile
    ds: QPIDataset
    splits: Splits
    kernel_vae: torch.nn.Module | None  # None when not loaded (the methods asked for do not need it)
    observation_encoder: torch.nn.Module | None
    one_step: torch.nn.Module | None
    infos: dict
    device: str
    ls_lambda: float | None
    ls_scores: dict
    layout: RunLayout
    ls_subpixel_lambda: float | None = None
    ls_subpixel_scores: dict | None = None
    only: tuple[str, ...] = dataclasses.field(default_factory=lambda: tuple(METHODS))  # in METHODS order
    hybrid_settings: dict | None = None  # chosen on validation: {hybrid_lr, hybrid_mu, hybrid_steps}
    hybrid_scores: dict | None = None
    one_step_paper: torch.nn.Module | None = None  # the paper's one-step baseline (from the model section's weights)

    @property
    def ls_iterations(self) -> int:
        """CG iterations of the least-squares methods (the profile's)."""
        return self.profile.physics.ls_iterations

    @property
    def hybrid_physics(self):
        """The profile's physics section with the hybrid settings chosen on validation."""
        return dataclasses.replace(self.profile.physics, **(self.hybrid_settings or {}))

    def methods(self) -> dict:
        """name -> (predict function on (B, 2, S, S) [0,1] tensors -> (B, 1, S, S), pretrained), for
        the methods this object was loaded for (:attr:`only`, in :data:`METHODS` order); a method
        that reads positions comes as a :class:`NeedsPositions`."""
        out = {}
        for name in self.only:
            method = METHODS[name]
            if method.positions:
                fn = NeedsPositions(lambda x, positions, m=method: m.predict(self, x, positions))
            else:
                fn = lambda x, m=method: m.predict(self, x)
            net = method.networks[0] if method.networks else None
            pretrained = False if net is None else (self.infos[net].pretrained if net in self.infos else None)
            out[name] = (fn, pretrained)
        return out


def numpy_method(fn):
    """A batch function ``fn(y, m) -> (B, S, S)`` on float64 numpy arrays as a method on tensors:
    (B, 2, S, S) -> (B, 1, S, S) float32 on the input's device."""
    def run(x):
        xn = x.detach().cpu().double().numpy()
        return torch.from_numpy(fn(xn[:, 0], xn[:, 1])).float()[:, None].to(x.device)

    return run


# ------------------------------------------------------------------------------------------
# the registry: one function per method, one line per method in METHODS


@dataclass(frozen=True)
class Method:
    """One way of estimating kernels. ``predict(models, x, positions=None)``: ``models`` the loaded
    run (:class:`TrainedModels`: networks, dataset, choices made on validation), ``x`` (B, 2, S, S)
    (Y, M) on [0, 1], ``positions`` (B, N, 2) labelled (x, y) in px (NaN = unused) for methods that
    read them. ``networks``: the run's trained steps it needs (the first one's ``pretrained`` is
    reported). ``subset``: slow, so scored on ``physics.hybrid_test_observations`` of each test set.
    ``real_maps``: runs on windows of a real map (needs only (Y, M))."""

    name: str
    predict: object
    networks: tuple[str, ...] = ()
    positions: bool = False
    subset: bool = False
    real_maps: bool = False


def _mean_kernel(models, x, positions=None):
    mean = np.asarray(models.ds.kernels[models.splits.train_kernels], np.float64).mean(0)
    return torch.from_numpy(mean).float().to(x.device).expand(len(x), 1, *mean.shape)


def _one_step(models, x, positions=None):
    return predict_one_step(models.one_step, x)


def _one_step_paper(models, x, positions=None):
    return predict_one_step(models.one_step_paper, x)


def _two_step(models, x, positions=None):
    return predict_two_step(models.observation_encoder, models.kernel_vae, x)


def _defect_average(models, x, positions=None):
    return numpy_method(defect_average)(x)


def _least_squares(models, x, positions=None):
    lam = models.ls_subpixel_lambda if positions is not None else models.ls_lambda
    return numpy_method(lambda y, m: least_squares(y, m, lam=lam, iterations=models.ls_iterations,
                                                   positions=positions))(x)


def _least_squares_auto(models, x, positions):
    ph = models.profile.physics
    return numpy_method(lambda y, m: least_squares_discrepancy(y, m, grid=ph.ls_lambda_grid, iterations=ph.ls_iterations,
                                                               positions=positions)[0])(x)


def _hybrid(models, x, positions=None):
    return hybrid(models.observation_encoder, models.kernel_vae, x, models.hybrid_physics, positions=positions)


_TWO_STEP = ("kernel_vae", "alignment")
METHODS = {m.name: m for m in (
    Method("mean_kernel", _mean_kernel),
    Method("one_step", _one_step, networks=("one_step",), real_maps=True),
    Method("one_step_paper", _one_step_paper, networks=("one_step_paper",), real_maps=True),
    Method("two_step", _two_step, networks=_TWO_STEP, real_maps=True),
    Method("defect_average", _defect_average, real_maps=True),
    Method("least_squares", _least_squares, real_maps=True),
    Method("least_squares_subpixel", _least_squares, positions=True),
    Method("least_squares_auto", _least_squares_auto, positions=True),
    Method("hybrid", _hybrid, networks=_TWO_STEP, subset=True, real_maps=True),
    Method("hybrid_subpixel", _hybrid, networks=_TWO_STEP, positions=True, subset=True),
)}
NETWORKS = {name: m.networks for name, m in METHODS.items() if m.networks}  # method -> trained steps it needs


def load_models(profile: Profile, run: RunLayout | str | Path, methods: tuple[str, ...] | None = None,
                progress: bool = True) -> TrainedModels:
    """Load the dataset, splits and the trained networks ``methods`` need from a run directory,
    and make the choices they need on validation observations: least squares' regularisation
    (:func:`baselines.choose_regularisation`) and the hybrid's settings (a progress bar over them)."""
    from tqdm.auto import tqdm

    methods = tuple(METHODS) if methods is None else tuple(methods)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    layout = as_layout(run, profile)
    ds, splits = load_data(profile, layout)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    steps = {step for m in methods for step in NETWORKS.get(m, ())}
    nets, infos = {}, {}
    for step, loader, key in (("kernel_vae", load_kernel_vae, "kernel_vae"),
                              ("alignment", load_observation_encoder, "observation_encoder"),
                              ("one_step", load_one_step, "one_step"),
                              ("one_step_paper", lambda p, l, d: load_one_step(p, l, d, "one_step_paper"),
                               "one_step_paper")):
        if step in steps:
            net, infos[key] = loader(profile, layout, ds)
            nets[key] = net.to(device)
    chosen = {}
    ph = profile.physics
    calib = splits.validation_pairs(ph.ls_calibration_observations, seed=profile.simulation.split_seed)
    choices = [m for m in ("least_squares", "least_squares_subpixel") if m in methods]
    choices += ["hybrid settings"] if any(METHODS[m].subset for m in methods) else []
    bar = tqdm(total=len(choices), desc="choosing on validation", disable=not progress or not choices, leave=False)
    for method, use_positions in (("least_squares", False), ("least_squares_subpixel", True)):
        if method in methods:  # each variant gets its own lambda, by the same rule on the same observations
            x = stack_pairs(ds, calib).double().numpy()
            positions = np.asarray(ds.positions[calib[:, 0], calib[:, 1]], np.float64) if use_positions else None
            chosen[method] = choose_regularisation(x[:, 0], x[:, 1], np.asarray(ds.kernels)[calib[:, 0]],
                                                   grid=ph.ls_lambda_grid, iterations=ph.ls_iterations,
                                                   positions=positions)
            bar.update()
    hybrid_settings, hybrid_scores = None, None
    if any(METHODS[m].subset for m in methods):  # the latent refinement's settings, on validation observations too
        pick = splits.validation_pairs(ph.hybrid_calibration_observations, seed=profile.simulation.split_seed)
        hybrid_settings, hybrid_scores = choose_hybrid_settings(
            nets["observation_encoder"], nets["kernel_vae"], stack_pairs(ds, pick).to(device),
            np.asarray(ds.kernels)[pick[:, 0]], ph)
        bar.update()
    bar.close()
    lam, scores = chosen.get("least_squares", (None, {}))
    lam_sub, scores_sub = chosen.get("least_squares_subpixel", (None, {}))
    return TrainedModels(profile, ds, splits, nets.get("kernel_vae"), nets.get("observation_encoder"),
                         nets.get("one_step"), infos, device, lam, scores, layout,
                         only=tuple(m for m in METHODS if m in methods), ls_subpixel_lambda=lam_sub,
                         ls_subpixel_scores=scores_sub, hybrid_settings=hybrid_settings, hybrid_scores=hybrid_scores,
                         one_step_paper=nets.get("one_step_paper"))
