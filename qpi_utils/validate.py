"""The one validation layer at the public API: inputs converted or refused with an
:class:`InputError` naming the argument, the value and what was expected; sizes checked against
free memory before allocating."""

from __future__ import annotations

import os

import numpy as np

from .errors import InputError
from .simulate import IMAGE_SIZE

__all__ = ["InputError", "SizeError", "array", "image_batch", "image", "frequency_band", "positive", "network_batch",
           "available_memory", "check_memory"]


def array(name: str, x) -> np.ndarray:
    """``x`` (numpy, torch on any device, nested lists) as a float64 array of real numbers."""
    if hasattr(x, "detach"):  # a torch tensor, on any device
        if x.is_complex():
            raise InputError(f"{name} must hold real numbers, got a complex tensor")
        x = x.detach().float().cpu().numpy()
    if np.iscomplexobj(x):
        raise InputError(f"{name} must hold real numbers, got complex values")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be an array of numbers, got {type(x).__name__} ({exc})") from None
    return arr


_array = array


LARGEST = 1e100  # beyond it squares overflow float64: the solvers' sums of squares would be inf


def _finite(name: str, arr: np.ndarray) -> np.ndarray:
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(f"{name} holds {bad} NaN or inf value(s): clean or mask them first")
    if arr.size and np.abs(arr).max() > LARGEST:
        raise InputError(f"{name} holds values beyond +-{LARGEST:g} (largest {np.abs(arr).max():g}): rescale the data first")
    return arr


def image_batch(name: str, x, channels: int | None = None, single: bool = True) -> np.ndarray:
    """A batch of 64x64 images as float64: (N, 64, 64), or (N, channels, 64, 64) when ``channels``
    is given. ``single``: one image without the batch axis is accepted as a batch of one."""
    arr = _array(name, x)
    want = (IMAGE_SIZE, IMAGE_SIZE) if channels is None else (channels, IMAGE_SIZE, IMAGE_SIZE)
    if single and arr.ndim == len(want):
        arr = arr[None]
    if arr.ndim != len(want) + 1 or arr.shape[1:] != want:
        shape = ", ".join(map(str, want))
        raise InputError(f"{name} must be a batch of shape (N, {shape})" + (f" or one image ({shape})" if single else "")
                         + f", got shape {arr.shape}")
    if len(arr) == 0:
        raise InputError(f"{name}: the batch is empty")
    return _finite(name, arr)


def image(name: str, x, min_size: int = 16) -> np.ndarray:
    """One finite 2-D map of at least ``min_size`` pixels a side, as float64."""
    arr = _array(name, x)
    if arr.ndim != 2 or min(arr.shape) < min_size:
        raise InputError(f"{name} must be one 2-D map of at least {min_size}x{min_size} pixels, got shape {arr.shape}")
    return _finite(name, arr)


def positive(name: str, value) -> float:
    """A finite number > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return v


def frequency_band(fmin, fmax) -> tuple[float, float]:
    """Search bounds in cycles per pixel: 0 < fmin < fmax <= 0.5 (the pixel Nyquist frequency)."""
    lo, hi = positive("fmin", fmin), positive("fmax", fmax)
    if not lo < hi <= 0.5:
        raise InputError(f"need 0 < fmin < fmax <= 0.5 cycles/px (the Nyquist frequency), got fmin={fmin}, fmax={fmax}")
    return lo, hi


def network_batch(name: str, x, network, channels: int):
    """(B, channels, 64, 64) for ``network``: numpy or torch, any real dtype, converted to the
    network's floating dtype and moved to its device (a single image gains the batch axis)."""
    import torch

    p = next(network.parameters())
    dtype = p.dtype if p.is_floating_point() else torch.float32
    if torch.is_tensor(x) and (x.is_floating_point() or not x.is_complex()):
        # a tensor stays a tensor (no copy through the host): checked where it is, then moved
        t = x.detach()[None] if x.ndim == 3 else x.detach()
        if t.ndim != 4 or tuple(t.shape[1:]) != (channels, IMAGE_SIZE, IMAGE_SIZE) or len(t) == 0:
            image_batch(name, t.cpu(), channels=channels)  # raises, with the same message as for arrays
        t = t.to(device=p.device, dtype=dtype)
        if not torch.isfinite(t).all():
            raise InputError(f"{name} holds {int((~torch.isfinite(t)).sum())} NaN or inf value(s): clean or mask them first")
        return t
    return torch.from_numpy(image_batch(name, x, channels=channels)).to(device=p.device, dtype=dtype)


class SizeError(InputError, MemoryError):
    """What was asked for would not fit in this machine's free memory; the message gives the estimate."""


def available_memory() -> int | None:
    """Bytes of memory free now (Linux: MemAvailable), or None where it cannot be read."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: float, what: str, fraction: float = 0.8) -> None:
    """Refuse ``what`` before allocating it when its estimated ``nbytes`` exceed ``fraction`` of
    the free memory, naming the estimate, what is free and which settings make it."""
    free = available_memory()
    if free is not None and nbytes > fraction * free:
        raise SizeError(f"{what} needs about {nbytes / 2**30:.1f} GiB, more than this machine has free "
                        f"({free / 2**30:.1f} GiB): lower the sizes that make it")
