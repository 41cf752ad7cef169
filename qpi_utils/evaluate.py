"""Evaluation: ID and OOD tables with provenance.

Methods (one row per setting and method):

* ``mean_kernel`` -- the mean of the training kernels, predicted for every observation: the
  floor every method has to beat.
* ``one_step`` -- the baseline network, (Y, M) -> kernel, using the posterior mean.
* ``two_step`` -- (Y, M) -> observation encoder -> latent mean -> frozen kernel decoder.
* ``defect_average``, ``least_squares`` -- the physics baselines of :mod:`qpi_utils.baselines`
  (least squares with its regularisation chosen on training observations).
* ``hybrid`` -- two-step, refined so the decoded kernel explains Y through the forward model
  (on a seeded subset of each test set when ``physics.hybrid_test_observations`` is set: the
  ``n`` column says how many).

Metrics per sample on the [0, 1] scale of the normalised kernels: MAE = mean |p - t|, MSE =
mean (p - t)^2, RMSE = sqrt(MSE); the table gives their means over the test set. The
``*_pm1`` columns are the same errors on the [-1, 1] scale the authors' code reports (images
mapped by 2x - 1: MAE and RMSE double, MSE quadruples). Predictions are not clipped.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .config import Profile
from .data import ObservationDataset, QPIDataset, Splits
from .models import from_model_scale, to_model_scale

__all__ = ["errors", "predict_two_step", "predict_one_step", "predict_dataset", "evaluate", "TABLE_COLUMNS",
           "PAPER_TABLE1", "provenance", "write_table", "TrainedModels", "load_models", "example_predictions",
           "two_step_diagnostics", "latent_embeddings", "METHODS", "SWEEPS", "robustness_sweep", "write_sweeps",
           "markdown_table"]

TABLE_COLUMNS = ("setting", "method", "n", "mae", "mse", "rmse", "mae_pm1", "mse_pm1", "rmse_pm1", "pretrained",
                 "seconds_per_image")
METHODS = ("mean_kernel", "one_step", "two_step", "defect_average", "least_squares", "hybrid")
SWEEPS = ("snr_db", "scatterers", "outside_margin", "position_error")
# The paper's Table 1 (RMSE only as quoted in our issue tracker; scale as the authors report).
PAPER_TABLE1 = {("ID", "one_step"): 0.0340, ("ID", "two_step"): 0.0163,
                ("OOD", "one_step"): 0.1193, ("OOD", "two_step"): 0.0924}


def errors(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample MAE, MSE, RMSE of (N, H, W) images on [0, 1] and on [-1, 1]."""
    d = (np.asarray(pred, np.float64) - np.asarray(target, np.float64)).reshape(len(pred), -1)
    mae, mse = np.abs(d).mean(1), (d * d).mean(1)
    rmse = np.sqrt(mse)
    return {"mae": mae, "mse": mse, "rmse": rmse, "mae_pm1": 2 * mae, "mse_pm1": 4 * mse, "rmse_pm1": 2 * rmse}


@torch.no_grad()
def predict_two_step(encoder, decoder_vae, observations: torch.Tensor) -> torch.Tensor:
    """(B, 2, 64, 64) (Y, M) on [0, 1] -> (B, 1, 64, 64) kernels on [0, 1]."""
    mean, _ = encoder(to_model_scale(observations))
    return from_model_scale(decoder_vae.decode(mean).sample)


@torch.no_grad()
def predict_one_step(model, observations: torch.Tensor) -> torch.Tensor:
    mean = model.encode(to_model_scale(observations)).latent_dist.mean
    return from_model_scale(model.decode(mean).sample)


