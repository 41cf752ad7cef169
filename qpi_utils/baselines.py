"""Physics baselines (defect average, least squares with the known M) and the physics-consistent
hybrid, all on :class:`qpi_utils.physics.ConvolutionOperator`; images 64x64, the scatterer on
pixel (32, 32). What each one does: ``docs/library.md``."""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import numpy as np
import torch

from .config import PhysicsConfig
from .imaging import minmax_normalise
from .models import from_model_scale, to_model_scale
from .physics import ConvolutionOperator
from .simulate import IMAGE_SIZE
from .validate import InputError, image_batch
from .train import cpu_has_native_bf16

__all__ = ["defect_average", "least_squares", "least_squares_path", "choose_regularisation", "estimate_noise_std",
           "least_squares_discrepancy", "estimate_snr_db", "edge_ratio", "EdgeCheck", "EDGE_CHECK", "hybrid", "choose_hybrid_settings",
           "prior_centred_fits", "check_positions", "TAU", "DECODER_AUTOCAST", "decoder_precision"]


def _check_batch(name: str, x) -> np.ndarray:
    return image_batch(name, x)  # (N, 64, 64) float64, finite (qpi_utils.validate: the API's one check)


MAX_DEFECTS_PER_PIXEL = 1000  # an activation map counts defects per pixel


def _check_pair(observations, maps) -> tuple[np.ndarray, np.ndarray]:
    y = _check_batch("observations", observations)
    m = _check_batch("activation maps", maps)
    if y.shape != m.shape:
        raise InputError(f"observations {y.shape} and activation maps {m.shape} differ in shape")
    if (m < 0).any() or m.max() > MAX_DEFECTS_PER_PIXEL:
        raise InputError(f"activation maps must count defects: values in [0, {MAX_DEFECTS_PER_PIXEL}] per pixel, got "
                         f"[{m.min():g}, {m.max():g}]")
    return y, m


def check_positions(positions, n: int) -> np.ndarray:
    """(N, S, 2) continuous defect positions (x, y) in pixels, NaN = unused slot."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != n or p.shape[-1] != 2:
        raise InputError(f"positions must be ({n}, S, 2) (x, y) per defect, NaN for unused slots; got shape {p.shape}")
    finite = np.isfinite(p)
    if (finite[..., 0] != finite[..., 1]).any():
        raise InputError("positions: a defect has one finite and one NaN coordinate")
    return p


def _operator(m: np.ndarray, positions) -> tuple[ConvolutionOperator, np.ndarray]:
    """The forward operator and the number of defects per image: from the continuous positions
    when given (sub-pixel exact, as the simulator renders), else from the binned maps."""
    if positions is None:
        return ConvolutionOperator.from_maps(m), m.sum(axis=(-2, -1))
    p = check_positions(positions, len(m))
    return ConvolutionOperator.from_positions(p), np.isfinite(p[..., 0]).sum(-1).astype(np.float64)


def defect_average(observations: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Average of the 64x64 windows of Y centred on each labelled defect (the defect on pixel
    (32, 32)); pixels a window takes from outside the field of view are left out of the mean.
    Y's mean is removed first so missing pixels do not bias the average. Returns (N, 64, 64)
    min-max scaled to [0, 1]; an image with no labelled defect gives zeros."""
    y, m = _check_pair(observations, maps)
    y = y - y.mean(axis=(-2, -1), keepdims=True)
    # sum over defects of shifted windows = correlation of Y with M; coverage = correlation of 1 with M
    op = ConvolutionOperator.from_maps(m)
    total = op.adjoint(y)
    coverage = op.adjoint(np.ones_like(y))
    avg = np.where(coverage > 0.5, total / np.maximum(coverage, 1e-9), 0.0)
    return minmax_normalise(avg)[0]


def _check_lambdas(lams, name: str = "grid") -> np.ndarray:
    """(K,) float64 regularisation weights, each finite and > 0; ``name`` "lam" for a single value."""
    arr = np.atleast_1d(np.asarray(lams, np.float64))
    if arr.ndim != 1 or arr.size == 0 or not (np.isfinite(arr).all() and (arr > 0).all()):
        if name == "lam":
            raise InputError(f"lam must be a finite number > 0, got {lams}")
        raise InputError(f"{name} must hold finite lambdas > 0, got {np.asarray(lams).tolist()}")
    return arr


