"""The kernel explorer of notebook 01: sliders for the five kernel parameters and the number of
scatterers, showing the kernel, a multi-scatterer observation and the observation's Fourier
transform, updated live.

:func:`explorer_figure` does the work and is what the tests call; :func:`kernel_explorer`
wraps it in ipywidgets. Where widgets are not live (papermill, nbval, a static page) the
notebook shows ``explorer_figure()`` at the default values instead.
"""

from __future__ import annotations

import numpy as np

from .plots import fourier_magnitude, pyplot
from .simulate import (SYMMETRY_NAMES, SYMMETRY_ORDERS, KernelParams, activation_map, kernel_spectrum,
                       render_observations)

__all__ = ["DEFAULTS", "explorer_figure", "kernel_explorer"]

DEFAULTS = dict(symmetry=6, orientation=0.0, frequency=0.12, phase=0.0, decay=8.0, n_scatterers=12, seed=0)


def explorer_figure(symmetry: int = 6, orientation: float = 0.0, frequency: float = 0.12, phase: float = 0.0,
                    decay: float = 8.0, n_scatterers: int = 12, seed: int = 0, fig=None):
    """Draw kernel, observation (with its defects) and |FFT| of the observation.

    Angles in degrees (orientation, phase), frequency in cycles/px, decay in px. Returns the
    figure; pass ``fig`` to redraw into an existing one (what the live sliders do).
    """
    plt = pyplot()
    params = KernelParams(symmetry=int(symmetry), orientation=np.deg2rad(orientation), frequency=float(frequency),
                          phase=np.deg2rad(phase), decay=float(decay))
    spec = kernel_spectrum(params, supersample=3)[0]
    kernel = render_observations(spec, np.array([[[32.0, 32.0]]]))[0]
    rng = np.random.default_rng(int(seed))
    pos = rng.uniform(-0.5, 63.5, size=(1, int(n_scatterers), 2))
    obs = render_observations(spec, pos)[0]
    if fig is None:
        fig = plt.figure(figsize=(11, 3.8))
    fig.clf()
    axes = fig.subplots(1, 3)
    lim = np.abs(kernel).max()
    axes[0].imshow(kernel, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[0].set_title(f"kernel A: {SYMMETRY_NAMES[int(symmetry)]}, period {1 / frequency:.1f} px")
    lim = np.abs(obs).max()
    axes[1].imshow(obs, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].scatter(pos[0, :, 0], pos[0, :, 1], s=10, c="k", marker="x", linewidths=0.8)
    axes[1].set_xlim(-0.5, 63.5)
    axes[1].set_ylim(63.5, -0.5)
    axes[1].set_title(f"observation Y = M (*) A, {int(n_scatterers)} defects")
    axes[2].imshow(fourier_magnitude(obs), cmap="magma", extent=(-0.5, 0.5, 0.5, -0.5))
    axes[2].set_title("|FFT(Y)|: ring at q = frequency")
    axes[2].set_xlabel("q_x (cycles/px)")
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.explorer_data = {"kernel": kernel, "observation": obs, "activation_map": activation_map(pos[0]),
                         "positions": pos[0]}
    return fig


def kernel_explorer():
    """ipywidgets sliders bound to :func:`explorer_figure` (needs a live Jupyter kernel)."""
    import ipywidgets as w

    style = {"description_width": "110px"}
    sliders = dict(
        symmetry=w.Dropdown(options=[(SYMMETRY_NAMES[n], n) for n in SYMMETRY_ORDERS], value=DEFAULTS["symmetry"],
                            description="symmetry", style=style),
        orientation=w.FloatSlider(value=0.0, min=0.0, max=180.0, step=1.0, description="orientation (deg)", style=style),
        frequency=w.FloatSlider(value=0.12, min=0.04, max=0.25, step=0.005, description="frequency (1/px)",
                                readout_format=".3f", style=style),
        phase=w.FloatSlider(value=0.0, min=0.0, max=360.0, step=5.0, description="phase (deg)", style=style),
        decay=w.FloatSlider(value=8.0, min=2.0, max=20.0, step=0.5, description="decay (px)", style=style),
        n_scatterers=w.IntSlider(value=12, min=1, max=100, description="defects", style=style),
        seed=w.IntSlider(value=0, min=0, max=20, description="positions seed", style=style),
    )
    plt = pyplot()

    def update(**values):
        explorer_figure(**values)
        plt.show()  # draw inside the widget's output area, once

    return w.interactive(update, **sliders)
