import numpy as np

from qpi_utils.simulate import KernelParams, kernel_image
from qpi_utils.widgets import DEFAULTS, explorer_figure, kernel_explorer


def test_explorer_update_draws_kernel_observation_and_fft():
    fig = explorer_figure(symmetry=4, orientation=30.0, frequency=0.1, phase=90.0, decay=6.0, n_scatterers=7, seed=3)
    assert len(fig.axes) == 3
    data = fig.explorer_data
    ref = kernel_image(KernelParams(symmetry=4, orientation=np.deg2rad(30.0), frequency=0.1, phase=np.deg2rad(90.0),
                                    decay=6.0), supersample=3)
    assert np.allclose(data["kernel"], ref, atol=1e-5)
    assert data["activation_map"].sum() == 7
    assert "7 defects" in fig.axes[1].get_title()
    # redrawing into the same figure (what the live sliders do) replaces the panels
    again = explorer_figure(symmetry=0, n_scatterers=2, fig=fig)
    assert again is fig and len(fig.axes) == 3 and "isotropic" in fig.axes[0].get_title()


def test_fft_ring_sits_at_the_chosen_frequency():
    fig = explorer_figure(symmetry=0, frequency=0.2, decay=15.0, n_scatterers=1)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(fig.explorer_data["kernel"])))
    f = np.fft.fftshift(np.fft.fftfreq(64))
    radius = np.hypot(*np.meshgrid(f, f))
    ring = [spec[(radius > r - 0.01) & (radius < r + 0.01)].mean() for r in np.arange(0.05, 0.45, 0.01)]
    assert abs(np.arange(0.05, 0.45, 0.01)[int(np.argmax(ring))] - 0.2) < 0.03


def test_sliders_exist_for_all_parameters():
    w = kernel_explorer()
    names = {c.description for c in w.children if hasattr(c, "description")}
    assert {"symmetry", "orientation (deg)", "frequency (1/px)", "phase (deg)", "decay (px)", "defects"} <= names
    assert set(DEFAULTS) == {"symmetry", "orientation", "frequency", "phase", "decay", "n_scatterers", "seed"}