@torch.no_grad()
def predict_dataset(predict, ds: QPIDataset, pairs: np.ndarray, batch_size: int = 64, device="cpu",
                    progress: bool = False, desc: str = "predict") -> np.ndarray:
    """Run ``predict((B, 2, 64, 64) tensor) -> (B, 1, 64, 64)`` over the pairs; (N, 64, 64) float32."""
    from tqdm.auto import tqdm

    data = ObservationDataset(ds, pairs)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    out = []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        out.append(predict(batch["observation"].to(device)).float().cpu().numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros((0, 64, 64), np.float32)


def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(profile: Profile, ds: QPIDataset, extra: dict | None = None) -> dict:
    """Profile, seeds, data hash, versions, git commit, machine."""
    import diffusers
    import accelerate

    return {
        "profile": profile.to_dict(),
        "dataset": {"content_hash": ds.meta.get("content_hash"), "source": ds.meta.get("source"),
                    "seed": ds.meta.get("seed")},
        "seeds": {"simulation": profile.simulation.seed, "splits": profile.simulation.split_seed,
                  **{s: getattr(profile, s).seed for s in ("kernel_vae", "alignment", "one_step")}},
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "accelerate": accelerate.__version__},
        "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_table(rows: list[dict], path: Path) -> None:
    """CSV with :data:`TABLE_COLUMNS`, floats to 6 significant digits, written atomically."""
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _write_atomic(Path(path), buf.getvalue())


def markdown_table(rows: list[dict], with_paper: bool = True) -> str:
    """The table as markdown, with the paper's Table 1 RMSE beside ours where it has one."""
    head = "| setting | method | n | MAE [0,1] | MSE [0,1] | RMSE [0,1] | RMSE [-1,1] | s / image |"
    if with_paper:
        head += " paper RMSE (Table 1) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r['setting']} | {r['method']} | {r['n']} | {r['mae']:.4f} | {r['mse']:.5f} | "
                f"{r['rmse']:.4f} | {r['rmse_pm1']:.4f} | {r.get('seconds_per_image', float('nan')):.2g} |")
        if with_paper:
            paper = PAPER_TABLE1.get((r["setting"], r["method"]))
            line += f" {paper:.4f} |" if paper is not None else " - |"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass
class TrainedModels:
    """Everything a trained run holds, loaded once (eval mode, frozen, on ``device``)."""

    profile: Profile
    ds: QPIDataset
    splits: Splits
    kernel_vae: torch.nn.Module
    observation_encoder: torch.nn.Module
    one_step: torch.nn.Module
    infos: dict
    device: str
    ls_lambda: float
    ls_scores: dict

    def methods(self) -> dict:
        """name -> (predict function on (B, 2, 64, 64) [0,1] tensors -> (B, 1, 64, 64), pretrained)."""
        from .baselines import HybridConfig, defect_average, hybrid, least_squares

        ph = self.profile.physics
        mean_kernel = np.asarray(self.ds.kernels[self.splits.train_kernels], np.float64).mean(0)
        mk = torch.from_numpy(mean_kernel).float()
        hcfg = HybridConfig(steps=ph.hybrid_steps, lr=ph.hybrid_lr, mu=ph.hybrid_mu)

        def numpy_method(fn):
            def run(x):
                xn = x.detach().cpu().double().numpy()
                return torch.from_numpy(fn(xn[:, 0], xn[:, 1])).float()[:, None].to(x.device)

            return run

        pre = self.infos["kernel_vae"].pretrained
        return {
            "mean_kernel": (lambda x: mk.to(x.device).expand(len(x), 1, 64, 64), False),
            "one_step": (lambda x: predict_one_step(self.one_step, x), self.infos["one_step"].pretrained),
            "two_step": (lambda x: predict_two_step(self.observation_encoder, self.kernel_vae, x), pre),
            "defect_average": (numpy_method(defect_average), False),
            "least_squares": (numpy_method(lambda y, m: least_squares(y, m, lam=self.ls_lambda,
                                                                       iterations=ph.ls_iterations)), False),
            "hybrid": (lambda x: hybrid(self.observation_encoder, self.kernel_vae, x, hcfg), pre),
        }


