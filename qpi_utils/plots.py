"""Figures. Each function returns a matplotlib Figure; :func:`save_figure` writes it atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .simulate import SYMMETRY_NAMES, SYMMETRY_ORDERS

__all__ = ["save_figure", "fourier_magnitude", "plot_dataset_examples", "plot_history"]


def _plt():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` via a temporary file and a rename (never a half-written PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def fourier_magnitude(image: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of the mean-subtracted image, zero frequency at the centre."""
    image = np.asarray(image, dtype=np.float64)
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))))


def plot_dataset_examples(ds, observation: int = 0):
    """One kernel per symmetry class: kernel, an observation with its defects, |FFT| of the kernel."""
    plt = _plt()
    fig, axes = plt.subplots(3, 5, figsize=(13, 8))
    for col, order in enumerate(SYMMETRY_ORDERS):
        ks = np.flatnonzero(ds.symmetry == order)
        if not len(ks):
            continue
        k = int(ks[0])
        axes[0, col].imshow(ds.kernels[k], cmap="RdBu_r")
        axes[0, col].set_title(f"kernel {k}: {SYMMETRY_NAMES[order]}")
        axes[1, col].imshow(ds.observations[k, observation], cmap="RdBu_r")
        pos = np.asarray(ds.positions[k, observation])
        axes[1, col].scatter(pos[:, 0], pos[:, 1], s=6, c="k", marker="x", linewidths=0.6)
        axes[1, col].set_xlim(-0.5, 63.5)
        axes[1, col].set_ylim(63.5, -0.5)
        axes[1, col].set_title(f"observation, {int(ds.n_scatterers[k, observation])} defects")
        axes[2, col].imshow(fourier_magnitude(ds.kernels[k]), cmap="magma")
        axes[2, col].set_title("|FFT| of kernel")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_history(rows: list[dict], title: str = ""):
    """Per-epoch train and test loss (log scale) from a training log."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [r["epoch"] for r in rows]
    ax.plot(epochs, [float(r["train_loss"]) for r in rows], label="train", marker=".")
    ax.plot(epochs, [float(r["test_loss"]) for r in rows], label="test", marker=".")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
