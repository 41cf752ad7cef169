import numpy as np
import pytest
import torch

from qpi_utils.physics import ConvolutionOperator
from qpi_utils.simulate import KernelParams, activation_map, kernel_image, kernel_spectrum, render_observations


def _dot_test(op, rng):
    x, y = rng.normal(size=(len(op), 64, 64)), rng.normal(size=(len(op), 64, 64))
    lhs = (op.forward(x) * y).sum()
    rhs = (x * op.adjoint(y)).sum()
    return abs(lhs - rhs) / abs(lhs)


def test_binned_operator_passes_the_dot_product_test():
    rng = np.random.default_rng(0)
    maps = (rng.random((4, 64, 64)) < 0.02).astype(float)
    assert _dot_test(ConvolutionOperator.from_maps(maps), rng) < 1e-9


def test_subpixel_operator_passes_the_dot_product_test():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-0.5, 63.5, (3, 12, 2))
    pos[0, 5:] = np.nan  # unused slots
    op = ConvolutionOperator.from_positions(pos)
    assert _dot_test(op, rng) < 1e-9
    assert op.n_defects == pytest.approx([5, 12, 12])


def test_forward_is_the_simulators_superposition_binned_and_subpixel():
    p = KernelParams(symmetry=3, orientation=0.2, frequency=0.1, phase=0.4, decay=7.0)
    rng = np.random.default_rng(5)
    integer = np.round(rng.uniform(0, 63, (1, 15, 2)))
    sim = render_observations(kernel_spectrum(p)[0], integer, dtype=np.complex128)[0]
    binned = ConvolutionOperator.from_maps(activation_map(integer).astype(float)).forward(kernel_image(p)[None])[0]
    assert np.abs(binned - sim).max() < 1e-3 * np.abs(sim).max()
    # at sub-pixel positions only the position-based operator is exact
    subpixel = rng.uniform(0, 63, (1, 15, 2))
    sim = render_observations(kernel_spectrum(p)[0], subpixel, dtype=np.complex128)[0]
    exact = ConvolutionOperator.from_positions(subpixel).forward(kernel_image(p)[None])[0]
    rounded = ConvolutionOperator.from_maps(activation_map(subpixel).astype(float)).forward(kernel_image(p)[None])[0]
    assert np.abs(exact - sim).max() < 1e-3 * np.abs(sim).max()
    assert np.abs(rounded - sim).max() > 10 * np.abs(exact - sim).max()


def test_numpy_and_torch_agree_and_torch_is_differentiable():
    rng = np.random.default_rng(2)
    maps = (rng.random((2, 64, 64)) < 0.03).astype(float)
    x, y = rng.normal(size=(2, 64, 64)), rng.normal(size=(2, 64, 64))
    op_np = ConvolutionOperator.from_maps(maps)
    op_t = ConvolutionOperator.from_maps(torch.from_numpy(maps))
    xt = torch.from_numpy(x).requires_grad_(True)
    for op in (op_np, op_t):  # either spectrum serves either library
        np.testing.assert_allclose(op.forward(torch.from_numpy(x)).numpy(), op_np.forward(x), atol=1e-10)
        np.testing.assert_allclose(op.adjoint(y), op_np.adjoint(y), atol=1e-10)
    loss = (op_t.forward(xt) * torch.from_numpy(y)).sum()
    loss.backward()
    np.testing.assert_allclose(xt.grad.numpy(), op_np.adjoint(y), atol=1e-9)  # gradient = adjoint


def test_shapes_are_checked():
    op = ConvolutionOperator.from_maps(np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match=r"kernels must be \(2, 64, 64\)"):
        op.forward(np.zeros((3, 64, 64)))
    with pytest.raises(ValueError, match="activation maps must be"):
        ConvolutionOperator.from_maps(np.zeros((64, 64)))
    with pytest.raises(ValueError, match="positions must have shape"):
        ConvolutionOperator.from_positions(np.zeros((5, 2)))


def test_torch_position_operator_matches_numpy_and_its_gradient_moves_a_misplaced_defect():
    """from_positions_torch is from_positions (to float64 rounding), unused slots included, and
    the data misfit's gradient points a misplaced defect back towards its true position."""
    import torch

    rng = np.random.default_rng(3)
    pos = rng.uniform(5, 58, (2, 6, 2))
    pos[1, 4:] = np.nan
    a = ConvolutionOperator.from_positions(pos).spectrum
    b = ConvolutionOperator.from_positions_torch(torch.from_numpy(pos)).spectrum.numpy()
    assert np.abs(a - b).max() < 1e-10 * np.abs(a).max()
    p = KernelParams(symmetry=4, orientation=0.1, frequency=0.1, phase=0.5, decay=8.0)
    kernel = torch.from_numpy(kernel_image(p)[None]).double()
    true = np.array([[[30.0, 31.0]]])
    y = ConvolutionOperator.from_positions(true).forward(kernel.numpy())
    guess = torch.tensor([[[30.4, 31.0]]], dtype=torch.float64, requires_grad=True)
    misfit = ((ConvolutionOperator.from_positions_torch(guess).forward(kernel) - torch.from_numpy(y)) ** 2).sum()
    misfit.backward()
    assert guess.grad[0, 0, 0] > 0 and abs(guess.grad[0, 0, 0]) > 10 * abs(guess.grad[0, 0, 1])
