"""Error metrics of a predicted kernel against the true one.

Per sample, on the [0, 1] scale of the normalised kernels: MAE = mean |p - t|, MSE =
mean (p - t)^2, RMSE = sqrt(MSE). The ``*_pm1`` values are the same errors on the [-1, 1] scale
the authors' code reports (images mapped by 2x - 1: MAE and RMSE double, MSE quadruples).
Predictions are not clipped.

``rmse_affine`` is the RMSE after the best per-sample scale and offset (least squares, p -> s p
+ c): it does not penalise a contrast or background level a method cannot know (min-max scaling
of a kernel depends on its extremes), so methods are compared on their shape alone.
"""

from __future__ import annotations

import numpy as np

from .validate import InputError, array

__all__ = ["errors"]


def _batch(name: str, x) -> np.ndarray:
    """(N, H, W) finite float64: a 2-D array is refused, as its rows would be scored as images."""
    arr = array(name, x)
    if arr.ndim != 3 or 0 in arr.shape:
        raise InputError(f"{name} must be a batch of images (N, H, W), got shape {arr.shape}: give one image as "
                         "image[None]")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} holds NaN or inf")
    return arr


def errors(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample MAE, MSE, RMSE of (N, H, W) images on [0, 1] and on [-1, 1]."""
    pred, target = _batch("predictions", pred), _batch("targets", target)
    if pred.shape != target.shape:
        raise InputError(f"predictions {pred.shape} and targets {target.shape} must be (N, H, W) of one shape")
    d = (pred - target).reshape(len(pred), -1)
    mae, mse = np.abs(d).mean(1), (d * d).mean(1)
    rmse = np.sqrt(mse)
    p = pred.reshape(len(pred), -1)
    t = target.reshape(len(target), -1)
    pc, tc = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    scale = (pc * tc).sum(1) / np.maximum((pc * pc).sum(1), 1e-24)  # a flat prediction gets scale 0
    rmse_affine = np.sqrt(((scale[:, None] * pc - tc) ** 2).mean(1))
    return {"mae": mae, "mse": mse, "rmse": rmse, "mae_pm1": 2 * mae, "mse_pm1": 4 * mse, "rmse_pm1": 2 * rmse,
            "rmse_affine": rmse_affine}
