"""Tests of the simulator (qpi_utils.simulate); the bad-input cases at the end: physics API misuse: clear errors instead of silently wrong images (one case a line).
"""
import numpy as np
import pytest
from qpi_utils.imaging import rotate_image
from qpi_utils.simulate import (KERNEL_ORIGIN, SYMMETRY_ORDERS, KernelParams, activation_map, add_noise,
                                kernel_field, kernel_image, kernel_spectrum, observation_direct,
                                render_observations, symmetry_angles)
from qpi_utils.data import simulate_dataset


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
        err = np.abs(rotate_image(img, angle, KERNEL_ORIGIN) - img)[disc].max()
        assert err < 0.05 * np.abs(img).max()
    wrong = np.abs(rotate_image(img, np.pi / n, KERNEL_ORIGIN) - img)[disc].max()
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


def test_noise_has_the_requested_snr(smoke_profile):
    clean = np.random.default_rng(0).normal(size=(200, 64, 64))
    noisy = add_noise(np.random.default_rng(1), clean, snr_db=20.0, line_noise=0.0)
    ratio = clean.std() / (noisy - clean).std()
    assert abs(20 * np.log10(ratio) - 20.0) < 0.2
    lines = add_noise(np.random.default_rng(1), clean, snr_db=None, line_noise=0.5) - clean
    assert np.allclose(lines, lines[..., :1])  # constant along each scan line


def test_bad_kernel_parameters_are_rejected():
    with pytest.raises(ValueError, match="symmetry must be one of"):
        KernelParams(symmetry=5)
    with pytest.raises(ValueError, match="below Nyquist"):
        KernelParams(symmetry=2, frequency=0.7)
    with pytest.raises(ValueError, match="positions must have shape"):
        render_observations(kernel_spectrum(KernelParams(symmetry=0))[0], np.zeros((3, 2)))


# ------------------------------------------------------------------------------------------
# bad input


GOOD = {"symmetry": [0], "orientation": [0.0], "frequency": [0.1], "phase": [0.0], "decay": [8.0]}
SPEC = kernel_spectrum(KernelParams(symmetry=0))[0]

PARAM_CASES = [
    ({"decay": [0.0]}, "decay must be a finite number > 0"),
    ({"decay": [np.inf]}, "decay must be a finite number > 0"),
    ({"symmetry": [5]}, "symmetry must be one of"),
    ({"frequency": [0.6]}, "below Nyquist"),
    ({"frequency": [np.nan]}, "below Nyquist"),
    ({"orientation": [np.nan]}, "orientation and phase must be finite"),
    ({"phase": [np.inf]}, "orientation and phase must be finite"),
    ({"phase": [0.0, 1.0]}, "one length"),
]


@pytest.mark.parametrize("change, message", PARAM_CASES)
def test_kernel_spectrum_checks_every_parameter(change, message):
    with pytest.raises(ValueError, match=message):
        kernel_spectrum({**GOOD, **change})


@pytest.mark.parametrize("change, message", PARAM_CASES[:5])
def test_given_dataset_kernels_are_checked(smoke_profile, change, message):
    import dataclasses

    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=1, n_observations=2)
    with pytest.raises(ValueError, match=message):
        simulate_dataset(cfg, progress=False, params={**GOOD, **change})


RENDER_CASES = [
    (dict(positions=np.array([[[200.0, 10.0]]])), "would wrap into the view"),
    (dict(positions=np.array([[[-40.0, 10.0]]])), "would wrap into the view"),
    (dict(positions=np.zeros((1, 3, 2)), size=200), "too large for a spectrum"),
    (dict(positions=np.zeros((1, 3, 2)), weights=np.ones((1, 4))), "weights must have shape"),
    (dict(positions=np.zeros((3, 2))), "positions must have shape"),
]


@pytest.mark.parametrize("kwargs, message", RENDER_CASES)
def test_render_observations_refuses_what_it_cannot_render(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_observations(SPEC, **kwargs)


def test_scatterers_just_outside_the_view_are_fine():
    assert render_observations(SPEC, np.array([[[-31.5, 10.0], [94.0, 5.0]]])).shape == (1, 64, 64)
