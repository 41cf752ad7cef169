"""Figures. Each function returns a matplotlib Figure; :func:`save_figure` writes it atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .files import atomic_path
from .simulate import SYMMETRY_NAMES, SYMMETRY_ORDERS

__all__ = ["pyplot", "save_figure", "plot_learning_curves", "zero_level", "diverging_limits", "show_image", "fourier_magnitude", "plot_dataset_examples", "plot_history", "plot_predictions",
           "plot_tsne", "plot_kernel_reconstructions", "plot_error_vs_defects", "plot_sweep", "plot_real_map",
           "plot_fft", "plot_extracted_kernels"]


def pyplot():
    """matplotlib.pyplot, on the Agg backend when there is no display (scripts, CI)."""
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _without_ticks(fig, axes):
    """Images and embeddings need no ticks; lay the grid out and return the figure."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, close: bool = False) -> Path:
    """Write ``fig`` to ``path`` via a temporary file and a rename (never a half-written PNG);
    ``close`` frees it afterwards (scripts; notebooks keep it to show it)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    if close:
        pyplot().close(fig)
    return Path(path)


def zero_level(image: np.ndarray, border: int = 4) -> float:
    """The kernel's zero level: the mean of its ``border``-pixel frame (kernels decay to zero
    there; min-max scaling moved that zero away from 0)."""
    image = np.asarray(image, np.float64)
    frame = np.ones(image.shape, bool)
    frame[border:-border, border:-border] = False
    return float(image[frame].mean())


def diverging_limits(image: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax) of a red-blue map centred on the image's zero level (white = zero)."""
    zero = zero_level(image)
    half = float(np.nanmax(np.abs(np.asarray(image, np.float64) - zero))) or 1.0
    return zero - half, zero + half


KERNEL_SCALE = "kernel (min-max, 0-1)"  # short: it sits beside panels of 3-column grids
FOURIER_SCALE = "log(1 + |FFT|)"


def add_colorbar(im, ax, label: str):
    """A slim colorbar beside ``ax`` that says what its numbers are."""
    return ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label=label)


def show_image(ax, image: np.ndarray, limits: tuple[float, float] | None = None, cmap: str = "RdBu_r",
               colorbar: bool = True, label: str = KERNEL_SCALE, **kwargs):
    """``imshow`` on a red-blue map centred on ``image``'s zero level (or on ``limits``, to share
    a scale across panels), with a slim colorbar labelled ``label``."""
    vmin, vmax = limits or diverging_limits(image)
    im = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, **kwargs)
    if colorbar:
        add_colorbar(im, ax, label)
    return im


def _legend_outside(ax, **kwargs):
    """A legend beside the axes, so it hides no curve."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def fourier_magnitude(image: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of the mean-subtracted image, zero frequency at the centre."""
    image = np.asarray(image, dtype=np.float64)
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))))


