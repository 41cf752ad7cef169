"""Physics baselines and the physics-consistent hybrid.

With the defect positions known, Y = M (*) A is *linear* in the kernel A, so a physicist's
first tools are:

* :func:`defect_average` -- what experimentalists do by hand: cut the window around every
  labelled defect and average them (the other defects' ripples average out, slowly).
* :func:`least_squares` -- regularised least-squares deconvolution with the known activation
  map: min_B ||crop(M (*) B) + c - Y||^2 + lam ||B||^2 over the kernel B on its 64x64 support
  and an offset c, by conjugate gradients on the normal equations, batched over images.
  The unknown scale and offset of the per-image min-max normalisation of Y are absorbed by
  B's scale (the estimate is min-max scaled like every kernel) and by c.
* :func:`hybrid` -- start from the two-step prediction z0 = observation_encoder(Y, M) and
  refine the latent z so that the decoded kernel, pushed through the same forward model with a
  fitted scale and offset, explains Y, with a penalty mu ||z - z0||^2; the decoder is frozen.

All three use the forward model of :class:`qpi_utils.physics.ConvolutionOperator`. Conventions
as in :mod:`qpi_utils.simulate`: images 64x64, the kernel's scatterer on pixel (32, 32),
activation maps count labelled defects per pixel.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import PhysicsConfig
from .imaging import minmax_normalise
from .models import from_model_scale, to_model_scale
from .physics import ConvolutionOperator

__all__ = ["defect_average", "least_squares", "choose_regularisation", "estimate_noise_std", "least_squares_discrepancy",
           "hybrid"]


def _check_batch(name: str, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-2:] != (64, 64):
        raise ValueError(f"{name} must be (64, 64) or (N, 64, 64), got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name}: the batch is empty")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def _check_pair(observations, maps) -> tuple[np.ndarray, np.ndarray]:
    y = _check_batch("observations", observations)
    m = _check_batch("activation maps", maps)
    if y.shape != m.shape:
        raise ValueError(f"observations {y.shape} and activation maps {m.shape} differ in shape")
    if (m < 0).any():
        raise ValueError("activation maps must count defects (>= 0)")
    return y, m


def _check_positions(positions, n: int) -> np.ndarray:
    """(N, S, 2) continuous defect positions (x, y) in pixels, NaN = unused slot."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != n or p.shape[-1] != 2:
        raise ValueError(f"positions must be ({n}, S, 2) (x, y) per defect, NaN for unused slots; got shape {p.shape}")
    finite = np.isfinite(p)
    if (finite[..., 0] != finite[..., 1]).any():
        raise ValueError("positions: a defect has one finite and one NaN coordinate")
    return p


def _operator(m: np.ndarray, positions) -> tuple[ConvolutionOperator, np.ndarray]:
    """The forward operator and the number of defects per image: from the continuous positions
    when given (sub-pixel exact, as the simulator renders), else from the binned maps."""
    if positions is None:
        return ConvolutionOperator.from_maps(m), m.sum(axis=(-2, -1))
    p = _check_positions(positions, len(m))
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


def _solve(y: np.ndarray, m: np.ndarray, lam, iterations: int, positions) -> tuple[np.ndarray, np.ndarray, ConvolutionOperator]:
    """The CG solve of :func:`least_squares` on checked inputs: (B (N, 64, 64) unscaled, offsets
    c (N,), the operator H). ``lam``: a number or one per observation."""
    lam_arr = np.broadcast_to(np.asarray(lam, np.float64), (len(y),)) if np.ndim(lam) <= 1 else None
    if lam_arr is None or np.ndim(lam) == 1 and np.shape(lam) != (len(y),):
        raise ValueError(f"lam must be a number or one per observation ({len(y)}), got shape {np.shape(lam)}")
    if not (np.isfinite(lam_arr).all() and (lam_arr > 0).all()):
        raise ValueError(f"lam must be a finite number > 0 (or one per observation), got {lam}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    op, counts = _operator(m, positions)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise ValueError(f"{'positions' if positions is not None else 'activation map'} {int(empty[0])} (of {len(m)}) "
                         "has no defect: the kernel is not determined by that observation; leave it out")
    damp = (lam_arr * np.maximum(counts, 1.0))[:, None, None]
    eps_c = 1e-6 * 64 * 64  # a whisper of damping on the offset keeps the system definite

    def normal(b, c):
        r = op.forward(b) + c[:, None, None]
        return op.adjoint(r) + damp * b, r.sum(axis=(-2, -1)) + eps_c * c

    def dot(a_b, a_c, b_b, b_c):
        return (a_b * b_b).sum(axis=(-2, -1)) + a_c * b_c

    b, c = np.zeros_like(y), np.zeros(len(y))
    r_b, r_c = op.adjoint(y), y.sum(axis=(-2, -1))
    p_b, p_c = r_b.copy(), r_c.copy()
    rr = dot(r_b, r_c, r_b, r_c)
    for _ in range(iterations):
        q_b, q_c = normal(p_b, p_c)
        denom = dot(p_b, p_c, q_b, q_c)
        alpha = np.where(denom > 0, rr / np.where(denom > 0, denom, 1.0), 0.0)
        b += alpha[:, None, None] * p_b
        c += alpha * p_c
        r_b -= alpha[:, None, None] * q_b
        r_c -= alpha * q_c
        rr_new = dot(r_b, r_c, r_b, r_c)
        beta = np.where(rr > 0, rr_new / np.where(rr > 0, rr, 1.0), 0.0)
        p_b = r_b + beta[:, None, None] * p_b
        p_c = r_c + beta * p_c
        rr = rr_new
    return b, c, op


