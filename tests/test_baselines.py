"""Tests of the physics baselines and the hybrid (qpi_utils.baselines); the bad-input cases at the end: misused solvers and metrics: clear errors (one case a line).
"""
import numpy as np
import pytest
import torch
from qpi_utils.baselines import (DECODER_AUTOCAST, EDGE_CHECK, EdgeCheck, choose_regularisation,
                                 decoder_precision, defect_average, edge_ratio, estimate_noise_std, estimate_snr_db, hybrid, least_squares,
                                 least_squares_discrepancy, least_squares_path)
from qpi_utils.config import PhysicsConfig
from qpi_utils.imaging import minmax_normalise
from qpi_utils.models import build_kernel_vae, build_observation_encoder
from qpi_utils.simulate import KernelParams, activation_map, kernel_image, kernel_spectrum, render_observations
from qpi_utils.metrics import errors


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


def _untrained_networks(profile):
    """The profile's kernel VAE and observation encoder at random weights, frozen, in eval mode."""
    vae, info = build_kernel_vae(profile.model)
    enc, _ = build_observation_encoder(profile.model, vae, info)
    return vae.eval().requires_grad_(False), enc.eval().requires_grad_(False)


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


def test_one_path_of_cg_solves_every_lambda_as_its_own_cg_would():
    """Multi-shift CG: the grid's solutions from one sequence of operator applications equal
    separate solves (same iterations, from zero), on noisy data with a sub-pixel operator, and
    the offset c is fitted (a constant added to Y changes no kernel)."""
    rng = np.random.default_rng(3)
    p = KernelParams(symmetry=3, orientation=0.5, frequency=0.14, phase=0.3, decay=7.0)
    pos = rng.uniform(-0.5, 63.5, (3, 25, 2))
    pos[1, 7:] = np.nan  # fewer defects in one image: its own shifts
    y, _ = minmax_normalise(render_observations(kernel_spectrum(p)[0], pos, dtype=np.complex128))
    y = y + rng.normal(0, 0.05, y.shape)
    m = activation_map(pos).astype(float)
    grid = (1e-6, 1e-3, 1e-1, 10.0)
    path = least_squares_path(y, m, grid=grid, iterations=40, positions=pos)
    assert path.shape == (3, 4, 64, 64)
    for j, lam in enumerate(grid):
        single = least_squares(y, m, lam=lam, iterations=40, positions=pos)
        assert np.abs(path[:, j] - single).max() < 1e-3, lam
    shifted = least_squares_path(y + 0.7, m, grid=grid, iterations=40, positions=pos)
    assert np.abs(shifted - path).max() < 1e-6
    # a larger lambda regularises more: the raw kernel's norm falls along the grid
    raw = [np.linalg.norm(least_squares(y, m, lam=lam, iterations=40, positions=pos, return_raw=True)) for lam in grid]
    assert all(a > b for a, b in zip(raw, raw[1:])), raw


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


def test_an_edge_band_is_left_out_of_the_fit_and_its_residual_shows_what_sits_there():
    """With ``edge`` the data term ignores a band at the image edge: anything written there
    (ripples of defects outside the view) changes neither the kernel nor the chosen lambda, while
    the same corruption spoils the fit that uses every pixel; that fit's residual is then much
    larger in the band than inside (:func:`edge_ratio`), and about as large where only noise is."""
    y, m, kernel = _scene(n_images=3, n_defects=30, integer=False, seed=4)
    pos = np.random.default_rng(4).uniform(-0.5, 63.5, (3, 30, 2))
    grid = (1e-5, 1e-3, 1e-1)
    spoiled = y.copy()
    spoiled[:, :8] += np.random.default_rng(1).normal(0, 0.5, spoiled[:, :8].shape)
    clean, lam = least_squares_discrepancy(y, m, grid=grid, iterations=40, positions=pos, edge=8, noise_std=0.01)
    edged, lam2 = least_squares_discrepancy(spoiled, m, grid=grid, iterations=40, positions=pos, edge=8,
                                            noise_std=0.01)
    assert np.abs(edged - clean).max() < 1e-9 and (lam == lam2).all()
    rmse = lambda e: float(np.sqrt(((e - kernel) ** 2).mean()))
    everywhere, _ = least_squares_discrepancy(spoiled, m, grid=grid, iterations=40, positions=pos, noise_std=0.01)
    assert rmse(everywhere) > 2 * rmse(clean), (rmse(clean), rmse(everywhere))
    noise = np.random.default_rng(2).normal(0, 1, (200, 64, 64))
    assert np.abs(edge_ratio(noise, 8) - 1).max() < 0.1
    noise[:, :8] *= 3  # structure in one side of the band
    assert (edge_ratio(noise, 8) > 1.4).all()
    for bad in (-1, 32, 2.5, True):
        with pytest.raises(ValueError, match="edge must be an integer number of px in 0 .. 31"):
            least_squares_discrepancy(y, m, grid=grid, positions=pos, edge=bad)


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
    noisy = y + np.random.default_rng(0).normal(0, 0.05, y.shape)
    lam, scores = choose_regularisation(noisy, m, np.repeat(kernel[None], 3, 0), grid=(1e-4, 1e-2, 1.0), iterations=40)
    assert lam in (1e-4, 1e-2, 1.0) and scores[lam] == min(scores.values())
    # each score is that lambda's own least squares, scored against the kernels
    for value, score in scores.items():
        est = least_squares(noisy, m, lam=value, iterations=40)
        assert score == pytest.approx(float(np.sqrt(((est - kernel) ** 2).mean(axis=(1, 2))).mean()), abs=1e-4)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"observations must be a batch of shape \(N, 64, 64\) or one image \(64, 64\)"):
        least_squares(np.zeros((2, 32, 32)), np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="activation maps holds .* NaN"):
        defect_average(np.zeros((1, 64, 64)), np.full((1, 64, 64), np.nan))
    with pytest.raises(ValueError, match="differ in shape"):
        least_squares(np.zeros((2, 64, 64)), np.zeros((3, 64, 64)))


