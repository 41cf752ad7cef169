r"""The kit's physics model: QPI kernels (five parameters) and observations, the exact sum of
kernels at continuous scatterer positions, pixel-integrated and band-limited. Lengths in px,
frequencies in cycles/px; positions (x, y). The model and its sampling: ``docs/library.md``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from threadpoolctl import threadpool_limits

__all__ = ["SYMMETRY_ORDERS", "SYMMETRY_NAMES", "PARAM_NAMES", "KERNEL_ORIGIN", "GRID", "KernelParams",
           "kernel_field", "kernel_spectrum", "kernel_image", "scatterer_spectrum", "render_observations",
           "observation_direct", "activation_map", "sample_kernel_params", "draw_positions", "draw_outside",
           "add_noise", "symmetry_angles", "model_constants"]

SYMMETRY_ORDERS: tuple[int, ...] = (0, 2, 3, 4, 6)  # 0 = isotropic
SYMMETRY_NAMES = {0: "isotropic", 2: "2-fold", 3: "3-fold", 4: "4-fold", 6: "6-fold"}
PARAM_NAMES = ("symmetry", "orientation", "frequency", "phase", "decay")  # the paper's five parameters
IMAGE_SIZE = 64  # px: the side of every kernel, observation and activation map (the paper's 64x64)
KERNEL_ORIGIN = IMAGE_SIZE // 2  # row and column of the scatterer in a kernel image
ANGULAR_AMPLITUDE = 0.5
WAVEFRONT_ANISOTROPY = 0.12
CORE_RADIUS = 4.0  # px: angular terms switch on over this radius
SMOOTHING_RADIUS = 1.0  # px: rounds the cusp of the radial profile at the defect
TAPER_RADII = (24.0, 30.0)  # px: window is 1 inside the first, 0 outside the second
GRID = 128  # periodic grid (px) on which observations are synthesised


@dataclass(frozen=True)
class KernelParams:
    """The five parameters of one kernel (units: rad, cycles/px, rad, px)."""

    symmetry: int
    orientation: float = 0.0
    frequency: float = 0.1
    phase: float = 0.0
    decay: float = 8.0

    def __post_init__(self):
        if self.symmetry not in SYMMETRY_ORDERS:
            raise InputError(f"symmetry must be one of {SYMMETRY_ORDERS} (0 = isotropic), got {self.symmetry!r}")
        if not 0 < self.frequency <= 0.45:
            raise InputError(f"frequency must be in (0, 0.45] cycles/px (below Nyquist), got {self.frequency!r}")
        if not (self.decay > 0 and np.isfinite(self.decay)):
            raise InputError(f"decay must be a finite number > 0 px, got {self.decay!r}")
        if not (np.isfinite(self.orientation) and np.isfinite(self.phase)):
            raise InputError(f"orientation and phase must be finite (rad), got {self.orientation!r}, {self.phase!r}")


def symmetry_angles(order: int, n_isotropic: int = 4) -> np.ndarray:
    """The rotation angles (rad) that map a kernel of this symmetry order onto itself.

    n-fold: 2 pi k / n for k = 1..n-1. Isotropic (0): ``n_isotropic`` angles spread over the
    circle that are not multiples of 60 or 90 degrees, so that they test continuous symmetry.
    """
    if order == 0:
        return np.deg2rad(np.array([37.0, 113.0, 199.0, 271.0])[:n_isotropic])
    if order not in SYMMETRY_ORDERS:
        raise InputError(f"symmetry order must be one of {SYMMETRY_ORDERS}, got {order!r}")
    return 2 * np.pi * np.arange(1, order) / order


def _as_arrays(params) -> dict[str, np.ndarray]:
    """KernelParams, a list of them, or a dict of arrays -> dict of float arrays shaped (K,)."""
    if isinstance(params, KernelParams):
        params = [params]
    if isinstance(params, dict):
        missing = [k for k in PARAM_NAMES if k not in params]
        if missing:
            raise InputError(f"kernel parameters miss {missing}; give all of {PARAM_NAMES}")
        out = {k: np.atleast_1d(np.asarray(params[k], dtype=np.float64)) for k in PARAM_NAMES}
        if len({v.shape for v in out.values()}) != 1 or out["symmetry"].ndim != 1:
            raise InputError(f"kernel parameters must be (K,) arrays of one length, got shapes "
                             f"{ {k: v.shape for k, v in out.items()} }")
        for k in range(len(out["symmetry"])):  # the same checks as one KernelParams
            KernelParams(int(out["symmetry"][k]) if out["symmetry"][k] in SYMMETRY_ORDERS else out["symmetry"][k],
                         *(float(out[name][k]) for name in PARAM_NAMES[1:]))
    else:
        out = {k: np.array([getattr(p, k) for p in params], dtype=np.float64) for k in PARAM_NAMES}
    return out


def kernel_field(params, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The analytic kernel A at displacements (dx, dy) from the scatterer, in pixels.

    ``params``: one :class:`KernelParams` (result shaped like ``dx``) or K of them / a dict of
    (K,) arrays (result shaped (K, *dx.shape)). Not normalised; the peak is about 1.
    """
    single = isinstance(params, KernelParams)
    p = _as_arrays(params)
    extra = (slice(None),) + (None,) * np.ndim(dx)
    n, th0, f, ph, xi = (p[k][extra] for k in PARAM_NAMES)
    dx = np.asarray(dx, dtype=np.float64)[None]
    dy = np.asarray(dy, dtype=np.float64)[None]
    r2 = dx * dx + dy * dy
    r = np.sqrt(r2)
    theta = np.arctan2(dy, dx)
    g = np.where(n > 0, np.cos(n * (theta - th0)), 0.0) * (r2 / (r2 + CORE_RADIUS**2))
    r_in, r_out = TAPER_RADII
    t = np.clip((r - r_in) / (r_out - r_in), 0.0, 1.0)
    window = 0.5 * (1.0 + np.cos(np.pi * t))
    rho = np.sqrt(r2 + SMOOTHING_RADIUS**2)  # r, rounded off below SMOOTHING_RADIUS
    field = (1.0 + ANGULAR_AMPLITUDE * g) * np.cos(2 * np.pi * f * rho * (1.0 + WAVEFRONT_ANISOTROPY * g) + ph)
    field = field * np.exp(-rho / xi) * window
    return field[0] if single else field


