"""Real STM data: fetch with a checksum, read Nanonis and Createc files, level, find defects, cut
64x64 windows at the training scale, and extract and score kernels with every method. Row 0 of
:func:`read_sxm` is the bottom of the frame. See ``docs/library.md``."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import validate
from .errors import QpiError
from .files import FetchError, data_dir, fetch_verified
from .methods import METHODS
from .imaging import minmax_normalise
from .physics import ConvolutionOperator
from .simulate import IMAGE_SIZE, KERNEL_ORIGIN, KernelParams, activation_map, add_noise, kernel_spectrum, render_observations

__all__ = ["DATA_FILES", "RealDataError", "STMImage", "data_dir", "fetch", "check_finite", "header_number", "read_sxm", "read_3ds", "read_createc",
           "read_stm", "level", "highpass", "bragg_filter", "mask_steps", "dominant_frequency", "resample_to_frequency", "find_defects",
           "edit_defects", "tiles", "extract_kernels", "self_consistency", "heldout_consistency", "estimate_period_nm",
           "standing_wave_period_nm", "simulated_ag111", "AG111", "CU111", "RealWindows", "fese_windows",
           "cu111_windows", "heldout_scores"]

DATA_FILES = {
    "FeSe_topography.sxm": {
        "url": "https://raw.githubusercontent.com/hoffmanlabcoding/stmpy/92cad70699f680e2bc2375de8ea3ac91439339dc/"
               "stmpy/doc/tutorial_materials/FeSe_topography.sxm",
        "sha256": "674f6edac9e458c6ccc9b2b11595c480a7d580a13c0ebde3b5607b39cadef9a5",
        "licence": "MIT, Copyright (c) 2020 Harris Pirie (stmpy, Hoffman lab)",
    },
    "Cu111_createc_terrace.dat": {
        "url": "https://raw.githubusercontent.com/SPMQT-Lab/ProbeFlow/756611eb50acb975768465d9a5f349ba487f8432/"
               "test_data/createc_terrace.dat",
        "sha256": "27626804cc3268485c7ed61c632333b279969f4db798678d548e785ace592b67",
        "licence": "MIT, Copyright (c) 2026 SPMQT-Lab and contributors (ProbeFlow)",
    },
}


class RealDataError(QpiError, ValueError):
    """A real-data file or request is not usable; the message names the file and the problem."""


@dataclass
class STMImage:
    """One channel of one scan. ``data`` (H, W) float64, row 0 at the bottom; pixel sizes in nm."""

    data: np.ndarray
    pixel_nm: tuple[float, float]  # (x, y)
    channel: str
    unit: str
    direction: str = "forward"
    scan_angle_deg: float = 0.0
    bias_V: float | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def size_nm(self) -> tuple[float, float]:
        return self.data.shape[1] * self.pixel_nm[0], self.data.shape[0] * self.pixel_nm[1]


def fetch(name: str) -> Path:
    """Path to a verified copy of one of :data:`DATA_FILES` in :func:`data_dir`, downloading it if
    needed (:func:`qpi_utils.files.fetch_verified`: no network when a copy with the right SHA-256
    is there; every failure names the file, its URL and its checksum)."""
    if name not in DATA_FILES:
        raise RealDataError(f"unknown data file {name!r}; available: {', '.join(DATA_FILES)}")
    try:
        return fetch_verified(name, DATA_FILES[name]["url"], DATA_FILES[name]["sha256"], data_dir())
    except FetchError as exc:
        raise RealDataError(f"{exc} (QPI_DATA_DIR names that folder)") from None


def check_finite(img: STMImage, crop_nan: bool) -> STMImage:
    """``img`` if every pixel is finite; else an error naming the file and channel, or with
    ``crop_nan`` the longest block of complete rows (an interrupted scan)."""
    bad = ~np.isfinite(img.data)
    if not bad.any():
        return img
    rows = ~bad.any(axis=1)
    if not crop_nan or rows.sum() < 16:
        raise RealDataError(f"{img.source}: channel {img.channel} has {int(bad.sum())} NaN/inf pixels "
                            f"({int((~rows).sum())} incomplete rows, an interrupted scan?); "
                            "pass crop_nan=True to keep the largest block of complete rows")
    # the longest run of complete rows
    best, run_start = (0, 0), None
    for i, ok in enumerate(list(rows) + [False]):
        if ok and run_start is None:
            run_start = i
        if not ok and run_start is not None:
            if i - run_start > best[1] - best[0]:
                best = (run_start, i)
            run_start = None
    return replace(img, data=img.data[best[0]:best[1]], meta={**img.meta, "cropped_rows": list(best)})


def header_number(path: Path, field: str, raw, kind=float, positive: bool = False, nonzero: bool = False):
    """One number read from a file's header, checked in one place: it parses as ``kind``, is finite,
    and is > 0 (``positive``) or != 0 (``nonzero``) where the physics needs it; otherwise a
    :class:`RealDataError` naming the file, the field and the value."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RealDataError(f"{path}: header field {field} is {raw!r}, not a number") from None
    if not np.isfinite(value):
        raise RealDataError(f"{path}: header field {field} is {value}, not a finite number")
    if kind is int:
        if value != int(value):
            raise RealDataError(f"{path}: header field {field} is {raw!r}, not a whole number")
        value = int(value)
    if positive and value <= 0:
        raise RealDataError(f"{path}: header field {field} is {value}; it must be > 0")
    if nonzero and value == 0:
        raise RealDataError(f"{path}: header field {field} is 0; the map would be all zeros")
    return value


