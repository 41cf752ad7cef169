"""The kernel explorer of notebook 01 (sliders for the kernel, scatterers and noise; four panels
redrawn in place). See ``docs/library.md``."""

from __future__ import annotations

import os
import sys

import numpy as np

from .plots import diverging_limits, pyplot
from .simulate import (IMAGE_SIZE, KERNEL_ORIGIN, SYMMETRY_NAMES, SYMMETRY_ORDERS, KernelParams, activation_map,
                       add_noise, kernel_spectrum, render_observations)

__all__ = ["DEFAULTS", "NOISE_LEVELS", "Explorer", "explorer_figure", "kernel_explorer", "STATIC_WIDGETS_VARIABLE"]

DEFAULTS = dict(symmetry=6, orientation=0.0, frequency=0.12, phase=0.0, decay=8.0, n_scatterers=12, seed=0,
                snr_db=None)
NOISE_LEVELS = (float("inf"), 30.0, 20.0, 10.0, 5.0, 0.0)  # SNR (dB) of the white noise on Y; inf (or None) = none
_HANN = np.outer(np.hanning(IMAGE_SIZE), np.hanning(IMAGE_SIZE))  # a window: the image's edges would streak the FFT
NYQUIST = 0.5  # cycles/px: the highest frequency a pixel grid holds, the FFT panels' edge