def load_models(profile: Profile, run_dir: str | Path) -> TrainedModels:
    """Load the dataset, splits and the three trained networks of a run directory, and choose the
    least-squares regularisation on training observations (:func:`baselines.choose_regularisation`)."""
    from .baselines import choose_regularisation
    from .train import dataset_and_splits, load_kernel_vae, load_observation_encoder, load_one_step

    run_dir = Path(run_dir)
    ds, splits = dataset_and_splits(profile, run_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vae, vae_info = load_kernel_vae(profile, run_dir, ds)
    encoder, enc_info = load_observation_encoder(profile, run_dir, ds)
    one, one_info = load_one_step(profile, run_dir, ds)
    ph = profile.physics
    calib = splits.train[np.random.default_rng(0).permutation(len(splits.train))[:ph.ls_calibration_observations]]
    x = _stack_pairs(ds, calib).double().numpy()
    lam, scores = choose_regularisation(x[:, 0], x[:, 1], np.asarray(ds.kernels)[calib[:, 0]],
                                        grid=ph.ls_lambda_grid, iterations=ph.ls_iterations)
    return TrainedModels(profile, ds, splits, vae.to(device), encoder.to(device), one.to(device),
                         {"kernel_vae": vae_info, "observation_encoder": enc_info, "one_step": one_info}, device,
                         lam, scores)


def evaluate(profile: Profile, run_dir: str | Path, results_dir: str | Path | None = None,
             progress: bool = True, models: TrainedModels | None = None) -> list[dict]:
    """Evaluate every trained method on the ID and OOD test sets and write, under ``results_dir``
    (default ``<run_dir>/results``): ``table.csv``, ``table.md``, ``per_sample.csv``,
    ``diagnostics.json`` and ``provenance.json``. Returns the table rows."""
    run_dir = Path(run_dir)
    results_dir = Path(results_dir) if results_dir else run_dir / "results"
    m = models or load_models(profile, run_dir)
    ds, splits = m.ds, m.splits
    rows, per_sample, timings = [], [], {}
    n_hybrid = profile.physics.hybrid_test_observations
    for setting, all_pairs in (("ID", splits.id_test), ("OOD", splits.ood_test)):
        for method, (fn, pretrained) in m.methods().items():
            pairs = all_pairs
            if method == "hybrid" and n_hybrid is not None and n_hybrid < len(all_pairs):
                pairs = all_pairs[np.sort(np.random.default_rng(0).permutation(len(all_pairs))[:n_hybrid])]
            target = np.asarray(ds.kernels)[pairs[:, 0]]
            t0 = time.perf_counter()
            pred = predict_dataset(fn, ds, pairs, device=m.device, progress=progress, desc=f"{setting} {method}")
            seconds = time.perf_counter() - t0
            timings[f"{setting}/{method}"] = round(seconds, 2)
            e = errors(pred, target)
            rows.append({"setting": setting, "method": method, "n": len(pairs),
                         **{k: float(v.mean()) for k, v in e.items()}, "pretrained": pretrained,
                         "seconds_per_image": seconds / max(len(pairs), 1)})
            for i, (k, o) in enumerate(pairs):
                per_sample.append({"setting": setting, "method": method, "kernel": int(k), "observation": int(o),
                                   "symmetry": int(ds.symmetry[k]), "n_scatterers": int(ds.n_scatterers[k, o]),
                                   **{name: float(e[name][i]) for name in ("mae", "mse", "rmse")}})
    write_table(rows, results_dir / "table.csv")
    _write_atomic(results_dir / "table.md", markdown_table(rows))
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(per_sample[0]))
    w.writeheader()
    w.writerows(per_sample)
    _write_atomic(results_dir / "per_sample.csv", buf.getvalue())
    diagnostics = two_step_diagnostics(m)
    _write_atomic(results_dir / "diagnostics.json", json.dumps(diagnostics, indent=2))
    summaries = {}
    for step in ("kernel_vae", "alignment", "one_step"):
        blob = torch.load(run_dir / "models" / f"{step}.pt", map_location="cpu", weights_only=True)
        summaries[step] = blob["summary"]
    prov = provenance(profile, ds, {"training": summaries, "inference_seconds": timings,
                                    "pretrained": {k: v.pretrained for k, v in m.infos.items()},
                                    "least_squares_lambda": {"chosen": m.ls_lambda, "rule": "lowest mean RMSE on "
                                                             f"{profile.physics.ls_calibration_observations} training "
                                                             "observations", "scores": {str(k): v for k, v in
                                                                                         m.ls_scores.items()}}})
    _write_atomic(results_dir / "provenance.json", json.dumps(prov, indent=2, default=str))
    return rows


