"""Errors of predicted kernels on [0, 1] (``*_pm1``: on [-1, 1]), the shape-only ``rmse_affine``,
and paired comparisons with kernels as units. See ``docs/library.md``."""

from __future__ import annotations

import numpy as np

from .validate import InputError, array

__all__ = ["errors", "paired_difference", "PAIRED_RULE"]

PAIRED_RULE = ("per-kernel paired bootstrap: the mean over kernels of each kernel's mean error difference "
               "(a - b) over the observations both methods scored; 95 % percentile interval from 10,000 "
               "resamples of the kernels (within each seed); a tie only when the interval covers zero")


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


def paired_difference(rows_a: list[dict], rows_b: list[dict], metric: str = "rmse", n_boot: int = 10_000,
                      seed: int = 0) -> dict:
    """Method a minus method b, paired (``docs/library.md`` and :data:`PAIRED_RULE`).

    ``rows_a``, ``rows_b``: per-sample rows (``per_sample.csv`` of one setting) with ``kernel``,
    ``observation``, ``metric`` and optionally ``seed`` (kernels of different seeds are different
    units; resampling stays within each seed). Only observations both scored count. Returns
    {"difference", "ci_low", "ci_high", "kernels", "observations", "a_better_kernels", "verdict"}
    with verdict "a" (a lower), "b" or "tie"."""
    key = lambda r: (int(r.get("seed", 0)), int(r["kernel"]), int(r["observation"]))
    a = {key(r): float(r[metric]) for r in rows_a}
    b = {key(r): float(r[metric]) for r in rows_b}
    common = sorted(a.keys() & b.keys())
    if not common:
        raise ValueError("the two methods share no scored observation: nothing to pair")
    units = sorted({k[:2] for k in common})
    index = {u: i for i, u in enumerate(units)}
    sums, counts = np.zeros(len(units)), np.zeros(len(units))
    for k in common:
        sums[index[k[:2]]] += a[k] - b[k]
        counts[index[k[:2]]] += 1
    per_kernel = sums / counts
    seeds = np.array([u[0] for u in units])
    rng = np.random.default_rng(seed)
    boot = np.zeros(n_boot)
    for s in np.unique(seeds):  # resample kernels within each seed; the estimate weighs every kernel equally
        members = np.flatnonzero(seeds == s)
        picks = rng.integers(0, len(members), size=(n_boot, len(members)))
        boot += per_kernel[members][picks].sum(1)
    boot /= len(units)
    lo, hi = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    return {"difference": float(per_kernel.mean()), "ci_low": lo, "ci_high": hi, "kernels": len(units),
            "observations": len(common), "a_better_kernels": int((per_kernel < 0).sum()),
            "verdict": "a" if hi < 0 else "b" if lo > 0 else "tie"}
