"""Datasets: the on-disk format, the paper's ID/OOD splits, torch Datasets, the authors' CSVs.

On-disk format (``FORMAT_VERSION`` 1)
-------------------------------------
A dataset is a directory of plain ``.npy`` files (memory-mappable with ``np.load(mmap_mode="r")``)
plus ``meta.json``:

=====================  ======================  =======  =============================================
file                   shape                   dtype    meaning
=====================  ======================  =======  =============================================
kernels.npy            (K, 64, 64)             float32  kernel images A, min-max scaled to [0, 1]
observations.npy       (K, O, 64, 64)          float32  observations Y, min-max scaled to [0, 1]
activation_maps.npy    (K, O, 64, 64)          uint8    M: scatterers per pixel (labelled ones only)
positions.npy          (K, O, S, 2)            float32  scatterer (x, y) in px; NaN = unused slot
n_scatterers.npy       (K, O)                  int16    labelled scatterers per observation
outside_positions.npy  (K, O, S_out, 2)        float32  unlabelled scatterers outside the view (NaN pad)
kernel_range.npy       (K, 2)                  float64  (min, max) of each raw kernel: undoes scaling
observation_range.npy  (K, O, 2)               float64  (min, max) of each raw observation
param_<name>.npy       (K,)                    various  symmetry (0 = isotropic, 2, 3, 4, 6),
                                                        orientation (rad), frequency (cycles/px),
                                                        phase (rad), decay (px); NaN if unknown
=====================  ======================  =======  =============================================

``meta.json`` holds the format version, the kit version, source, profile, seed, the simulation
settings, the kernel origin (pixel of the scatterer in a kernel image) and ``content_hash``
(SHA-256 of all arrays). It is written last, inside a temporary directory that is renamed into
place only when complete, so an interrupted write never leaves a dataset that loads.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .simulate import (SYMMETRY_ORDERS, activation_map, content_hash, minmax_normalise,
                       symmetry_angles)

__all__ = [
    "FORMAT_VERSION",
    "DatasetError",
    "QPIDataset",
    "save_dataset",
    "load_dataset",
    "Splits",
    "make_splits",
    "check_splits",
    "KernelDataset",
    "ObservationDataset",
    "load_authors_csv",
    "write_authors_csv",
    "estimate_symmetry",
]

FORMAT_VERSION = 1
ARRAY_NAMES = (
    "kernels", "observations", "activation_maps", "positions", "n_scatterers", "outside_positions",
    "kernel_range", "observation_range",
    "param_symmetry", "param_orientation", "param_frequency", "param_phase", "param_decay",
)
PARAM_NAMES = ("symmetry", "orientation", "frequency", "phase", "decay")


class DatasetError(ValueError):
    """A dataset file, array or request is not valid; the message names what and where."""


@dataclass
class QPIDataset:
    """K kernels with O observations each (arrays as in the module docstring)."""

    arrays: dict[str, np.ndarray]
    meta: dict

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict, where: str = "dataset") -> "QPIDataset":
        ds = cls(dict(arrays), dict(meta))
        ds.validate(where)
        return ds

    # convenient views -------------------------------------------------------------------
    kernels = property(lambda self: self.arrays["kernels"])
    observations = property(lambda self: self.arrays["observations"])
    activation_maps = property(lambda self: self.arrays["activation_maps"])
    positions = property(lambda self: self.arrays["positions"])
    n_scatterers = property(lambda self: self.arrays["n_scatterers"])
    symmetry = property(lambda self: np.asarray(self.arrays["param_symmetry"]).astype(np.int64))

    @property
    def n_kernels(self) -> int:
        return int(self.kernels.shape[0])

    @property
    def n_observations(self) -> int:
        return int(self.observations.shape[1])

    def params(self, k: int) -> dict[str, float]:
        return {name: float(self.arrays[f"param_{name}"][k]) for name in PARAM_NAMES}

    def validate(self, where: str = "dataset") -> None:
        """Check names, shapes, value ranges and that activation maps match the positions."""
        missing = [n for n in ARRAY_NAMES if n not in self.arrays]
        if missing:
            raise DatasetError(f"{where}: missing array(s) {missing}")
        k, o, h, w = self.observations.shape if self.observations.ndim == 4 else (None,) * 4
        if k is None:
            raise DatasetError(f"{where}: observations must be (K, O, H, W), got {self.observations.shape}")
        expect = {
            "kernels": (k, h, w), "activation_maps": (k, o, h, w), "n_scatterers": (k, o),
            "kernel_range": (k, 2), "observation_range": (k, o, 2),
            **{f"param_{p}": (k,) for p in PARAM_NAMES},
        }
        for name, shape in expect.items():
            if tuple(self.arrays[name].shape) != shape:
                raise DatasetError(f"{where}: {name} has shape {tuple(self.arrays[name].shape)}, expected {shape}")
        for name in ("positions", "outside_positions"):
            a = self.arrays[name]
            if a.ndim != 4 or a.shape[:2] != (k, o) or a.shape[3] != 2:
                raise DatasetError(f"{where}: {name} must be (K={k}, O={o}, S, 2), got {tuple(a.shape)}")
        for name in ("kernels", "observations"):
            a = self.arrays[name]
            if not np.isfinite(a).all():
                bad = np.argwhere(~np.isfinite(a))[0].tolist()
                raise DatasetError(f"{where}: {name} contains NaN or inf (first at index {bad})")
        sym = self.arrays["param_symmetry"]
        bad = [s for s in np.unique(sym) if s not in SYMMETRY_ORDERS]
        if bad:
            raise DatasetError(f"{where}: param_symmetry has values {bad}; allowed {SYMMETRY_ORDERS}")

    def check_activation_maps(self, where: str = "dataset") -> None:
        """Raise if any activation map differs from the one its positions imply."""
        expected = activation_map(self.positions, self.kernels.shape[-1])
        mismatch = np.argwhere((expected != np.asarray(self.activation_maps)).any(axis=(-2, -1)))
        if len(mismatch):
            k, o = mismatch[0].tolist()
            raise DatasetError(
                f"{where}: activation map of kernel {k}, observation {o} does not match its positions "
                f"({len(mismatch)} maps differ)")
        counts = np.isfinite(self.positions[..., 0]).sum(-1)
        if (counts != self.n_scatterers).any():
            k, o = np.argwhere(counts != self.n_scatterers)[0].tolist()
            raise DatasetError(f"{where}: n_scatterers[{k}, {o}] = {self.n_scatterers[k, o]} but "
                               f"{counts[k, o]} positions are given")

    def denormalise_kernel(self, k: int, image: np.ndarray) -> np.ndarray:
        lo, hi = self.arrays["kernel_range"][k]
        return image * (hi - lo) + lo


def save_dataset(ds: QPIDataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to directory ``path`` atomically (temporary directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        for name in ARRAY_NAMES:
            np.save(tmp / f"{name}.npy", np.asarray(ds.arrays[name]), allow_pickle=False)
        meta = dict(ds.meta)
        meta.setdefault("format_version", FORMAT_VERSION)
        meta.setdefault("content_hash", content_hash({n: np.asarray(ds.arrays[n]) for n in ARRAY_NAMES}))
        meta["shapes"] = {n: list(np.shape(ds.arrays[n])) for n in ARRAY_NAMES}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))  # last: marks complete
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_dataset(path: str | os.PathLike, mmap: bool = True, verify: bool = False) -> QPIDataset:
    """Load a dataset directory written by :func:`save_dataset` (memory-mapped by default).

    ``verify=True`` re-hashes every array and compares with ``meta.json`` (reads everything).
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: no dataset directory here (run `qpi simulate --out {path}` first)")
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DatasetError(f"{path}: meta.json is missing: the dataset is incomplete (an interrupted write?)")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{meta_file}: not valid JSON ({exc})") from None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(f"{meta_file}: format_version {version!r}, this kit reads {FORMAT_VERSION}")
    arrays = {}
    for name in ARRAY_NAMES:
        f = path / f"{name}.npy"
        if not f.is_file():
            raise DatasetError(f"{path}: array file {f.name} is missing")
        try:
            arrays[name] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DatasetError(f"{f}: cannot be read as .npy ({exc})") from None
        expected = meta.get("shapes", {}).get(name)
        if expected is not None and list(arrays[name].shape) != expected:
            raise DatasetError(f"{f}: shape {list(arrays[name].shape)} but meta.json says {expected}")
    if verify:
        digest = content_hash({n: np.asarray(a) for n, a in arrays.items()})
        if digest != meta.get("content_hash"):
            raise DatasetError(f"{path}: content hash {digest[:12]}... does not match meta.json "
                               f"({str(meta.get('content_hash'))[:12]}...): files changed or corrupt")
    return QPIDataset.from_arrays(arrays, meta, where=str(path))


