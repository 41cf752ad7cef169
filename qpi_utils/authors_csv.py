"""The authors' released CSV format (QPI-Dataset-100kernels) and symmetry estimation for data
that do not state it.

:func:`load_authors_csv` reads their files into a :class:`qpi_utils.data.QPIDataset`;
:func:`write_authors_csv` writes ours in their layout (tests, and handing our data to their
code); :func:`estimate_symmetry` finds a kernel's rotational order from its image.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .data import FORMAT_VERSION, DatasetError, QPIDataset, content_hash
from .files import atomic_path
from .imaging import minmax_normalise, rotate_image
from .simulate import activation_map, symmetry_angles

__all__ = ["load_authors_csv", "write_authors_csv", "estimate_symmetry"]


def estimate_symmetry(kernel: np.ndarray, threshold: float = 0.9, origin: float | None = None) -> int:
    """Highest rotational order n in (6, 4, 3, 2) whose rotations all correlate with the kernel
    above ``threshold`` inside a central disc; 0 (isotropic) if generic angles do too.

    Rotation about ``origin`` (pixel coordinate of the scatterer, both axes; default the
    geometric centre (size-1)/2).
    """
    img = np.asarray(kernel, dtype=np.float64)
    size = img.shape[0]
    c = (size - 1) / 2 if origin is None else float(origin)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - c) ** 2 + (xx - c) ** 2 <= (0.4 * size) ** 2
    ref = img - img[disc].mean()

    def corr(angle: float) -> float:
        r = rotate_image(img, angle, c, order=3, mode="nearest") - img[disc].mean()
        a, b = ref[disc], r[disc]
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30))

    if all(corr(a) > threshold for a in symmetry_angles(0)):
        return 0
    for n in (6, 4, 3, 2):
        if all(corr(a) > threshold for a in symmetry_angles(n)):
            return n
    return 2  # no clear symmetry: the weakest constraint the symmetric loss knows



_PLACEHOLDER = 1000.0


def _read_rows(path: Path) -> list[list[float]]:
    rows = []
    with open(path, newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                rows.append([float(c) for c in row if c.strip() != ""])
            except ValueError as exc:
                raise DatasetError(f"{path}, row {line_no}: not a number ({exc})") from None
    return rows


def load_authors_csv(paths: str | os.PathLike | Sequence[str | os.PathLike],
                     symmetry: Sequence[int] | None = None, order: str = "C") -> QPIDataset:
    """Load the authors' CSV files (one file per kernel) into a :class:`QPIDataset`.

    File format (per the dataset's README): row 1 ``[resolution, max scatterers]``; row 2 the
    x coordinate (angstrom) of each pixel column; row 3 the flattened kernel then (x, y) of up
    to ``max scatterers`` scatterers (the kernel's own at (0, 0)); later rows one observation
    each, same layout; unused slots hold 1000. Images are flattened in ``order`` ("C": row by
    row); y uses the same pixel coordinates as x. Every file must have the same resolution and
    number of observations.

    ``symmetry``: the order of each kernel (0, 2, 3, 4, 6) when known; otherwise it is estimated
    from the kernel image (:func:`estimate_symmetry`) and ``meta["symmetry_source"]`` says so.
    Positions are converted to pixels; the kernel origin is where (0, 0) falls (31.5 for their
    -50..50 angstrom axis), recorded in ``meta["kernel_origin"]``.
    """
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        paths = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("no CSV files given")
    kernels, observations, positions, coords0 = [], [], [], None
    for path in paths:
        if not path.is_file():
            raise DatasetError(f"{path}: file not found")
        rows = _read_rows(path)
        if len(rows) < 4:
            raise DatasetError(f"{path}: needs at least 4 rows (header, coordinates, kernel, one observation), has {len(rows)}")
        if len(rows[0]) < 2:
            raise DatasetError(f"{path}, row 1: expected [resolution, max scatterers], got {rows[0]}")
        res, max_s = int(rows[0][0]), int(rows[0][1])
        if res <= 0 or max_s <= 0:
            raise DatasetError(f"{path}, row 1: resolution and max scatterers must be positive, got {rows[0]}")
        coords = np.asarray(rows[1], dtype=np.float64)
        if coords.size != res:
            raise DatasetError(f"{path}, row 2: expected {res} x coordinates, got {coords.size}")
        width = res * res + 2 * max_s
        for i, row in enumerate(rows[2:], start=3):
            if len(row) != width:
                raise DatasetError(f"{path}, row {i}: expected {width} values ({res}x{res} image + {max_s} (x, y) pairs), got {len(row)}")
        data = np.asarray(rows[2:], dtype=np.float64)
        if not np.isfinite(data).all():
            r, c = np.argwhere(~np.isfinite(data))[0]
            raise DatasetError(f"{path}, row {r + 3}, column {c + 1}: NaN or inf")
        if coords0 is None:
            coords0 = coords
        elif coords.shape != coords0.shape or not np.allclose(coords, coords0):
            raise DatasetError(f"{path}: pixel coordinates (row 2) differ from {paths[0]}")
        images = data[:, : res * res].reshape(-1, res, res, order=order)
        xy = data[:, res * res:].reshape(-1, max_s, 2)
        unused = np.abs(xy - _PLACEHOLDER).max(-1) < 1e-6
        step = (coords[-1] - coords[0]) / (res - 1)
        pix = (xy - coords[0]) / step
        pix[unused] = np.nan
        kernels.append(images[0])
        observations.append(images[1:])
        positions.append(pix[1:])
    n_obs = {len(o) for o in observations}
    if len(n_obs) != 1:
        raise DatasetError(f"files have different numbers of observations: {sorted(n_obs)}")
    kernels_arr = np.stack(kernels)
    obs_arr = np.stack(observations)
    pos_arr = np.stack(positions).astype(np.float32)
    k_norm, k_range = minmax_normalise(kernels_arr)
    o_norm, o_range = minmax_normalise(obs_arr)
    origin = float(-coords0[0] / ((coords0[-1] - coords0[0]) / (len(coords0) - 1)))
    if symmetry is None:
        sym = np.array([estimate_symmetry(k, origin=origin) for k in k_norm], dtype=np.int64)
        source = "estimated from the kernel images (qpi_utils.authors_csv.estimate_symmetry)"
    else:
        sym = np.asarray(symmetry, dtype=np.int64)
        if sym.shape != (len(paths),):
            raise DatasetError(f"symmetry must give one order per file ({len(paths)}), got shape {sym.shape}")
        source = "given by the user"
    nan = np.full(len(paths), np.nan)
    arrays = {
        "kernels": k_norm.astype(np.float32),
        "observations": o_norm.astype(np.float32),
        "activation_maps": activation_map(pos_arr, kernels_arr.shape[-1]),
        "positions": pos_arr,
        "n_scatterers": np.isfinite(pos_arr[..., 0]).sum(-1).astype(np.int16),
        "outside_positions": np.full(pos_arr.shape[:2] + (0, 2), np.nan, np.float32),
        "kernel_range": k_range,
        "observation_range": o_range,
        "param_symmetry": sym,
        "param_orientation": nan, "param_frequency": nan, "param_phase": nan, "param_decay": nan,
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "source": "authors' CSV files",
        "files": [str(p) for p in paths],
        "profile": "authors",
        "seed": None,
        "kernel_origin": [origin, origin],
        "pixel_size_angstrom": float((coords0[-1] - coords0[0]) / (len(coords0) - 1)),
        "symmetry_source": source,
        "content_hash": content_hash(arrays),
    }
    return QPIDataset.from_arrays(arrays, meta, where=f"CSV files {paths[0].parent}")


def write_authors_csv(path: str | os.PathLike, kernel: np.ndarray, observations: np.ndarray,
                      positions_px: np.ndarray, kernel_origin: float, pixel_size: float,
                      max_scatterers: int = 100) -> Path:
    """Write one kernel and its observations in the authors' CSV layout (used by the tests, and
    to hand our data to their code). positions_px: (O, S, 2) (x, y) in pixels, NaN = unused."""
    path = Path(path)
    res = kernel.shape[0]
    coords = (np.arange(res) - kernel_origin) * pixel_size

    def row(image, xy_px):
        xy = np.full((max_scatterers, 2), _PLACEHOLDER)
        xy_px = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
        xy_px = xy_px[np.isfinite(xy_px).all(1)]
        xy[: len(xy_px)] = (xy_px - kernel_origin) * pixel_size
        return list(np.asarray(image, dtype=np.float64).reshape(-1)) + list(xy.reshape(-1))

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([res, max_scatterers])
        w.writerow(list(coords))
        w.writerow(row(kernel, [[kernel_origin, kernel_origin]]))
        for img, xy in zip(observations, positions_px):
            w.writerow(row(img, xy))
    return path
