import dataclasses

import numpy as np
import pytest

from conftest import rotate
from qpi_utils.simulate import (KERNEL_ORIGIN, SYMMETRY_ORDERS, KernelParams, activation_map,
                                kernel_field, kernel_image, kernel_spectrum, minmax_normalise,
                                observation_direct, render_observations, simulate_dataset,
                                symmetry_angles)


def _params(n, **kw):
    base = dict(symmetry=n, orientation=0.4, frequency=0.12, phase=0.7, decay=9.0)
    base.update(kw)
    return KernelParams(**base)


def _rot_error(field_fn, angle):
    """Max |A(R x) - A(x)| of the analytic field on a disc (no interpolation involved)."""
    yy, xx = np.mgrid[-20:20:0.37, -20:20:0.37]
    c, s = np.cos(angle), np.sin(angle)
    return np.abs(field_fn(c * xx - s * yy, s * xx + c * yy) - field_fn(xx, yy)).max()


@pytest.mark.parametrize("n", SYMMETRY_ORDERS)
def test_analytic_kernel_is_invariant_under_its_rotations_only(n):
    p = _params(n)
    f = lambda dx, dy: kernel_field(p, dx, dy)
    for angle in symmetry_angles(n):
        assert _rot_error(f, angle) < 1e-9, f"{n}-fold not invariant under {np.rad2deg(angle):.0f} deg"
    if n > 0:  # half the smallest symmetry angle is never a symmetry
        assert _rot_error(f, np.pi / n) > 0.05
        if n in (2, 4):
            assert _rot_error(f, 2 * np.pi / 3) > 0.05
        if n in (3, 6):
            assert _rot_error(f, np.pi / 2) > 0.05


@pytest.mark.parametrize("n", [2, 4])
def test_pixel_kernel_is_exactly_symmetric_for_right_angle_rotations(n):
    """90/180 degree rotations about the scatterer's pixel map pixels onto pixels."""
    img = kernel_image(_params(n, orientation=0.0))
    sub = img[1:, 1:]  # 63x63 centred on pixel 32 of the original
    k = 1 if n == 4 else 2
    assert np.allclose(np.rot90(sub, k), sub, atol=1e-5)
    if n == 2:
        assert not np.allclose(np.rot90(sub, 1), sub, atol=1e-2)


@pytest.mark.parametrize("n", [3, 6])
def test_pixel_kernel_rotated_by_interpolation_matches_itself(n):
    img = kernel_image(_params(n, frequency=0.08, decay=6.0))
    disc = np.hypot(*np.mgrid[-32:32, -32:32]) < 20
    for angle in symmetry_angles(n):
        err = np.abs(rotate(img, angle, KERNEL_ORIGIN) - img)[disc].max()
        assert err < 0.05 * np.abs(img).max()
    wrong = np.abs(rotate(img, np.pi / n, KERNEL_ORIGIN) - img)[disc].max()
    assert wrong > 0.2 * np.abs(img).max()


def test_kernel_image_agrees_with_direct_pixel_integration():
    """Band-limiting removes only what would alias: < 3 % of the peak, any class."""
    for n in SYMMETRY_ORDERS:
        p = _params(n, frequency=0.18, decay=12.0)
        fast = kernel_image(p)
        slow = observation_direct(p, np.array([[32.0, 32.0]]), supersample=8)
        assert np.abs(fast - slow).max() < 0.03 * np.abs(slow).max()


def test_observation_is_the_sum_of_its_subpixel_kernels():
    p = _params(4, frequency=0.17)
    spec = kernel_spectrum(p)[0]
    pos = np.random.default_rng(1).uniform(-0.5, 63.5, (1, 25, 2))
    y = render_observations(spec, pos, dtype=np.complex128)[0]
    parts = [render_observations(spec, pos[:, i:i + 1], dtype=np.complex128)[0] for i in range(25)]
    assert np.abs(y - np.sum(parts, axis=0)).max() < 1e-10
    # and each part is the kernel centred at its continuous position (direct analytic loop)
    direct = observation_direct(p, pos[0], supersample=8)
    assert np.abs(y - direct).max() < 0.03 * np.abs(direct).max() * 3


