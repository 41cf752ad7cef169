"""Robustness sweeps: every method against one realistic condition at a time, on fresh
observations of the OOD kernels (noise, number of defects, unlabelled defects outside the view,
errors in the labelled positions), and against noise on data that have all of a real map's other
corruptions too (the ``realistic`` sweep). Each row records the method's wall time, so the
chain's costliest notebook is timed per method.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from . import plots
from .checkpoints import realistic_simulation
from .config import PhysicsConfig, Profile
from .data import simulate_dataset
from .methods import TrainedModels, predict_dataset
from .metrics import errors, paired_difference
from .files import write_csv
from .simulate import PARAM_NAMES

__all__ = ["SWEEPS", "SWEEP_COLUMNS", "sweep_values", "sweep_points", "sweep_change", "ood_observations",
           "robustness_sweep", "robustness_sweeps", "write_sweeps", "plot_sweep"]

# "realistic": the SNR sweep on data with every other corruption of a real map as well (the
# realistic copy of training, :func:`qpi_utils.checkpoints.realistic_simulation`): unlabelled defects
# outside the view, position errors, scan-line offsets
SWEEPS = ("snr_db", "scatterers", "outside_margin", "position_error", "realistic")
REFERENCE = "two_step"  # every sweep row carries its method's paired difference to the paper's method
# minus_two_step*: the method's mean RMSE on [0, 1] minus two-step's on the same observations, with
# its 95 % paired bootstrap interval (kernels as units; empty for two-step itself)
SWEEP_COLUMNS = ("sweep", "value", "method", "n", "rmse", "rmse_pm1", "rmse_ci95", f"minus_{REFERENCE}",
                 f"minus_{REFERENCE}_low", f"minus_{REFERENCE}_high", "seconds")


def kernel_interval(values: np.ndarray, kernel_ids: np.ndarray) -> float:
    """Half-width of the 95 % Student-t interval of the mean of ``values`` when the observations
    are grouped by kernel: the kernel means are the independent units (observations of one
    kernel are correlated, so an interval over observations would be too narrow)."""
    from scipy import stats

    means = np.array([values[kernel_ids == k].mean() for k in np.unique(kernel_ids)])
    if len(means) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(means) - 1) * means.std(ddof=1) / np.sqrt(len(means)))


def sweep_values(physics: PhysicsConfig, sweep: str) -> tuple:
    """The values a sweep visits, from the profile's physics section."""
    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; choose one of {', '.join(SWEEPS)}")
    return {"snr_db": physics.sweep_snr_db, "scatterers": physics.sweep_scatterers,
            "outside_margin": physics.sweep_outside_margin, "position_error": physics.sweep_position_error,
            "realistic": physics.sweep_snr_db}[sweep]


def sweep_change(profile: Profile, sweep: str, value: float) -> dict:
    """The SimulationConfig fields that point ``value`` of ``sweep`` changes. ``realistic``: the
    SNR ``value`` with the step-2 training's realistic corruptions (``profile.alignment``'s
    ``realistic_line_noise``, ``realistic_outside_margin``, ``realistic_position_error``), as in
    the realistic test copy of the ablations."""
    sweep_values(profile.physics, sweep)  # names an unknown sweep
    if sweep == "realistic":
        real = realistic_simulation(profile.simulation, profile.alignment)
        return {"snr_db": float(value), "line_noise": real.line_noise, "outside_margin": real.outside_margin,
                "position_error": real.position_error}
    return {"snr_db": {"snr_db": float(value)},
            "scatterers": {"min_scatterers": int(value), "max_scatterers": int(value)},
            "outside_margin": {"outside_margin": float(value)},
            "position_error": {"position_error": float(value)}}[sweep]


def sweep_points(profile: Profile) -> int:
    """How many (sweep, value) points the sweeps of :data:`SWEEPS` visit."""
    return sum(len(sweep_values(profile.physics, sweep)) for sweep in SWEEPS)


def ood_observations(models: TrainedModels, per_kernel: int, seed: int, kernels=None, **change):
    """Fresh observations of the run's OOD kernels (or of ``kernels``, indices into the run's
    dataset, e.g. ``models.splits.val_kernels``): the profile's simulation with ``change``
    (SimulationConfig fields, e.g. ``snr_db=10.0``), ``per_kernel`` observations per kernel,
    simulation seed ``seed``. Returns (dataset, (N, 2) pairs, (N, 64, 64) true kernels)."""
    ood = models.splits.ood_kernels if kernels is None else np.asarray(kernels)
    params = {name: np.asarray(models.ds.arrays[f"param_{name}"])[ood] for name in PARAM_NAMES}
    cfg = dataclasses.replace(models.profile.simulation, n_kernels=len(ood), n_observations=per_kernel, seed=seed,
                              extra_train_kernels=0, **change)
    test = simulate_dataset(cfg, progress=False, params=params)
    pairs = np.array([(k, o) for k in range(test.n_kernels) for o in range(test.n_observations)])
    return test, pairs, np.asarray(test.kernels)[pairs[:, 0]]