def _data_mask(edge: int) -> np.ndarray:
    """(IMAGE_SIZE, IMAGE_SIZE) 1.0 on the pixels the data term uses, 0.0 on a band of ``edge`` px at the image edge."""
    if isinstance(edge, bool) or not isinstance(edge, (int, np.integer)) or not 0 <= edge < 32:
        raise InputError(f"edge must be an integer number of px in 0 .. 31 (the interior must keep pixels), "
                         f"got {edge!r}")
    mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    mask[edge:IMAGE_SIZE - edge, edge:IMAGE_SIZE - edge] = 1.0
    return mask


def _solve_path(y: np.ndarray, m: np.ndarray, lams, iterations: int, positions,
                prior: np.ndarray | None = None, edge: int = 0):
    """The solve of :func:`least_squares` on checked inputs for every lambda of ``lams`` ((K,) > 0) at
    once, by multi-shift CG (``docs/library.md``): (B (N, K, 64, 64) unscaled, offsets c (N, K), the
    operator H, the fits H B + c (N, K, 64, 64)), numpy float64. ``prior`` ((N, 64, 64), Y's units):
    regularise towards it instead of zero. ``edge`` > 0: the data term uses only pixels at least that
    far from the image edge. Runs in torch float64 (every core; ``benchmarks/bench_least_squares.py``)."""
    lams = _check_lambdas(lams)
    mask_np = _data_mask(edge)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise InputError(f"iterations must be an integer >= 1, got {iterations!r}")
    op, counts = _operator(m, positions)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise InputError(f"{'positions' if positions is not None else 'activation map'} {int(empty[0])} (of {len(m)}) "
                         "has no defect: the kernel is not determined by that observation; leave it out")
    mask = torch.from_numpy(mask_np)
    area = float(mask_np.sum())
    centre = lambda img: mask * (img - (img * mask).sum(dim=(-2, -1), keepdim=True) / area)
    n, k = len(y), len(lams)
    shifts = torch.from_numpy(lams[None, :] * np.maximum(counts, 1.0)[:, None])  # (N, K)
    base = shifts.min(1).values  # (N,)
    extra = shifts - base[:, None]  # (N, K) >= 0: each lambda's shift relative to the base system
    yt = torch.from_numpy(np.ascontiguousarray(y, np.float64))
    pt = None if prior is None else torch.from_numpy(np.ascontiguousarray(prior, np.float64))
    rhs = yt if pt is None else yt - op.forward(pt)
    r = op.adjoint(centre(rhs))
    p = r.clone()
    rr = (r * r).sum(dim=(-2, -1))
    x_k = torch.zeros((n, k, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.float64)
    p_k = r[:, None].repeat(1, k, 1, 1)
    zeta, zeta_old = torch.ones((n, k), dtype=torch.float64), torch.ones((n, k), dtype=torch.float64)
    alpha_old, beta_old = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)

    def safe(num, den):  # num / den, 0 where den is 0 (an image whose system is already solved)
        nonzero = den != 0
        return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), torch.zeros_like(den))

    for _ in range(iterations):
        q = op.adjoint(centre(op.forward(p))).add_(p * base[:, None, None])
        alpha = safe(rr, (p * q).sum(dim=(-2, -1)))  # (N,), 0 once an image's system is solved
        # zeta_new / zeta scales the base residual to each shifted system's (they stay collinear)
        den = ((alpha * beta_old)[:, None] * (zeta_old - zeta)
               + zeta_old * alpha_old[:, None] * (1 + alpha[:, None] * extra))
        zeta_new = safe(zeta * zeta_old * alpha_old[:, None], den)
        ratio = safe(zeta_new, zeta)
        x_k.add_(p_k * (alpha[:, None] * ratio)[..., None, None])
        r = r - alpha[:, None, None] * q
        rr_new = (r * r).sum(dim=(-2, -1))
        beta = safe(rr_new, rr)
        p_k.mul_((beta[:, None] * ratio ** 2)[..., None, None]).add_(r[:, None] * zeta_new[..., None, None])
        p = r + beta[:, None, None] * p
        zeta_old, zeta, alpha_old, beta_old, rr = zeta, zeta_new, torch.where(alpha != 0, alpha, alpha_old), beta, rr_new
    b = x_k if pt is None else x_k + pt[:, None]
    hb = torch.stack([op.forward(b[:, j].contiguous()) for j in range(k)], 1)  # H B per lambda
    c = ((yt[:, None] - hb) * mask).sum(dim=(-2, -1)) / area
    return b.numpy(), c.numpy(), op, (hb + c[..., None, None]).numpy()


