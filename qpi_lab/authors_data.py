"""The authors' released dataset (QPI-Dataset-100kernels, its own CSV format) as a run's dataset.

    qpi import-authors PATH... --run-dir runs/authors      # then qpi train-* and qpi evaluate as usual

The format, from the dataset's README (github.com/QPI-Dataset/QPI-Dataset-100kernels; the files
are the assets of its release v1.0.0, not in the repository): one CSV file per kernel; row 1
``[resolution, max scatterers]``; row 2 the real-space coordinate (angstrom) of each of the
``resolution`` pixel columns, -200 to 200 for their 400 angstrom field of view; row 3 the kernel,
flattened, then (x, y) in angstrom of up to ``max scatterers`` scatterers (the kernel's own at
(0, 0)); every later row one observation in the same layout; unused slots hold 1000.

Two conventions differ from the kit's simulator, and the import converts both:

- **Where the scatterer sits.** Their (0, 0) falls between pixels (31.5, 31.5 for -200..200 over
  64 pixels); the kit's kernels have it on pixel (32, 32) (:data:`qpi_utils.simulate.KERNEL_ORIGIN`),
  and its activation maps and forward model place the kernel's pixel 32 on each defect. So each
  defect's position becomes where the kernel's pixel 32 lands (their position + 0.5 px), and the
  dataset records ``kernel_origin`` = 31.5: the symmetric loss rotates about the true scatterer.
- **Scale.** Kernels and observations are min-max scaled to [0, 1] per image, as the kit's are;
  the raw ranges are kept (``kernel_range``, ``observation_range``).

Nothing states the image orientation (row-major? y down?) or the symmetry of each kernel. The
import checks the first against the physics: with the positions it read, the forward model of
the file's own kernel must explain the observations (:func:`forward_fit`, R^2 of an affine fit);
a file that fits only with x and y swapped, or not at all, is refused with the numbers. Symmetry
orders are given by the user or estimated from the kernel images (:func:`estimate_symmetry`),
and the dataset's ``symmetry_source`` says which.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from qpi_utils.data import FORMAT_VERSION, DatasetError, QPIDataset, content_hash
from qpi_utils.files import atomic_path
from qpi_utils.imaging import minmax_normalise, rotate_image
from qpi_utils.physics import ConvolutionOperator
from qpi_utils.simulate import IMAGE_SIZE, KERNEL_ORIGIN, PARAM_NAMES, SYMMETRY_ORDERS, activation_map, symmetry_angles
from qpi_utils.validate import check_memory

__all__ = ["load_authors_csv", "write_authors_csv", "estimate_symmetry", "forward_fit", "UNUSED", "MIN_FIT"]

UNUSED = 1000.0  # the placeholder of an unused scatterer slot (angstrom; far outside the view)
MIN_FIT = 0.9  # the median R^2 below which the positions and images do not describe each other


def estimate_symmetry(kernel: np.ndarray, origin: float, threshold: float = 0.9) -> int:
    """The highest rotational order n in (6, 4, 3, 2) whose rotations about ``origin`` (px, both
    axes) all correlate with the kernel above ``threshold`` inside a central disc; 0 (isotropic)
    when generic angles do too; 2 (the weakest constraint the symmetric loss knows) when none does.
    kernel: (H, W) any scale."""
    img = np.asarray(kernel, dtype=np.float64)
    size = img.shape[0]
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - origin) ** 2 + (xx - origin) ** 2 <= (0.4 * size) ** 2
    centred = img - img[disc].mean()

    def corr(angle: float) -> float:
        r = rotate_image(img, angle, origin, order=3, mode="nearest") - img[disc].mean()
        a, b = centred[disc], r[disc]
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30))

    for n in (0, 6, 4, 3, 2):
        if all(corr(a) > threshold for a in symmetry_angles(n)):
            return n
    return 2


def forward_fit(kernel: np.ndarray, observations: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(O,) R^2 of each observation against the forward model of ``kernel`` at ``positions``:
    ``1 - |Y - (a F(A) + b)|^2 / |Y - mean Y|^2`` with a, b fitted (the images are min-max scaled).

    kernel: (64, 64) on its raw scale (a min-max scaled kernel's offset does not convolve to a
    constant), scatterer on pixel (32, 32); observations: (O, 64, 64); positions: (O, S, 2)
    (x, y) px where the kernel's pixel 32 lands, NaN for unused slots."""
    op = ConvolutionOperator.from_positions(positions)
    model = op.forward(np.broadcast_to(kernel, observations.shape).copy())
    y = observations.reshape(len(observations), -1).astype(np.float64)
    f = model.reshape(len(model), -1)
    fc, yc = f - f.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    a = (fc * yc).sum(1) / np.maximum((fc * fc).sum(1), 1e-30)
    resid = yc - a[:, None] * fc
    return 1.0 - (resid ** 2).sum(1) / np.maximum((yc ** 2).sum(1), 1e-30)