def test_integer_positions_give_the_discrete_convolution():
    """For scatterers on pixel centres, Y = M (*) A with A's origin at pixel 32 (up to the
    band-limited kernel's tails outside its 64x64 window, ~1e-4 of the peak)."""
    from scipy.signal import fftconvolve

    p = _params(3)
    spec = kernel_spectrum(p)[0]
    pos = np.array([[[10.0, 20.0], [40.0, 41.0], [33.0, 5.0]]])
    y = render_observations(spec, pos, dtype=np.complex128)[0]
    m = activation_map(pos[0])
    a = kernel_image(p)
    conv = fftconvolve(m.astype(float), a, mode="full")[32:96, 32:96]
    assert np.abs(y - conv).max() < 3e-4 * np.abs(a).max()


def test_subpixel_shift_moves_the_pattern():
    p = _params(0)
    spec = kernel_spectrum(p)[0]
    a = render_observations(spec, np.array([[[30.0, 30.0]]]))[0]
    b = render_observations(spec, np.array([[[30.5, 30.0]]]))[0]
    assert np.abs(a - b).max() > 0.05
    # half a pixel right then half a pixel more equals one whole pixel: np.roll
    c = render_observations(spec, np.array([[[31.0, 30.0]]]))[0]
    assert np.allclose(np.roll(a, 1, axis=1)[:, 1:], c[:, 1:], atol=1e-5)


def test_activation_map_matches_positions():
    pos = np.array([[0.49, 0.0], [63.4, 63.49], [-0.5, 10.0], [10.2, 10.3], [10.4, 9.6], [np.nan, np.nan],
                    [-3.0, 5.0], [64.0, 2.0]])
    m = activation_map(pos)
    assert m.sum() == 5
    assert m[0, 0] == 1 and m[63, 63] == 1 and m[10, 0] == 1 and m[10, 10] == 2


def test_minmax_normalise_round_trip():
    x = np.random.default_rng(0).normal(size=(3, 4, 8, 8))
    norm, ranges = minmax_normalise(x)
    assert norm.min() == 0 and norm.max() == 1 and ranges.shape == (3, 4, 2)
    back = norm * (ranges[..., 1:2, None] - ranges[..., 0:1, None]) + ranges[..., 0:1, None]
    assert np.allclose(back, x)


def test_dataset_is_bit_reproducible_and_seed_dependent(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=5, n_observations=6, snr_db=15.0,
                              line_noise=0.1, outside_margin=8.0)
    a = simulate_dataset(cfg, progress=False)
    b = simulate_dataset(cfg, progress=False, chunk=2)
    assert a.meta["content_hash"] == b.meta["content_hash"]
    for name, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[name], err_msg=name)
    c = simulate_dataset(dataclasses.replace(cfg, seed=1), progress=False)
    assert c.meta["content_hash"] != a.meta["content_hash"]