def _open_nanonis(path: Path, what: str):
    """xarray-nanonis dataset of ``path``, or a RealDataError naming the file and the cause."""
    if not path.is_file():
        raise RealDataError(f"{path}: file not found")
    try:
        import xarray as xr
    except ImportError:
        raise RealDataError(f"reading {path.suffix} files needs xarray and xarray-nanonis: "
                            "pip install 'qpi-kit[realdata]'") from None
    try:
        return xr.open_dataset(path, engine="nanonis")
    except Exception as exc:  # the reader raises many kinds for a bad file; name the file and the cause
        raise RealDataError(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None


def read_sxm(path: str | os.PathLike, channel: str = "LIY_1_omega", direction: str = "forward",
             crop_nan: bool = False) -> STMImage:
    """One channel of a Nanonis ``.sxm`` scan, read with xarray-nanonis.

    Pixel size = scan range / pixels (xarray-nanonis' coordinates use range / (N - 1)).
    """
    path = Path(path)
    ds = _open_nanonis(path, "Nanonis .sxm file")
    if channel not in ds.data_vars:
        raise RealDataError(f"{path}: no channel {channel!r}; channels: {', '.join(ds.data_vars)}")
    if direction not in ("forward", "backward"):
        raise RealDataError(f"direction must be 'forward' or 'backward', got {direction!r}")
    var = ds[channel]
    data = np.asarray(var.sel(dir=direction).values if "dir" in var.dims else var.values, dtype=np.float64)
    attrs = ds.attrs
    rng, pix = str(attrs.get("SCAN_RANGE", "")).split(), str(attrs.get("SCAN_PIXELS", "")).split()
    if len(rng) != 2 or len(pix) != 2:
        raise RealDataError(f"{path}: header lacks a usable SCAN_RANGE/SCAN_PIXELS (two numbers each), got "
                            f"{attrs.get('SCAN_RANGE')!r}, {attrs.get('SCAN_PIXELS')!r}")
    rng = [header_number(path, "SCAN_RANGE", v, positive=True) for v in rng]
    pix = [header_number(path, "SCAN_PIXELS", v, int, positive=True) for v in pix]
    bias = attrs.get("BIAS")
    img = STMImage(data=data, pixel_nm=(rng[0] / pix[0] * 1e9, rng[1] / pix[1] * 1e9), channel=channel,
                   unit=var.attrs.get("units", ""), direction=direction,
                   scan_angle_deg=header_number(path, "SCAN_ANGLE", attrs.get("SCAN_ANGLE", 0.0)),
                   bias_V=None if bias is None else header_number(path, "BIAS", bias),
                   source=str(path), meta={"scan_dir": str(attrs.get("SCAN_DIR", "")).strip(),
                                           "date": attrs.get("REC_DATE"), "temperature_K": attrs.get("REC_TEMP")})
    return check_finite(img, crop_nan)


def read_3ds(path: str | os.PathLike, channel: str = "LI_Demod_1_X", bias_V: float = 0.0) -> STMImage:
    """One energy layer of a Nanonis ``.3ds`` grid (xarray-nanonis): the map of ``channel`` at
    the sweep point nearest to ``bias_V``. Channel names as xarray-nanonis gives them (spaces to
    underscores, unit dropped: "LI Demod 1 X (A)" -> "LI_Demod_1_X"); the raw name works too.
    Pixel size = grid width / points, as for scans. Rows and columns in the file's grid order."""
    path = Path(path)
    ds = _open_nanonis(path, "Nanonis .3ds grid")
    name = channel if channel in ds.data_vars else channel.split(" (")[0].replace(" ", "_")
    if name not in ds.data_vars or "bias" not in ds[name].dims:
        raise RealDataError(f"{path}: no spectroscopic channel {channel!r}; channels: {', '.join(ds.data_vars)}")
    bias = np.asarray(ds["bias"].values, dtype=np.float64)
    if not bias.min() - 1e-9 <= bias_V <= bias.max() + 1e-9:
        raise RealDataError(f"{path}: bias {bias_V} V is outside the grid's sweep [{bias.min():g}, {bias.max():g}] V")
    index = int(np.argmin(np.abs(bias - bias_V)))
    data = np.asarray(ds[name].isel(bias=index).values, dtype=np.float64)
    settings = ds.attrs.get("Grid settings")
    if settings is None or len(settings) < 4:
        raise RealDataError(f"{path}: header lacks usable 'Grid settings' (centre x, y, width, height, angle), "
                            f"got {settings!r}")
    width, height = (header_number(path, "Grid settings (width, height)", v, positive=True) for v in settings[2:4])
    img = STMImage(data=data, pixel_nm=(width / data.shape[1] * 1e9, height / data.shape[0] * 1e9), channel=name,
                   unit=ds[name].attrs.get("units", ""), bias_V=float(bias[index]), source=str(path),
                   meta={"layer": index, "layers": len(bias)})
    return check_finite(img, crop_nan=False)


_CREATEC_CHANNELS = ("topography", "current")


def read_createc(path: str | os.PathLike, channel: str = "topography", direction: str = "forward",
                 crop_nan: bool = False) -> STMImage:
    """One channel of a Createc ``.dat`` image (a small reader: no maintained one exists).

    Layout: a latin-1 text header of ``key=value`` lines ending with ``DATA`` at byte 16380, then
    from byte 16384 a zlib stream of little-endian float32: one leading value, then ``Channels``
    planes of Num.Y x Num.X in the order topography forward, current forward, topography
    backward, current backward (for 4 channels). Topography is converted from DAC units to nm
    with ``Dacto[A]z`` x ``GainZ``. Rows are returned in stored order; backward planes are stored
    left to right like forward ones (checked: they match the forward plane unflipped). The
    file's ScanYDirec is kept in ``meta`` (the vertical sense of a Createc frame is not checked
    here: it does not matter for isotropic kernels).
    """
    path = Path(path)
    if not path.is_file():
        raise RealDataError(f"{path}: file not found")
    raw = path.read_bytes()
    if len(raw) < 16384 or not raw.startswith(b"[Paramco32]") or raw[16380:16384] != b"DATA":
        raise RealDataError(f"{path}: not a Createc .dat file (no [Paramco32] header with DATA at byte 16380)")
    header = {}
    for line in raw[:16380].decode("latin-1").splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            header[key.split(" / ")[-1].strip()] = value.strip()
    missing = [k for k in ("Num.X", "Num.Y", "Channels", "Length x[A]", "Length y[A]", "Dacto[A]z", "GainZ")
               if k not in header]
    if missing:
        raise RealDataError(f"{path}: header field(s) {missing} missing")
    nx, ny, n_ch = (header_number(path, k, header[k], int, positive=True) for k in ("Num.X", "Num.Y", "Channels"))
    length_x, length_y = (header_number(path, k, header[k], positive=True) for k in ("Length x[A]", "Length y[A]"))
    dac_z, gain_z = (header_number(path, k, header[k], nonzero=True) for k in ("Dacto[A]z", "GainZ"))
    if n_ch * nx * ny > 1 << 28:  # 1 GB of float32: no STM image is that large; refuse before decompressing
        raise RealDataError(f"{path}: header says {n_ch} channels of {ny}x{nx} pixels, more than any STM image")
    try:
        values = np.frombuffer(zlib.decompress(raw[16384:]), dtype="<f4")
    except zlib.error as exc:
        raise RealDataError(f"{path}: compressed data are corrupt or truncated ({exc})") from None
    if values.size < 1 + n_ch * nx * ny:
        raise RealDataError(f"{path}: data hold {values.size} values, {1 + n_ch * nx * ny} expected "
                            f"({n_ch} channels of {ny}x{nx}): truncated file")
    if channel not in _CREATEC_CHANNELS or direction not in ("forward", "backward"):
        raise RealDataError(f"{path}: channel must be one of {_CREATEC_CHANNELS} and direction forward/backward, "
                            f"got {channel!r}, {direction!r}")
    index = _CREATEC_CHANNELS.index(channel) + (2 if direction == "backward" else 0)
    if index >= n_ch:
        raise RealDataError(f"{path}: holds {n_ch} channel(s); {channel} {direction} is not among them")
    # backward planes are stored left to right already (they match the forward plane unflipped)
    plane = values[1 + index * nx * ny: 1 + (index + 1) * nx * ny].reshape(ny, nx).astype(np.float64)
    unit = "nm" if channel == "topography" else "DAC"
    if channel == "topography":
        plane = plane * dac_z * gain_z / 10.0  # DAC -> angstrom -> nm
    bias = header.get("BiasVoltage / BiasVolt.[mV]") or header.get("BiasVolt.[mV]")
    img = STMImage(data=plane, pixel_nm=(length_x / nx / 10.0, length_y / ny / 10.0), channel=channel, unit=unit,
                   direction=direction, scan_angle_deg=header_number(path, "Rotation", header.get("Rotation") or 0.0),
                   bias_V=header_number(path, "BiasVolt.[mV]", bias) / 1000 if bias else None, source=str(path),
                   meta={"temperature_K": header.get("T_ADC2[K]"), "current_A": header.get("Current[A]"),
                         "scan_y_direction": header.get("ScanYDirec")})
    return check_finite(img, crop_nan)


def read_stm(path: str | os.PathLike, channel: str | None = None, direction: str = "forward",
             crop_nan: bool = False, bias_V: float = 0.0) -> STMImage:
    """Read by extension: ``.sxm`` (Nanonis scan; default channel LIY_1_omega), ``.3ds`` (Nanonis
    grid: the layer nearest ``bias_V``) or ``.dat`` (Createc)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".sxm":
        return read_sxm(path, channel or "LIY_1_omega", direction, crop_nan)
    if suffix == ".3ds":
        return read_3ds(path, channel or "LI_Demod_1_X", bias_V)
    if suffix == ".dat":
        return read_createc(path, channel or "topography", direction, crop_nan)
    raise RealDataError(f"{path}: unknown format {suffix!r}; the kit reads Nanonis .sxm / .3ds and Createc .dat")


# ------------------------------------------------------------------------------------------
# pre-processing


def level(image: np.ndarray, lines: bool = True) -> np.ndarray:
    """Subtract a fitted plane, then (``lines``) each scan line's median: removes tilt and
    line-to-line offsets, the commonest STM artefacts."""
    img = np.asarray(image, dtype=np.float64)
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    a = np.stack([xx.ravel(), yy.ravel(), np.ones(img.size)], axis=1)
    coef, *_ = np.linalg.lstsq(a, img.ravel(), rcond=None)
    out = img - (a @ coef).reshape(img.shape)
    if lines:
        out = out - np.median(out, axis=1, keepdims=True)
    return out


def highpass(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Remove variations slower than ``sigma_px`` (steps, drift) with a Gaussian high-pass."""
    from scipy.ndimage import gaussian_filter

    return image - gaussian_filter(image, sigma_px)


def bragg_filter(image: np.ndarray, n_peaks: int = 6, fmin: float = 0.15, width: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Optional: remove the atomic lattice. Finds the ``n_peaks`` strongest isolated maxima of
    |FFT| beyond ``fmin`` cycles/px (the Bragg peaks and their mirror images) and divides them
    out with Gaussian notches of ``width`` cycles/px. Returns (filtered image, peak frequencies
    (n, 2) as (fy, fx) cycles/px)."""
    from skimage.feature import peak_local_max

    img = np.asarray(image, np.float64)
    spec = np.fft.fftshift(np.fft.fft2(img - img.mean()))
    fy = np.fft.fftshift(np.fft.fftfreq(img.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(img.shape[1]))[None, :]
    mag = np.where(np.hypot(fy, fx) >= fmin, np.abs(spec), 0.0)
    peaks = peak_local_max(mag, min_distance=3, num_peaks=n_peaks, exclude_border=False)
    notch = np.ones(img.shape)
    freqs = []
    for r, c in peaks:
        py, px = fy[r, 0], fx[0, c]
        freqs.append((py, px))
        notch *= 1.0 - np.exp(-((fy - py) ** 2 + (fx - px) ** 2) / (2 * width ** 2))
    filtered = np.fft.ifft2(np.fft.ifftshift(spec * notch)).real + img.mean()
    return filtered, np.array(freqs).reshape(-1, 2)


def mask_steps(topography: np.ndarray, percentile: float = 93.0, grow_px: int = 4, sigma_px: float = 1.5) -> np.ndarray:
    """Boolean mask of step edges in a topograph: the pixels whose smoothed gradient is in the
    top ``100 - percentile`` %, grown by ``grow_px``. Steps dwarf the QPI ripples and must be kept
    out of defect finding, spectra and windows."""
    from scipy.ndimage import binary_dilation, gaussian_filter, sobel

    z = gaussian_filter(np.asarray(topography, np.float64), sigma_px)
    grad = np.hypot(sobel(z, 0), sobel(z, 1))
    return binary_dilation(grad > np.percentile(grad, percentile), iterations=grow_px)


def dominant_frequency(image: np.ndarray, fmin: float = 0.02, fmax: float = 0.45) -> float:
    """Peak of the radially averaged power spectrum in [fmin, fmax] cycles/px (Hann-windowed),
    refined between bins by a parabola through the peak bin and its neighbours (in log power).
    A constant map has no ripple and is refused, as are bounds outside (0, 0.5] or inverted."""
    fmin, fmax = validate.frequency_band(fmin, fmax)
    img = validate.image("image", image)
    if np.ptp(img) == 0:
        raise validate.InputError(f"image is constant ({img.flat[0]:g} everywhere): it has no ripple whose frequency to find")
    img = img - img.mean()
    win = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    power = np.abs(np.fft.fft2(img * win)) ** 2
    fy = np.fft.fftfreq(img.shape[0])[:, None]
    fx = np.fft.fftfreq(img.shape[1])[None, :]
    radius = np.hypot(fy, fx)
    bins = np.linspace(fmin, fmax, 90)
    idx = np.digitize(radius.ravel(), bins)
    prof = np.array([power.ravel()[idx == i].mean() if (idx == i).any() else 0.0 for i in range(1, len(bins))])
    centres = 0.5 * (bins[1:] + bins[:-1])
    i = int(np.argmax(prof))
    if 0 < i < len(prof) - 1 and (prof[i - 1: i + 2] > 0).all():
        a, b, c = np.log(prof[i - 1: i + 2])
        curvature = a - 2 * b + c
        if curvature < 0:  # a true maximum: the vertex lies within half a bin of the peak bin
            return float(centres[i] + 0.5 * (a - c) / curvature * (centres[1] - centres[0]))
    return float(centres[i])


def estimate_period_nm(image: np.ndarray, pixel_nm: float, fmin: float = 0.02, fmax: float = 0.45) -> float:
    """The map's dominant ripple period in nm, from its spectrum alone (no ground truth):
    ``pixel_nm`` / :func:`dominant_frequency`. ``fmin``/``fmax`` (cycles/px) bound the search;
    leave out the lattice (Bragg) and the long-wavelength background, e.g. with
    :func:`bragg_filter` and :func:`highpass` first. Compare with a physical value where one
    exists (:func:`standing_wave_period_nm`)."""
    pixel_nm = validate.positive("pixel_nm", pixel_nm)
    return float(pixel_nm / dominant_frequency(image, fmin, fmax))


def resample_to_frequency(image: np.ndarray, frequency: float, target: float) -> tuple[np.ndarray, float]:
    """Zoom the image so a ripple at ``frequency`` (cycles/px) ends up at ``target``.
    Returns (image, zoom factor); zoom > 1 adds pixels."""
    from skimage.transform import rescale

    zoom = frequency / target
    return rescale(np.asarray(image, np.float64), zoom, order=3, anti_aliasing=zoom < 1, mode="reflect"), zoom


def find_defects(image: np.ndarray, min_distance: int = 5, threshold: float = 3.0, sigma_px: float = 1.0,
                 polarity: str = "both", exclude_border: int = 2, mask: np.ndarray | None = None,
                 mask_margin: int = 6) -> np.ndarray:
    """Defect positions (x, y) in pixels: local extrema of the smoothed, standardised image that
    stand ``threshold`` robust standard deviations out (scikit-image ``peak_local_max``).

    ``polarity``: "bright", "dark" or "both"; ``mask``: pixels (e.g. :func:`mask_steps`) where
    nothing is looked for. Exposed so users can tune them per map; check the result on the
    figure and fix it with :func:`edit_defects`. Peaks within ``mask_margin`` px of the mask are
    dropped too (the edge of a masked step still looks like a line of defects).
    """
    from scipy.ndimage import binary_dilation, gaussian_filter
    from skimage.feature import peak_local_max

    img = gaussian_filter(np.asarray(image, np.float64), sigma_px) if sigma_px > 0 else np.asarray(image, np.float64)
    keep = np.ones(img.shape, bool)
    if mask is not None:
        if np.shape(mask) != img.shape:
            raise RealDataError(f"mask shape {np.shape(mask)} differs from the image's {img.shape}")
        grown = binary_dilation(np.asarray(mask, bool), iterations=mask_margin) if mask_margin > 0 else mask
        keep = ~np.asarray(grown, bool)
    med = np.median(img[keep])
    mad = np.median(np.abs(img[keep] - med)) * 1.4826 + 1e-30
    z = np.where(keep, (img - med) / mad, 0.0)
    found = []
    if polarity in ("bright", "both"):
        found.append(peak_local_max(z, min_distance=min_distance, threshold_abs=threshold, exclude_border=exclude_border))
    if polarity in ("dark", "both"):
        found.append(peak_local_max(-z, min_distance=min_distance, threshold_abs=threshold, exclude_border=exclude_border))
    if polarity not in ("bright", "dark", "both"):
        raise RealDataError(f"polarity must be bright, dark or both, got {polarity!r}")
    rc = np.concatenate(found) if found else np.zeros((0, 2), int)
    return rc[:, ::-1].astype(np.float64)  # (row, col) -> (x, y)


def edit_defects(positions: np.ndarray, add=(), remove=(), radius: float = 3.0) -> np.ndarray:
    """Add positions (x, y) by hand and remove the detected ones within ``radius`` px of each
    position in ``remove``."""
    pos = np.asarray(positions, np.float64).reshape(-1, 2)
    for x, y in remove:
        pos = pos[np.hypot(pos[:, 0] - x, pos[:, 1] - y) > radius]
    if len(add):
        pos = np.concatenate([pos, np.asarray(add, np.float64).reshape(-1, 2)])
    return pos


def tiles(image: np.ndarray, positions: np.ndarray, size: int = IMAGE_SIZE, stride: int = IMAGE_SIZE // 2,
          min_defects: int = 1, mask: np.ndarray | None = None,
          max_masked: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``size`` x ``size`` windows every ``stride`` px (skipping those with more than
    ``max_masked`` of their pixels in ``mask``). Returns (observations (N, 64, 64) each min-max
    scaled to [0, 1], activation maps (N, 64, 64), window origins (N, 2) (x0, y0))."""
    img = np.asarray(image, np.float64)
    h, w = img.shape
    if h < size or w < size:
        raise RealDataError(f"image {h}x{w} is smaller than one {size}x{size} window")
    obs, maps, origins = [], [], []
    for y0 in range(0, h - size + 1, stride):
        for x0 in range(0, w - size + 1, stride):
            if mask is not None and mask[y0:y0 + size, x0:x0 + size].mean() > max_masked:
                continue
            local = np.asarray(positions, np.float64).reshape(-1, 2) - [x0, y0]
            m = activation_map(local[None], size)[0]
            if m.sum() < min_defects:
                continue
            obs.append(minmax_normalise(img[y0:y0 + size, x0:x0 + size])[0])
            maps.append(m)
            origins.append((x0, y0))
    if not obs:
        raise RealDataError(f"no {size}x{size} window holds {min_defects} or more defects")
    return np.array(obs), np.array(maps, dtype=np.float64), np.array(origins)


def extract_kernels(observations: np.ndarray, maps: np.ndarray, models=None, lam: float = 1e-3,
                    ls_iterations: int = 60, progress: bool = True) -> dict[str, np.ndarray]:
    """One kernel per method from a stack of real windows: every method of the registry that runs
    on real maps (:attr:`qpi_utils.methods.Method.real_maps`) runs on every window and the results
    are averaged (then min-max scaled). ``models``: a :class:`qpi_utils.methods.TrainedModels` for
    the learned methods it was loaded for; without it only the physics baselines run. Least
    squares uses ``lam`` and ``ls_iterations``. A progress bar counts the methods."""
    from tqdm.auto import tqdm

    x = torch.from_numpy(np.stack([observations, maps], 1).astype(np.float64))
    run = _RealMapRun(models, lam, ls_iterations)
    out = {}
    # the physics baselines first, then the networks (registry order within each)
    chosen = [(name, method) for name, method in sorted(METHODS.items(), key=lambda item: bool(item[1].networks))
              if method.real_maps and not (method.networks and (models is None or name not in models.only))]
    for name, method in tqdm(chosen, desc="extracting kernels", unit="method", disable=not progress, leave=False):
        # the physics methods get the windows in float64, the networks in float32 on their device
        xm = x.float().to(models.device) if method.networks else x
        with torch.no_grad():
            pred = method.predict(run, xm).float().cpu().numpy()[:, 0]
        out[name] = minmax_normalise(pred.mean(0))[0]
    return out


class _RealMapRun:
    """The loaded run as the registry's methods see it on a real map: its networks and choices,
    with least squares at the given lambda and iteration count."""

    def __init__(self, models, lam: float, iterations: int):
        self._models, self.ls_lambda, self.ls_iterations = models, lam, iterations

    def __getattr__(self, name):
        return getattr(self._models, name)


def self_consistency(observations: np.ndarray, maps: np.ndarray, kernel: np.ndarray) -> float:
    """Fraction of the variance of the windows explained by re-synthesising them from the kernel
    and the activation maps (best scale and offset per window): 1 = fully explained."""
    y = np.asarray(observations, np.float64)
    k = np.asarray(kernel, np.float64)
    k = k - np.mean(np.concatenate([k[:4].ravel(), k[-4:].ravel(), k[:, :4].ravel(), k[:, -4:].ravel()]))
    f = ConvolutionOperator.from_maps(np.asarray(maps, np.float64)).forward(np.repeat(k[None], len(y), 0))
    explained, total = 0.0, 0.0
    for fi, yi in zip(f.reshape(len(y), -1), y.reshape(len(y), -1)):
        a = np.stack([fi, np.ones_like(fi)], 1)
        coef, *_ = np.linalg.lstsq(a, yi, rcond=None)
        resid = yi - a @ coef
        explained += ((yi - yi.mean()) ** 2).sum() - (resid ** 2).sum()
        total += ((yi - yi.mean()) ** 2).sum()
    return float(explained / total) if total > 0 else 0.0


def heldout_consistency(observations: np.ndarray, maps: np.ndarray, origins: np.ndarray, fit,
                        size: int = IMAGE_SIZE):
    """:func:`self_consistency` of a kernel on windows it was not fitted on.

    The windows are split at the median of their x origin into a left and a right group;
    windows that overlap the other group's pixels are left out of both (overlapping windows share
    pixels, so scoring on them would reuse what was fitted). ``fit(observations, maps)`` returns a
    (64, 64) kernel, or a dict of them (e.g. :func:`extract_kernels`, every method at once); it
    is run on one group and scored on the other, both ways. Returns the mean of the two scores
    (a dict of them when ``fit`` returns a dict). The true kernel's score on the same windows is
    the ceiling (``fit=lambda y, m: kernel``); a wrong kernel scores lower.
    """
    origins = np.asarray(origins, np.float64).reshape(-1, 2)
    if len(origins) != len(observations) or len(maps) != len(observations):
        raise RealDataError(f"{len(observations)} observations, {len(maps)} maps and {len(origins)} origins differ in number")
    split = float(np.median(origins[:, 0])) + size / 2
    left = origins[:, 0] + size <= split
    right = origins[:, 0] >= split
    if not left.any() or not right.any():
        raise RealDataError("held-out score: the windows do not fall into two non-overlapping groups "
                            f"(left {int(left.sum())}, right {int(right.sum())}); use a wider map or a smaller stride")
    halves = []
    for train, test in ((left, right), (right, left)):
        fitted = fit(observations[train], maps[train])
        kernels = fitted if isinstance(fitted, dict) else {None: fitted}
        halves.append({name: self_consistency(observations[test], maps[test], np.asarray(k, np.float64))
                       for name, k in kernels.items()})
    scores = {name: float(np.mean([h[name] for h in halves])) for name in halves[0]}
    return scores if isinstance(fitted, dict) else scores[None]


# ------------------------------------------------------------------------------------------
# surface states of the noble metals, and a simulated Ag(111)-like map (labelled as simulated
# everywhere it is shown)

AG111 = {"band_bottom_eV": -0.063, "effective_mass": 0.40}  # Shockley surface state of Ag(111)
# Shockley surface state of Cu(111): band bottom 0.44 eV below E_F, m* = 0.38 m_e (Crommie, Lutz
# and Eigler, Nature 363, 524 (1993)); at E_F the standing waves have period pi / k_F = 1.50 nm
CU111 = {"band_bottom_eV": -0.44, "effective_mass": 0.38}
_HBAR2_OVER_2ME = 3.81  # eV * angstrom^2


def standing_wave_period_nm(bias_V: float, band_bottom_eV: float = AG111["band_bottom_eV"],
                            effective_mass: float = AG111["effective_mass"]) -> float:
    """LDOS standing-wave period pi / k(E) of a free-electron-like surface state at energy
    E = e * bias: k = sqrt(m* (E - E0) / (hbar^2 / 2 m_e)). Ag(111) at +50 mV: about 2.9 nm."""
    excess = bias_V - band_bottom_eV
    if excess <= 0:
        raise RealDataError(f"bias {bias_V} V is below the band bottom {band_bottom_eV} eV: no surface state there")
    k = np.sqrt(effective_mass * excess / _HBAR2_OVER_2ME)  # 1/angstrom
    return float(np.pi / k / 10.0)


def simulated_ag111(bias_V: float = 0.05, size_px: int = 256, n_defects: int = 40, target_frequency: float = 0.12,
                    decay_periods: float = 2.0, snr_db: float | None = 20.0, seed: int = 0):
    """A *simulated* Ag(111)-like dI/dV map from known physics: isotropic Friedel-like
    oscillations at the surface-state standing-wave period for ``bias_V``, decaying over
    ``decay_periods`` periods, around ``n_defects`` random point defects, with white noise.

    The pixel size is chosen so the period is 1 / ``target_frequency`` px (the training scale).
    A matching topograph shows each defect as a 0.1 nm bump (as adatoms do), which is where
    defects are found in practice. Returns (dI/dV STMImage, topograph STMImage, true positions
    (N, 2) px, true kernel (64, 64) min-max scaled).
    """
    period = standing_wave_period_nm(bias_V)
    pixel = period * target_frequency
    params = KernelParams(symmetry=0, frequency=target_frequency, phase=0.0, decay=decay_periods / target_frequency)
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-0.5, size_px - 0.5, size=(1, n_defects, 2))
    grid = int(2 ** np.ceil(np.log2(size_px + IMAGE_SIZE)))
    spec = kernel_spectrum(params, grid=grid)[0]
    clean = render_observations(spec, positions, size=size_px)
    data = add_noise(rng, clean, snr_db, 0.0)[0]
    kernel = render_observations(spec, np.array([[[float(KERNEL_ORIGIN)] * 2]]), size=IMAGE_SIZE)[0]
    image = STMImage(data=data, pixel_nm=(pixel, pixel), channel="simulated dI/dV", unit="a.u.", bias_V=bias_V,
                     source="SIMULATED Ag(111)-like map (qpi_utils.realdata.simulated_ag111)",
                     meta={"simulated": True, "period_nm": period, "snr_db": snr_db})
    yy, xx = np.mgrid[:size_px, :size_px]
    bumps = sum(0.1 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.2 ** 2)) for x, y in positions[0])
    topo = STMImage(data=bumps + rng.normal(0, 0.003, bumps.shape), pixel_nm=(pixel, pixel),
                    channel="simulated topography", unit="nm", bias_V=bias_V, source=image.source,
                    meta={"simulated": True})
    return image, topo, positions[0], minmax_normalise(kernel)[0]


