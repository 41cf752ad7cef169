import numpy as np

from qpi_utils.simulate import KernelParams, kernel_image
from qpi_utils.plots import zero_level
from qpi_utils.widgets import DEFAULTS, Explorer, explorer_figure, kernel_explorer


def test_explorer_update_draws_kernel_observation_and_fft():
    fig = explorer_figure(symmetry=4, orientation=30.0, frequency=0.1, phase=90.0, decay=6.0, n_scatterers=7, seed=3)
    assert len(fig.axes) == 8  # four panels and their colorbars
    data = fig.explorer_data
    ref = kernel_image(KernelParams(symmetry=4, orientation=np.deg2rad(30.0), frequency=0.1, phase=np.deg2rad(90.0),
                                    decay=6.0), supersample=3)
    assert np.allclose(data["kernel"], ref, atol=1e-5)
    assert data["activation_map"].sum() == 7
    assert "7 defects" in fig.axes[1].get_title()
    # redrawing into the same figure (what the live sliders do) replaces the panels
    again = explorer_figure(symmetry=0, n_scatterers=2, fig=fig)
    assert again is fig and len(fig.axes) == 8 and "isotropic" in fig.axes[0].get_title()  # 4 panels + colorbars


def test_an_update_changes_only_the_data():
    explorer = Explorer(symmetry=6)
    artists = (explorer.kernel_im, explorer.obs_im, *explorer.fft_ims)
    state = explorer.update(symmetry=2, frequency=0.2, n_scatterers=5)
    assert (explorer.kernel_im, explorer.obs_im, *explorer.fft_ims) == artists
    assert np.array_equal(explorer.kernel_im.get_array(), state["kernel"])
    assert "2-fold" in explorer.axes[0].get_title() and len(explorer.dots.get_offsets()) == 5
    for circle in explorer.circles:
        assert np.allclose(np.hypot(*circle.get_data()), 0.2)  # the circles mark |q| = f
    lo, hi = explorer.kernel_im.get_clim()
    assert abs((lo + hi) / 2 - zero_level(state["kernel"])) < 1e-9  # white is the kernel's zero


def test_fourier_panels_end_at_nyquist_and_every_colorbar_says_what_it_shows():
    """The |FFT| panels span exactly the frequencies a 64-px image holds (+-0.5 cycles/px; the
    circle once widened them to +-1.1, three quarters empty); each colorbar has a label."""
    explorer = Explorer(frequency=0.06)
    for ax in explorer.axes[2:]:
        assert ax.get_xlim() == (-0.5, 0.5) and ax.get_ylim() == (-0.5, 0.5)
    bars = [ax for ax in explorer.fig.axes if ax not in explorer.axes]
    assert len(bars) == 4 and all(bar.get_ylabel() for bar in bars)
    assert np.array_equal(explorer.fft_ims[0].get_array(), explorer.fig.explorer_data["kernel_fft"])


def test_the_noise_slider_adds_noise_at_its_snr():
    """snr_db: white noise on Y at that SNR (std(signal) / std(noise) = 10^(SNR/20)); off: none."""
    clean = Explorer(n_scatterers=20).fig.explorer_data["observation"]
    for snr in (20.0, 0.0):
        noisy = Explorer(n_scatterers=20, snr_db=snr).fig.explorer_data["observation"]
        ratio = clean.std() / (noisy - clean).std()
        assert abs(20 * np.log10(ratio) - snr) < 0.5, (snr, ratio)
    assert "SNR 0 dB" in Explorer(snr_db=0.0).axes[1].get_title()


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
    assert all(c.continuous_update is False for c in w.children if hasattr(c, "continuous_update"))
    assert {"symmetry", "orientation (deg)", "frequency (1/px)", "phase (deg)", "decay (px)", "defects",
            "noise (SNR)"} <= names
    assert set(DEFAULTS) == {"symmetry", "orientation", "frequency", "phase", "decay", "n_scatterers", "seed", "snr_db"}


def test_batch_runs_get_a_static_explorer(monkeypatch):
    """The chain sets $QPI_STATIC_WIDGETS: the explorer cell then yields a plain figure of its
    first state (nothing to hang on without a frontend), live sessions get the sliders."""
    import matplotlib.figure

    from qpi_lab.chain import BATCH_ENVIRONMENT
    from qpi_utils.widgets import STATIC_WIDGETS_VARIABLE, kernel_explorer

    assert BATCH_ENVIRONMENT[STATIC_WIDGETS_VARIABLE]
    monkeypatch.setenv(STATIC_WIDGETS_VARIABLE, "1")
    fig = kernel_explorer()
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 2
    monkeypatch.delenv(STATIC_WIDGETS_VARIABLE)
    assert type(kernel_explorer()).__name__ == "interactive"
