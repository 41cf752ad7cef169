"""The methods a table compares, loaded from a run: every trained network, the physics
baselines and the hybrid, each as a function (B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64)
kernels on [0, 1].

* ``mean_kernel`` -- the mean of the training kernels, predicted for every observation: the
  floor every method has to beat.
* ``one_step`` -- the baseline network, (Y, M) -> kernel, using the posterior mean.
* ``two_step`` -- (Y, M) -> observation encoder -> latent mean -> frozen kernel decoder.
* ``defect_average``, ``least_squares`` -- the physics baselines of :mod:`qpi_utils.baselines`
  (least squares with its regularisation chosen on validation observations), with the defects
  binned to the pixels of M.
* ``least_squares_subpixel`` -- the same least squares with the defects at their continuous
  labelled positions (the forward model the simulator renders with); the only method that
  reads the positions, not just (Y, M): a :class:`NeedsPositions`.
* ``least_squares_auto`` -- sub-pixel least squares with lambda chosen per observation from the
  observation alone (the discrepancy principle with the noise level read from its spectrum,
  :func:`baselines.least_squares_discrepancy`): what a user can run on a real map.
* ``hybrid`` -- two-step, refined so the decoded kernel explains Y through the forward model
  (binned defects, (Y, M) only); its step size, prior weight and step count chosen on
  validation observations (:func:`baselines.choose_hybrid_settings`).
* ``hybrid_subpixel`` -- the same refinement with the kernel at the labelled sub-pixel
  positions, then least squares centred on the decoded kernel with lambda by the discrepancy
  principle, positions refined where the model cannot reach the noise level
  (:func:`baselines.hybrid` with positions): a :class:`NeedsPositions`.
"""

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
from .splits import Splits

__all__ = ["METHODS", "NETWORKS", "NeedsPositions", "TrainedModels", "load_models", "gpu_autocast", "predict_two_step",
           "predict_one_step", "predict_dataset"]

METHODS = ("mean_kernel", "one_step", "two_step", "defect_average", "least_squares", "least_squares_subpixel",
           "least_squares_auto", "hybrid", "hybrid_subpixel")
HYBRIDS = ("hybrid", "hybrid_subpixel")


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
    """(B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64) kernels on [0, 1]."""
    with gpu_autocast(observations):
        mean, _ = encoder(to_model_scale(observations))
        return from_model_scale(decoder_vae.decode(mean).sample).float()


@torch.no_grad()
def predict_one_step(model, observations: torch.Tensor) -> torch.Tensor:
    """(B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64) kernels on [0, 1] (posterior mean)."""
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
    return np.concatenate(out) if out else np.zeros((0, 64, 64), np.float32)


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
    only: tuple[str, ...] = METHODS
    hybrid_settings: dict | None = None  # chosen on validation: {hybrid_lr, hybrid_mu, hybrid_steps}
    hybrid_scores: dict | None = None

    @property
    def hybrid_physics(self):
        """The profile's physics section with the hybrid settings chosen on validation."""
        return dataclasses.replace(self.profile.physics, **(self.hybrid_settings or {}))

    def methods(self) -> dict:
        """name -> (predict function on (B, 2, 64, 64) [0,1] tensors -> (B, 1, 64, 64), pretrained),
        for the methods this object was loaded for (:attr:`only`, in :data:`METHODS` order)."""
        return {name: entry for name, entry in self._all_methods().items() if name in self.only}

    def _all_methods(self) -> dict:
        ph = self.profile.physics
        mean_kernel = np.asarray(self.ds.kernels[self.splits.train_kernels], np.float64).mean(0)
        mk = torch.from_numpy(mean_kernel).float()

        def numpy_method(fn):
            def run(x):
                xn = x.detach().cpu().double().numpy()
                return torch.from_numpy(fn(xn[:, 0], xn[:, 1])).float()[:, None].to(x.device)

            return run

        pre = self.infos["kernel_vae"].pretrained if "kernel_vae" in self.infos else None
        return {
            "mean_kernel": (lambda x: mk.to(x.device).expand(len(x), 1, 64, 64), False),
            "one_step": (lambda x: predict_one_step(self.one_step, x),
                         self.infos["one_step"].pretrained if "one_step" in self.infos else None),
            "two_step": (lambda x: predict_two_step(self.observation_encoder, self.kernel_vae, x), pre),
            "defect_average": (numpy_method(defect_average), False),
            "least_squares": (numpy_method(lambda y, m: least_squares(y, m, lam=self.ls_lambda,
                                                                       iterations=ph.ls_iterations)), False),
            "least_squares_subpixel": (NeedsPositions(lambda x, positions: numpy_method(
                lambda y, m: least_squares(y, m, lam=self.ls_subpixel_lambda, iterations=ph.ls_iterations,
                                           positions=positions))(x)), False),
            "least_squares_auto": (NeedsPositions(lambda x, positions: numpy_method(
                lambda y, m: least_squares_discrepancy(y, m, grid=ph.ls_lambda_grid, iterations=ph.ls_iterations,
                                                       positions=positions)[0])(x)), False),
            "hybrid": (lambda x: hybrid(self.observation_encoder, self.kernel_vae, x, self.hybrid_physics), pre),
            "hybrid_subpixel": (NeedsPositions(lambda x, positions: hybrid(
                self.observation_encoder, self.kernel_vae, x, self.hybrid_physics, positions=positions)), pre),
        }