def least_squares(observations: np.ndarray, maps: np.ndarray, lam: float = 1e-3, iterations: int = 60,
                  return_raw: bool = False, positions: np.ndarray | None = None) -> np.ndarray:
    """Tikhonov-regularised least squares for the kernel, batched conjugate gradients.

    Solves (H^T H + lam' I) B = H^T (Y - c) jointly with the offset c, where H = crop(M (*) .)
    and lam' = lam * (number of labelled defects), so that one ``lam`` suits images with 1 or
    100 defects (||H||^2 grows with their number). CG starts from zero and stops after
    ``iterations``, which regularises too (early stopping keeps B in the range of H^T).
    ``positions`` ((N, S, 2) continuous (x, y) in pixels, NaN = unused slot): H places the kernel
    at those sub-pixel positions (:meth:`ConvolutionOperator.from_positions`) instead of at the
    pixels of M; binning a defect to its pixel moves it by up to half a pixel, which for ripples of
    a few pixels' period is most of the binned solution's error.
    Returns (N, 64, 64) kernels min-max scaled to [0, 1] (``return_raw``: the unscaled B).
    """
    y, m = _check_pair(observations, maps)
    b, _, _ = _solve(y, m, lam, iterations, positions)
    return b if return_raw else minmax_normalise(b)[0]


def choose_regularisation(observations: np.ndarray, maps: np.ndarray, kernels: np.ndarray,
                          grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), iterations: int = 60,
                          positions: np.ndarray | None = None) -> tuple[float, dict]:
    """The stated rule for ``lam``: the value of ``grid`` with the lowest mean RMSE on the given
    observations (the kit passes validation observations, :meth:`Splits.validation_pairs`,
    never a test set); ``positions`` as in :func:`least_squares`."""
    scores = {}
    for lam in grid:
        est = least_squares(observations, maps, lam=lam, iterations=iterations, positions=positions)
        scores[lam] = float(np.sqrt(((est - np.asarray(kernels, np.float64)) ** 2).mean(axis=(-2, -1))).mean())
    best = min(scores, key=scores.get)
    return best, scores


def estimate_noise_std(observations: np.ndarray, fmin: float = 0.35) -> np.ndarray:
    """(N,) standard deviation of white noise in each (64, 64) observation, from its power at
    spatial frequencies above ``fmin`` cycles/px (along either axis), where the ripples of the
    kernels the kit handles carry no power (they are band-limited below it: the profiles'
    frequencies reach 0.18, and real maps are rescaled to 0.12). A Hann window keeps the image's
    edges (a window of a larger map is not periodic) from leaking power to high frequencies; for
    white noise of std s, E|FFT(w y)(f)|^2 = s^2 sum(w^2) at every frequency."""
    y = _check_batch("observations", observations)
    f = np.abs(np.fft.fftfreq(y.shape[-1]))
    high = (f[:, None] > fmin) | (f[None, :] > fmin)
    w = np.outer(np.hanning(y.shape[-2]), np.hanning(y.shape[-1]))
    power = np.abs(np.fft.fft2((y - y.mean(axis=(-2, -1), keepdims=True)) * w)) ** 2
    return np.sqrt(power[:, high].mean(1) / (w ** 2).sum())


