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
* :func:`least_squares_discrepancy` -- the same with lambda chosen per observation without
  ground truth (the discrepancy principle, noise level from :func:`estimate_noise_std`).
* :func:`hybrid` -- start from the two-step prediction z0 = observation_encoder(Y, M) and
  refine the latent z so that the decoded kernel, pushed through the same forward model with a
  fitted scale and offset, explains Y, with a penalty mu ||z - z0||^2; the decoder is frozen.
  Given the labelled sub-pixel positions it goes on to least squares centred on that kernel
  (the sub-pixel hybrid); :func:`choose_hybrid_settings` is the validation rule for its
  step size, prior weight and step count.

All of them use the forward model of :class:`qpi_utils.physics.ConvolutionOperator`. Conventions
as in :mod:`qpi_utils.simulate`: images 64x64, the kernel's scatterer on pixel (32, 32),
activation maps count labelled defects per pixel.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .config import PhysicsConfig
from .imaging import minmax_normalise
from .models import from_model_scale, to_model_scale
from .physics import ConvolutionOperator

__all__ = ["defect_average", "least_squares", "choose_regularisation", "estimate_noise_std", "least_squares_discrepancy",
           "hybrid", "choose_hybrid_settings"]


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


def _solve(y: np.ndarray, m: np.ndarray, lam, iterations: int, positions,
           prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, ConvolutionOperator]:
    """The CG solve of :func:`least_squares` on checked inputs: (B (N, 64, 64) unscaled, offsets
    c (N,), the operator H). ``lam``: a number or one per observation. ``prior`` ((N, 64, 64), in
    Y's units): the Tikhonov term becomes lam ||B - prior||^2 (B = prior + D, D solved on the
    residual Y - H prior), so regularising pulls towards the prior instead of towards zero."""
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

    if prior is not None:
        y = y - op.forward(prior)
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
    return (b if prior is None else b + prior), c, op


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
                              noise_std: np.ndarray | None = None,
                              prior: np.ndarray | None = None, return_met: bool = False):
    """Least squares with lambda chosen per observation without ground truth (Morozov's
    discrepancy principle): the largest lambda of ``grid`` whose residual RMS
    ||H B + c - Y|| / 64 is at most ``tau`` times the noise level (``noise_std``, default
    :func:`estimate_noise_std`); the smallest lambda when none is. Regularising more than the
    noise demands throws signal away; less fits the noise. It sees only noise: where the model
    itself is wrong (defects binned to pixels, unlabelled defects) the residual stays above the
    noise level and the rule falls back to the smallest lambda, so use it with ``positions``.
    ``prior`` ((N, 64, 64) kernels in Y's units, e.g. the hybrid's decoded kernel times its fitted
    scale): regularise towards it instead of towards zero (:func:`_solve`).
    Returns (kernels (N, 64, 64) min-max scaled, chosen lambda (N,)), and with ``return_met``
    also (N,) bool: the bound was met (False: even the smallest lambda left a residual above it,
    a sign that the forward model, not the noise, limits the fit)."""
    y, m = _check_pair(observations, maps)
    grid = np.sort(np.asarray(grid, np.float64))[::-1]
    if grid.size == 0 or not (np.isfinite(grid).all() and (grid > 0).all()):
        raise ValueError(f"grid must hold finite lambdas > 0, got {grid}")
    sigma = estimate_noise_std(y) if noise_std is None else np.broadcast_to(np.asarray(noise_std, np.float64), (len(y),))
    chosen = np.full(len(y), np.nan)
    met = np.zeros(len(y), bool)
    best = np.zeros_like(y)
    pos = None if positions is None else _check_positions(positions, len(y))
    if prior is not None and np.shape(prior) != y.shape:
        raise ValueError(f"prior must be {y.shape} like the observations, got {np.shape(prior)}")
    for lam in grid:  # largest first: the first lambda that meets the bound is kept
        todo = np.flatnonzero(np.isnan(chosen))  # only the observations still undecided are solved again
        if not len(todo):
            break
        b, c, op = _solve(y[todo], m[todo], lam, iterations, None if pos is None else pos[todo],
                          None if prior is None else np.asarray(prior, np.float64)[todo])
        resid = np.sqrt(((op.forward(b) + c[:, None, None] - y[todo]) ** 2).mean(axis=(-2, -1)))
        within = resid <= tau * sigma[todo]
        take = within | (lam == grid[-1])
        chosen[todo[take]] = lam
        met[todo[within]] = True
        best[todo[take]] = b[take]
    out = minmax_normalise(best)[0]
    return (out, chosen, met) if return_met else (out, chosen)


