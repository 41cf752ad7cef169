import numpy as np
import pytest
import torch

from qpi_utils.baselines import (choose_regularisation, defect_average, estimate_noise_std, hybrid, least_squares,
                                 least_squares_discrepancy)
from qpi_utils.config import PhysicsConfig
from qpi_utils.imaging import minmax_normalise
from qpi_utils.models import build_kernel_vae, build_observation_encoder
from qpi_utils.simulate import KernelParams, activation_map, kernel_image, kernel_spectrum, render_observations


def _scene(n_images=3, n_defects=20, seed=0, integer=True, params=None):
    rng = np.random.default_rng(seed)
    p = params or KernelParams(symmetry=4, orientation=0.3, frequency=0.12, phase=1.0, decay=8.0)
    spec = kernel_spectrum(p)[0]
    pos = rng.uniform(-0.5, 63.5, (n_images, n_defects, 2))
    if integer:
        pos = np.round(pos).clip(0, 63)
    y, _ = minmax_normalise(render_observations(spec, pos, dtype=np.complex128))
    kernel, _ = minmax_normalise(kernel_image(p))
    return y, activation_map(pos).astype(float), kernel


@pytest.mark.parametrize("n_defects", [30, 100])
def test_least_squares_recovers_the_kernel_on_noiseless_pixel_centred_data(n_defects):
    """With enough defects every kernel pixel is seen; the remaining error (< 1 % of the range) is
    the band-limited kernel's tail outside its window and the finite number of CG steps."""
    y, m, kernel = _scene(n_images=2, n_defects=n_defects)
    est = least_squares(y, m, lam=1e-6, iterations=300)
    rmse = np.sqrt(((est - kernel) ** 2).mean(axis=(1, 2)))
    assert (rmse < 0.007).all(), rmse
    assert all(np.corrcoef(e.ravel(), kernel.ravel())[0, 1] > 0.998 for e in est)


def test_least_squares_with_few_defects_recovers_what_they_reveal():
    y, m, kernel = _scene(n_images=2, n_defects=3)
    est = least_squares(y, m, lam=1e-6, iterations=200)
    assert all(np.corrcoef(e.ravel(), kernel.ravel())[0, 1] > 0.98 for e in est)


def test_least_squares_at_sub_pixel_positions_removes_the_binning_error():
    """Defects at continuous positions: binned to M's pixels, least squares cannot fit the ripples'
    phase (the shift is up to half a pixel); given the positions it recovers the kernel."""
    rng = np.random.default_rng(5)
    p = KernelParams(symmetry=6, orientation=0.2, frequency=0.15, phase=0.5, decay=8.0)
    pos = rng.uniform(-0.5, 63.5, (2, 40, 2))
    y, _ = minmax_normalise(render_observations(kernel_spectrum(p)[0], pos, dtype=np.complex128))
    kernel, _ = minmax_normalise(kernel_image(p))
    m = activation_map(pos).astype(float)
    rmse = lambda est: np.sqrt(((est - kernel) ** 2).mean(axis=(1, 2)))
    binned = rmse(least_squares(y, m, lam=1e-4, iterations=100))
    exact = rmse(least_squares(y, m, lam=1e-4, iterations=100, positions=pos))
    assert (exact < 0.012).all() and (exact < binned / 3).all(), (exact, binned)


def test_least_squares_positions_are_checked():
    y, m, _ = _scene(n_images=2, n_defects=3)
    with pytest.raises(ValueError, match=r"positions must be \(2, S, 2\)"):
        least_squares(y, m, positions=np.zeros((3, 4, 2)))
    bad = np.zeros((2, 4, 2))
    bad[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="one finite and one NaN"):
        least_squares(y, m, positions=bad)
    with pytest.raises(ValueError, match="positions 1 .* has no defect"):
        least_squares(y, m, positions=np.stack([np.ones((4, 2)), np.full((4, 2), np.nan)]))


def test_noise_level_is_read_from_the_observation_alone():
    rng = np.random.default_rng(1)
    assert estimate_noise_std(rng.normal(0, 0.05, (6, 64, 64))) == pytest.approx(np.full(6, 0.05), rel=0.06)
    y, _, _ = _scene(n_images=3, n_defects=30, integer=False)
    clean = estimate_noise_std(y)  # ripples below the band: almost no power up there
    noisy = estimate_noise_std(y + rng.normal(0, 0.02, y.shape))
    assert (clean < 0.002).all() and noisy == pytest.approx(np.full(3, 0.02), rel=0.1)