def plot_dataset_examples(ds, observation: int = 0):
    """One kernel per symmetry class: kernel, an observation with its defects, |FFT| of the kernel."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 5, figsize=(13, 8))
    for col, order in enumerate(SYMMETRY_ORDERS):
        ks = np.flatnonzero(ds.symmetry == order)
        if not len(ks):
            continue
        k = int(ks[0])
        show_image(axes[0, col], ds.kernels[k])
        axes[0, col].set_title(f"kernel {k}: {SYMMETRY_NAMES[order]}")
        show_image(axes[1, col], ds.observations[k, observation], (0.0, 1.0), cmap="gray",
                   label="Y, min-max scaled to [0, 1]")
        pos = np.asarray(ds.positions[k, observation])
        axes[1, col].scatter(pos[:, 0], pos[:, 1], s=6, c="k", marker="x", linewidths=0.6)
        axes[1, col].set_xlim(-0.5, 63.5)
        axes[1, col].set_ylim(63.5, -0.5)
        axes[1, col].set_title(f"observation, {int(ds.n_scatterers[k, observation])} defects")
        mag = axes[2, col].imshow(fourier_magnitude(ds.kernels[k]), cmap="magma")
        add_colorbar(mag, axes[2, col], FOURIER_SCALE)
        axes[2, col].set_title("log(1 + |FFT|) of kernel")
    return _without_ticks(fig, axes)


def plot_history(rows: list[dict], title: str = "", best_epoch: int | None = None):
    """Per-epoch training loss (left, log scale) and validation kernel RMSE on [0, 1] (right)
    from a training log; the kept (best-validation) epoch is marked."""
    plt = pyplot()
    fig, (ax, av) = plt.subplots(1, 2, figsize=(8, 3.2))
    epochs = [int(r["epoch"]) for r in rows]
    ax.plot(epochs, [float(r["train_loss"]) for r in rows], marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    av.plot(epochs, [float(r["val_rmse"]) for r in rows], marker=".", color="C1")
    if best_epoch:
        av.axvline(best_epoch, color="k", lw=0.8, ls="--", label=f"kept: epoch {best_epoch}")
        av.legend(loc="upper right")
    av.set_xlabel("epoch")
    av.set_ylabel("validation RMSE [0, 1]")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_validation_vs_compute(histories: dict, offsets: dict | None = None):
    """Validation RMSE on [0, 1] against cumulative training seconds, one line per method.

    histories: method -> training-log rows (``epoch``, ``val_rmse``, ``seconds``); offsets:
    method -> seconds spent before its first epoch (e.g. step 1, which both methods start
    from). The kept epoch of each (lowest validation RMSE) is circled."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (method, rows) in enumerate(histories.items()):
        t = (offsets or {}).get(method, 0.0) + np.cumsum([float(r["seconds"]) for r in rows])
        v = np.array([float(r["val_rmse"]) for r in rows])
        ax.plot(t / 60, v, marker=".", color=f"C{i}", label=method)
        best = int(np.argmin(v))
        ax.plot(t[best] / 60, v[best], "o", mfc="none", ms=10, color=f"C{i}")
    ax.set_xlabel("training time (min, this machine)")
    ax.set_ylabel("validation RMSE [0, 1]")
    _legend_outside(ax, fontsize=8)
    fig.tight_layout()
    return fig