# ------------------------------------------------------------------------------------------
# the kit's two real maps, prepared as notebook 08 prepares them (one place, so the notebook,
# the realistic-training ablation and a user's script cut the same windows)


@dataclass
class RealWindows:
    """64x64 windows of a real map with their activation maps, ready for :func:`extract_kernels`.

    ``observations``, ``maps``: (N, 64, 64) float64 windows of the (levelled, rescaled) dI/dV map
    and their binned defect maps; ``origins``: (N, 2) window corners (x, y) in px of ``image``;
    ``image``: the map the windows were cut from; ``positions``: (P, 2) defects (x, y) in px of
    ``image``; ``pixel_nm``: its pixel size; ``extra``: what the preparation also made (for figures)."""

    name: str
    observations: np.ndarray
    maps: np.ndarray
    origins: np.ndarray
    image: np.ndarray
    positions: np.ndarray
    pixel_nm: float
    extra: dict = field(default_factory=dict)


def fese_windows() -> RealWindows:
    """The FeSe lock-in dI/dV map (stmpy's tutorial file): levelled, defects found on the
    topograph (bright, min distance 8 px, 5 sigma), 64x64 windows at stride 32. The map's own
    pixel size is kept (its ripple frequency lies inside the training range)."""
    path = fetch("FeSe_topography.sxm")
    didv, topo = read_stm(path, "LIY_1_omega"), read_stm(path, "Z")
    z, y = level(topo.data), level(didv.data)
    positions = find_defects(z, min_distance=8, threshold=5.0, sigma_px=1.5, polarity="bright")
    obs, maps, origins = tiles(y, positions, stride=32)
    return RealWindows("FeSe", obs, maps, origins, y, positions, didv.pixel_nm[0],
                       {"topography": z, "didv": didv, "topo": topo})