def _fourier(image: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of the mean-free, Hann-windowed image, zero frequency in the centre."""
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((image - image.mean()) * _HANN))))


def _state(symmetry, orientation, frequency, phase, decay, n_scatterers, seed, snr_db) -> dict:
    """Kernel, observation and both windowed |FFT|s for one slider state (angles in degrees,
    ``snr_db`` None for no noise)."""
    params = KernelParams(symmetry=int(symmetry), orientation=np.deg2rad(orientation), frequency=float(frequency),
                          phase=np.deg2rad(phase), decay=float(decay))
    spec = kernel_spectrum(params, supersample=3)[0]
    kernel = render_observations(spec, np.array([[[KERNEL_ORIGIN, KERNEL_ORIGIN]]], dtype=np.float64))[0]
    rng = np.random.default_rng(int(seed))
    pos = rng.uniform(-0.5, IMAGE_SIZE - 0.5, size=(1, int(n_scatterers), 2))
    quiet = snr_db is None or np.isinf(snr_db)
    obs = add_noise(rng, render_observations(spec, pos), None if quiet else float(snr_db), 0.0)[0]
    return {"kernel": kernel, "observation": obs, "kernel_fft": _fourier(kernel), "fft": _fourier(obs),
            "activation_map": activation_map(pos[0]), "positions": pos[0], "frequency": float(frequency)}


class Explorer:
    """Four panels (kernel A; observation Y with its defects; windowed |FFT(A)| and |FFT(Y)|, each
    with a circle at |q| = f, axes to the pixel Nyquist frequency), drawn once; :meth:`update`
    replaces their data (what a slider does)."""

    def __init__(self, fig=None, **values):
        plt = pyplot()
        self.fig = fig if fig is not None else plt.figure(figsize=(14, 3.7))
        self.fig.clf()
        self.axes = self.fig.subplots(1, 4)
        s = _state(**{**DEFAULTS, **values})
        lo, hi = diverging_limits(s["kernel"])
        self.kernel_im = self.axes[0].imshow(s["kernel"], cmap="RdBu_r", vmin=lo, vmax=hi, interpolation="nearest")
        self.obs_im = self.axes[1].imshow(s["observation"], cmap="RdBu_r", interpolation="nearest")
        self.dots = self.axes[1].scatter(s["positions"][:, 0], s["positions"][:, 1], s=10, c="k", marker="x",
                                         linewidths=0.8)
        self.axes[1].set_xlim(-0.5, IMAGE_SIZE - 0.5)
        self.axes[1].set_ylim(IMAGE_SIZE - 0.5, -0.5)
        f = np.fft.fftshift(np.fft.fftfreq(IMAGE_SIZE))
        step = f[1] - f[0]
        extent = (f[0] - step / 2, f[-1] + step / 2, f[0] - step / 2, f[-1] + step / 2)
        self.fft_ims, self.circles = [], []
        for ax, key in ((self.axes[2], "kernel_fft"), (self.axes[3], "fft")):
            self.fft_ims.append(ax.imshow(s[key], cmap="magma", origin="lower", interpolation="nearest", extent=extent))
            self.circles.append(ax.plot([], [], "c--", lw=0.8)[0])
            ax.set_xlim(-NYQUIST, NYQUIST)  # the data end at Nyquist; the circle must not widen the axes
            ax.set_ylim(-NYQUIST, NYQUIST)
            ax.set_xlabel("q_x / 2π (cycles/px)")
        self.axes[2].set_ylabel("q_y / 2π (cycles/px)")
        labels = ("A (arb. units)", "Y (arb. units)", "log(1 + |FFT(A)|)", "log(1 + |FFT(Y)|)")
        for im, ax, label in zip((self.kernel_im, self.obs_im, *self.fft_ims), self.axes, labels):
            self.fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label(label)
        for ax in self.axes[:2]:
            ax.set_xticks([])
            ax.set_yticks([])
        self.fig.tight_layout()
        self.update(**values)

    def update(self, **values) -> dict:
        """Redraw for new slider values (angles in degrees); returns the computed state."""
        v = {**DEFAULTS, **values}
        s = _state(**v)
        self.kernel_im.set_data(s["kernel"])
        self.kernel_im.set_clim(*diverging_limits(s["kernel"]))
        self.obs_im.set_data(s["observation"])
        self.obs_im.set_clim(*diverging_limits(s["observation"]))
        self.dots.set_offsets(s["positions"])
        theta = np.linspace(0, 2 * np.pi, 181)
        for im, circle, key in zip(self.fft_ims, self.circles, ("kernel_fft", "fft")):
            im.set_data(s[key])
            im.set_clim(s[key].min(), s[key].max())
            circle.set_data(s["frequency"] * np.cos(theta), s["frequency"] * np.sin(theta))
        noise = "no noise" if v["snr_db"] is None or np.isinf(v["snr_db"]) else f"SNR {v['snr_db']:g} dB"
        self.axes[0].set_title(f"kernel A: {SYMMETRY_NAMES[int(v['symmetry'])]}, period {1 / v['frequency']:.1f} px")
        self.axes[1].set_title(f"Y = M (*) A: {int(v['n_scatterers'])} defects, {noise}")
        self.axes[2].set_title("|FFT(A)|; circle: |q| = f")
        self.axes[3].set_title("|FFT(Y)| (windowed)")
        self.fig.explorer_data = s
        return s


def explorer_figure(fig=None, **values):
    """Draw the explorer at ``values`` (defaults :data:`DEFAULTS`; angles in degrees, frequency
    in cycles/px, decay in px). Pass ``fig`` to redraw into an existing figure. The figure's
    ``explorer_data`` holds the arrays drawn."""
    return Explorer(fig, **values).fig


STATIC_WIDGETS_VARIABLE = "QPI_STATIC_WIDGETS"  # set (to anything) by batch runs such as the chain


def kernel_explorer():
    """ipywidgets sliders bound to an :class:`Explorer` (needs a live Jupyter kernel). On Colab,
    enables its custom widget manager, without which ipywidgets 8 controls do not render. In a
    batch run (``$QPI_STATIC_WIDGETS`` set, as :mod:`qpi_lab.chain` does) it returns the
    explorer's first state as a matplotlib figure instead."""
    if os.environ.get(STATIC_WIDGETS_VARIABLE):
        plt = pyplot()
        fig = Explorer().fig
        plt.close(fig)  # displayed once, as the cell's value
        return fig
    import ipywidgets as w
    from IPython.display import display

    if "google.colab" in sys.modules:
        from google.colab import output

        output.enable_custom_widget_manager()
    style, lazy = {"description_width": "110px"}, {"continuous_update": False}
    sliders = dict(
        symmetry=w.Dropdown(options=[(SYMMETRY_NAMES[n], n) for n in SYMMETRY_ORDERS], value=DEFAULTS["symmetry"],
                            description="symmetry", style=style),
        orientation=w.FloatSlider(value=0.0, min=0.0, max=180.0, step=1.0, description="orientation (deg)",
                                  style=style, **lazy),
        frequency=w.FloatSlider(value=0.12, min=0.04, max=0.25, step=0.005, description="frequency (1/px)",
                                readout_format=".3f", style=style, **lazy),
        phase=w.FloatSlider(value=0.0, min=0.0, max=360.0, step=5.0, description="phase (deg)", style=style, **lazy),
        decay=w.FloatSlider(value=8.0, min=2.0, max=20.0, step=0.5, description="decay (px)", style=style, **lazy),
        n_scatterers=w.IntSlider(value=12, min=1, max=100, description="defects", style=style, **lazy),
        seed=w.IntSlider(value=0, min=0, max=20, description="positions seed", style=style, **lazy),
        snr_db=w.SelectionSlider(options=[("off" if np.isinf(v) else f"{v:g} dB", v) for v in NOISE_LEVELS],
                                 value=NOISE_LEVELS[0], description="noise (SNR)", style=style, **lazy),
    )
    plt = pyplot()
    explorer = Explorer()
    plt.close(explorer.fig)  # shown by the widget's output area, not a second time by the inline backend

    def redraw(**values):
        explorer.update(**values)
        display(explorer.fig)

    return w.interactive(redraw, **sliders)
