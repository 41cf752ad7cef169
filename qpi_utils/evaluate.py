"""Scoring every method of :mod:`qpi_utils.methods` on the ID and OOD test sets, and writing the
tables under the run's ``results/`` (the ``qpi`` command adds provenance: :mod:`qpi_lab.evaluate`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .analysis import two_step_diagnostics
from .data import QPIDataset, stack_pairs
from .files import claim_results, write_csv, write_text
from .methods import METHODS, NeedsPositions, TrainedModels, predict_dataset
from .metrics import errors
from .paper import TABLE1_RMSE
from .simulate import SYMMETRY_NAMES
from .train import SELECTION_RULE, augment_noise

__all__ = ["TABLE_COLUMNS", "Scores", "score", "write_scores", "noisy", "write_table", "markdown_table",
           "example_predictions"]

TABLE_COLUMNS = ("setting", "method", "n", "mae", "mse", "rmse", "mae_pm1", "mse_pm1", "rmse_pm1", "rmse_affine",
                 "pretrained", "seconds_per_image")


def write_table(rows: list[dict], path: str | Path) -> Path:
    """CSV with :data:`TABLE_COLUMNS`, floats to 6 significant digits, written atomically."""
    return write_csv(path, rows, TABLE_COLUMNS)


def markdown_table(rows: list[dict], with_paper: bool = True) -> str:
    """The table as markdown, with the paper's Table 1 RMSE (v1, on [-1, 1]) beside ours where it has one."""
    head = "| setting | method | n | MAE [0,1] | MSE [0,1] | RMSE [0,1] | RMSE [-1,1] | affine-inv. RMSE [0,1] | s / image |"
    if with_paper:
        head += " paper RMSE [-1,1] (v1 Table 1) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r['setting']} | {r['method']} | {r['n']} | {r['mae']:.4f} | {r['mse']:.5f} | "
                f"{r['rmse']:.4f} | {r['rmse_pm1']:.4f} | {r.get('rmse_affine', float('nan')):.4f} | "
                f"{r.get('seconds_per_image', float('nan')):.2g} |")
        if with_paper:
            paper = TABLE1_RMSE.get((r["setting"], r["method"]))
            line += f" {paper:.4f} |" if paper is not None else " - |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def noisy(predict, snr_db: float, seed: int = 0):
    """``predict`` run on observations with white noise at ``snr_db`` added to Y (seeded per call
    order, :func:`qpi_utils.train.augment_noise`): the noisy test sets of the augmentation ablation."""
    generator = torch.Generator().manual_seed(seed)

    def run(x, *positions):
        state = torch.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        try:
            return predict(augment_noise(x, (snr_db, snr_db)), *positions)
        finally:
            torch.set_rng_state(state)

    return NeedsPositions(run) if isinstance(predict, NeedsPositions) else run


@dataclass
class Scores:
    """What :func:`score` measured: ``rows`` (one per setting and method, :data:`TABLE_COLUMNS`),
    ``per_sample`` (one per scored observation) and ``record`` (what was run and chosen on
    validation: lambdas, hybrid settings, the selection rule, timings)."""

    rows: list[dict]
    per_sample: list[dict]
    record: dict


