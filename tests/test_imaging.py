import numpy as np
import pytest

from qpi_utils.imaging import minmax_normalise, rotate_image


def test_minmax_normalise_round_trip():
    x = np.random.default_rng(0).normal(size=(3, 4, 8, 8))
    norm, ranges = minmax_normalise(x)
    assert norm.min() == 0 and norm.max() == 1 and ranges.shape == (3, 4, 2)
    back = norm * (ranges[..., 1:2, None] - ranges[..., 0:1, None]) + ranges[..., 0:1, None]
    assert np.allclose(back, x)


def test_constant_images_become_zero():
    norm, ranges = minmax_normalise(np.full((2, 8, 8), 3.0))
    assert (norm == 0).all() and (ranges == 3.0).all()


@pytest.mark.parametrize("order", [1, 3])
def test_rotation_about_a_pixel_keeps_that_pixel_and_composes(order):
    img = np.zeros((33, 33))
    img[16, 16] = 1.0
    img[16, 24] = 1.0  # 8 px to the right of the centre
    quarter = rotate_image(img, np.pi / 2, 16, order=order)
    assert quarter[16, 16] == pytest.approx(1.0, abs=1e-6)
    assert quarter[24, 16] == pytest.approx(1.0, abs=1e-6) or quarter[8, 16] == pytest.approx(1.0, abs=1e-6)
    full = rotate_image(rotate_image(img, np.pi / 2, 16, order=order), -np.pi / 2, 16, order=order)
    np.testing.assert_allclose(full, img, atol=1e-6)