def test_hybrid_reduces_the_data_misfit_and_keeps_the_decoder_frozen(smoke_profile):
    vae, enc = _untrained_networks(smoke_profile)
    before = [p.clone() for p in vae.parameters()]
    y, m, _ = _scene(n_images=2, n_defects=10)
    x = torch.from_numpy(np.stack([y, m], 1)).float()
    out, history = hybrid(enc, vae, x, PhysicsConfig(hybrid_steps=15, hybrid_lr=0.1, hybrid_mu=0.0), return_history=True)
    assert out.shape == (2, 1, 64, 64)
    assert history[-1] < history[0]
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))


def test_decoder_precision_is_reduced_only_where_it_is_fast():
    """fp16 on CUDA (as before), bf16 on a CPU only where it has native bf16 (where training uses it
    too), float32 (None) elsewhere and whenever autocast is off."""
    from qpi_utils.train import cpu_has_native_bf16

    assert decoder_precision("cuda", True) == torch.float16
    assert decoder_precision("cpu", True) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    assert decoder_precision("cpu", False) is None and decoder_precision("cuda", False) is None
    assert decoder_precision("mps", True) is None
    with pytest.raises(ValueError, match="decoder_precision: device must be .* got 'gpu'"):
        decoder_precision("gpu", True)


def test_hybrid_under_decoder_autocast_stays_with_the_float32_hybrid(smoke_profile):
    """Autocast acts on the refinement steps' decoder passes only: the data misfit of the starting
    latent is the float32 one up to bf16 rounding, both still lower it step by step, the outputs
    are finite float32, and the decoder stays frozen. (At random weights the trajectories then
    diverge, so the outputs are not compared pixel by pixel here; the error autocast costs on
    trained networks is measured by benchmarks/hybrid_precision.py.)"""
    vae, enc = _untrained_networks(smoke_profile)
    before = [p.clone() for p in vae.parameters()]
    pos = np.random.default_rng(3).uniform(-0.5, 63.5, (2, 10, 2))
    spec = kernel_spectrum(KernelParams(symmetry=6, orientation=0.2, frequency=0.13, phase=0.5, decay=8.0))[0]
    y = minmax_normalise(render_observations(spec, pos, dtype=np.complex128))[0]
    x = torch.from_numpy(np.stack([y, activation_map(pos).astype(float)], 1)).float()
    cfg = PhysicsConfig(hybrid_steps=8, hybrid_lr=0.1, hybrid_mu=0.0, hybrid_position_lr=0.0)
    for positions in (None, pos):
        (auto, h_auto), (exact, h_exact) = (hybrid(enc, vae, x, cfg, positions=positions, return_history=True,
                                                   decoder_autocast=a) for a in (True, False))
        assert h_auto[0] == pytest.approx(h_exact[0], rel=0.02)
        assert h_auto[-1] < h_auto[0] and h_exact[-1] < h_exact[0]
        assert auto.dtype == exact.dtype == torch.float32 and torch.isfinite(auto).all()
    assert all(torch.equal(a, b) for a, b in zip(before, vae.parameters()))