def least_squares(observations: np.ndarray, maps: np.ndarray, lam: float = 1e-3, iterations: int = 60,
                  return_raw: bool = False, positions: np.ndarray | None = None) -> np.ndarray:
    """Tikhonov least squares for the kernel: min ||H B + c - Y||^2 + lam * (defects) * ||B||^2 over B
    and an offset c, H = crop(M (*) .), by ``iterations`` CG steps from zero (``docs/library.md``).
    observations, maps: (N, 64, 64). ``positions`` ((N, S, 2) (x, y) px, NaN = unused): place the
    kernel at those sub-pixel positions instead of M's pixels. Returns (N, 64, 64) kernels on [0, 1]
    (``return_raw``: the unscaled B)."""
    y, m = _check_pair(observations, maps)
    if np.ndim(lam) != 0:
        raise InputError(f"lam must be one number (least_squares_path solves a grid), got shape {np.shape(lam)}")
    b = _solve_path(y, m, _check_lambdas(lam, "lam"), iterations, positions)[0]
    return b[:, 0] if return_raw else minmax_normalise(b[:, 0])[0]


def least_squares_path(observations: np.ndarray, maps: np.ndarray, grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                       iterations: int = 60, positions: np.ndarray | None = None) -> np.ndarray:
    """:func:`least_squares` for every lambda of ``grid`` at the cost of one solve: (N, K, 64, 64)
    kernels on [0, 1] in the grid's order; ``[:, j]`` equals ``least_squares(..., lam=grid[j])`` up to
    CG's rounding (at most 5e-3, ``benchmarks/bench_least_squares.py``)."""
    y, m = _check_pair(observations, maps)
    b = _solve_path(y, m, grid, iterations, positions)[0]
    return minmax_normalise(b.reshape(-1, IMAGE_SIZE, IMAGE_SIZE))[0].reshape(b.shape)


def choose_regularisation(observations: np.ndarray, maps: np.ndarray, kernels: np.ndarray,
                          grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), iterations: int = 60,
                          positions: np.ndarray | None = None) -> tuple[float, dict]:
    """The stated rule for ``lam``: the value of ``grid`` with the lowest mean RMSE on the given
    observations (the kit passes validation observations, :meth:`Splits.validation_pairs`,
    never a test set); ``positions`` as in :func:`least_squares`."""
    grid = _check_lambdas(grid)
    est = least_squares_path(observations, maps, grid=grid, iterations=iterations, positions=positions)
    rmse = np.sqrt(((est - np.asarray(kernels, np.float64)[:, None]) ** 2).mean(axis=(-2, -1))).mean(0)
    scores = {float(lam): float(score) for lam, score in zip(grid, rmse)}
    best = min(scores, key=scores.get)
    return best, scores


def estimate_noise_std(observations: np.ndarray, fmin: float = 0.35) -> np.ndarray:
    """(N,) std of white noise in each (N, 64, 64) observation, from its Hann-windowed power above
    ``fmin`` cycles/px (either axis), where the kit's band-limited kernels carry none."""
    y = _check_batch("observations", observations)
    f = np.abs(np.fft.fftfreq(y.shape[-1]))
    high = (f[:, None] > fmin) | (f[None, :] > fmin)
    w = np.outer(np.hanning(y.shape[-2]), np.hanning(y.shape[-1]))
    power = np.abs(np.fft.fft2((y - y.mean(axis=(-2, -1), keepdims=True)) * w)) ** 2
    return np.sqrt(power[:, high].mean(1) / (w ** 2).sum())


