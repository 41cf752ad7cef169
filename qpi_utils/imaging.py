"""Small image operations every part of the kit shares (numpy): min-max scaling and rotation
about a pixel. The differentiable torch rotation of the symmetric loss is
:func:`qpi_utils.losses.rotate_about`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["minmax_normalise", "rotate_image"]


def minmax_normalise(images: np.ndarray, axes=(-2, -1)) -> tuple[np.ndarray, np.ndarray]:
    """Scale each image to [0, 1] (a constant image becomes 0).

    Returns (normalised, ranges) with ``ranges[..., 0]`` = min and ``ranges[..., 1]`` = max of the
    raw image, so ``raw = norm * (max - min) + min``.
    """
    images = np.asarray(images)
    lo = images.min(axis=axes, keepdims=True)
    hi = images.max(axis=axes, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = (images - lo) / span
    ranges = np.stack([np.squeeze(lo, axis=axes), np.squeeze(hi, axis=axes)], axis=-1)
    return norm, ranges


def rotate_image(image: np.ndarray, angle: float, origin: float, order: int = 3, mode: str = "constant") -> np.ndarray:
    """Rotate a 2-D image by ``angle`` (rad, counter-clockwise in (x, y)) about pixel
    (``origin``, ``origin``) with a spline of ``order`` (scipy.ndimage); ``mode`` fills pixels
    that come from outside the image."""
    from scipy.ndimage import affine_transform

    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    offset = np.array([origin, origin]) - rot @ np.array([origin, origin])
    return affine_transform(np.asarray(image, dtype=np.float64), rot, offset=offset, order=order, mode=mode)