def _fit_scale_offset(f: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image least-squares s, c of y ~ s f + c (closed form, differentiable). f, y: (B, N)."""
    fm, ym = f.mean(1, keepdim=True), y.mean(1, keepdim=True)
    cov = ((f - fm) * (y - ym)).mean(1, keepdim=True)
    var = ((f - fm) ** 2).mean(1, keepdim=True).clamp(min=1e-12)
    s = cov.clamp(min=0) / var  # Y's normalisation keeps the kernel's sign: a flipped fit is not physical
    return s, ym - s * fm


def hybrid(observation_encoder, kernel_vae, observations: torch.Tensor, cfg: PhysicsConfig = PhysicsConfig(),
           positions: np.ndarray | None = None, return_history: bool = False):
    """Refine the two-step latent so the decoded kernel explains Y through Y = s M (*) A + c.

    observations: (B, 2, 64, 64) (Y, M) on [0, 1]. ``cfg``: the profile's physics section
    (``hybrid_steps`` Adam steps at ``hybrid_lr`` with prior weight ``hybrid_mu``). The kernel's
    zero level is the mean of the decoded kernel's border (kernels decay to zero at their window
    edge; min-max scaling moved that zero). Returns (B, 1, 64, 64) kernels on [0, 1]
    (``return_history``: and the mean data misfit after each step of the first stage).

    ``positions`` ((B, S, 2) labelled defect positions (x, y) in px, NaN = unused slot) makes it
    the sub-pixel hybrid: the forward model places the kernel at the positions (sub-pixel
    exact), and with ``hybrid_residual`` the decoded kernel (times its fitted scale) becomes the
    centre of a least-squares fit, lambda chosen per observation by the discrepancy principle
    (:func:`least_squares_discrepancy`): where the VAE cannot draw the kernel (an unseen one) the
    data pull it off the VAE's manifold; where the data are noisy the prior keeps what the noise
    cannot decide. Where even the smallest lambda leaves a residual above the noise, the forward
    model is wrong (a defect finder is off by a fraction of a pixel, unlabelled defects): those
    observations are refined again with the positions free (``hybrid_position_lr`` px per Adam
    step, jointly with the latent), and if the bound is still not met they get the decoded
    kernel alone (fitting a wrong model harder would fit its error).
    """
    device = observations.device
    n = len(observations)
    if positions is None:
        op = ConvolutionOperator.from_maps(observations[:, 1])
        z, history = _refine_latent(observation_encoder, kernel_vae, observations, op, cfg)
        with torch.no_grad():
            out = from_model_scale(kernel_vae.decode(z).sample)
        return (out, history) if return_history else out
    pos = _check_positions(positions, n)
    op = ConvolutionOperator.from_positions(pos)
    z, history = _refine_latent(observation_encoder, kernel_vae, observations, op, cfg)
    with torch.no_grad():
        decoded = from_model_scale(kernel_vae.decode(z).sample)
    if not cfg.hybrid_residual:
        return (decoded, history) if return_history else decoded
    out, met = _prior_centred_fit(decoded, observations, op, pos, cfg)
    redo = np.flatnonzero(~met)
    if len(redo) and cfg.hybrid_position_lr > 0:
        z2, refined = _refine_latent(observation_encoder, kernel_vae, observations[redo], None, cfg,
                                     positions=pos[redo])
        with torch.no_grad():
            decoded2 = from_model_scale(kernel_vae.decode(z2).sample)
        out2, met2 = _prior_centred_fit(decoded2, observations[redo], ConvolutionOperator.from_positions(refined),
                                        refined, cfg)
        out[redo] = np.where(met2[:, None, None], out2, decoded2[:, 0].double().cpu().numpy())
    elif len(redo):
        out[redo] = decoded[redo, 0].double().cpu().numpy()
    out = torch.from_numpy(np.asarray(out)).float()[:, None].to(device)
    return (out, history) if return_history else out


def _border(device) -> torch.Tensor:
    border = torch.ones(64, 64, dtype=torch.bool, device=device)
    border[4:-4, 4:-4] = False
    return border


def _refine_latent(observation_encoder, kernel_vae, observations: torch.Tensor, op, cfg: PhysicsConfig,
                   positions: np.ndarray | None = None, track=None):
    """``hybrid_steps`` Adam steps on the latent from z0 = observation_encoder(Y, M) (and, with
    ``positions``, on the positions too, the operator rebuilt from them every step; ``op`` unused).
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
            loss, misfit, decoded = _hybrid_loss(kernel_vae, z, z0, op, y, border, cfg.hybrid_mu)
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
                           cfg: PhysicsConfig, lrs=(0.05, 0.1, 0.2), mus=(0.001, 0.01, 0.1)) -> tuple[dict, dict]:
    """The stated rule for the hybrid's latent refinement: the step size (``lrs``), prior weight
    (``mus``) and number of steps (0 .. ``cfg.hybrid_steps``, read along each run's trajectory)
    with the lowest mean RMSE of the decoded kernel on the given observations (the kit passes
    validation observations, never a test set). observations (B, 2, 64, 64) (Y, M) on [0, 1];
    kernels (B, 64, 64) on [0, 1]. Returns ({hybrid_lr, hybrid_mu, hybrid_steps}, {"lr,mu,steps":
    RMSE})."""
    if observations.ndim != 4 or tuple(observations.shape[1:]) != (2, 64, 64):
        raise ValueError(f"observations must be (B, 2, 64, 64) (Y, M), got {tuple(observations.shape)}")
    if np.shape(kernels) != (len(observations), 64, 64):
        raise ValueError(f"kernels must be ({len(observations)}, 64, 64), one per observation, got {np.shape(kernels)}")
    target = torch.as_tensor(np.asarray(kernels, np.float32))[:, None].to(observations.device)
    op = ConvolutionOperator.from_maps(observations[:, 1])
    scores = {}
    for lr in lrs:
        for mu in mus:
            def track(step, decoded, lr=lr, mu=mu):
                rmse = ((decoded.float() - target) ** 2).mean(dim=(1, 2, 3)).sqrt().mean()
                scores[f"{lr:g},{mu:g},{step}"] = float(rmse)

            trial = dataclasses.replace(cfg, hybrid_lr=lr, hybrid_mu=mu)
            _refine_latent(observation_encoder, kernel_vae, observations, op, trial, track=track)
    best = min(scores, key=scores.get)
    lr, mu, steps = best.split(",")
    return {"hybrid_lr": float(lr), "hybrid_mu": float(mu), "hybrid_steps": int(steps)}, scores


