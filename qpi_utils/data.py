"""Datasets: the on-disk format (``.npy`` arrays plus ``meta.json``, written atomically; the table
of arrays is in ``docs/library.md``), making a simulated dataset, and torch views of it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from . import __version__
from .config import SimulationConfig
from .errors import DatasetError, QpiError
from .files import OWNER_FILE, owner_record, pid_alive
from .validate import check_memory
from .imaging import minmax_normalise
from .prior import extra_kernel_params
from .simulate import (KERNEL_ORIGIN, PARAM_NAMES, SYMMETRY_ORDERS, activation_map, add_noise, draw_outside, draw_positions,
                       kernel_spectrum, model_constants, render_observations, sample_kernel_params)

__all__ = ["FORMAT_VERSION", "ARRAY_NAMES", "DatasetError", "QPIDataset", "content_hash", "sample_hash",
           "save_dataset", "check_dataset_target", "recover_dataset", "OWNER_FILE", "load_dataset",
           "simulate_dataset", "KernelDataset", "ObservationDataset", "stack_pairs"]

FORMAT_VERSION = 1
ARRAY_NAMES = (
    "kernels", "observations", "activation_maps", "positions", "n_scatterers", "outside_positions",
    "kernel_range", "observation_range",
    *(f"param_{name}" for name in PARAM_NAMES),
)


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sample_rows(n: int, k: int = 16) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(int)) if n else np.zeros(0, int)


def sample_hash(arrays: dict[str, np.ndarray], n: int = 4096) -> str:
    """SHA-256 over ``n`` evenly spaced values of every array: a cheap check, on every load, that
    the files are still the ones written (a few MB read even at the paper's size). It samples:
    the full check is :func:`content_hash` (``load_dataset(verify=True)``, ``qpi check``)."""
    return content_hash({name: np.asarray(a).reshape(-1)[_sample_rows(np.size(a), n)] if np.ndim(a) else np.asarray(a)
                         for name, a in arrays.items()})


@dataclass
class QPIDataset:
    """K kernels with O observations each (arrays as in ``docs/library.md``)."""

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

    @property
    def kernel_origin(self) -> float:
        """The scatterer's pixel in a kernel image, both axes: 32 for the simulator's kernels, 31.5
        for the authors' (between pixels); what the symmetric loss rotates about."""
        return float(self.meta.get("kernel_origin", (KERNEL_ORIGIN, KERNEL_ORIGIN))[0])

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
            lo, hi = float(np.min(a)), float(np.max(a))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                bad = np.argwhere(~np.isfinite(a))[0].tolist()
                raise DatasetError(f"{where}: {name} contains NaN or inf (first at index {bad})")
            if lo < 0.0 or hi > 1.0:
                raise DatasetError(f"{where}: {name} must be min-max scaled to [0, 1], found values in [{lo:g}, {hi:g}]")
        for name in ("kernel_range", "observation_range"):
            if not np.isfinite(self.arrays[name]).all():
                raise DatasetError(f"{where}: {name} contains NaN or inf")
        if (np.asarray(self.n_scatterers) < 0).any():
            raise DatasetError(f"{where}: n_scatterers has negative counts")
        self.check_activation_maps(where, sample=64)
        origin = self.meta.get("kernel_origin", (KERNEL_ORIGIN, KERNEL_ORIGIN))
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
        if (not isinstance(origin, (list, tuple)) or len(origin) != 2 or origin[0] != origin[1]
                or not all(number(v) and 0 <= v <= w - 1 for v in origin)):
            raise DatasetError(f"{where}: meta kernel_origin must be [c, c] with c in [0, {w - 1}] (the scatterer's "
                               f"pixel in a kernel, both axes), got {origin!r}")
        sym = self.arrays["param_symmetry"]
        bad = [s for s in np.unique(sym) if s not in SYMMETRY_ORDERS]
        if bad:
            raise DatasetError(f"{where}: param_symmetry has values {bad}; allowed {SYMMETRY_ORDERS}")

    def check_activation_maps(self, where: str = "dataset", sample: int | None = None) -> None:
        """Raise if an activation map differs from the one its positions imply, or if the
        counts disagree. ``sample``: check only that many evenly spaced observations (cheap)."""
        k_total, o_total = self.n_scatterers.shape
        flat = np.arange(k_total * o_total) if sample is None else _sample_rows(k_total * o_total, sample)
        ks, os_ = np.divmod(flat, o_total)
        positions = np.asarray(self.positions[ks, os_])
        expected = activation_map(positions, self.kernels.shape[-1])
        mismatch = np.flatnonzero((expected != np.asarray(self.activation_maps[ks, os_])).any(axis=(-2, -1)))
        if len(mismatch):
            k, o = int(ks[mismatch[0]]), int(os_[mismatch[0]])
            raise DatasetError(
                f"{where}: activation map of kernel {k}, observation {o} does not match its positions "
                f"({len(mismatch)} maps differ)")
        counts = np.isfinite(positions[..., 0]).sum(-1)
        stored = np.asarray(self.n_scatterers[ks, os_])
        if (counts != stored).any():
            i = int(np.flatnonzero(counts != stored)[0])
            raise DatasetError(f"{where}: n_scatterers[{ks[i]}, {os_[i]}] = {stored[i]} but "
                               f"{counts[i]} positions are given")

    def denormalise_kernel(self, k: int, image: np.ndarray) -> np.ndarray:
        lo, hi = self.arrays["kernel_range"][k]
        return image * (hi - lo) + lo


_owner = owner_record  # the kit's record in a dataset folder (qpi_utils.files: the one ownership rule)


DATASET_FILES = tuple(f"{name}.npy" for name in ARRAY_NAMES) + ("meta.json",)


def _is_dataset_dir(path: Path) -> bool:
    """Is ``path`` a dataset the kit wrote? Its record says so; a dataset written before records
    existed counts when its ``meta.json`` names the format and every file in it is one the kit writes."""
    record = _owner(path)
    if record is not None:
        return record.get("kind") == "dataset"
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "format_version" in meta and all(p.name in DATASET_FILES for p in path.iterdir())


def _foreign_files(path: Path) -> list[str]:
    """Files in ``path`` that the kit did not write there (a user's), kept unless they say otherwise."""
    listed = set((_owner(path) or {}).get("files", DATASET_FILES)) | {OWNER_FILE}
    return sorted(p.name for p in path.iterdir() if p.name not in listed)


_pid_alive = pid_alive  # qpi_utils.files: the one ownership rule


def _debris(path: Path, kind: str) -> list[Path]:
    """Folders beside ``path`` that a killed :func:`save_dataset` left: named ``.NAME.tmp-*`` /
    ``.NAME.old-*`` *and* carrying the kit's record with the writer's pid, whose process is gone.
    A folder that only looks like one (no record, another pid, a live writer) is never touched."""
    out = []
    for cand in path.parent.glob(f".{path.name}.{kind}-*"):
        record = _owner(cand) if cand.is_dir() and not cand.is_symlink() else None
        pid = (record or {}).get("pid")
        if record is not None and isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
            out.append(cand)
    return out


def recover_dataset(path: str | os.PathLike, clean: bool = True) -> None:
    """Finish what an interrupted :func:`save_dataset` left: if ``path`` is missing but the old
    dataset was moved aside (a crash between the two renames), move it back; with ``clean``,
    remove the kit's own temporary folders of writers that are gone (readers pass ``clean=False``:
    reading never deletes anything)."""
    path = Path(path)
    if not path.exists():
        old = sorted((d for d in _debris(path, "old") if _is_dataset_dir(d)), key=lambda d: d.stat().st_mtime)
        if old:
            os.replace(old[-1], path)
    if clean:
        for d in _debris(path, "tmp") + _debris(path, "old"):
            shutil.rmtree(d, ignore_errors=True)


def check_dataset_target(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise :class:`DatasetError` unless a dataset may be written at ``path``: absent, an empty
    folder, or a dataset written before (anything else only with ``force``). Call it before
    long work, so a bad ``--out`` fails at once."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise DatasetError(f"{path} exists and is not a directory: choose a new folder for the dataset")
    if path.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents) and not force:
        raise DatasetError(f"{path} is the current folder or one of its parents: choose a new folder for the dataset")
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise DatasetError(f"cannot write a dataset at {path}: {parent} is a file")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise DatasetError(f"cannot write a dataset at {path}: {parent} is not writable")
            break
    recover_dataset(path)
    if path.is_dir() and any(path.iterdir()) and not force:
        foreign = _foreign_files(path) if _is_dataset_dir(path) else sorted(p.name for p in path.iterdir())
        if foreign:
            what = "files the kit did not write" if _is_dataset_dir(path) else "files that are not a dataset the kit wrote"
            raise DatasetError(f"{path} holds {what} ({', '.join(foreign[:4])}{', ...' if len(foreign) > 4 else ''}): "
                               "nothing was written. Choose a new or empty folder (e.g. <run-dir>/data), move them "
                               "away, or pass --force to replace the folder with them")
    return path


def save_dataset(ds: QPIDataset, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``ds`` to directory ``path`` atomically (temporary directory, then rename).

    ``path`` must be absent, an empty directory, or a dataset written before (which is
    replaced); anything else (a file, a folder of other files, a run directory) is refused with
    a :class:`DatasetError` unless ``force``, so nothing of the user's is ever deleted by mistake.
    An interrupted write leaves the old dataset (or none) and debris that the next call cleans.
    """
    path = check_dataset_target(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}_", dir=path.parent))
        record = {"made_by": "qpi-kit", "kind": "dataset", "pid": os.getpid(), "files": list(DATASET_FILES)}
        (tmp / OWNER_FILE).write_text(json.dumps(record))  # first: the folder is the kit's from the start
    except OSError as exc:
        raise DatasetError(f"cannot write a dataset at {path}: {exc.strerror or exc}") from None
    try:
        for name in ARRAY_NAMES:
            np.save(tmp / f"{name}.npy", np.asarray(ds.arrays[name]), allow_pickle=False)
        meta = dict(ds.meta)
        meta.setdefault("format_version", FORMAT_VERSION)
        meta.setdefault("content_hash", content_hash({n: np.asarray(ds.arrays[n]) for n in ARRAY_NAMES}))
        meta["shapes"] = {n: list(np.shape(ds.arrays[n])) for n in ARRAY_NAMES}
        meta["sample_hash"] = sample_hash({n: np.asarray(ds.arrays[n]) for n in ARRAY_NAMES})
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))  # last: marks complete
        old = None
        if path.exists():  # moved aside, not deleted, until the new one is in place
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            (old / OWNER_FILE).write_text(json.dumps({**(_owner(old) or {"made_by": "qpi-kit", "kind": "replaced"}),
                                                     "pid": os.getpid()}))
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_dataset(path)
        if isinstance(exc, OSError) and not isinstance(exc, QpiError):  # a full disk, a lost mount
            raise DatasetError(f"cannot write the dataset {path}: {exc.strerror or exc}"
                               + (" (the disk is full)" if exc.errno == 28 else "") + "; nothing was replaced") from None
        raise
    return path


def load_dataset(path: str | os.PathLike, mmap: bool = True, verify: bool = False) -> QPIDataset:
    """Load a dataset directory written by :func:`save_dataset` (memory-mapped by default).

    Always checked (cheap): the format, every array's presence, shape and value range, the
    activation maps of a sample of observations against their positions, and a hash of a sample
    of every array (a dataset edited in place is caught). ``verify=True`` re-hashes every array
    and checks every activation map (reads everything).
    """
    path = Path(path)
    recover_dataset(path, clean=False)  # reading may move an interrupted write's dataset back; it deletes nothing
    if not path.is_dir():
        raise DatasetError(f"{path}: no dataset directory here (run `qpi simulate --out {path}` first)")
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise DatasetError(f"{path}: meta.json is missing: the dataset is incomplete (an interrupted write?)")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{meta_file}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_file}: must hold a JSON object (format_version, content_hash, ...), "
                           f"found a {type(meta).__name__}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(f"{meta_file}: format_version {version!r}, this kit reads {FORMAT_VERSION}")
    shapes = meta.get("shapes", {})
    if not isinstance(shapes, dict):
        raise DatasetError(f"{meta_file}: 'shapes' must be an object, found {shapes!r}")
    arrays = {}
    for name in ARRAY_NAMES:
        f = path / f"{name}.npy"
        if not f.is_file():
            raise DatasetError(f"{path}: array file {f.name} is missing")
        try:
            arrays[name] = np.load(f, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DatasetError(f"{f}: cannot be read as .npy ({exc})") from None
        expected = shapes.get(name)
        if expected is not None and list(arrays[name].shape) != expected:
            raise DatasetError(f"{f}: shape {list(arrays[name].shape)} but meta.json says {expected}")
    if "sample_hash" in meta and sample_hash(arrays) != meta["sample_hash"]:
        raise DatasetError(f"{path}: its arrays changed after it was written (sampled hash differs from "
                           "meta.json): re-simulate it, or load with verify=True to check every value")
    if verify:
        digest = content_hash({n: np.asarray(a) for n, a in arrays.items()})
        if digest != meta.get("content_hash"):
            raise DatasetError(f"{path}: content hash {digest[:12]}... does not match meta.json "
                               f"({str(meta.get('content_hash'))[:12]}...): files changed or corrupt")
    ds = QPIDataset.from_arrays(arrays, meta, where=str(path))
    if verify:
        ds.check_activation_maps(str(path))
    return ds


# --------------------------------------------------------------------------------------------
# making a simulated dataset


def simulate_dataset(cfg: SimulationConfig, profile: str = "custom", progress: bool = True,
                     chunk: int = 128, params: dict | None = None) -> QPIDataset:
    """Make the synthetic dataset described by ``cfg`` with the physics of :mod:`qpi_utils.simulate`.

    Bit-for-bit reproducible for a given ``cfg`` (seed included): every kernel draws its
    observations from its own child of ``SeedSequence(cfg.seed)``, so the result does not depend
    on ``chunk`` or on how the work is split. ``params`` (dict of (K,) arrays, as
    :func:`~qpi_utils.simulate.sample_kernel_params` returns) uses given kernels instead of
    drawing them; K must equal ``cfg.n_kernels``. With ``cfg.position_error`` > 0 the stored
    positions (and M) are the true ones plus Gaussian errors of that std, while Y is rendered
    from the true positions. ``cfg.extra_train_kernels`` training-only kernels follow the
    ``n_kernels`` (:func:`qpi_utils.prior.extra_kernel_params`); the first ``n_kernels`` and
    their observations are those the dataset without them holds, bit for bit.
    """
    from tqdm.auto import tqdm

    size, o_total, s_max = cfg.image_size, cfg.n_observations, cfg.max_scatterers
    k_total = cfg.n_kernels + cfg.extra_train_kernels
    # estimated before anything is allocated: observations, maps, positions, ranges (bytes)
    check_memory(k_total * (o_total * (size * size * 5 + s_max * 8 + 18) + size * size * 4 + 16),
                 f"a dataset of {k_total} kernels x {o_total} observations (simulation.n_kernels, n_observations, "
                 f"max_scatterers {s_max})")
    children = np.random.SeedSequence(cfg.seed).spawn(k_total + 1)  # child k + 1: kernel k's observations
    if params is None:
        params = sample_kernel_params(cfg.n_kernels, np.random.default_rng(children[0]),
                                      cfg.frequency_range, cfg.decay_range)
    else:
        params = {k: np.asarray(params[k], dtype=np.int64 if k == "symmetry" else np.float64) for k in PARAM_NAMES}
        if any(len(v) != cfg.n_kernels for v in params.values()):
            raise ValueError(f"params must give {cfg.n_kernels} kernels (cfg.n_kernels), got "
                             f"{ {k: len(v) for k, v in params.items()} }")
    if cfg.extra_train_kernels:
        extra = extra_kernel_params(cfg, params)
        params = {k: np.concatenate([params[k], extra[k]]) for k in PARAM_NAMES}
    kernels = np.empty((k_total, size, size), np.float32)
    kernel_range = np.empty((k_total, 2))
    observations = np.empty((k_total, o_total, size, size), np.float32)
    observation_range = np.empty((k_total, o_total, 2))
    positions = np.full((k_total, o_total, s_max, 2), np.nan, np.float32)
    n_scatterers = np.empty((k_total, o_total), np.int16)
    outside_list = []
    origin = np.array([[[size // 2, size // 2]]], dtype=np.float64)
    for k in tqdm(range(k_total), desc="simulate kernels", disable=not progress, unit="kernel"):
        rng = np.random.default_rng(children[k + 1])
        one = {key: val[k:k + 1] for key, val in params.items()}
        spec = kernel_spectrum(one, supersample=cfg.supersample)[0]
        raw_kernel = render_observations(spec, origin, size=size)[0]
        norm, rng_k = minmax_normalise(raw_kernel)
        kernels[k], kernel_range[k] = norm, rng_k
        n = rng.integers(cfg.min_scatterers, cfg.max_scatterers + 1, size=o_total)
        pos = draw_positions(rng, n, s_max, size)
        out = draw_outside(rng, n, cfg.outside_margin, size)
        outside_list.append(out)
        # Render in chunks of similar scatterer counts, each trimmed to its own largest count:
        # the cost is proportional to the padded width. Noise is drawn afterwards for all
        # observations at once, so the result does not depend on the chunking.
        both = np.concatenate([pos, out], axis=1)
        both = both[np.arange(o_total)[:, None], np.argsort(~np.isfinite(both[..., 0]), axis=1, kind="stable")]
        counts = np.isfinite(both[..., 0]).sum(1)
        clean = np.empty((o_total, size, size))
        by_count = np.argsort(counts, kind="stable")
        for start in range(0, o_total, chunk):
            idx = by_count[start:start + chunk]
            width = max(int(counts[idx].max()), 1)
            clean[idx] = render_observations(spec, both[idx, :width], size=size)
        noisy = add_noise(rng, clean, cfg.snr_db, cfg.line_noise)
        observations[k], observation_range[k] = minmax_normalise(noisy)
        if cfg.position_error > 0:  # what a defect finder reports: the truth plus an error
            pos = pos + rng.normal(0.0, cfg.position_error, size=pos.shape)
            pos = np.clip(pos, -0.5, size - 0.5 - 1e-3).astype(np.float32).astype(np.float64)
        positions[k] = pos
        n_scatterers[k] = n
    max_out = max((o.shape[1] for o in outside_list), default=0)
    outside = np.full((k_total, o_total, max_out, 2), np.nan, np.float32)
    for k, o in enumerate(outside_list):
        outside[k, :, : o.shape[1]] = o
    arrays = {
        "kernels": kernels,
        "observations": observations,
        "activation_maps": activation_map(positions, size),
        "positions": positions,
        "n_scatterers": n_scatterers,
        "outside_positions": outside,
        "kernel_range": kernel_range,
        "observation_range": observation_range,
        **{f"param_{k}": v for k, v in params.items()},
    }
    meta = {
        "format_version": FORMAT_VERSION,
        "qpi_utils_version": __version__,
        "source": "qpi_utils.simulate",
        "profile": profile,
        "seed": cfg.seed,
        "simulation": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "kernel_origin": [size // 2, size // 2],
        "model_constants": model_constants(),
        "content_hash": content_hash(arrays),
    }
    return QPIDataset.from_arrays(arrays, meta)


# --------------------------------------------------------------------------------------------
# torch datasets


def _torch():
    import torch  # imported lazily: simulation and I/O work without torch

    return torch


class KernelDataset:
    """Step 1: kernels alone. Item: ``{"kernel": (1, 64, 64), "symmetry": int, "kernel_id": int}``.

    The kernels are read into memory once (K x 16 kB), not from the memory map per item."""

    def __init__(self, ds: QPIDataset, kernel_ids: Iterable[int]):
        torch = _torch()
        self.kernel_ids = np.asarray(list(kernel_ids), dtype=np.int64)
        if self.kernel_ids.size and (self.kernel_ids.min() < 0 or self.kernel_ids.max() >= ds.n_kernels):
            raise DatasetError(f"kernel ids must be in [0, {ds.n_kernels}), got {self.kernel_ids.min()}..{self.kernel_ids.max()}")
        self.kernels = torch.from_numpy(np.array(ds.kernels[self.kernel_ids], dtype=np.float32))[:, None]
        self.symmetry = np.asarray(ds.symmetry)[self.kernel_ids]

    def __len__(self) -> int:
        return len(self.kernel_ids)

    def __getitem__(self, i: int) -> dict:
        return {"kernel": self.kernels[i], "symmetry": int(self.symmetry[i]), "kernel_id": int(self.kernel_ids[i])}


class ObservationDataset:
    """Step 2 and the one-step baseline. Item: ``{"observation": (2, 64, 64) = (Y, M),
    "kernel": (1, 64, 64), "symmetry": int, "kernel_id": int, "observation_id": int}``.

    The pairs' (Y, M) are read into memory once (32 kB per pair: 1 GB at the paper's 32,000
    training pairs), so an epoch indexes tensors instead of decoding the memory map per item."""

    def __init__(self, ds: QPIDataset, pairs: np.ndarray):
        torch = _torch()
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if pairs.size and (pairs[:, 0].max() >= ds.n_kernels or pairs[:, 1].max() >= ds.n_observations or pairs.min() < 0):
            raise DatasetError(f"(kernel, observation) pairs out of range for a dataset of "
                               f"{ds.n_kernels} x {ds.n_observations}")
        self.pairs = pairs
        self.observations = stack_pairs(ds, pairs)
        self.kernels = torch.from_numpy(np.array(ds.kernels, dtype=np.float32))[:, None]
        self.symmetry = np.asarray(ds.symmetry)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        k, o = (int(v) for v in self.pairs[i])
        return {"observation": self.observations[i], "kernel": self.kernels[k], "symmetry": int(self.symmetry[k]),
                "kernel_id": k, "observation_id": o}


def stack_pairs(ds: QPIDataset, pairs: np.ndarray):
    """(N, 2) (kernel, observation) pairs -> the (N, 2, 64, 64) float32 tensor of (Y, M)."""
    torch = _torch()
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.empty((len(pairs), 2, ds.observations.shape[-2], ds.observations.shape[-1]), np.float32)
    for i, (k, o) in enumerate(pairs):  # row by row: a memory map is read only where needed
        out[i, 0] = ds.observations[k, o]
        out[i, 1] = ds.activation_maps[k, o]
    return torch.from_numpy(out)
