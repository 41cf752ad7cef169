"""Constants the kit's methods use that a benchmark chose on validation data, and the rules that chose
them: the lab's, not the method's (``benchmarks/edge_check.py`` runs :func:`choose_edge_check`; the
choice is written into :data:`qpi_utils.baselines.EDGE_CHECK`, and a test keeps the two equal).
"""

from __future__ import annotations

import numpy as np
import torch

from qpi_utils.baselines import TAU, EdgeCheck, check_positions, prior_centred_fits
from qpi_utils.config import PhysicsConfig
from qpi_utils.imaging import minmax_normalise
from qpi_utils.physics import ConvolutionOperator
from qpi_utils.simulate import IMAGE_SIZE

__all__ = ["choose_edge_check"]


def choose_edge_check(observations: torch.Tensor, positions: np.ndarray, decoded: torch.Tensor, kernels: np.ndarray,
                      cfg: PhysicsConfig = PhysicsConfig(), band: int = 8, ratios=(1.1, 1.2, 1.3, 1.5, 2.0, 3.0),
                      noise_fractions=(0.0, 0.5, 0.7, 1.0),
                      max_snrs_db=(20.0, 25.0, 30.0, 40.0, float("inf"))) -> tuple[EdgeCheck | None, dict]:
    """The stated rule for the edge check's thresholds: of every (ratio, noise fraction, SNR
    gate) on the grids, and the check off, the one whose sub-pixel hybrid (position refinement
    off) has the lowest mean RMSE on the given observations; ties go to the check off, then to the
    check that acts least (larger ratio, larger noise fraction, lower SNR gate). The kit passes
    validation kernels' observations, clean and realistic (``benchmarks/edge_check.py``), never a
    test set.

    observations (B, 2, 64, 64) (Y, M) on [0, 1]; positions (B, S, 2) labelled positions in px;
    decoded (B, 1, 64, 64) the latent stage's kernels on [0, 1] (:func:`hybrid` with
    ``hybrid_residual`` off); kernels (B, 64, 64) true kernels on [0, 1]. Each fit is computed once,
    on all pixels and on the interior, and every threshold pair only selects between them.
    Returns (the chosen :class:`EdgeCheck` or None for off, {"ratio,fraction,max SNR" or "off": RMSE})."""
    observations, decoded = torch.as_tensor(observations), torch.as_tensor(decoded)  # numpy arrays welcome too
    n = len(observations)
    if observations.ndim != 4 or tuple(observations.shape[1:]) != (2, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"observations must be (B, 2, 64, 64) (Y, M), got {tuple(observations.shape)}")
    if tuple(decoded.shape) != (n, 1, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"decoded must be ({n}, 1, 64, 64), one per observation, got {tuple(decoded.shape)}")
    if np.shape(kernels) != (n, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"kernels must be ({n}, 64, 64), one per observation, got {np.shape(kernels)}")
    checks = [EdgeCheck(band, r, f, g) for r in ratios for f in noise_fractions for g in max_snrs_db]  # checked first
    pos = check_positions(positions, n)
    op = ConvolutionOperator.from_positions(pos)
    best, met, resid, sigma, inner, inner_met, _ = prior_centred_fits(decoded, observations, op, pos, cfg, band)
    fallback = decoded[:, 0].double().cpu().numpy()
    target = np.asarray(kernels, np.float64)

    def score(redo):
        fits, ok = np.where(redo[:, None, None], inner, best), np.where(redo, inner_met, met)
        out = np.where(ok[:, None, None], minmax_normalise(fits)[0], fallback)
        return float(np.sqrt(((out - target) ** 2).mean(axis=(-2, -1))).mean())

    y = observations[:, 0].double().cpu().numpy()
    key = lambda c: f"{c.ratio:g},{c.noise_fraction:g},{c.max_snr_db:g}"
    scores = {"off": score(np.zeros(n, bool))}
    for check in checks:
        scores[key(check)] = score(check.redo(resid, sigma, TAU, y))
    # the least-acting check first, so that min() keeps it on ties
    order = [None] + sorted(checks, key=lambda c: (-c.ratio, -c.noise_fraction, c.max_snr_db))
    pick = min(order, key=lambda c: scores["off" if c is None else key(c)])
    return pick, scores
