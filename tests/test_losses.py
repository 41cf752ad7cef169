import numpy as np
import pytest
import torch

from qpi_utils.losses import alignment_loss, angle_table, kl_loss, rotate_about, symmetric_loss
from qpi_utils.simulate import KernelParams, kernel_image


def _kernel(n, **kw):
    p = dict(symmetry=n, frequency=0.08, decay=6.0, orientation=0.0, phase=0.5)
    p.update(kw)
    return torch.tensor(kernel_image(KernelParams(**p)), dtype=torch.float32)[None, None]


def test_rotation_by_90_degrees_is_exact_about_the_scatterer():
    x = torch.rand(1, 1, 64, 64)
    r = rotate_about(x, torch.tensor([np.pi / 2]))
    # pixel (32 + dy, 32 + dx) comes from a 90-degree turn about pixel (32, 32)
    sub, rsub = x[0, 0, 1:, 1:], r[0, 0, 1:, 1:]
    assert torch.allclose(rsub, torch.rot90(sub, 1, dims=(0, 1)), atol=1e-5) or \
        torch.allclose(rsub, torch.rot90(sub, -1, dims=(0, 1)), atol=1e-5)


@pytest.mark.parametrize("n", [0, 2, 3, 4, 6])
def test_symmetric_loss_vanishes_for_a_symmetric_reconstruction_equal_to_the_kernel(n):
    k = _kernel(n)
    loss = symmetric_loss(k, k, [n]).item()
    if n in (2, 4):
        assert loss < 1e-10  # pixel-exact rotations
    else:
        assert loss < 1e-4  # bilinear interpolation only
    wrong = {0: 2, 2: 4, 3: 6, 4: 3, 6: 4}[n]  # claim a symmetry the kernel does not have
    if n != 0:
        assert symmetric_loss(k, k, [wrong]).item() > 20 * loss + 1e-3


def test_symmetric_loss_penalises_a_broken_symmetry_and_is_differentiable():
    k = _kernel(4)
    broken = (k + 0.3 * torch.roll(k, 5, dims=-1)).requires_grad_(True)
    loss = symmetric_loss(broken, k, [4])
    assert loss.item() > 1e-3
    loss.backward()
    assert broken.grad is not None and broken.grad.abs().sum() > 0


def test_symmetric_loss_is_batched_over_classes():
    ks = [_kernel(n, phase=0.3 * n) for n in (0, 2, 3, 4, 6)]
    batch = torch.cat(ks)
    noisy = batch + 0.05 * torch.randn_like(batch)
    sym = torch.tensor([0, 2, 3, 4, 6])
    together = symmetric_loss(noisy, batch, sym)
    # each sample weighs the same, however many angles its class has
    single = torch.stack([symmetric_loss(noisy[i:i + 1], batch[i:i + 1], sym[i:i + 1]) for i in range(5)]).double()
    assert torch.allclose(together.double(), single.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="symmetry orders must be in"):
        symmetric_loss(noisy[:1], batch[:1], [5])


def test_kl_and_alignment_losses():
    z = torch.zeros(3, 4, 8, 8)
    assert kl_loss(z, z).item() == 0.0
    assert kl_loss(z + 1, z).item() == pytest.approx(0.5 * 256)
    assert kl_loss(z + 1, z, "mean").item() == pytest.approx(0.5)  # the authors' average: 256 times weaker
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        kl_loss(z, z, "max")
    m, lv = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    assert alignment_loss(m, lv, m, lv).item() == 0.0
    assert alignment_loss(m + 1, lv, m, lv).item() == pytest.approx(1.0)


def test_authors_angle_set_is_their_code_with_both_signs():
    """The authors' code rotates by + and - each listed angle: the full group for 3- and 6-fold
    kernels, 90 and 270 but not 180 for 4-fold, 90/180/270 for isotropic kernels, 180 for 2-fold.
    Each is a rotation of the class's group, so a symmetric kernel scores 0 with both sets."""
    sym = torch.tensor([0, 2, 3, 4, 6])
    ours, ours_valid = angle_table(sym, "group")
    theirs, theirs_valid = angle_table(sym, "authors")
    degrees = lambda row, valid: sorted(round(float(torch.rad2deg(a))) for a, v in zip(row, valid) if v)
    assert [degrees(theirs[i], theirs_valid[i]) for i in range(5)] == [
        [90, 180, 270], [180], [120, 240], [90, 270], [60, 120, 180, 240, 300]]
    assert degrees(theirs[2], theirs_valid[2]) == degrees(ours[2], ours_valid[2])  # 3-fold: the whole group
    assert degrees(theirs[4], theirs_valid[4]) == degrees(ours[4], ours_valid[4])  # 6-fold too
    assert 180 in degrees(ours[3], ours_valid[3]) and 180 not in degrees(theirs[3], theirs_valid[3])
    for n in (2, 3, 4, 6):
        k = _kernel(n)
        assert symmetric_loss(k, k, [n], angle_set="authors").item() < 1e-4
    with pytest.raises(ValueError, match="angle_set must be one of"):
        angle_table(sym, "mine")


def test_symmetric_loss_rotates_about_the_kernels_origin_when_it_is_between_pixels():
    """The authors' kernels have their scatterer at (31.5, 31.5): rotated about that point a 4-fold
    kernel maps onto itself; about the kit's pixel 32 it does not."""
    from qpi_utils.simulate import kernel_spectrum, render_observations

    spec = kernel_spectrum(KernelParams(symmetry=4, orientation=0.2, frequency=0.1))[0]
    k = torch.from_numpy(render_observations(spec, np.array([[[31.5, 31.5]]]))[0]).float()[None, None]
    about_origin = symmetric_loss(k, k, [4], origin=31.5).item()
    assert about_origin < 1e-10  # 90-degree turns about a pixel corner are exact too
    assert symmetric_loss(k, k, [4], origin=32).item() > 1e3 * about_origin + 1e-4