def least_squares_discrepancy(observations: np.ndarray, maps: np.ndarray, grid=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
                              iterations: int = 60, positions: np.ndarray | None = None, tau: float = 1.1,
                              noise_std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least squares with lambda chosen per observation without ground truth (Morozov's
    discrepancy principle): the largest lambda of ``grid`` whose residual RMS
    ||H B + c - Y|| / 64 is at most ``tau`` times the noise level (``noise_std``, default
    :func:`estimate_noise_std`); the smallest lambda when none is. Regularising more than the
    noise demands throws signal away; less fits the noise. It sees only noise: where the model
    itself is wrong (defects binned to pixels, unlabelled defects) the residual stays above the
    noise level and the rule falls back to the smallest lambda, so use it with ``positions``.
    Returns (kernels (N, 64, 64) min-max scaled, chosen lambda (N,))."""
    y, m = _check_pair(observations, maps)
    grid = np.sort(np.asarray(grid, np.float64))[::-1]
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise ValueError(f"grid must hold finite lambdas > 0, got {grid}")
    sigma = estimate_noise_std(y) if noise_std is None else np.broadcast_to(np.asarray(noise_std, np.float64), (len(y),))
    chosen = np.full(len(y), np.nan)
    best = np.zeros_like(y)
    pos = None if positions is None else _check_positions(positions, len(y))
    for lam in grid:  # largest first: the first lambda that meets the bound is kept
        todo = np.flatnonzero(np.isnan(chosen))  # only the observations still undecided are solved again
        if not len(todo):
            break
        b, c, op = _solve(y[todo], m[todo], lam, iterations, None if pos is None else pos[todo])
        resid = np.sqrt(((op.forward(b) + c[:, None, None] - y[todo]) ** 2).mean(axis=(-2, -1)))
        take = (resid <= tau * sigma[todo]) | (lam == grid[-1])
        chosen[todo[take]] = lam
        best[todo[take]] = b[take]
    return minmax_normalise(best)[0], chosen


def _fit_scale_offset(f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image least-squares s, c of y ~ s f + c (closed form, differentiable). f, y: (B, N)."""
    fm, ym = f.mean(1, keepdim=True), y.mean(1, keepdim=True)
    cov = ((f - fm) * (y - ym)).mean(1, keepdim=True)
    var = ((f - fm) ** 2).mean(1, keepdim=True).clamp(min=1e-12)
    s = cov.clamp(min=0) / var  # Y's normalisation keeps the kernel's sign: a flipped fit is not physical
    return s, ym - s * fm


def hybrid(observation_encoder, kernel_vae, observations: torch.Tensor, cfg: PhysicsConfig = PhysicsConfig(),
           return_history: bool = False):
    """Refine the two-step latent so the decoded kernel explains Y through Y = s M (*) A + c.

    observations: (B, 2, 64, 64) (Y, M) on [0, 1]. ``cfg``: the profile's physics section
    (``hybrid_steps`` Adam steps at ``hybrid_lr`` with prior weight ``hybrid_mu``). The kernel's
    zero level is the mean of the decoded kernel's border (kernels decay to zero at their window
    edge; min-max scaling moved that zero). Returns (B, 1, 64, 64) kernels on [0, 1].
    """
    device = observations.device
    y = observations[:, 0].reshape(len(observations), -1).double()
    op = ConvolutionOperator.from_maps(observations[:, 1])
    with torch.no_grad():
        z0, _ = observation_encoder(to_model_scale(observations))
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=cfg.hybrid_lr)
    border = torch.ones(64, 64, dtype=torch.bool, device=device)
    border[4:-4, 4:-4] = False
    history = []
    with torch.enable_grad():  # callers may run inside no_grad (evaluation loops)
        for _ in range(cfg.hybrid_steps):
            loss, misfit = _hybrid_loss(kernel_vae, z, z0, op, y, border, cfg.hybrid_mu)
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append(float(misfit.detach().mean()))
    with torch.no_grad():
        out = from_model_scale(kernel_vae.decode(z.detach()).sample)
    return (out, history) if return_history else out


def _hybrid_loss(kernel_vae, z, z0, op: ConvolutionOperator, y, border, mu):
    """Data misfit of s M (*) (A(z) - zero level) + c against Y, plus mu ||z - z0||^2."""
    with torch.autocast("cuda", dtype=torch.float16, enabled=z.is_cuda):  # the decoder in fp16 on a GPU
        kern = from_model_scale(kernel_vae.decode(z).sample)[:, 0].double()  # the physics in float64
    kern = kern - kern[:, border].mean(1)[:, None, None]
    f = op.forward(kern).reshape(len(y), -1)
    s, c = _fit_scale_offset(f, y)
    misfit = ((s * f + c - y) ** 2).mean(1)
    prior = ((z - z0) ** 2).flatten(1).mean(1).double()
    return (misfit + mu * prior).sum(), misfit