def _stack_pairs(ds: QPIDataset, pairs: np.ndarray) -> torch.Tensor:
    y = np.stack([np.asarray(ds.observations[k, o], np.float32) for k, o in pairs])
    m = np.stack([np.asarray(ds.activation_maps[k, o], np.float32) for k, o in pairs])
    return torch.from_numpy(np.stack([y, m], axis=1))


@torch.no_grad()
def example_predictions(models: TrainedModels, setting: str = "OOD", n: int = 4, seed: int = 0) -> dict:
    """A few test observations with their true kernels and every method's prediction."""
    pairs = models.splits.pairs({"ID": "id_test", "OOD": "ood_test"}[setting])
    pick = pairs[np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)]
    x = _stack_pairs(models.ds, pick)
    preds = {name: fn(x.to(models.device)).float().cpu().numpy()[:, 0]
             for name, (fn, _) in models.methods().items() if name != "mean_kernel"}
    truth = np.asarray(models.ds.kernels)[pick[:, 0]]
    from .simulate import SYMMETRY_NAMES

    titles = [f"kernel {k} ({SYMMETRY_NAMES[int(models.ds.symmetry[k])]}), {int(models.ds.n_scatterers[k, o])} defects"
              for k, o in pick]
    return {"pairs": pick, "observations": x.numpy(), "truth": truth, "predictions": preds, "titles": titles}


@torch.no_grad()
def two_step_diagnostics(models: TrainedModels, n_pairs: int = 400) -> dict:
    """Where the two-step error comes from.

    * ``vae_ceiling_rmse``: RMSE of the frozen kernel VAE decoding the kernel's own latent mean:
      the best the two-step method can do if step 2 were perfect.
    * ``latent``: scale of the kernel latents (std of the means across kernels, log-variances).
    * ``alignment_mse``: step 2's remaining error on test observations, split into the part on
      the means (what inference uses) and on the log-variances (trained, but unused at
      inference), and the mean part relative to the variance of the target means.
    """
    from .train import kernel_latents

    ds, sp = models.ds, models.splits
    vae, enc = models.kernel_vae, models.observation_encoder
    k_mean, k_logvar = kernel_latents(vae.cpu(), ds)
    vae.to(models.device)
    rec = from_model_scale(vae.decode(k_mean.to(models.device)).sample).float().cpu().numpy()[:, 0]
    kernels = np.asarray(ds.kernels)
    out = {"vae_ceiling_rmse": {
        "train_kernels": float(errors(rec[sp.train_kernels], kernels[sp.train_kernels])["rmse"].mean()),
        "ood_kernels": float(errors(rec[sp.ood_kernels], kernels[sp.ood_kernels])["rmse"].mean())},
        "latent": {"mean_std_across_kernels": float(k_mean.std(0).mean()), "mean_abs": float(k_mean.abs().mean()),
                   "logvar_mean": float(k_logvar.mean()), "logvar_std": float(k_logvar.std())},
        "alignment_mse": {}}
    for setting, pairs in (("ID", sp.id_test), ("OOD", sp.ood_test)):
        pick = pairs[np.random.default_rng(0).permutation(len(pairs))[:n_pairs]]
        mean, logvar = enc(to_model_scale(_stack_pairs(ds, pick)).to(models.device))
        t_mean, t_logvar = k_mean[pick[:, 0]], k_logvar[pick[:, 0]]
        mse_mean = float(((mean.float().cpu() - t_mean) ** 2).mean())
        out["alignment_mse"][setting] = {
            "mean": mse_mean, "logvar": float(((logvar.float().cpu() - t_logvar) ** 2).mean()),
            "mean_relative_to_target_variance": mse_mean / float(t_mean.var())}
    return out