def _read_rows(path: Path) -> list[np.ndarray]:
    """The file's non-empty rows as float64 arrays (one row at a time: a file of 500 observations
    is 2 million numbers, too many to hold as Python floats)."""
    rows = []
    with open(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            cells = [c for c in line.strip().split(",") if c.strip()]
            if not cells:
                continue
            try:
                rows.append(np.array(cells, dtype=np.float64))
            except ValueError as exc:
                raise DatasetError(f"{path}, row {line_no}: not a number ({exc})") from None
    return rows


def _read_file(path: Path, order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coordinates (R,), images (1 + O, R, R) with the kernel first, positions (1 + O, S, 2) in
    their pixel coordinates, NaN unused) of one file, every rule of the format checked."""
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows = _read_rows(path)
    if len(rows) < 4:
        raise DatasetError(f"{path}: needs at least 4 rows (header, coordinates, kernel, one observation), "
                           f"has {len(rows)}")
    head = rows[0][:2]
    if len(head) < 2 or not np.isfinite(head).all() or (head != np.round(head)).any():
        raise DatasetError(f"{path}, row 1: expected [resolution, max scatterers] (integers), got {rows[0][:4].tolist()}")
    res, max_s = int(rows[0][0]), int(rows[0][1])
    if res != IMAGE_SIZE:
        raise DatasetError(f"{path}, row 1: resolution {res}; the kit's networks take {IMAGE_SIZE} x {IMAGE_SIZE} "
                           "images")
    if not 1 <= max_s <= 1000:
        raise DatasetError(f"{path}, row 1: max scatterers must be in 1..1000, got {max_s}")
    coords = np.asarray(rows[1], dtype=np.float64)
    if coords.size != res or not np.isfinite(coords).all() or not (np.diff(coords) > 0).all():
        raise DatasetError(f"{path}, row 2: expected {res} increasing finite x coordinates, got {coords.size} values")
    step = np.diff(coords)
    if np.ptp(step) > 1e-6 * step.mean():
        raise DatasetError(f"{path}, row 2: the pixel coordinates are not evenly spaced "
                           f"(steps {step.min():g} to {step.max():g} angstrom)")
    width = res * res + 2 * max_s
    for i, row in enumerate(rows[2:], start=3):
        if len(row) != width:
            raise DatasetError(f"{path}, row {i}: expected {width} values ({res}x{res} image + {max_s} (x, y) "
                               f"pairs), got {len(row)}")
    data = np.stack(rows[2:])
    if not np.isfinite(data).all():
        r, c = np.argwhere(~np.isfinite(data))[0]
        raise DatasetError(f"{path}, row {r + 3}, column {c + 1}: NaN or inf")
    images = data[:, : res * res].reshape(-1, res, res, order=order)
    xy = data[:, res * res:].reshape(-1, max_s, 2)
    unused = (np.abs(xy - UNUSED) < 1e-6).all(-1)
    pixels = (xy - coords[0]) / step.mean()
    pixels[unused] = np.nan
    far = np.isfinite(pixels) & ((pixels < -0.5) | (pixels > res - 0.5))
    if far.any():
        r = int(np.argwhere(far)[0][0])
        raise DatasetError(f"{path}, row {r + 3}: a scatterer at {xy[far][0]:g} angstrom lies outside the "
                           f"{coords[0]:g}..{coords[-1]:g} field of view (unused slots must hold {UNUSED:g})")
    if np.isfinite(pixels[0]).all(-1).sum() != 1:
        raise DatasetError(f"{path}, row 3: the kernel row must have exactly one scatterer (its own, at 0, 0), "
                           f"found {int(np.isfinite(pixels[0]).all(-1).sum())}")
    return coords, images, pixels


def load_authors_csv(paths: str | os.PathLike | Sequence[str | os.PathLike], symmetry: Sequence[int] | None = None,
                     order: str = "C", min_fit: float = MIN_FIT) -> QPIDataset:
    """The authors' CSV files (one per kernel; a folder means its ``*.csv`` in name order) as a
    :class:`QPIDataset` the kit trains and evaluates on (see the module docstring).

    symmetry: one order per file (0, 2, 3, 4, 6), or None to estimate them; order: how the images
    are flattened ("C" row by row, "F" column by column). Raises :class:`DatasetError` naming the
    file, row and value for anything that breaks the format, and when the observations do not fit
    their positions (median R^2 of :func:`forward_fit` below ``min_fit``)."""
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        paths = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DatasetError("no CSV files given (a folder is read for its *.csv files)")
    if order not in ("C", "F"):
        raise DatasetError(f"order must be 'C' or 'F', got {order!r}")
    if symmetry is not None:
        symmetry = np.asarray(symmetry, dtype=np.int64)
        if symmetry.shape != (len(paths),) or not np.isin(symmetry, SYMMETRY_ORDERS).all():
            raise DatasetError(f"symmetry must give one order in {SYMMETRY_ORDERS} per file ({len(paths)} files), "
                               f"got {symmetry.tolist()}")
    kernels, observations, positions, coords0, fits = [], [], [], None, []
    for i, path in enumerate(paths):
        coords, images, pixels = _read_file(path, order)
        if i == 0:  # every file as large as the first: the dataset's arrays (float32) and their scaled copies
            check_memory(3 * len(paths) * images.size * 4.0, f"reading the {len(paths)} files of {path.parent}")
        if coords0 is None:
            coords0 = coords
        elif not np.allclose(coords, coords0):
            raise DatasetError(f"{path}, row 2: pixel coordinates differ from {paths[0]}'s")
        if observations and len(images) - 1 != len(observations[0]):
            raise DatasetError(f"{path}: {len(images) - 1} observations, {paths[0]} has {len(observations[0])}: "
                               "every kernel needs the same number")
        origin = round(float(pixels[0][np.isfinite(pixels[0]).all(-1)][0, 0]), 6)  # 31.5, not 31.4999...
        shift = KERNEL_ORIGIN - origin  # where the kernel's pixel 32 lands, relative to the scatterer
        kit_positions = pixels[1:] + shift
        fit = float(np.median(forward_fit(images[0], images[1:], kit_positions)))
        if fit < min_fit:
            swapped = float(np.median(forward_fit(images[0], images[1:], kit_positions[..., ::-1])))
            hint = ("they fit with x and y swapped (median R^2 %.3f): read the images with order='F' "
                    "(--order F)" % swapped if swapped >= min_fit else
                    "nor with x and y swapped (%.3f): the positions do not describe these images" % swapped)
            raise DatasetError(f"{path}: the observations do not fit the kernel at the listed scatterers (median "
                               f"R^2 {fit:.3f} < {min_fit}); {hint}")
        fits.append(fit)
        kernels.append(images[0])
        observations.append(images[1:])
        positions.append(kit_positions)
    origin = round(float(-coords0[0] / np.diff(coords0).mean()), 6)
    widest = max(p.shape[1] for p in positions)
    pos = np.full((len(paths), len(observations[0]), widest, 2), np.nan, np.float32)
    for k, p in enumerate(positions):
        pos[k, :, : p.shape[1]] = p
    k_norm, k_range = minmax_normalise(np.stack(kernels))
    o_norm, o_range = minmax_normalise(np.stack(observations))
    if symmetry is None:
        symmetry = np.array([estimate_symmetry(k, origin) for k in k_norm], dtype=np.int64)
        source = "estimated from the kernel images (qpi_lab.authors_data.estimate_symmetry)"
    else:
        source = "given by the user"
    nan = np.full(len(paths), np.nan)
    arrays = {
        "kernels": k_norm.astype(np.float32), "observations": o_norm.astype(np.float32),
        "activation_maps": activation_map(pos, IMAGE_SIZE), "positions": pos,
        "n_scatterers": np.isfinite(pos[..., 0]).sum(-1).astype(np.int16),
        "outside_positions": np.full(pos.shape[:2] + (0, 2), np.nan, np.float32),
        "kernel_range": k_range, "observation_range": o_range,
        **{f"param_{name}": nan for name in PARAM_NAMES}, "param_symmetry": symmetry,
    }
    meta = {
        "format_version": FORMAT_VERSION, "source": "the authors' CSV files (QPI-Dataset-100kernels)",
        "files": [p.name for p in paths], "profile": None, "seed": None,
        "kernel_origin": [origin, origin],
        "pixel_size_angstrom": float(np.diff(coords0).mean()), "image_order": order,
        "symmetry_source": source, "forward_fit_median_r2": [round(f, 4) for f in fits],
        "content_hash": content_hash(arrays),
    }
    return QPIDataset.from_arrays(arrays, meta, where=f"the CSV files in {paths[0].parent}")


def write_authors_csv(path: str | os.PathLike, kernel: np.ndarray, observations: np.ndarray,
                      positions: np.ndarray, pixel_size: float, max_scatterers: int = 20) -> Path:
    """One kernel and its observations in the authors' layout (tests; handing the kit's data to
    their code). kernel (64, 64) with its scatterer at their origin, the field's centre (31.5 px);
    observations (O, 64, 64); positions (O, S, 2) (x, y) px of the scatterers in their pixel
    coordinates, NaN unused; images flattened row by row. Written atomically."""
    path = Path(path)
    res = kernel.shape[0]
    origin = (res - 1) / 2
    coords = (np.arange(res) - origin) * pixel_size

    def row(image, xy_px):
        xy = np.full((max_scatterers, 2), UNUSED)
        xy_px = np.asarray(xy_px, dtype=np.float64).reshape(-1, 2)
        xy_px = xy_px[np.isfinite(xy_px).all(1)]
        if len(xy_px) > max_scatterers:
            raise DatasetError(f"{path}: {len(xy_px)} scatterers, the file holds {max_scatterers}")
        xy[: len(xy_px)] = (xy_px - origin) * pixel_size
        return [repr(float(v)) for v in np.asarray(image, dtype=np.float64).reshape(-1)] + [repr(float(v)) for v in xy.reshape(-1)]

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([res, max_scatterers])
        w.writerow([repr(float(c)) for c in coords])
        w.writerow(row(kernel, [[origin, origin]]))
        for img, xy in zip(observations, positions):
            w.writerow(row(img, xy))
    return path