def plot_predictions(observations: np.ndarray, truth: np.ndarray, predictions: dict, titles: list[str] | None = None):
    """Rows: examples. Columns: observation Y (defects as dots), true kernel, each method.

    observations: (N, 2, 64, 64) (Y, M); truth: (N, 64, 64); predictions: name -> (N, 64, 64).
    The RMSE of each prediction on [0, 1] is written in its panel.
    """
    plt = pyplot()
    n = len(truth)
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(2.3 * cols, 2.3 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(observations[i, 0], cmap="gray")
        ys, xs = np.nonzero(observations[i, 1])
        axes[i, 0].scatter(xs, ys, s=3, c="r")
        axes[i, 0].set_xlim(-0.5, 63.5)
        axes[i, 0].set_ylim(63.5, -0.5)
        limits = diverging_limits(truth[i])  # every estimate on the true kernel's scale
        show_image(axes[i, 1], truth[i], limits)
        for j, (name, pred) in enumerate(predictions.items()):
            show_image(axes[i, 2 + j], pred[i], limits)
            rmse = float(np.sqrt(np.mean((np.asarray(pred[i], np.float64) - truth[i]) ** 2)))
            axes[i, 2 + j].text(2, 60, f"RMSE {rmse:.3f}", fontsize=8, color="k",
                                bbox=dict(facecolor="white", alpha=0.7, lw=0))
            if i == 0:
                axes[i, 2 + j].set_title(name)
        if i == 0:
            axes[i, 0].set_title("observation Y, M")
            axes[i, 1].set_title("true kernel")
        if titles:
            axes[i, 0].set_ylabel(titles[i], fontsize=8)
    return _without_ticks(fig, axes)


def plot_tsne(embedding: np.ndarray, symmetry: np.ndarray, frequency: np.ndarray, title: str,
              marker_split: np.ndarray | None = None):
    """Two panels of the same 2-D embedding: coloured by symmetry class (one colour per class)
    and by the kernel's ripple frequency (colorbar). marker_split: optional boolean (N,), True
    for OOD points (drawn as crosses)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    ood = np.zeros(len(embedding), bool) if marker_split is None else np.asarray(marker_split, bool)
    colours = plt.get_cmap("tab10")
    for c, order in enumerate(SYMMETRY_ORDERS):
        for flag, marker in ((False, "o"), (True, "x")):
            sel = (symmetry == order) & (ood == flag)
            if sel.any():
                axes[0].scatter(embedding[sel, 0], embedding[sel, 1], s=14, marker=marker, color=colours(c),
                                label=f"{SYMMETRY_NAMES[order]}{' (OOD)' if flag else ''}")
    _legend_outside(axes[0], fontsize=7, markerscale=1.5)
    axes[0].set_title(f"{title}: by symmetry class")
    points = axes[1].scatter(embedding[:, 0], embedding[:, 1], c=frequency, cmap="viridis", s=14)
    fig.colorbar(points, ax=axes[1], fraction=0.046, pad=0.03, label="frequency (cycles/px)")
    axes[1].set_title(f"{title}: by ripple frequency")
    return _without_ticks(fig, axes)


def plot_kernel_reconstructions(kernels: np.ndarray, reconstructions: np.ndarray, labels: list[str]):
    """Top row the kernels, bottom row the VAE's reconstructions."""
    plt = pyplot()
    n = len(kernels)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for i in range(n):
        limits = diverging_limits(kernels[i])
        show_image(axes[0, i], kernels[i], limits)
        axes[0, i].set_title(labels[i], fontsize=8)
        show_image(axes[1, i], reconstructions[i], limits)
        rmse = float(np.sqrt(np.mean((reconstructions[i] - kernels[i]) ** 2)))
        axes[1, i].set_title(f"VAE, RMSE {rmse:.3f}", fontsize=8)
    return _without_ticks(fig, axes)


def plot_error_vs_defects(per_sample_csv, bins=(1, 10, 25, 50, 75, 101)):
    """Mean RMSE per method against the number of labelled defects, ID and OOD panels."""
    import csv

    plt = pyplot()
    with open(per_sample_csv) as fh:
        rows = list(csv.DictReader(fh))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    centres = [(a + b - 1) / 2 for a, b in zip(bins[:-1], bins[1:])]
    for ax, setting in zip(axes, ("ID", "OOD")):
        for method in dict.fromkeys(r["method"] for r in rows):
            sel = [r for r in rows if r["setting"] == setting and r["method"] == method]
            n = np.array([int(r["n_scatterers"]) for r in sel])
            e = np.array([float(r["rmse"]) for r in sel])
            means = [e[(n >= a) & (n < b)].mean() if ((n >= a) & (n < b)).any() else np.nan
                     for a, b in zip(bins[:-1], bins[1:])]
            ax.plot(centres, means, marker="o", label=method)
        ax.set_title(setting)
        ax.set_xlabel("defects in the image")
    axes[0].set_ylabel("RMSE [0,1]")
    _legend_outside(axes[1], fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(rows: list[dict], sweep: str, xlabel: str | None = None):
    """RMSE against one sweep's values, one line per method, with its 95 % interval as error bars
    (rows from :func:`qpi_utils.sweeps.robustness_sweep`)."""
    plt = pyplot()
    sel = [r for r in rows if r["sweep"] == sweep]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method in dict.fromkeys(r["method"] for r in sel):
        pts = sorted((float(r["value"]), float(r["rmse"]), float(r.get("rmse_ci95") or 0.0))
                     for r in sel if r["method"] == method)
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                    label=method)
    labels = {"snr_db": "SNR (dB)", "scatterers": "labelled defects per image",
              "outside_margin": "band of unlabelled outside defects (px)",
              "position_error": "error of labelled positions (px, std)"}
    ax.set_xlabel(xlabel or labels.get(sweep, sweep))
    ax.set_ylabel("RMSE [0,1], OOD kernels (95 % interval)")
    if sweep == "snr_db":
        ax.invert_xaxis()  # harder to the right
    _legend_outside(ax, fontsize=7)
    fig.tight_layout()
    return fig


def plot_real_map(image: np.ndarray, positions: np.ndarray | None, title: str, pixel_nm: float,
                  mask: np.ndarray | None = None, ax=None):
    """A real map (row 0 at the bottom) with detected defects and a scale in nm."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    shown = np.where(mask, np.nan, image) if mask is not None else image
    lo, hi = np.nanpercentile(shown, [1, 99])
    h, w = image.shape
    ax.imshow(shown, origin="lower", cmap="gray", vmin=lo, vmax=hi, extent=(0, w * pixel_nm, 0, h * pixel_nm))
    if positions is not None and len(positions):
        ax.scatter(positions[:, 0] * pixel_nm, positions[:, 1] * pixel_nm, s=14, facecolors="none",
                   edgecolors="r", linewidths=0.8)
    ax.set_xlabel("x (nm)")
    ax.set_title(title)
    return ax


def plot_fft(image: np.ndarray, pixel_nm: float, title: str, ax=None, mask: np.ndarray | None = None):
    """|FFT| of a real map with axes in nm^-1 (q / 2 pi)."""
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    img = np.where(mask, 0.0, image) if mask is not None else image
    mag = fourier_magnitude(img)
    fmax = 0.5 / pixel_nm
    ax.imshow(mag, cmap="magma", vmax=np.percentile(mag, 99.7), extent=(-fmax, fmax, -fmax, fmax), origin="lower")
    ax.set_xlabel("q_x / 2pi (1/nm)")
    ax.set_title(title)
    return ax


def plot_extracted_kernels(kernels: dict, scores: dict | None = None, pixel_nm: float | None = None):
    """Top row: the kernel each method extracted; bottom row: its |FFT| (the scattering vectors)."""
    plt = pyplot()
    n = len(kernels)
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6), squeeze=False)
    for i, (name, k) in enumerate(kernels.items()):
        show_image(axes[0, i], k, origin="lower", label="kernel (arb. units)")
        title = name if scores is None else f"{name}\nexplains {100 * scores[name]:.0f} % of Y"
        axes[0, i].set_title(title, fontsize=9)
        mag = axes[1, i].imshow(fourier_magnitude(k), cmap="magma", origin="lower")
        add_colorbar(mag, axes[1, i], FOURIER_SCALE)
        axes[1, i].set_title("log(1 + |FFT|)", fontsize=9)
    if pixel_nm:
        fig.suptitle(f"64 x 64 windows, {64 * pixel_nm:.1f} nm wide", y=1.0)
    return _without_ticks(fig, axes)


def plot_learning_curves(rows: list[dict], methods=("two_step", "one_step_paper")):
    """Test RMSE [0, 1] against the training set's size (rows of ``learning_curves.csv``, made by
    ``qpi learning-curves``): ID and OOD down the rows, fewer kernels and fewer observations per
    kernel across; each point the mean over seeds with its 95 % interval, log-scaled sizes."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharey="row")
    for i, setting in enumerate(("ID", "OOD")):
        for j, (axis, size) in enumerate((("kernels", "train_kernels"), ("observations", "train_observations"))):
            ax = axes[i, j]
            for method in methods:
                pts = [r for r in rows if r["setting"] == setting and r["axis"] == axis and r["method"] == method]
                ax.errorbar([int(r[size]) for r in pts], [float(r["rmse_mean"]) for r in pts],
                            yerr=[float(r["rmse_ci95"]) for r in pts], marker="o", capsize=3, label=method)
            sizes = sorted({int(r[size]) for r in rows if r["axis"] == axis})
            ax.set_xscale("log")
            ax.set_xticks(sizes, [str(n) for n in sizes])  # the sizes trained, not log ticks such as 2x10^1
            ax.minorticks_off()
            ax.set(xlabel=f"training {axis}", ylabel=f"{setting} RMSE [0, 1]", title=f"{setting}, fewer {axis}")
    axes[0, 0].legend()
    fig.tight_layout()
    return fig