def test_dataset_contents(tiny_dataset, smoke_profile):
    ds = tiny_dataset
    s = smoke_profile.simulation
    assert ds.kernels.shape == (s.n_kernels, 64, 64)
    assert ds.observations.shape == (s.n_kernels, s.n_observations, 64, 64)
    # even over classes
    counts = np.bincount(ds.symmetry, minlength=7)[list(SYMMETRY_ORDERS)]
    assert (counts == s.n_kernels // 5).all()
    assert ds.kernels.min() == 0 and ds.kernels.max() == 1
    assert np.allclose(ds.observations.min(axis=(-2, -1)), 0) and np.allclose(ds.observations.max(axis=(-2, -1)), 1)
    assert ds.n_scatterers.min() >= s.min_scatterers and ds.n_scatterers.max() <= s.max_scatterers
    ds.check_activation_maps()
    # undoing the normalisation gives back the raw kernel
    k = 3
    raw = kernel_image(KernelParams(**{**ds.params(k), "symmetry": int(ds.params(k)["symmetry"])}),
                       supersample=s.supersample)
    assert np.abs(ds.denormalise_kernel(k, ds.kernels[k]) - raw).max() < 1e-5


def test_noiseless_observation_is_rendered_from_stored_positions(tiny_dataset):
    ds = tiny_dataset
    k, o = 2, 5
    p = ds.params(k)
    spec = kernel_spectrum({key: np.array([v]) for key, v in p.items()})[0]
    raw = render_observations(spec, ds.positions[k, o][None].astype(np.float64))[0]
    lo, hi = ds.arrays["observation_range"][k, o]
    assert np.abs(ds.observations[k, o] * (hi - lo) + lo - raw).max() < 1e-5 * (hi - lo)


def test_outside_scatterers_appear_in_y_but_not_in_m(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=5, n_observations=4, outside_margin=12.0,
                              min_scatterers=40, max_scatterers=40)
    ds = simulate_dataset(cfg, progress=False)
    out = ds.arrays["outside_positions"]
    n_out = np.isfinite(out[..., 0]).sum(-1)
    assert n_out.mean() > 10  # about 40 * ((88/64)**2 - 1) = 36 expected
    inside_fov = ((out >= -0.5) & (out < 63.5)).all(-1) & np.isfinite(out[..., 0])
    assert not inside_fov.any()
    assert (ds.activation_maps.reshape(5, 4, -1).sum(-1) == 40).all()
    p = ds.params(0)
    spec = kernel_spectrum({key: np.array([v]) for key, v in p.items()})[0]
    only_labelled = render_observations(spec, ds.positions[0, :1].astype(np.float64))[0]
    lo, hi = ds.arrays["observation_range"][0, 0]
    assert np.abs(ds.observations[0, 0] * (hi - lo) + lo - only_labelled).max() > 1e-2


def test_noise_has_the_requested_snr(smoke_profile):
    from qpi_utils.simulate import _add_noise

    clean = np.random.default_rng(0).normal(size=(200, 64, 64))
    noisy = _add_noise(np.random.default_rng(1), clean, snr_db=20.0, line_noise=0.0)
    ratio = clean.std() / (noisy - clean).std()
    assert abs(20 * np.log10(ratio) - 20.0) < 0.2
    lines = _add_noise(np.random.default_rng(1), clean, snr_db=None, line_noise=0.5) - clean
    assert np.allclose(lines, lines[..., :1])  # constant along each scan line


def test_bad_kernel_parameters_are_rejected():
    with pytest.raises(ValueError, match="symmetry must be one of"):
        KernelParams(symmetry=5)
    with pytest.raises(ValueError, match="below Nyquist"):
        KernelParams(symmetry=2, frequency=0.7)
    with pytest.raises(ValueError, match="positions must have shape"):
        render_observations(kernel_spectrum(KernelParams(symmetry=0))[0], np.zeros((3, 2)))


def test_given_kernels_and_position_errors(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=2, n_observations=3, position_error=1.5)
    params = {"symmetry": np.array([0, 6]), "orientation": np.array([0.0, 0.2]), "frequency": np.array([0.1, 0.15]),
              "phase": np.array([0.0, 1.0]), "decay": np.array([6.0, 9.0])}
    ds = simulate_dataset(cfg, progress=False, params=params)
    assert list(ds.symmetry) == [0, 6] and ds.params(1)["frequency"] == pytest.approx(0.15)
    ds.check_activation_maps()  # M matches the (erroneous) labelled positions it was built from
    clean = simulate_dataset(dataclasses.replace(cfg, position_error=0.0), progress=False, params=params)
    np.testing.assert_array_equal(ds.observations, clean.observations)  # Y uses the true positions
    shift = np.nanmean(np.hypot(*(ds.positions - clean.positions).transpose(3, 0, 1, 2)))
    assert 1.0 < shift < 3.0  # mean of a 2-D Gaussian error with std 1.5 px is about 1.9 px
    with pytest.raises(ValueError, match="params must give 2 kernels"):
        simulate_dataset(cfg, progress=False, params={k: v[:1] for k, v in params.items()})