def test_the_decoder_autocast_is_what_its_rule_chose_on_validation():
    """DECODER_AUTOCAST holds the verdict benchmarks/hybrid_precision.py printed on validation
    kernels (its committed output's last line)."""
    from pathlib import Path

    out = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "hybrid_precision_quick.txt"
    assert out.read_text().rstrip().splitlines()[-1] == f"decoder autocast kept: {DECODER_AUTOCAST}"


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

    vae, enc = _untrained_networks(smoke_profile)
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


def _hidden_defect_scenes(rng, n=3):
    """(x (2n, 2, 64, 64) (Y, M), labelled positions (2n, 30, 2), true kernel (64, 64)): n
    observations with 20 unlabelled defects in a 14 px band outside the view, then n without,
    both at 20 dB; the kernel is the same in all of them."""
    p = KernelParams(symmetry=4, orientation=0.4, frequency=0.12, phase=0.8, decay=10.0)
    inside = rng.uniform(-0.5, 63.5, (n, 30, 2))
    side = rng.integers(0, 4, (n, 20))  # each hidden defect in the band on one of the four sides
    depth, along = rng.uniform(-14, -1, (n, 20)), rng.uniform(-14, 77, (n, 20))
    hidden = np.stack([np.where(side == 0, depth, np.where(side == 1, 63 - depth, along)),
                       np.where(side == 2, depth, np.where(side == 3, 63 - depth, along))], -1)
    spec = kernel_spectrum(p)[0]
    xs = []
    for pos in (np.concatenate([inside, hidden], 1), inside):
        clean = render_observations(spec, pos, dtype=np.complex128)
        noisy = clean + rng.normal(0, 1, clean.shape) * clean.std(axis=(1, 2), keepdims=True) / 10  # 20 dB
        y, _ = minmax_normalise(noisy)
        xs.append(np.stack([y, activation_map(inside).astype(float)], 1))
    x = torch.from_numpy(np.concatenate(xs)).float()
    return x, np.concatenate([inside, inside]), minmax_normalise(kernel_image(p))[0]


def test_sub_pixel_hybrid_refits_the_interior_when_defects_outside_the_view_sit_at_its_edge(smoke_profile):
    """Unlabelled defects just outside the view, under 20 dB noise: the full-image fit meets the
    noise bound with a distorted kernel (the failure benchmarks/hybrid_realistic.py found); the
    edge check sees the residual piled up at the edge and refits the interior, much closer to the
    truth. With no outside defects the check leaves the fit alone."""
    vae, enc = _untrained_networks(smoke_profile)
    x, inside, kernel = _hidden_defect_scenes(np.random.default_rng(7))
    rmse = lambda out: np.sqrt(((out[:, 0].numpy() - kernel) ** 2).mean(axis=(1, 2)))
    cfg = PhysicsConfig(hybrid_steps=1, hybrid_position_lr=0.0, ls_iterations=60)
    off, on, gated = (rmse(hybrid(enc, vae, x, cfg, positions=inside, edge_check=check))
                      for check in (None, EdgeCheck(band=8, ratio=1.3, noise_fraction=0.7),
                                    EdgeCheck(band=8, ratio=1.3, noise_fraction=0.7, max_snr_db=15.0)))
    assert (on[:3] < 0.85 * off[:3]).all() and on[:3].mean() < 0.65 * off[:3].mean(), (on, off)
    assert np.allclose(on[3:], off[3:]), (on, off)
    assert np.allclose(gated, off), (gated, off)  # 20 dB data are above a 15 dB gate: no check


def test_the_edge_check_is_the_one_its_rule_chose_on_validation():
    """EDGE_CHECK holds what benchmarks/edge_check.py chose on validation kernels (its committed
    output's last line): a threshold typed in by hand, or left behind by a re-run, fails here."""
    from pathlib import Path

    out = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "edge_check_quick.txt"
    assert out.read_text().rstrip().splitlines()[-1] == f"chosen: {EDGE_CHECK}"


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_snr_is_read_off_the_observation_alone(snr_db):
    """The SNR gate of the edge check reads the noise level from the observation's spectrum: on
    white noise added at a known SNR (signal variance over noise variance) it is within 1.5 dB
    where the noise dominates the high frequencies (up to 20 dB here). Above that, the kernel's own
    power above ``fmin`` counts as noise and the SNR reads low (27-28 dB for 30 dB here; noise-free
    maps read 20-48 dB by their ripple frequency), never much high."""
    rng = np.random.default_rng(int(snr_db))
    p = KernelParams(symmetry=6, orientation=0.1, frequency=0.12, phase=0.2, decay=9.0)
    clean = render_observations(kernel_spectrum(p)[0], rng.uniform(-0.5, 63.5, (4, 40, 2)), dtype=np.complex128)
    noisy = clean + rng.normal(0, 1, clean.shape) * clean.std(axis=(1, 2), keepdims=True) * 10 ** (-snr_db / 20)
    snr = estimate_snr_db(noisy)
    assert (snr < snr_db + 1.5).all() and (snr > snr_db - (1.5 if snr_db <= 20 else 4.0)).all(), snr