@torch.no_grad()
def latent_embeddings(models: TrainedModels, per_kernel: int = 4, seed: int = 0, perplexity: float = 30.0) -> dict:
    """t-SNE (scikit-learn) of (a) the step-1 latent means of every kernel and (b) the aligned
    step-2 latent means of ``per_kernel`` test observations of every kernel (ID and OOD).

    Returns {"kernels": {...}, "observations": {...}}, each with ``embedding`` (N, 2),
    ``symmetry``, ``kernel_id`` and ``ood`` (bool) arrays.
    """
    from sklearn.manifold import TSNE
    from .train import kernel_latents

    ds, sp = models.ds, models.splits
    k_mean, _ = kernel_latents(models.kernel_vae.cpu(), ds)
    models.kernel_vae.to(models.device)
    ood_k = np.isin(np.arange(ds.n_kernels), sp.ood_kernels)
    rng = np.random.default_rng(seed)
    pairs = []
    for name in ("id_test", "ood_test"):
        p = sp.pairs(name)
        for k in np.unique(p[:, 0]):
            rows = p[p[:, 0] == k]
            pairs.append(rows[rng.permutation(len(rows))[:per_kernel]])
    pairs = np.concatenate(pairs)
    o_mean, _ = models.observation_encoder(to_model_scale(_stack_pairs(ds, pairs)).to(models.device))

    def embed(x: np.ndarray) -> np.ndarray:
        perp = min(perplexity, max(2.0, (len(x) - 1) / 3))
        return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)

    return {
        "kernels": {"embedding": embed(k_mean.reshape(ds.n_kernels, -1).numpy()), "symmetry": ds.symmetry,
                    "kernel_id": np.arange(ds.n_kernels), "ood": ood_k},
        "observations": {"embedding": embed(o_mean.float().cpu().reshape(len(pairs), -1).numpy()),
                         "symmetry": ds.symmetry[pairs[:, 0]], "kernel_id": pairs[:, 0], "ood": ood_k[pairs[:, 0]]},
    }


def robustness_sweep(models: TrainedModels, sweep: str, progress: bool = False) -> list[dict]:
    """RMSE of every method against one condition, on fresh observations of the OOD kernels.

    ``sweep``: ``snr_db`` (white noise), ``scatterers`` (fixed number of labelled defects),
    ``outside_margin`` (unlabelled defects in a band of that width around the field of view, at
    the same density), ``position_error`` (std in px of the positions M is built from). Values
    and sizes come from ``profile.physics``; everything else is the profile's simulation.
    Returns rows {sweep, value, method, n, rmse, rmse_pm1}.
    """
    import dataclasses

    from .simulate import simulate_dataset

    if sweep not in SWEEPS:
        raise ValueError(f"unknown sweep {sweep!r}; choose one of {', '.join(SWEEPS)}")
    ph, sim = models.profile.physics, models.profile.simulation
    values = {"snr_db": ph.sweep_snr_db, "scatterers": ph.sweep_scatterers,
              "outside_margin": ph.sweep_outside_margin, "position_error": ph.sweep_position_error}[sweep]
    ood = models.splits.ood_kernels
    params = {name: np.asarray(models.ds.arrays[f"param_{name}"])[ood]
              for name in ("symmetry", "orientation", "frequency", "phase", "decay")}
    per_kernel = max(1, -(-ph.sweep_observations // len(ood)))
    rows = []
    for i, value in enumerate(values):
        change = {"snr_db": {"snr_db": float(value)},
                  "scatterers": {"min_scatterers": int(value), "max_scatterers": int(value)},
                  "outside_margin": {"outside_margin": float(value)},
                  "position_error": {"position_error": float(value)}}[sweep]
        cfg = dataclasses.replace(sim, n_kernels=len(ood), n_observations=per_kernel, seed=10_000 + i, **change)
        test = simulate_dataset(cfg, progress=False, params=params)
        pairs = np.array([(k, o) for k in range(test.n_kernels) for o in range(test.n_observations)])
        target = np.asarray(test.kernels)[pairs[:, 0]]
        for method, (fn, _) in models.methods().items():
            pred = predict_dataset(fn, test, pairs, device=models.device, progress=progress,
                                   desc=f"{sweep}={value} {method}")
            e = errors(pred, target)
            rows.append({"sweep": sweep, "value": float(value), "method": method, "n": len(pairs),
                         "rmse": float(e["rmse"].mean()), "rmse_pm1": float(e["rmse_pm1"].mean())})
    return rows


def write_sweeps(rows: list[dict], path: Path) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["sweep", "value", "method", "n", "rmse", "rmse_pm1"])
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    _write_atomic(Path(path), buf.getvalue())
