"""Losses of the two-step method, on the model's [-1, 1] scale, batch-averaged: reconstruction MSE,
KL, the symmetric loss (alpha) and the alignment loss. The angle sets: ``docs/library.md``."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .simulate import KERNEL_ORIGIN, SYMMETRY_ORDERS, symmetry_angles

__all__ = ["reconstruction_loss", "kl_loss", "symmetric_loss", "alignment_loss", "rotate_about",
           "angle_table", "ANGLE_SETS", "WINDOW"]

WINDOW = 40  # side of the central window compared by the symmetric loss (the authors' 40x40)
# the authors' code (cal_symmetry_loss in training/stage1.py): 180 (2-fold), 120 (3-fold), 90 (4-fold),
# 60/120/180 (6-fold), 90/180 (isotropic, their "1-fold"), each rotated by + and - the angle
_AUTHORS_DEGREES = {0: (90.0, 180.0), 2: (180.0,), 3: (120.0,), 4: (90.0,), 6: (60.0, 120.0, 180.0)}


def _both_signs(degrees) -> tuple[float, ...]:
    """+-angle in rad, each rotation once (-180 is 180)."""
    return tuple(np.deg2rad(sorted({d % 360.0 for a in degrees for d in (a, -a)})))


ANGLE_SETS = {
    "group": {n: tuple(symmetry_angles(n)) for n in SYMMETRY_ORDERS},
    "authors": {n: _both_signs(d) for n, d in _AUTHORS_DEGREES.items()},
}
_MAX_ANGLES = max(len(a) for table in ANGLE_SETS.values() for a in table.values())


def reconstruction_loss(reconstruction: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(reconstruction, kernel)


def kl_loss(mean: torch.Tensor, logvar: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Mean over the batch of 0.5 * (mean^2 + var - 1 - logvar), summed (``"sum"``) or averaged
    (``"mean"``, the authors' code) over the latent's values."""
    per_value = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    return (per_value.sum(1) if reduction == "sum" else per_value.mean(1)).mean()


def angle_table(symmetry: torch.Tensor | np.ndarray | list, angle_set: str = "group") -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) symmetry orders -> angles (B, A) in rad and a (B, A) validity mask, A = 5 (6-fold)."""
    if angle_set not in ANGLE_SETS:
        raise ValueError(f"angle_set must be one of {', '.join(ANGLE_SETS)}, got {angle_set!r}")
    sym = torch.as_tensor(symmetry).long().cpu()
    lookup = torch.zeros(7, _MAX_ANGLES, dtype=torch.float64)
    valid = torch.zeros(7, _MAX_ANGLES, dtype=torch.bool)
    for n in SYMMETRY_ORDERS:
        a = torch.as_tensor(ANGLE_SETS[angle_set][n], dtype=torch.float64)
        lookup[n, : len(a)] = a
        valid[n, : len(a)] = True
    if ((sym < 0) | (sym > 6)).any() or not all(int(s) in SYMMETRY_ORDERS for s in sym.unique()):
        raise ValueError(f"symmetry orders must be in {SYMMETRY_ORDERS}, got {sym.unique().tolist()}")
    return lookup[sym], valid[sym]


def rotate_about(images: torch.Tensor, angles: torch.Tensor, origin: float = KERNEL_ORIGIN) -> torch.Tensor:
    """Rotate each image (N, C, H, W) by its angle (N,) in rad about pixel (origin, origin),
    bilinear, zeros outside (``affine_grid``/``grid_sample``, differentiable)."""
    n, _, h, w = images.shape
    if h != w:
        raise ValueError(f"rotate_about needs square images, got {h}x{w}")
    c = (2.0 * origin + 1.0) / w - 1.0  # pixel centre -> normalised coordinate (align_corners=False)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    theta[:, 0, 2] = c - (cos * c - sin * c)
    theta[:, 1, 2] = c - (sin * c + cos * c)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def symmetric_loss(reconstruction: torch.Tensor, kernel: torch.Tensor, symmetry, window: int = WINDOW,
                   origin: float = KERNEL_ORIGIN, angle_set: str = "group") -> torch.Tensor:
    """Mean over the batch of (mean over the sample's symmetry angles of
    MSE(rotate(reconstruction, angle)[window], kernel[window])).

    reconstruction, kernel: (B, 1, 64, 64); symmetry: (B,) orders (0 = isotropic); angle_set:
    a key of :data:`ANGLE_SETS`. One batched ``grid_sample`` for all (sample, angle) pairs.
    """
    b = reconstruction.shape[0]
    angles, valid = angle_table(symmetry, angle_set)
    angles = angles.to(reconstruction.device, reconstruction.dtype)
    valid = valid.to(reconstruction.device)
    a = angles.shape[1]
    rotated = rotate_about(reconstruction.repeat_interleave(a, dim=0), angles.reshape(-1), origin)
    lo = math.ceil(origin - window / 2)  # the window's first pixel: 12 for origin 32 or 31.5 and window 40
    sl = slice(lo, lo + window)
    diff = rotated[..., sl, sl].reshape(b, a, -1) - kernel[..., sl, sl].reshape(b, 1, -1)
    per_angle = diff.pow(2).mean(-1)  # (B, A)
    per_sample = (per_angle * valid).sum(1) / valid.sum(1).clamp(min=1)
    return per_sample.mean()


def alignment_loss(mean: torch.Tensor, logvar: torch.Tensor, target_mean: torch.Tensor,
                   target_logvar: torch.Tensor) -> torch.Tensor:
    """Step 2: MSE(mean, target_mean) + MSE(logvar, target_logvar)."""
    return F.mse_loss(mean, target_mean) + F.mse_loss(logvar, target_logvar)