def kernel_spectrum(params, supersample: int = 4, grid: int = GRID) -> np.ndarray:
    """Band-limited, pixel-integrated spectrum of each kernel on the ``grid`` x ``grid`` lattice.

    Returns complex128 (K, grid, grid // 2 + 1) (rfft2 layout, origin of the kernel at grid
    index 0): the DFT of the kernel sampled at pixel centres after integration over each pixel,
    with every frequency at or above the pixel Nyquist removed (those would alias). Computed from
    the analytic field sampled ``supersample`` times per pixel.
    """
    p = _as_arrays(params)
    s = int(supersample)
    fine = grid * s
    d = np.fft.fftfreq(fine, d=1.0 / fine) / s  # fine-grid displacements (px), FFT order
    dy, dx = np.meshgrid(d, d, indexing="ij")
    ky = np.fft.fftfreq(grid, d=1.0 / grid).astype(int)  # pixel-DFT indices -grid/2..grid/2-1
    kx = np.arange(grid // 2 + 1)
    box = np.sinc(ky / grid)[:, None] * np.sinc(kx / grid)[None, :]  # pixel integration
    keep = (np.abs(ky) < grid // 2)[:, None] & (kx < grid // 2)[None, :]  # drop Nyquist bins
    out = np.empty((len(p["symmetry"]), grid, grid // 2 + 1), dtype=np.complex128)
    for k in range(len(p["symmetry"])):  # one kernel at a time bounds memory (fine**2 floats)
        one = {key: val[k:k + 1] for key, val in p.items()}
        spec = np.fft.rfft2(kernel_field(one, dx, dy)[0]) / (s * s)
        out[k] = spec[ky % fine][:, kx] * box * keep
    return out


def _phase_ramps(coord: np.ndarray, k_start: int, n_k: int, grid: int) -> np.ndarray:
    """exp(-2 pi i k c / grid) for k = k_start .. k_start + n_k - 1, for every coordinate c.

    coord: (..., 1) float64. Uses exp(i(a + b) t) = exp(i a t) exp(i b t) with k split into
    coarse and fine steps, so only about 2 sqrt(n_k) complex exponentials are evaluated per
    coordinate instead of n_k (they dominate the cost otherwise). Exact to float64 rounding.
    """
    step = int(np.ceil(np.sqrt(n_k)))
    theta = (-2.0 * np.pi / grid) * coord  # (..., 1)
    fine = np.exp(1j * theta * np.arange(step))  # (..., step)
    coarse = np.exp(1j * theta * (k_start + step * np.arange(-(-n_k // step))))  # (..., n_coarse)
    ramps = (coarse[..., :, None] * fine[..., None, :]).reshape(*coord.shape[:-1], -1)
    return ramps[..., :n_k]


def scatterer_spectrum(positions: np.ndarray, weights: np.ndarray | None = None, grid: int = GRID,
                       dtype=np.complex64) -> np.ndarray:
    """The spectrum of unit point scatterers at continuous positions on a periodic grid.

    positions: (B, S, 2) (x, y) in pixels (NaN = unused slot); weights: (B, S) (default 1).
    Returns (B, grid, grid // 2 + 1) complex ``dtype`` (rfft2 layout):
    sum_i w_i exp(-2 pi i (k_y y_i + k_x x_i) / grid). Multiplied by a kernel's spectrum it
    places the kernel at every position, sub-pixel exactly (the band-limited shift).
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise InputError(f"positions must have shape (batch, scatterers, 2), got {positions.shape}")
    if weights is not None and np.shape(weights) != positions.shape[:2]:
        raise InputError(f"weights must have shape {positions.shape[:2]} (batch, scatterers), got {np.shape(weights)}")
    valid = np.isfinite(positions).all(-1)
    w = valid.astype(np.float64) if weights is None else np.asarray(weights, dtype=np.float64) * valid
    pos = np.where(valid[..., None], positions, 0.0)
    # Phase ramps factorise: sum_i exp(-2 pi i (ky y_i + kx x_i) / grid) = Ey^T Ex, with ky in
    # FFT order (0..grid/2-1, then -grid/2..-1) and kx = 0..grid/2 (rfft half-plane).
    half = grid // 2
    ey_pos = _phase_ramps(pos[..., 1:2], 0, half, grid)
    ey_neg = _phase_ramps(pos[..., 1:2], -half, half, grid)
    ey = (np.concatenate([ey_pos, ey_neg], axis=-1) * w[..., None]).astype(dtype)  # (B, S, grid)
    ex = _phase_ramps(pos[..., 0:1], 0, half + 1, grid).astype(dtype)  # (B, S, grid//2+1)
    # One BLAS thread: a threaded product splits the sum over scatterers differently for each
    # thread count, which changes the last bits; datasets must not depend on the machine's threads.
    with threadpool_limits(limits=1, user_api="blas"):
        return np.matmul(ey.transpose(0, 2, 1), ex)  # (B, grid, grid//2+1)


def render_observations(spectrum: np.ndarray, positions: np.ndarray, weights: np.ndarray | None = None,
                        size: int = IMAGE_SIZE, dtype=np.complex64) -> np.ndarray:
    """Exact superposition of one kernel centred at each (sub-pixel) position.

    spectrum: (grid, grid//2+1) from :func:`kernel_spectrum` (one kernel).
    positions: (B, S, 2) float, (x, y) in pixels of the ``size`` x ``size`` field of view; may lie
    outside it (down to -31 or up to size+30 px) for scatterers that are seen but not labelled.
    weights: (B, S), 1 for a scatterer and 0 for an unused slot (default: all 1; NaN positions
    are treated as unused). ``dtype``: complex64 (fast, float32-accurate: what datasets use) or
    complex128. Returns float64 (B, size, size), not normalised.
    """
    grid = spectrum.shape[0]
    if size + 2 * KERNEL_ORIGIN > grid:
        raise InputError(f"size {size} is too large for a spectrum on a {grid} grid (at most {grid - 2 * KERNEL_ORIGIN}): "
                         f"compute the spectrum with kernel_spectrum(..., grid={1 << int(np.ceil(np.log2(size + 64)))})")
    pos = np.asarray(positions, dtype=np.float64)
    lo, hi = size - grid + KERNEL_ORIGIN - 0.5, grid - KERNEL_ORIGIN - 0.5  # beyond them a kernel wraps into view
    with np.errstate(invalid="ignore"):
        far = np.isfinite(pos) & ((pos < lo) | (pos >= hi))
    if far.any():
        raise InputError(f"positions must lie in [{lo}, {hi}) px for a {size} px view on a {grid} grid "
                         f"(found {pos[far][0]:g}): a scatterer further out would wrap into the view")
    comb = scatterer_spectrum(positions, weights, grid, dtype)
    images = np.fft.irfft2(comb * spectrum[None].astype(dtype), s=(grid, grid))
    return images[:, :size, :size].astype(np.float64)


def kernel_image(params: KernelParams, size: int = IMAGE_SIZE, supersample: int = 4) -> np.ndarray:
    """The kernel as a (size, size) float64 image with the scatterer on pixel (32, 32)."""
    spec = kernel_spectrum(params, supersample=supersample)[0]
    origin = np.array([[[size // 2, size // 2]]], dtype=np.float64)
    return render_observations(spec, origin, size=size)[0]


def observation_direct(params: KernelParams, positions: np.ndarray, size: int = IMAGE_SIZE,
                       supersample: int = 4) -> np.ndarray:
    """Reference: a plain loop over scatterers evaluating the analytic field pixel by pixel.

    Each pixel is the mean of ``supersample**2`` analytic samples inside it (pixel integration by
    the midpoint rule). Slow; agrees with :func:`render_observations` to the aliasing level.
    positions: (S, 2) (x, y) in pixels.
    """
    s = int(supersample)
    sub = (np.arange(s) + 0.5) / s - 0.5
    centres = np.arange(size, dtype=np.float64)
    ys = (centres[:, None] + sub[None, :]).reshape(-1)
    xs = ys.copy()
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    image = np.zeros((size, size))
    for x0, y0 in np.asarray(positions, dtype=np.float64):
        fine = kernel_field(params, xx - x0, yy - y0)
        image += fine.reshape(size, s, size, s).mean(axis=(1, 3))
    return image


def activation_map(positions: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """(..., S, 2) positions (x, y) in px, NaN for unused -> (..., size, size) uint8 counts.

    A scatterer belongs to the pixel whose centre is nearest (pixel j covers [j-0.5, j+0.5));
    positions outside the field of view are not counted.
    """
    positions = np.asarray(positions, dtype=np.float64)
    lead = positions.shape[:-2]
    flat = positions.reshape(-1, positions.shape[-2], 2)
    maps = np.zeros((flat.shape[0], size * size), dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        col = np.floor(flat[..., 0] + 0.5)
        row = np.floor(flat[..., 1] + 0.5)
        inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < size) & (row >= 0) & (row < size)
    b, s_idx = np.nonzero(inside)
    np.add.at(maps, (b, (row[b, s_idx] * size + col[b, s_idx]).astype(np.int64)), 1)
    return maps.reshape(*lead, size, size)


def sample_kernel_params(n_kernels: int, rng: np.random.Generator,
                         frequency_range=(0.06, 0.18), decay_range=(4.0, 12.0)) -> dict[str, np.ndarray]:
    """Parameters of ``n_kernels`` kernels spread evenly over the five symmetry classes.

    Class k % 5 for kernel k; orientation uniform in [0, 2 pi / n) (0 for isotropic), frequency
    and decay uniform in their ranges, phase uniform in [0, 2 pi).
    """
    symmetry = np.array([SYMMETRY_ORDERS[k % len(SYMMETRY_ORDERS)] for k in range(n_kernels)], dtype=np.int64)
    period = np.where(symmetry > 0, 2 * np.pi / np.maximum(symmetry, 1), 0.0)
    return {
        "symmetry": symmetry,
        "orientation": rng.uniform(0.0, 1.0, n_kernels) * period,
        "frequency": rng.uniform(*frequency_range, n_kernels),
        "phase": rng.uniform(0.0, 2 * np.pi, n_kernels),
        "decay": rng.uniform(*decay_range, n_kernels),
    }


def draw_positions(rng: np.random.Generator, n: np.ndarray, max_s: int, size: int) -> np.ndarray:
    """(B,) counts -> (B, max_s, 2) float32-exact positions uniform over the field of view."""
    pos = rng.uniform(-0.5, size - 0.5, size=(len(n), max_s, 2))
    pos = pos.astype(np.float32).astype(np.float64)  # what is stored is what was rendered
    pos[np.arange(max_s)[None, :] >= n[:, None]] = np.nan
    return pos


def draw_outside(rng: np.random.Generator, n_inside: np.ndarray, margin: float, size: int) -> np.ndarray:
    """Unlabelled scatterers in the band of width ``margin`` around the field of view, at the
    same areal density as inside (Poisson count). Returns (B, max_out, 2), NaN padded."""
    b = len(n_inside)
    if margin <= 0:
        return np.full((b, 0, 2), np.nan)
    band_area = (size + 2 * margin) ** 2 - size**2
    counts = rng.poisson(n_inside / size**2 * band_area)
    max_out = int(counts.max()) if b else 0
    out = np.full((b, max_out, 2), np.nan)
    lo, hi = -0.5 - margin, size - 0.5 + margin
    for i, c in enumerate(counts):  # rejection sampling; a handful of draws per image
        got = np.empty((0, 2))
        while len(got) < c:
            cand = rng.uniform(lo, hi, size=(2 * c + 4, 2))
            outside = ((cand < -0.5) | (cand >= size - 0.5)).any(axis=1)
            got = np.concatenate([got, cand[outside]])
        out[i, :c] = got[:c]
    return out.astype(np.float32).astype(np.float64)


def add_noise(rng: np.random.Generator, clean: np.ndarray, snr_db: float | None, line_noise: float) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` and per-scan-line offsets (rows), both scaled to each
    image's own signal standard deviation."""
    if snr_db is None and line_noise <= 0:
        return clean
    std = clean.std(axis=(-2, -1), keepdims=True)
    noisy = clean.copy()
    if snr_db is not None:
        noisy += rng.standard_normal(clean.shape) * std / 10 ** (snr_db / 20)
    if line_noise > 0:
        noisy += rng.standard_normal(clean.shape[:-1] + (1,)) * std * line_noise
    return noisy


def model_constants() -> dict:
    """The fixed constants of the kernel model, as recorded in a dataset's ``meta.json``."""
    return {
        "angular_amplitude": ANGULAR_AMPLITUDE,
        "wavefront_anisotropy": WAVEFRONT_ANISOTROPY,
        "core_radius_px": CORE_RADIUS,
        "taper_radii_px": list(TAPER_RADII),
        "grid_px": GRID,
    }