def _prior_centred_fit(decoded: torch.Tensor, observations: torch.Tensor, op: ConvolutionOperator,
                       positions: np.ndarray, cfg: PhysicsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The second stage of the sub-pixel hybrid: least squares centred on the decoded kernel in
    Y's units, lambda by the discrepancy principle. Returns ((B, 64, 64) kernels on [0, 1], (B,)
    bool: the noise bound was met)."""
    n = len(observations)
    y = observations[:, 0].reshape(n, -1).double().cpu()
    with torch.no_grad():
        kern, _, s, _ = _scaled_kernel(decoded.double().cpu(), op, y, _border("cpu"))
    prior = (s[:, :, None] * kern).numpy()
    x = observations.double().cpu().numpy()
    out, _, met = least_squares_discrepancy(x[:, 0], x[:, 1], grid=cfg.ls_lambda_grid, iterations=cfg.ls_iterations,
                                            positions=positions, prior=prior, return_met=True)
    return out, met


def _scaled_kernel(decoded: torch.Tensor, op: ConvolutionOperator, y: torch.Tensor, border: torch.Tensor):
    """The decoded (B, 1, 64, 64) kernels with their border's mean as zero (float64, (B, 64, 64)),
    their forward images f (B, 4096) and the scale s and offset c (B, 1) that fit y ~ s f + c."""
    kern = decoded[:, 0].double()  # the physics in float64
    kern = kern - kern[:, border].mean(1)[:, None, None]
    f = op.forward(kern).reshape(len(y), -1)
    s, c = _fit_scale_offset(f, y)
    return kern, f, s, c


def _hybrid_loss(kernel_vae, z, z0, op: ConvolutionOperator, y, border, mu):
    """Data misfit of s M (*) (A(z) - zero level) + c against Y, plus mu ||z - z0||^2; returns
    (loss, misfit (B,), decoded kernels (B, 1, 64, 64) on [0, 1])."""
    with torch.autocast("cuda", dtype=torch.float16, enabled=z.is_cuda):  # the decoder in fp16 on a GPU
        decoded = from_model_scale(kernel_vae.decode(z).sample)
    _, f, s, c = _scaled_kernel(decoded, op, y, border)
    misfit = ((s * f + c - y) ** 2).mean(1)
    prior = ((z - z0) ** 2).flatten(1).mean(1).double()
    return (misfit + mu * prior).sum(), misfit, decoded