def _discrepancy_fit(y: np.ndarray, m: np.ndarray, grid: np.ndarray, iterations: int, pos, tau: float,
                     sigma: np.ndarray, prior: np.ndarray | None, edge: int):
    """The discrepancy rule on checked inputs (``grid`` sorted from the largest lambda down):
    (raw B (N, 64, 64) at the chosen lambda, chosen lambda (N,), bound met (N,) bool, residual
    Y - H B - c (N, 64, 64) at it). The residual's RMS is taken over the pixels the data term uses."""
    b, _, _, fits = _solve_path(y, m, grid, iterations, pos, prior, edge=edge)
    mask = _data_mask(edge)
    residuals = y[:, None] - fits  # (N, K, 64, 64)
    resid = np.sqrt(((residuals * mask) ** 2).sum(axis=(-2, -1)) / mask.sum())  # (N, K), grid from the largest lambda down
    within = resid <= tau * sigma[:, None]
    met = within.any(1)
    pick = np.where(met, within.argmax(1), len(grid) - 1)  # the first (largest) lambda that meets the bound
    rows = np.arange(len(y))
    return b[rows, pick], grid[pick], met, residuals[rows, pick]


def least_squares_discrepancy(observations: np.ndarray, maps: np.ndarray, grid=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                              iterations: int = 60, positions: np.ndarray | None = None, tau: float = 1.1,
                              noise_std: np.ndarray | None = None,
                              prior: np.ndarray | None = None, return_met: bool = False, edge: int = 0):
    """Least squares with lambda chosen per observation without ground truth (Morozov's discrepancy
    principle, ``docs/library.md``): the largest lambda of ``grid`` whose residual RMS is at most
    ``tau`` times the noise level (``noise_std``, default :func:`estimate_noise_std`), else the
    smallest. ``positions``, ``prior``, ``edge`` as in :func:`_solve_path`. Returns (kernels (N, 64, 64)
    on [0, 1], chosen lambda (N,)), and with ``return_met`` (N,) bool: the bound was met."""
    y, m = _check_pair(observations, maps)
    grid = np.sort(_check_lambdas(grid))[::-1]
    _data_mask(edge)  # checked before any work
    sigma = estimate_noise_std(y) if noise_std is None else np.broadcast_to(np.asarray(noise_std, np.float64), (len(y),))
    pos = None if positions is None else check_positions(positions, len(y))
    if prior is not None and np.shape(prior) != y.shape:
        raise InputError(f"prior must be {y.shape} like the observations, got {np.shape(prior)}")
    best, chosen, met, _ = _discrepancy_fit(y, m, grid, iterations, pos, tau, sigma,
                                            None if prior is None else np.asarray(prior, np.float64), edge)
    out = minmax_normalise(best)[0]
    return (out, chosen, met) if return_met else (out, chosen)


