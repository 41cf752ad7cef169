"""The kernel explorer of notebook 01: sliders for the five kernel parameters and the number of
scatterers, showing the kernel, a multi-scatterer observation and the observation's Fourier
transform.

:class:`Explorer` draws the three panels once and then only replaces their data, so a redraw
costs the physics and one canvas draw (``benchmarks/bench_widgets.py`` measures it);
:func:`explorer_figure` draws one state and is what the tests call; :func:`kernel_explorer`
binds the sliders (``continuous_update=False``: the figure follows when a slider is released).
Where widgets are not live (papermill, a static page) the notebook shows
``explorer_figure()`` at the default values instead.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .plots import diverging_limits, pyplot
from .simulate import IMAGE_SIZE, SYMMETRY_NAMES, SYMMETRY_ORDERS, KernelParams, activation_map, kernel_spectrum, render_observations

__all__ = ["DEFAULTS", "Explorer", "explorer_figure", "kernel_explorer", "STATIC_WIDGETS_VARIABLE"]

DEFAULTS = dict(symmetry=6, orientation=0.0, frequency=0.12, phase=0.0, decay=8.0, n_scatterers=12, seed=0)
_HANN = np.outer(np.hanning(IMAGE_SIZE), np.hanning(IMAGE_SIZE))  # a window: the image's edges would streak the FFT


def _state(symmetry, orientation, frequency, phase, decay, n_scatterers, seed) -> dict:
    """Kernel, observation and windowed |FFT| for one slider state (angles in degrees)."""
    params = KernelParams(symmetry=int(symmetry), orientation=np.deg2rad(orientation), frequency=float(frequency),
                          phase=np.deg2rad(phase), decay=float(decay))
    spec = kernel_spectrum(params, supersample=3)[0]
    kernel = render_observations(spec, np.array([[[32.0, 32.0]]]))[0]
    pos = np.random.default_rng(int(seed)).uniform(-0.5, 63.5, size=(1, int(n_scatterers), 2))
    obs = render_observations(spec, pos)[0]
    fft = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((obs - obs.mean()) * _HANN))))
    return {"kernel": kernel, "observation": obs, "fft": fft, "activation_map": activation_map(pos[0]),
            "positions": pos[0], "frequency": float(frequency)}


class Explorer:
    """Three panels (kernel, observation with its defects, windowed |FFT(Y)| with a circle at
    |q| = f), drawn once; :meth:`update` replaces their data (what a slider does)."""

    def __init__(self, fig=None, **values):
        plt = pyplot()
        self.fig = fig if fig is not None else plt.figure(figsize=(12, 3.9))
        self.fig.clf()
        self.axes = self.fig.subplots(1, 3)
        s = _state(**{**DEFAULTS, **values})
        lo, hi = diverging_limits(s["kernel"])
        self.kernel_im = self.axes[0].imshow(s["kernel"], cmap="RdBu_r", vmin=lo, vmax=hi, interpolation="nearest")
        self.obs_im = self.axes[1].imshow(s["observation"], cmap="RdBu_r", interpolation="nearest")
        self.dots = self.axes[1].scatter(s["positions"][:, 0], s["positions"][:, 1], s=10, c="k", marker="x",
                                         linewidths=0.8)
        self.axes[1].set_xlim(-0.5, 63.5)
        self.axes[1].set_ylim(63.5, -0.5)
        f = np.fft.fftshift(np.fft.fftfreq(IMAGE_SIZE))
        step = f[1] - f[0]
        self.fft_im = self.axes[2].imshow(s["fft"], cmap="magma", origin="lower", interpolation="nearest",
                                          extent=(f[0] - step / 2, f[-1] + step / 2, f[0] - step / 2, f[-1] + step / 2))
        theta = np.linspace(0, 2 * np.pi, 181)
        self.circle, = self.axes[2].plot(np.cos(theta), np.sin(theta), "c--", lw=0.8)
        self.axes[2].set_xlabel("q_x / 2pi (cycles/px)")
        for im, ax in ((self.kernel_im, self.axes[0]), (self.obs_im, self.axes[1]), (self.fft_im, self.axes[2])):
            self.fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
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
        self.fft_im.set_data(s["fft"])
        self.fft_im.set_clim(s["fft"].min(), s["fft"].max())
        theta = np.linspace(0, 2 * np.pi, 181)
        self.circle.set_data(s["frequency"] * np.cos(theta), s["frequency"] * np.sin(theta))
        self.axes[0].set_title(f"kernel A: {SYMMETRY_NAMES[int(v['symmetry'])]}, period {1 / v['frequency']:.1f} px")
        self.axes[1].set_title(f"observation Y = M (*) A, {int(v['n_scatterers'])} defects")
        self.axes[2].set_title("|FFT(Y)| (windowed); circle: |q| = f")
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
    )
    plt = pyplot()
    explorer = Explorer()
    plt.close(explorer.fig)  # shown by the widget's output area, not a second time by the inline backend

    def redraw(**values):
        explorer.update(**values)
        display(explorer.fig)

    return w.interactive(redraw, **sliders)