def test_discrepancy_principle_chooses_lambda_without_ground_truth():
    """On noisy data the rule regularises more than on clean data, and its kernels are about as
    good as those of the best fixed lambda, which only ground truth can find."""
    rng = np.random.default_rng(2)
    y, m, kernel = _scene(n_images=4, n_defects=30, integer=False, seed=4)
    pos = np.random.default_rng(4).uniform(-0.5, 63.5, (4, 30, 2))  # the positions _scene drew
    grid = (1e-5, 1e-3, 1e-1, 1.0)
    rmse = lambda e: float(np.sqrt(((e - kernel) ** 2).mean()))
    _, lam_clean = least_squares_discrepancy(y, m, grid=grid, iterations=40, positions=pos)
    noisy = y + rng.normal(0, 0.1, y.shape)
    est, lam_noisy = least_squares_discrepancy(noisy, m, grid=grid, iterations=40, positions=pos)
    assert (lam_noisy > lam_clean).all()
    best_fixed = min(rmse(least_squares(noisy, m, lam=lam, iterations=40, positions=pos)) for lam in grid)
    assert rmse(est) < 1.2 * best_fixed
    with pytest.raises(ValueError, match="grid must hold finite lambdas > 0"):
        least_squares_discrepancy(y, m, grid=(0.0,))


def test_defect_average_recovers_an_isolated_defect_and_degrades_with_overlap():
    y1, m1, kernel = _scene(n_images=1, n_defects=1, seed=3)
    # one defect: its window is the kernel wherever the window lies inside the field of view
    avg = defect_average(y1, m1)
    assert np.corrcoef(avg[0].ravel(), kernel.ravel())[0, 1] > 0.5
    y, m, _ = _scene(n_images=4, n_defects=80, seed=1)
    crowded = np.sqrt(((defect_average(y, m) - kernel) ** 2).mean())
    clean = np.sqrt(((least_squares(y, m, lam=1e-6, iterations=200) - kernel) ** 2).mean())
    assert clean < crowded  # deconvolution beats averaging when ripples overlap


def test_regularisation_is_chosen_on_given_training_data_only():
    y, m, kernel = _scene(n_images=3, n_defects=10)
    lam, scores = choose_regularisation(y + np.random.default_rng(0).normal(0, 0.05, y.shape), m,
                                        np.repeat(kernel[None], 3, 0), grid=(1e-4, 1e-2, 1.0), iterations=40)
    assert lam in (1e-4, 1e-2, 1.0) and scores[lam] == min(scores.values())


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"observations must be \(64, 64\) or \(N, 64, 64\)"):
        least_squares(np.zeros((2, 32, 32)), np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="activation maps contains NaN"):
        defect_average(np.zeros((1, 64, 64)), np.full((1, 64, 64), np.nan))
    with pytest.raises(ValueError, match="differ in shape"):
        least_squares(np.zeros((2, 64, 64)), np.zeros((3, 64, 64)))


def test_hybrid_reduces_the_data_misfit_and_keeps_the_decoder_frozen(smoke_profile):
    vae, info = build_kernel_vae(smoke_profile.model)
    enc, _ = build_observation_encoder(smoke_profile.model, vae, info)
    vae.eval().requires_grad_(False)
    enc.eval().requires_grad_(False)
    before = [p.clone() for p in vae.parameters()]
    y, m, _ = _scene(n_images=2, n_defects=10)
    x = torch.from_numpy(np.stack([y, m], 1)).float()
    out, history = hybrid(enc, vae, x, PhysicsConfig(hybrid_steps=15, hybrid_lr=0.1, hybrid_mu=0.0), return_history=True)
    assert out.shape == (2, 1, 64, 64)
    assert history[-1] < history[0]
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))