@dataclass(frozen=True)
class EdgeCheck:
    """The sub-pixel hybrid's check for unlabelled defects just outside the view (``docs/library.md``):
    a fit that explains the interior to the noise level but leaves more than ``ratio`` times the
    residual RMS in the ``band`` px at the edge, above ``noise_fraction`` of the noise level, on an
    observation of estimated SNR at most ``max_snr_db``, is redone on the interior alone.
    :data:`EDGE_CHECK`: the values :func:`qpi_lab.calibrate.choose_edge_check` chose on validation."""

    band: int = 8
    ratio: float = 1.3
    noise_fraction: float = 0.7
    max_snr_db: float = float("inf")

    def __post_init__(self):
        _data_mask(self.band)
        if not (np.isfinite(self.ratio) and self.ratio >= 1):
            raise InputError(f"EdgeCheck.ratio must be a finite number >= 1, got {self.ratio}")
        if not (np.isfinite(self.noise_fraction) and self.noise_fraction >= 0):
            raise InputError(f"EdgeCheck.noise_fraction must be a finite number >= 0, got {self.noise_fraction}")
        if np.isnan(self.max_snr_db):
            raise InputError(f"EdgeCheck.max_snr_db must be a number of dB (inf: no gate), got {self.max_snr_db}")

    def redo(self, residual: np.ndarray, sigma: np.ndarray, tau: float, observations: np.ndarray) -> np.ndarray:
        """(N,) bool: which fits, by their residual (N, 64, 64), the noise level sigma (N,) and the
        observations Y (N, 64, 64) they fit, to redo on the interior alone (the discrepancy
        bound's ``tau`` defines "to the noise level")."""
        inside = _data_mask(self.band).astype(bool)
        r2 = np.asarray(residual, np.float64) ** 2
        interior, band = np.sqrt(r2[:, inside].mean(1)), np.sqrt(r2[:, ~inside].mean(1))
        return ((edge_ratio(residual, self.band) > self.ratio) & (interior <= tau * sigma)
                & (band > self.noise_fraction * sigma) & (estimate_snr_db(observations, sigma) <= self.max_snr_db))


# chosen by choose_edge_check on the quick profile's 10 validation kernels (seed 0), 6 fresh observations
# each, clean and realistic: python benchmarks/edge_check.py --run-dir runs/quick-seeds/seed-0 --per-kernel 6
# -> results/benchmarks/edge_check_quick.txt (tests/test_baselines.py checks the two agree)
EDGE_CHECK = EdgeCheck(band=8, ratio=1.2, noise_fraction=0.7, max_snr_db=30.0)
# the hybrid's refinement decodes under autocast (bf16 on a CPU with native bf16): 1.1-1.5x faster on
# validation kernels, within 1 % of float32's RMSE, the rule of benchmarks/hybrid_precision.py ->
# results/benchmarks/hybrid_precision_quick.txt (tests/test_baselines.py checks the two agree)
DECODER_AUTOCAST = True
TAU = 1.1  # the discrepancy bound: residual RMS at most TAU times the noise level


def estimate_snr_db(observations: np.ndarray, noise_std: np.ndarray | None = None) -> np.ndarray:
    """(N,) SNR in dB of each (N, 64, 64) observation: 10 log10 (variance - noise variance) / noise
    variance, the noise from ``noise_std`` or :func:`estimate_noise_std`. Within 1.5 dB up to about
    20 dB; noise-free maps read 20 dB or more (the kernel's own high frequencies count as noise)."""
    y = _check_batch("observations", observations)
    sigma = estimate_noise_std(y) if noise_std is None else np.asarray(noise_std, np.float64)
    noise = np.maximum(sigma ** 2, 1e-30)
    return 10 * np.log10(np.maximum(y.var(axis=(-2, -1)) - noise, 1e-30) / noise)


def edge_ratio(residual: np.ndarray, edge: int) -> np.ndarray:
    """(N,) RMS of a fit's residual (N, 64, 64) in the band of ``edge`` px at the image edge over its
    RMS inside: about 1 when what the fit leaves is noise, well above 1 when something it cannot
    model (ripples of defects outside the view) sits at the edge."""
    inside = _data_mask(edge).astype(bool)
    r2 = np.asarray(residual, np.float64) ** 2
    return np.sqrt(r2[:, ~inside].mean(1) / np.maximum(r2[:, inside].mean(1), 1e-30))