def robustness_sweep(models: TrainedModels, sweep: str, progress: bool = False, reuse: dict | None = None) -> list[dict]:
    """RMSE of every method against one condition, on fresh observations of the OOD kernels.

    ``sweep``: ``snr_db`` (white noise), ``scatterers`` (fixed number of labelled defects),
    ``outside_margin`` (unlabelled defects in a band of that width around the field of view, at
    the same density), ``position_error`` (std in px of the positions M is built from),
    ``realistic`` (the SNR values again, on data with hidden defects, position errors and
    scan-line offsets as well: :func:`sweep_change`). Values and sizes come from
    ``profile.physics``; everything else is the profile's simulation. Returns rows {sweep, value,
    method, n, rmse, rmse_pm1, rmse_ci95, seconds} (``rmse_ci95``: 95 % interval half-width of the
    mean RMSE on [0, 1], kernels as the units: :func:`kernel_interval`; ``seconds``: the method's
    wall time on the point's observations).

    ``reuse``: a dict shared between calls (:func:`robustness_sweeps`). A point whose simulation
    (configuration and seed) is already in it takes the rows scored there instead of scoring the
    same observations again: the simulator is seeded, so equal configurations give bit-identical
    observations, and every method is deterministic on them. (The quick profile's ``outside_margin``
    0 and ``position_error`` 0 are both the clean data of seed 10000.) Their ``seconds`` are the
    time the scoring took where it ran.
    """
    ph = models.profile.physics
    values = sweep_values(ph, sweep)
    per_kernel = max(1, -(-ph.sweep_observations // len(models.splits.ood_kernels)))
    rows = []
    for i, value in enumerate(values):
        # every sweep draws with seeds 10000, 10001, ...: the realistic sweep has the SNR sweep's
        # kernels and labelled defects (drawn before any corruption), with the other corruptions added
        change = sweep_change(models.profile, sweep, value)
        seed = 10_000 + i
        key = (seed, dataclasses.replace(models.profile.simulation, **change))
        if reuse is not None and key in reuse:
            rows += [{**row, "sweep": sweep, "value": float(value)} for row in reuse[key]]
            continue
        test, pairs, target = ood_observations(models, per_kernel, seed, **change)
        point, per_sample = [], {}
        for method, (fn, _) in models.methods().items():
            start = time.perf_counter()
            pred = predict_dataset(fn, test, pairs, device=models.device, progress=progress,
                                   desc=f"{sweep}={value} {method}")
            seconds = time.perf_counter() - start
            e = errors(pred, target)
            per_sample[method] = [{"kernel": int(k), "observation": int(o), "rmse": float(v)}
                                  for (k, o), v in zip(pairs, e["rmse"])]
            point.append({"sweep": sweep, "value": float(value), "method": method, "n": len(pairs),
                          "rmse": float(e["rmse"].mean()), "rmse_pm1": float(e["rmse_pm1"].mean()),
                          "rmse_ci95": kernel_interval(e["rmse"], pairs[:, 0]), "seconds": round(seconds, 2)})
        for row in point:  # every method against the paper's method on the same observations, paired per kernel
            if REFERENCE in per_sample and row["method"] != REFERENCE:
                d = paired_difference(per_sample[row["method"]], per_sample[REFERENCE], n_boot=2000, seed=seed)
                row.update({f"minus_{REFERENCE}": d["difference"], f"minus_{REFERENCE}_low": d["ci_low"],
                            f"minus_{REFERENCE}_high": d["ci_high"]})
        if reuse is not None:
            reuse[key] = point
        rows += point
    return rows


def robustness_sweeps(models: TrainedModels, sweeps: tuple[str, ...] = SWEEPS, progress: bool = False) -> list[dict]:
    """The rows of :func:`robustness_sweep` for every sweep of ``sweeps``, in order, scoring each
    distinct simulated point once (points that simulate the same data share their rows)."""
    reuse: dict = {}
    return [row for sweep in sweeps for row in robustness_sweep(models, sweep, progress=progress, reuse=reuse)]


def write_sweeps(rows: list[dict], path: str | Path) -> Path:
    """The sweep rows as CSV (columns :data:`SWEEP_COLUMNS`), written atomically."""
    return write_csv(path, rows, SWEEP_COLUMNS)


SWEEP_AXES = {"realistic": "SNR (dB), with hidden defects, position errors, scan-line offsets"}


def plot_sweep(rows: list[dict], sweep: str):
    """:func:`qpi_utils.plots.plot_sweep` with this module's axis label, the SNR axes running from
    clean to noisy."""
    fig = plots.plot_sweep(rows, sweep, xlabel=SWEEP_AXES.get(sweep))
    if sweep == "realistic":  # plots.plot_sweep turns the plain SNR sweep's axis itself
        fig.axes[0].invert_xaxis()
    return fig