def score(models: TrainedModels, progress: bool = True, noise_snr_db: float | None = None,
          test_data: QPIDataset | None = None) -> Scores:
    """Score every method ``models`` was loaded for on the ID and OOD test sets. With
    ``noise_snr_db`` every test observation gets white noise at that SNR first. ``test_data``: a
    dataset with the run's kernels whose observations (Y, M, positions) replace the run's at the
    same test pairs, e.g. its realistic copy (:func:`qpi_utils.checkpoints.load_realistic_data`)."""
    m, profile = models, models.profile
    ds, splits = m.ds, m.splits
    if test_data is not None and not np.array_equal(np.asarray(test_data.kernels), np.asarray(ds.kernels)):
        raise ValueError("test_data must hold the run's kernels (a copy of its dataset re-rendered, "
                         "checkpoints.load_realistic_data), got a dataset with other kernels")
    rows, per_sample, timings = [], [], {}
    n_subset = profile.physics.hybrid_test_observations
    for setting, all_pairs in (("ID", splits.id_test), ("OOD", splits.ood_test)):
        for method, (fn, pretrained) in m.methods().items():
            pairs = all_pairs
            if METHODS[method].subset and n_subset is not None and n_subset < len(all_pairs):
                pairs = all_pairs[np.sort(np.random.default_rng(0).permutation(len(all_pairs))[:n_subset])]
            target = np.asarray(ds.kernels)[pairs[:, 0]]
            if noise_snr_db is not None:
                fn = noisy(fn, noise_snr_db)
            t0 = time.perf_counter()
            pred = predict_dataset(fn, ds if test_data is None else test_data, pairs, device=m.device,
                                   progress=progress, desc=f"{setting} {method}")
            seconds = time.perf_counter() - t0
            timings[f"{setting}/{method}"] = round(seconds, 2)
            e = errors(pred, target)
            rows.append({"setting": setting, "method": method, "n": len(pairs),
                         **{k: float(v.mean()) for k, v in e.items()}, "pretrained": pretrained,
                         "seconds_per_image": seconds / max(len(pairs), 1)})
            for i, (k, o) in enumerate(pairs):
                per_sample.append({"setting": setting, "method": method, "kernel": int(k), "observation": int(o),
                                   "symmetry": int(ds.symmetry[k]), "n_scatterers": int(ds.n_scatterers[k, o]),
                                   **{name: float(e[name][i]) for name in ("mae", "mse", "rmse", "rmse_affine")}})
    ph = profile.physics
    record = {"inference_seconds": timings, "methods": list(m.methods()), "test_noise_snr_db": noise_snr_db,
              "test_data": "the run's dataset" if test_data is None else
              {"simulation": test_data.meta.get("simulation"), "content_hash": test_data.meta.get("content_hash")},
              "pretrained": {k: v.pretrained for k, v in m.infos.items()},
              "selection_rule": SELECTION_RULE,
              "least_squares_lambda": {"chosen": m.ls_lambda, "rule": "lowest mean RMSE on "
                                       f"{ph.ls_calibration_observations} validation "
                                       "observations (half of seen, half of unseen kernels)",
                                       "scores": {str(k): v for k, v in m.ls_scores.items()}},
              "least_squares_subpixel_lambda": {"chosen": m.ls_subpixel_lambda, "rule": "as least_squares_lambda",
                                                "scores": {str(k): v for k, v in (m.ls_subpixel_scores or {}).items()}},
              "hybrid_settings": {"chosen": m.hybrid_settings,
                                  "rule": "lowest mean RMSE of the decoded kernel on "
                                  f"{ph.hybrid_calibration_observations} validation "
                                  "observations over lr x mu x steps (baselines.choose_hybrid_settings)",
                                  "scores": m.hybrid_scores}}
    return Scores(rows, per_sample, record)


RESULTS_FILES = ("table.csv", "table.md", "per_sample.csv", "scores.json", "diagnostics.json", "provenance.json")


def write_scores(scores: Scores, models: TrainedModels, results_dir: str | Path, force: bool = False) -> Path:
    """``table.csv``, ``table.md``, ``per_sample.csv``, ``scores.json`` (the record) and, when
    two-step is loaded, ``diagnostics.json`` under ``results_dir``; returns the directory. Files
    there that the kit did not write are never replaced (:func:`qpi_utils.files.claim_results`)
    unless ``force``."""
    results_dir = claim_results(results_dir, RESULTS_FILES, force=force)
    write_table(scores.rows, results_dir / "table.csv")
    write_text(results_dir / "table.md", markdown_table(scores.rows))
    write_csv(results_dir / "per_sample.csv", scores.per_sample)
    write_text(results_dir / "scores.json", json.dumps(scores.record, indent=2, default=str))
    if models.kernel_vae is not None and models.observation_encoder is not None:
        write_text(results_dir / "diagnostics.json", json.dumps(two_step_diagnostics(models), indent=2))
    return results_dir


@torch.no_grad()
def example_predictions(models: TrainedModels, setting: str = "OOD", n: int = 4, seed: int = 0) -> dict:
    """A few test observations with their true kernels and every method's prediction."""
    pairs = models.splits.pairs({"ID": "id_test", "OOD": "ood_test"}[setting])
    pick = pairs[np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)]
    x = stack_pairs(models.ds, pick)
    positions = np.asarray(models.ds.positions[pick[:, 0], pick[:, 1]], np.float64)
    run = lambda fn: fn(x.to(models.device), positions) if isinstance(fn, NeedsPositions) else fn(x.to(models.device))
    preds = {name: run(fn).float().cpu().numpy()[:, 0]
             for name, (fn, _) in models.methods().items() if name != "mean_kernel"}
    truth = np.asarray(models.ds.kernels)[pick[:, 0]]
    titles = [f"kernel {k} ({SYMMETRY_NAMES[int(models.ds.symmetry[k])]}), {int(models.ds.n_scatterers[k, o])} defects"
              for k, o in pick]
    return {"pairs": pick, "observations": x.numpy(), "truth": truth, "predictions": preds, "titles": titles}