def _fit_scale_offset(f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image least-squares s, c of y ~ s f + c (closed form, differentiable). f, y: (B, N)."""
    fm, ym = f.mean(1, keepdim=True), y.mean(1, keepdim=True)
    cov = ((f - fm) * (y - ym)).mean(1, keepdim=True)
    var = ((f - fm) ** 2).mean(1, keepdim=True).clamp(min=1e-12)
    s = cov.clamp(min=0) / var  # Y's normalisation keeps the kernel's sign: a flipped fit is not physical
    return s, ym - s * fm


def hybrid(observation_encoder, kernel_vae, observations: torch.Tensor, cfg: PhysicsConfig = PhysicsConfig(),
           positions: np.ndarray | None = None, return_history: bool = False,
           edge_check: EdgeCheck | None = EDGE_CHECK, decoder_autocast: bool = DECODER_AUTOCAST):
    """Refine the two-step latent so the decoded kernel explains Y = s M (*) A + c (``docs/library.md``).

    observations: (B, 2, 64, 64) (Y, M) on [0, 1]; ``cfg``: the physics section (``hybrid_steps``
    Adam steps at ``hybrid_lr``, prior weight ``hybrid_mu``). ``positions`` ((B, S, 2) (x, y) px, NaN
    = unused) makes it the sub-pixel hybrid: then, with ``hybrid_residual``, least squares centred on
    the decoded kernel (discrepancy rule, ``edge_check``), positions refined where the bound fails
    (``hybrid_position_lr``), the decoded kernel kept where it still fails. ``decoder_autocast``: the
    refinement's decoder passes in :func:`decoder_precision`. Returns (B, 1, 64, 64) kernels on [0, 1]
    (``return_history``: and the mean misfit after each step)."""
    device = observations.device
    n = len(observations)
    if positions is None:
        op = ConvolutionOperator.from_maps(observations[:, 1])
        z, history = _refine_latent(observation_encoder, kernel_vae, observations, op, cfg,
                                    decoder_autocast=decoder_autocast)
        with torch.no_grad():
            out = from_model_scale(kernel_vae.decode(z).sample)
        return (out, history) if return_history else out
    pos = check_positions(positions, n)
    op = ConvolutionOperator.from_positions(pos)
    z, history = _refine_latent(observation_encoder, kernel_vae, observations, op, cfg, decoder_autocast=decoder_autocast)
    with torch.no_grad():
        decoded = from_model_scale(kernel_vae.decode(z).sample)
    if not cfg.hybrid_residual:
        return (decoded, history) if return_history else decoded
    out, met = _prior_centred_fit(decoded, observations, op, pos, cfg, edge_check)
    redo = np.flatnonzero(~met)
    if len(redo) and cfg.hybrid_position_lr > 0:
        z2, refined = _refine_latent(observation_encoder, kernel_vae, observations[redo], None, cfg,
                                     positions=pos[redo], decoder_autocast=decoder_autocast)
        with torch.no_grad():
            decoded2 = from_model_scale(kernel_vae.decode(z2).sample)
        out2, met2 = _prior_centred_fit(decoded2, observations[redo], ConvolutionOperator.from_positions(refined),
                                        refined, cfg, edge_check)
        out[redo] = np.where(met2[:, None, None], out2, decoded2[:, 0].double().cpu().numpy())
    elif len(redo):
        out[redo] = decoded[redo, 0].double().cpu().numpy()
    out = torch.from_numpy(np.asarray(out)).float()[:, None].to(device)
    return (out, history) if return_history else out


def _border(device) -> torch.Tensor:
    border = torch.ones(IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool, device=device)
    border[4:-4, 4:-4] = False
    return border


def _refine_latent(observation_encoder, kernel_vae, observations: torch.Tensor, op, cfg: PhysicsConfig,
                   positions: np.ndarray | None = None, track=None, decoder_autocast: bool = DECODER_AUTOCAST):
    """``hybrid_steps`` Adam steps on the latent from z0 = observation_encoder(Y, M) (and, with
    ``positions``, on the positions too, the operator rebuilt from them every step; ``op`` unused;
    ``decoder_autocast``: the steps' decoder passes in :func:`decoder_precision`).
    ``track(step, decoded)``: called with the decoded kernels (B, 1, 64, 64) on [0, 1] after 0, 1,
    ... ``hybrid_steps`` steps (no extra decoder pass: each step decodes its starting point).
    Returns (z, misfit history) or, with positions, (z, refined positions (B, S, 2) with NaN slots)."""
    n, device = len(observations), observations.device
    y = observations[:, 0].reshape(n, -1).double()
    with torch.no_grad():
        z0, _ = observation_encoder(to_model_scale(observations))
    z = z0.clone().requires_grad_(True)
    groups = [{"params": [z], "lr": cfg.hybrid_lr}]
    if positions is not None:
        p0 = torch.from_numpy(np.asarray(positions, np.float64)).to(device)
        valid = torch.isfinite(p0).all(-1)
        pos = torch.nan_to_num(p0).requires_grad_(True)
        groups.append({"params": [pos], "lr": cfg.hybrid_position_lr})
    opt = torch.optim.Adam(groups)
    border, history = _border(device), []
    with torch.enable_grad():  # callers may run inside no_grad (evaluation loops)
        for _ in range(cfg.hybrid_steps):
            if positions is not None:
                op = ConvolutionOperator.from_positions_torch(pos, valid)
            loss, misfit, decoded = _hybrid_loss(kernel_vae, z, z0, op, y, border, cfg.hybrid_mu, decoder_autocast)
            if track is not None:
                track(len(history), decoded.detach())
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(misfit.detach().mean()))
    if track is not None:
        with torch.no_grad():
            track(len(history), from_model_scale(kernel_vae.decode(z.detach()).sample))
    if positions is None:
        return z.detach(), history
    return z.detach(), np.where(valid.cpu().numpy()[..., None], pos.detach().cpu().numpy(), np.nan)


def choose_hybrid_settings(observation_encoder, kernel_vae, observations: torch.Tensor, kernels: np.ndarray,
                           cfg: PhysicsConfig, lrs=(0.05, 0.1, 0.2), mus=(0.001, 0.01, 0.1),
                           decoder_autocast: bool = DECODER_AUTOCAST) -> tuple[dict, dict]:
    """The stated rule for the hybrid's latent refinement: the step size (``lrs``), prior weight
    (``mus``) and number of steps (0 .. ``cfg.hybrid_steps``, read along each run's trajectory)
    with the lowest mean RMSE of the decoded kernel on the given observations (the kit passes
    validation observations, never a test set). observations (B, 2, 64, 64) (Y, M) on [0, 1];
    kernels (B, 64, 64) on [0, 1]. Returns ({hybrid_lr, hybrid_mu, hybrid_steps}, {"lr,mu,steps":
    RMSE})."""
    if observations.ndim != 4 or tuple(observations.shape[1:]) != (2, IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"observations must be (B, 2, 64, 64) (Y, M), got {tuple(observations.shape)}")
    if np.shape(kernels) != (len(observations), IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"kernels must be ({len(observations)}, 64, 64), one per observation, got {np.shape(kernels)}")
    target = torch.as_tensor(np.asarray(kernels, np.float32))[:, None].to(observations.device)
    op = ConvolutionOperator.from_maps(observations[:, 1])
    scores = {}
    for lr in lrs:
        for mu in mus:
            def track(step, decoded, lr=lr, mu=mu):
                rmse = ((decoded.float() - target) ** 2).mean(dim=(1, 2, 3)).sqrt().mean()
                scores[f"{lr:g},{mu:g},{step}"] = float(rmse)

            trial = dataclasses.replace(cfg, hybrid_lr=lr, hybrid_mu=mu)
            _refine_latent(observation_encoder, kernel_vae, observations, op, trial, track=track,
                           decoder_autocast=decoder_autocast)
    best = min(scores, key=scores.get)
    lr, mu, steps = best.split(",")
    return {"hybrid_lr": float(lr), "hybrid_mu": float(mu), "hybrid_steps": int(steps)}, scores


def prior_centred_fits(decoded: torch.Tensor, observations: torch.Tensor, op: ConvolutionOperator,
                        positions: np.ndarray, cfg: PhysicsConfig, band: int | None):
    """The second stage of the sub-pixel hybrid: least squares centred on the decoded kernel in
    Y's units, lambda by the discrepancy principle, on every pixel; with ``band`` (px) also on
    the interior alone, for every observation (:func:`qpi_lab.calibrate.choose_edge_check`; None: not at all).
    Returns (full fit (B, 64, 64) raw, bound met (B,), residual (B, 64, 64), noise level (B,),
    interior fit or None, its bound met or None, a function fit(edge, rows))."""
    n = len(observations)
    y = observations[:, 0].reshape(n, -1).double().cpu()
    with torch.no_grad():
        kern, _, s, _ = _scaled_kernel(decoded.double().cpu(), op, y, _border("cpu"))
    prior = (s[:, :, None] * kern).numpy()
    x = observations.double().cpu().numpy()
    grid = np.sort(_check_lambdas(cfg.ls_lambda_grid))[::-1]
    sigma = estimate_noise_std(x[:, 0])
    fit = lambda edge, rows: _discrepancy_fit(x[rows, 0], x[rows, 1], grid, cfg.ls_iterations, positions[rows], TAU,
                                              sigma[rows], prior[rows], edge)
    best, _, met, resid = fit(0, np.arange(n))
    inner, inner_met = (None, None) if band is None else fit(band, np.arange(n))[::2]
    return best, met, resid, sigma, inner, inner_met, fit


def _prior_centred_fit(decoded: torch.Tensor, observations: torch.Tensor, op: ConvolutionOperator,
                       positions: np.ndarray, cfg: PhysicsConfig,
                       edge_check: EdgeCheck | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prior_centred_fits`, redone on the interior where ``edge_check`` says so. (Where
    the misfit is spread over the interior too, the model itself is wrong, e.g. positions off by
    a pixel, and an interior of 48 x 48 pixels is fitted by a wrong kernel as easily: no redo.)
    Returns ((B, 64, 64) kernels on [0, 1], (B,) bool: the noise bound was met by the fit
    returned; where it was not, the caller keeps the decoded kernel)."""
    best, met, resid, sigma, _, _, fit = prior_centred_fits(decoded, observations, op, positions, cfg, None)
    if edge_check is not None:
        redo = np.flatnonzero(edge_check.redo(resid, sigma, TAU, observations[:, 0].double().cpu().numpy()))
        if len(redo):
            best[redo], _, met[redo], _ = fit(edge_check.band, redo)
    return minmax_normalise(best)[0], met


def _scaled_kernel(decoded: torch.Tensor, op: ConvolutionOperator, y: torch.Tensor, border: torch.Tensor):
    """The decoded (B, 1, 64, 64) kernels with their border's mean as zero (float64, (B, 64, 64)),
    their forward images f (B, 4096) and the scale s and offset c (B, 1) that fit y ~ s f + c."""
    kern = decoded[:, 0].double()  # the physics in float64
    kern = kern - kern[:, border].mean(1)[:, None, None]
    f = op.forward(kern).reshape(len(y), -1)
    s, c = _fit_scale_offset(f, y)
    return kern, f, s, c


def decoder_precision(device: torch.device | str, decoder_autocast: bool = DECODER_AUTOCAST) -> torch.dtype | None:
    """The dtype the hybrid's refinement steps decode in on ``device``: float16 on CUDA, bfloat16
    on a CPU with native bf16 (:func:`qpi_utils.train.cpu_has_native_bf16`, where training uses it
    too), else None (float32); None whenever ``decoder_autocast`` is off."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"decoder_precision: device must be a torch device or its name ('cpu', 'cuda', "
                         f"'cuda:0', ...), got {device!r}") from exc
    if not decoder_autocast:
        return None
    if kind == "cuda":
        return torch.float16
    return torch.bfloat16 if kind == "cpu" and cpu_has_native_bf16() else None


def _hybrid_loss(kernel_vae, z, z0, op: ConvolutionOperator, y, border, mu, decoder_autocast: bool = DECODER_AUTOCAST):
    """Data misfit of s M (*) (A(z) - zero level) + c against Y, plus mu ||z - z0||^2; returns
    (loss, misfit (B,), decoded kernels (B, 1, 64, 64) on [0, 1], float32)."""
    dtype = decoder_precision(z.device, decoder_autocast)
    with torch.autocast(z.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        decoded = from_model_scale(kernel_vae.decode(z).sample).float()
    _, f, s, c = _scaled_kernel(decoded, op, y, border)
    misfit = ((s * f + c - y) ** 2).mean(1)
    prior = ((z - z0) ** 2).flatten(1).mean(1).double()
    return (misfit + mu * prior).sum(), misfit, decoded