# --------------------------------------------------------------------------------------------
# splits


@dataclass(frozen=True)
class Splits:
    """The paper's splits: kernels 80/20 (the 20 % are OOD: never seen in training), and each
    training kernel's observations 80/20 (the 20 % are the in-domain test set).

    Pair arrays are (N, 2) int64 rows of (kernel index, observation index).
    """

    train_kernels: np.ndarray
    ood_kernels: np.ndarray
    train: np.ndarray
    id_test: np.ndarray
    ood_test: np.ndarray
    seed: int

    NAMES = ("train", "id_test", "ood_test")

    def pairs(self, name: str) -> np.ndarray:
        if name not in self.NAMES:
            raise DatasetError(f"unknown split {name!r}; available: {', '.join(self.NAMES)}")
        return getattr(self, name)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train_kernels": self.train_kernels.tolist(),
                "ood_kernels": self.ood_kernels.tolist(),
                **{n: getattr(self, n).tolist() for n in self.NAMES}}


def make_splits(symmetry: Sequence[int], n_observations: int, ood_fraction: float = 0.2,
                id_test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Deterministic stratified splits.

    OOD kernels: round(ood_fraction * K) kernels, stratified by symmetry class: classes are
    visited round-robin (in a seeded order), each giving its next kernel of a seeded shuffle, so
    every class loses the same number (+-1). ID test: round(id_test_fraction * O) observations of
    each training kernel (at least 1), the rest are training observations.
    """
    symmetry = np.asarray(symmetry)
    k_total = len(symmetry)
    n_ood = int(round(ood_fraction * k_total))
    if not 1 <= n_ood < k_total:
        raise DatasetError(f"ood_fraction={ood_fraction} of {k_total} kernels gives {n_ood} OOD kernels; "
                           "need at least 1 and fewer than all")
    n_id = max(1, int(round(id_test_fraction * n_observations)))
    if n_id >= n_observations:
        raise DatasetError(f"id_test_fraction={id_test_fraction} of {n_observations} observations leaves none to train on")
    rng = np.random.default_rng(seed)
    classes = [c for c in SYMMETRY_ORDERS if (symmetry == c).any()]
    queues = {c: list(rng.permutation(np.flatnonzero(symmetry == c))) for c in classes}
    order = list(rng.permutation(len(classes)))
    ood: list[int] = []
    while len(ood) < n_ood:
        for ci in order:
            q = queues[classes[ci]]
            if q and len(ood) < n_ood:
                ood.append(int(q.pop(0)))
    ood_kernels = np.sort(np.array(ood, dtype=np.int64))
    train_kernels = np.setdiff1d(np.arange(k_total), ood_kernels)
    train, id_test = [], []
    for k in train_kernels:
        perm = rng.permutation(n_observations)
        id_test += [(k, o) for o in np.sort(perm[:n_id])]
        train += [(k, o) for o in np.sort(perm[n_id:])]
    ood_test = [(k, o) for k in ood_kernels for o in range(n_observations)]
    as_arr = lambda rows: np.array(rows, dtype=np.int64).reshape(-1, 2)
    return Splits(train_kernels, ood_kernels, as_arr(train), as_arr(id_test), as_arr(ood_test), seed)


def check_splits(splits: Splits) -> None:
    """Raise if any kernel or observation appears in two splits (leakage)."""
    if np.intersect1d(splits.train_kernels, splits.ood_kernels).size:
        raise DatasetError("a kernel is both a training and an OOD kernel")
    for name in ("train", "id_test"):
        leaked = np.intersect1d(splits.pairs(name)[:, 0], splits.ood_kernels)
        if leaked.size:
            raise DatasetError(f"OOD kernel(s) {leaked.tolist()} appear in split {name}")
    key = lambda p: set(map(tuple, p.tolist()))
    if key(splits.train) & key(splits.id_test):
        raise DatasetError("an observation is both in train and in id_test")


# --------------------------------------------------------------------------------------------
# torch datasets


def _torch():
    import torch  # imported lazily: simulation and I/O work without torch

    return torch


class KernelDataset:
    """Step 1: kernels alone. Item: ``{"kernel": (1, 64, 64), "symmetry": int, "kernel_id": int}``."""

    def __init__(self, ds: QPIDataset, kernel_ids: Iterable[int]):
        self.ds = ds
        self.kernel_ids = np.asarray(list(kernel_ids), dtype=np.int64)
        if self.kernel_ids.size and (self.kernel_ids.min() < 0 or self.kernel_ids.max() >= ds.n_kernels):
            raise DatasetError(f"kernel ids must be in [0, {ds.n_kernels}), got {self.kernel_ids.min()}..{self.kernel_ids.max()}")

    def __len__(self) -> int:
        return len(self.kernel_ids)

    def __getitem__(self, i: int) -> dict:
        torch = _torch()
        k = int(self.kernel_ids[i])
        return {"kernel": torch.from_numpy(np.array(self.ds.kernels[k], dtype=np.float32))[None],
                "symmetry": int(self.ds.symmetry[k]), "kernel_id": k}


class ObservationDataset:
    """Step 2 and the one-step baseline. Item: ``{"observation": (2, 64, 64) = (Y, M),
    "kernel": (1, 64, 64), "symmetry": int, "kernel_id": int, "observation_id": int}``."""

    def __init__(self, ds: QPIDataset, pairs: np.ndarray):
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if pairs.size and (pairs[:, 0].max() >= ds.n_kernels or pairs[:, 1].max() >= ds.n_observations or pairs.min() < 0):
            raise DatasetError(f"(kernel, observation) pairs out of range for a dataset of "
                               f"{ds.n_kernels} x {ds.n_observations}")
        self.ds, self.pairs = ds, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        torch = _torch()
        k, o = (int(v) for v in self.pairs[i])
        y = np.asarray(self.ds.observations[k, o], dtype=np.float32)
        m = np.asarray(self.ds.activation_maps[k, o], dtype=np.float32)
        return {"observation": torch.from_numpy(np.stack([y, m])),
                "kernel": torch.from_numpy(np.array(self.ds.kernels[k], dtype=np.float32))[None],
                "symmetry": int(self.ds.symmetry[k]), "kernel_id": k, "observation_id": o}


# --------------------------------------------------------------------------------------------
# symmetry estimation (for data that do not say it, such as the authors' CSVs)


def estimate_symmetry(kernel: np.ndarray, threshold: float = 0.9, origin: float | None = None) -> int:
    """Highest rotational order n in (6, 4, 3, 2) whose rotations all correlate with the kernel
    above ``threshold`` inside a central disc; 0 (isotropic) if generic angles do too.

    Rotation about ``origin`` (pixel coordinate of the scatterer, both axes; default the
    geometric centre (size-1)/2).
    """
    from scipy.ndimage import affine_transform

    img = np.asarray(kernel, dtype=np.float64)
    size = img.shape[0]
    c = (size - 1) / 2 if origin is None else float(origin)
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - c) ** 2 + (xx - c) ** 2 <= (0.4 * size) ** 2
    ref = img - img[disc].mean()

    def corr(angle: float) -> float:
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        offset = np.array([c, c]) - rot @ np.array([c, c])
        r = affine_transform(img, rot, offset=offset, order=3, mode="nearest") - img[disc].mean()
        a, b = ref[disc], r[disc]
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30))

    if all(corr(a) > threshold for a in symmetry_angles(0)):
        return 0
    for n in (6, 4, 3, 2):
        if all(corr(a) > threshold for a in symmetry_angles(n)):
            return n
    return 2  # no clear symmetry: the weakest constraint the symmetric loss knows


# --------------------------------------------------------------------------------------------
# the authors' released CSV format (QPI-Dataset-100kernels)

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
        source = "estimated from the kernel images (qpi_utils.data.estimate_symmetry)"
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

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([res, max_scatterers])
        w.writerow(list(coords))
        w.writerow(row(kernel, [[kernel_origin, kernel_origin]]))
        for img, xy in zip(observations, positions_px):
            w.writerow(row(img, xy))
    os.replace(tmp, path)
    return path