NETWORKS = {"one_step": ("one_step",), "two_step": ("kernel_vae", "alignment"), "hybrid": ("kernel_vae", "alignment"),
            "hybrid_subpixel": ("kernel_vae", "alignment")}


def load_models(profile: Profile, run: RunLayout | str | Path, methods: tuple[str, ...] = METHODS) -> TrainedModels:
    """Load the dataset, splits and the trained networks ``methods`` need from a run directory,
    and (for least squares) choose its regularisation on validation observations
    (:func:`baselines.choose_regularisation`)."""
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
                              ("one_step", load_one_step, "one_step")):
        if step in steps:
            net, infos[key] = loader(profile, layout, ds)
            nets[key] = net.to(device)
    chosen = {}
    ph = profile.physics
    calib = splits.validation_pairs(ph.ls_calibration_observations, seed=profile.simulation.split_seed)
    for method, use_positions in (("least_squares", False), ("least_squares_subpixel", True)):
        if method in methods:  # each variant gets its own lambda, by the same rule on the same observations
            x = stack_pairs(ds, calib).double().numpy()
            positions = np.asarray(ds.positions[calib[:, 0], calib[:, 1]], np.float64) if use_positions else None
            chosen[method] = choose_regularisation(x[:, 0], x[:, 1], np.asarray(ds.kernels)[calib[:, 0]],
                                                   grid=ph.ls_lambda_grid, iterations=ph.ls_iterations,
                                                   positions=positions)
    hybrid_settings, hybrid_scores = None, None
    if set(HYBRIDS) & set(methods):  # the latent refinement's settings, on validation observations too
        pick = splits.validation_pairs(ph.hybrid_calibration_observations, seed=profile.simulation.split_seed)
        hybrid_settings, hybrid_scores = choose_hybrid_settings(
            nets["observation_encoder"], nets["kernel_vae"], stack_pairs(ds, pick).to(device),
            np.asarray(ds.kernels)[pick[:, 0]], ph)
    lam, scores = chosen.get("least_squares", (None, {}))
    lam_sub, scores_sub = chosen.get("least_squares_subpixel", (None, {}))
    return TrainedModels(profile, ds, splits, nets.get("kernel_vae"), nets.get("observation_encoder"),
                         nets.get("one_step"), infos, device, lam, scores, layout,
                         only=tuple(m for m in METHODS if m in methods), ls_subpixel_lambda=lam_sub,
                         ls_subpixel_scores=scores_sub, hybrid_settings=hybrid_settings, hybrid_scores=hybrid_scores)