def cu111_windows(target_frequency: float = 0.12) -> RealWindows:
    """The Cu(111) Createc terrace (ProbeFlow's test file): steps masked, high-passed, rescaled so
    the ripple period read from the spectrum (:func:`estimate_period_nm`) lands at
    ``target_frequency`` cycles/px, defects found on the rescaled map, windows at stride 32 that
    stay off the steps. ``extra`` holds the period from the spectrum and the physical one."""
    from skimage.transform import resize

    cu = read_stm(fetch("Cu111_createc_terrace.dat"), "topography")
    steps = mask_steps(level(cu.data, lines=False), percentile=90, grow_px=6)
    ripples = np.where(steps, 0.0, highpass(level(cu.data, lines=False), 5))
    period = estimate_period_nm(ripples, cu.pixel_nm[0], fmin=0.1, fmax=0.3)
    physical = standing_wave_period_nm(cu.bias_V, **CU111)
    image, zoom = resample_to_frequency(ripples, cu.pixel_nm[0] / period, target_frequency)
    mask = resize(steps.astype(float), image.shape, order=0) > 0.5
    positions = find_defects(image, min_distance=10, threshold=8.0, sigma_px=2.0, mask=mask, mask_margin=15)
    obs, maps, origins = tiles(image, positions, stride=32, mask=mask)
    return RealWindows("Cu(111)", obs, maps, origins, image, positions, cu.pixel_nm[0] / zoom,
                       {"stm": cu, "steps": steps, "ripples": ripples, "period_nm": period,
                        "physical_period_nm": physical, "zoom": zoom})


def heldout_scores(windows: RealWindows, models=None, lam: float | None = None) -> dict[str, float]:
    """:func:`heldout_consistency` of every method of :func:`extract_kernels` on ``windows``
    (fitted on one half of the map, scored on the other). ``lam``: least squares' lambda
    (default: the one ``models`` chose on validation, else 1e-3)."""
    if lam is None:
        lam = models.ls_lambda if models is not None and models.ls_lambda is not None else 1e-3
    return heldout_consistency(windows.observations, windows.maps, windows.origins,
                               lambda o, m: extract_kernels(o, m, models, lam=lam, progress=False))