@pytest.mark.parametrize("frequency", [0.06, 0.12, 0.2])
def test_a_noise_free_map_never_reads_as_noisy(frequency):
    """With no noise at all, the kernel's own power above fmin is all the SNR estimate sees as
    noise: it reads at least 20 dB (higher for slower ripples), so the edge check's 30 dB gate
    can act on some noise-free maps but never takes one for a 10 dB map."""
    rng = np.random.default_rng(5)
    p = KernelParams(symmetry=4, orientation=0.3, frequency=frequency, phase=0.7, decay=8.0)
    clean = render_observations(kernel_spectrum(p)[0], rng.uniform(-0.5, 63.5, (4, 40, 2)), dtype=np.complex128)
    assert (estimate_snr_db(clean) >= 20).all(), estimate_snr_db(clean)


def test_edge_check_inputs_are_named():
    with pytest.raises(ValueError, match="EdgeCheck.ratio must be a finite number >= 1"):
        EdgeCheck(ratio=0.5)
    with pytest.raises(ValueError, match="EdgeCheck.noise_fraction"):
        EdgeCheck(noise_fraction=float("nan"))
    with pytest.raises(ValueError, match="edge must be an integer number of px"):
        EdgeCheck(band=40)
    with pytest.raises(ValueError, match="EdgeCheck.max_snr_db must be a number of dB"):
        EdgeCheck(max_snr_db=float("nan"))


def test_hybrid_settings_are_chosen_on_the_given_observations(smoke_profile):
    from qpi_utils.baselines import choose_hybrid_settings

    vae, enc = _untrained_networks(smoke_profile)
    y, m, kernel = _scene(n_images=2, n_defects=10)
    x = torch.from_numpy(np.stack([y, m], 1)).float()
    best, scores = choose_hybrid_settings(enc, vae, x, np.stack([kernel, kernel]), PhysicsConfig(hybrid_steps=2),
                                          lrs=(0.01, 0.1), mus=(0.0,))
    assert len(scores) == 2 * 3  # two runs, each read after 0, 1 and 2 steps
    assert scores[f"{best['hybrid_lr']:g},{best['hybrid_mu']:g},{best['hybrid_steps']}"] == min(scores.values())


# ------------------------------------------------------------------------------------------
# bad input


Y = np.random.default_rng(0).random((2, 64, 64))
M = np.zeros((2, 64, 64))
M[:, 10, 10] = 1

CASES = [
    (defect_average, (Y, M[:1]), {}, "differ in shape"),
    (defect_average, (Y[:0], M[:0]), {}, "the batch is empty"),
    (defect_average, (Y, -M), {}, "must count defects"),
    (least_squares, (Y, M), {"lam": float("nan")}, "lam must be a finite number > 0"),
    (least_squares, (Y, M), {"lam": -1.0}, "lam must be a finite number > 0"),
    (least_squares, (Y, M), {"iterations": -5}, "iterations must be an integer >= 1"),
    (least_squares, (Y, M), {"iterations": 2.5}, "iterations must be an integer >= 1"),
    (least_squares, (Y, np.zeros_like(M)), {}, "activation map 0 .* has no defect"),
    (least_squares, (Y[:, :32], M[:, :32]), {}, r"observations must be a batch of shape \(N, 64, 64\) or one image"),
    (least_squares, (np.full_like(Y, np.nan), M), {}, "observations holds 8192 NaN or inf"),
    (defect_average, (Y, np.where(M > 0, np.nan, M)), {}, "activation maps holds 2 NaN or inf"),
    (errors, (Y, Y[:1]), {}, "must be .* of one shape"),
]


@pytest.mark.parametrize("fn, args, kwargs, message", CASES)
def test_misuse_is_named(fn, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn(*args, **kwargs)


def test_hybrid_settings_need_one_kernel_per_observation():
    import torch

    from qpi_utils.baselines import choose_hybrid_settings
    from qpi_utils.config import PhysicsConfig

    x = torch.zeros(3, 2, 64, 64)
    with pytest.raises(ValueError, match=r"kernels must be \(3, 64, 64\), one per observation"):
        choose_hybrid_settings(None, None, x, np.zeros((2, 64, 64)), PhysicsConfig())
    with pytest.raises(ValueError, match=r"observations must be \(B, 2, 64, 64\)"):
        choose_hybrid_settings(None, None, x[:, :1], np.zeros((3, 64, 64)), PhysicsConfig())