def test_least_squares_centred_on_a_prior_is_pulled_to_it_and_the_truth_is_a_fixed_point():
    """lam ||B - prior||^2: with a large lambda the solution stays at the prior, and a prior equal
    to the true kernel (in Y's units) is not moved by noise-free data whatever lambda."""
    from qpi_utils.physics import ConvolutionOperator

    rng = np.random.default_rng(2)
    p = KernelParams(symmetry=3, orientation=0.4, frequency=0.11, phase=0.2, decay=7.0)
    q = KernelParams(symmetry=4, orientation=0.1, frequency=0.15, phase=1.0, decay=6.0)
    pos = rng.uniform(-0.5, 63.5, (2, 25, 2))
    kernel = np.repeat(kernel_image(p)[None], 2, 0)
    other = np.repeat(kernel_image(q)[None], 2, 0)
    y = ConvolutionOperator.from_positions(pos).forward(kernel)
    m = activation_map(pos).astype(float)
    solve = lambda lam, prior: least_squares_discrepancy(y, m, grid=(lam,), positions=pos, prior=prior)[0]
    assert np.abs(solve(1e-3, kernel) - minmax_normalise(kernel)[0]).max() < 1e-6
    assert np.abs(solve(1e6, other) - minmax_normalise(other)[0]).max() < 1e-3
    # with a small lambda the data pull a wrong prior most of the way to the truth
    rmse = lambda est: np.sqrt(((est - minmax_normalise(kernel)[0]) ** 2).mean(axis=(1, 2)))
    assert (rmse(solve(1e-6, other)) < rmse(minmax_normalise(other)[0]) / 5).all()
    with pytest.raises(ValueError, match="prior must be"):
        least_squares_discrepancy(y, m, positions=pos, prior=np.zeros((1, 64, 64)))


def test_sub_pixel_hybrid_leaves_the_vae_manifold_where_the_data_decide(smoke_profile):
    """An untrained VAE cannot draw the kernel; the sub-pixel hybrid's prior-centred least squares
    recovers it from clean data anyway, far better than the latent refinement alone, and the
    discrepancy check falls back to the decoded kernel when the positions are wrong."""
    import dataclasses

    vae, info = build_kernel_vae(smoke_profile.model)
    enc, _ = build_observation_encoder(smoke_profile.model, vae, info)
    vae.eval().requires_grad_(False)
    enc.eval().requires_grad_(False)
    rng = np.random.default_rng(4)
    p = KernelParams(symmetry=6, orientation=0.2, frequency=0.13, phase=0.5, decay=8.0)
    pos = rng.uniform(-0.5, 63.5, (2, 40, 2))
    y, _ = minmax_normalise(render_observations(kernel_spectrum(p)[0], pos, dtype=np.complex128))
    kernel, _ = minmax_normalise(kernel_image(p))
    x = torch.from_numpy(np.stack([y, activation_map(pos).astype(float)], 1)).float()
    cfg = PhysicsConfig(hybrid_steps=2, ls_iterations=100, ls_lambda_grid=(1e-6, 1e-4, 1e-2, 1.0))
    rmse = lambda out: np.sqrt(((out[:, 0].numpy() - kernel) ** 2).mean(axis=(1, 2)))
    latent_only = rmse(hybrid(enc, vae, x, dataclasses.replace(cfg, hybrid_residual=False), positions=pos))
    full = rmse(hybrid(enc, vae, x, cfg, positions=pos))
    assert (full < 0.025).all() and (full < latent_only / 5).all(), (full, latent_only)
    wrong = pos + rng.normal(0, 2.0, pos.shape)  # 2 px errors: no lambda reaches the (clean) noise level
    fallback = hybrid(enc, vae, x, dataclasses.replace(cfg, hybrid_position_lr=0.0), positions=wrong)
    decoded = hybrid(enc, vae, x, dataclasses.replace(cfg, hybrid_residual=False), positions=wrong)
    assert torch.allclose(fallback, decoded, atol=1e-5)


def test_hybrid_settings_are_chosen_on_the_given_observations(smoke_profile):
    from qpi_utils.baselines import choose_hybrid_settings

    vae, info = build_kernel_vae(smoke_profile.model)
    enc, _ = build_observation_encoder(smoke_profile.model, vae, info)
    vae.eval().requires_grad_(False)
    enc.eval().requires_grad_(False)
    y, m, kernel = _scene(n_images=2, n_defects=10)
    x = torch.from_numpy(np.stack([y, m], 1)).float()
    best, scores = choose_hybrid_settings(enc, vae, x, np.stack([kernel, kernel]), PhysicsConfig(hybrid_steps=2),
                                          lrs=(0.01, 0.1), mus=(0.0,))
    assert len(scores) == 2 * 3  # two runs, each read after 0, 1 and 2 steps
    assert scores[f"{best['hybrid_lr']:g},{best['hybrid_mu']:g},{best['hybrid_steps']}"] == min(scores.values())
