"""Several seeds: the table as mean and 95 % interval over seeds, and the ablations.

Each seed is a whole run: its own simulated dataset (``simulation.seed``), splits
(``simulation.split_seed``) and training seeds, in ``<root>/seed-<s>``. :func:`run_table`
trains what the asked-for methods need and evaluates them; :func:`summarise` turns the per-seed
tables into one row per (variant, setting, method) with the mean, the standard deviation and a
95 % Student-t interval of the mean of every metric. Two cells differ ("win") only when their
intervals do not overlap; otherwise they are a tie (:func:`verdict`).

Ablations (:data:`ABLATIONS`) are variants of the profile given as dotted overrides. A variant
reuses every model of the base run (``qpi seeds``) it leaves unchanged, by fingerprint (so a
step-2 variant retrains step 2 only); each variant trains only what its methods need.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qpi_utils import prior as qpi_prior
from qpi_utils import realdata
from qpi_utils.checkpoints import load_data, load_kernel_vae, load_realistic_data, step_fingerprint
from qpi_utils.config import TRAIN_SECTIONS, Profile, get_profile, resolve_init
from qpi_utils.data import load_dataset, save_dataset, simulate_dataset
from .evaluate import evaluate
from .learning_rates import GRID, choose_learning_rates
from qpi_utils.files import read_csv, write_csv, write_text
from qpi_utils.methods import METHODS, NETWORKS, load_models
from qpi_utils.metrics import PAIRED_RULE, paired_difference
from qpi_utils.models import (KIT_PRIOR, ModelConfigError, from_model_scale, kit_prior_file, load_kit_prior,
                              load_pretrained_rgb, to_model_scale)
from qpi_utils.paper import LATER, TABLE2_RMSE, TABLE3_RMSE, V1
from .provenance import provenance
from qpi_utils.runs import STEPS, RunLayout
from qpi_utils.train import TRAINERS, reconstruct

__all__ = ["SEED_KEYS", "seed_overrides", "Ablation", "ABLATIONS", "ablation_layout", "kernel_vae_reconstructions",
           "run_table", "summarise", "verdict",
           "write_summary", "markdown_summary", "run_ablation", "TABLE_METHODS", "REAL_MAP_METHODS", "real_map_scores",
           "markdown_real_maps"]

SEED_KEYS = ("simulation.seed", "simulation.split_seed", "kernel_vae.seed", "alignment.seed", "one_step.seed",
             "one_step_paper.seed")
TABLE_METHODS = tuple(METHODS)  # every method of the registry
METRICS = ("rmse", "rmse_pm1", "rmse_affine", "mae", "mse")


def seed_overrides(seed: int) -> dict:
    """The overrides that make seed ``seed``: data, splits and every training."""
    return {key: int(seed) for key in SEED_KEYS}


def _steps_for(profile: Profile, methods) -> list[str]:
    steps = {s for m in methods for s in NETWORKS.get(m, ())}
    if any(s in steps and resolve_init(profile, s) == "kernel_vae" for s in ("one_step", "one_step_paper")):
        steps.add("kernel_vae")
    return [s for s in STEPS if s in steps]


def _link(source: Path, target: Path) -> None:
    if not target.exists() and source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(source, target.parent), target)


def run_table(profile: Profile, run_dir: str | Path, methods=TABLE_METHODS, base_dir: str | Path | None = None,
              noise_snr_db: float | None = None, progress: bool = True) -> list[dict]:
    """Simulate (or reuse) the data, train what ``methods`` need, and evaluate them; returns the
    table rows. ``base_dir``: a run of the same seed whose dataset, and step-1 VAE when this
    profile's step 1 is the same, are linked rather than made again."""
    layout = RunLayout(Path(run_dir), profile.name, "cli")
    if base_dir is not None:
        base = RunLayout(Path(base_dir), profile.name, "cli")
        _link(base.data, layout.data)
    if not (layout.data / "meta.json").is_file():
        save_dataset(simulate_dataset(profile.simulation, profile=profile.name, progress=progress), layout.data)
    steps = _steps_for(profile, methods)
    if base_dir is not None:
        ds = load_dataset(layout.data)
        base_profile = get_profile(profile.name, _base_overrides(profile))
        for step in steps:  # the base run's model of a step this variant leaves unchanged
            if base.model(step).is_file() and step_fingerprint(base_profile, step, ds) == step_fingerprint(profile, step, ds):
                _link(base.model(step), layout.model(step))
    for step in steps:
        TRAINERS[step](profile, layout, progress=progress)
    return evaluate(profile, layout, progress=progress, methods=tuple(methods), noise_snr_db=noise_snr_db,
                    reuse=True)  # rerun after an interruption: what was scored is read back


def _base_overrides(profile: Profile) -> dict:
    return {key: getattr(getattr(profile, key.split(".")[0]), key.split(".")[1]) for key in SEED_KEYS}


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half-width of the 95 % Student-t interval of the mean."""
    from scipy import stats

    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    std = float(values.std(ddof=1))
    return mean, std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))


def summarise(tables: dict, variant: str = "") -> list[dict]:
    """``{seed: table rows}`` -> one row per (setting, method): for each metric its mean, std and
    95 % interval half-width over seeds (``rmse_mean``, ``rmse_std``, ``rmse_ci95``, ...)."""
    seeds = sorted(tables)
    keys = []
    for rows in tables.values():
        keys += [(r["setting"], r["method"]) for r in rows if (r["setting"], r["method"]) not in keys]
    out = []
    for setting, method in keys:
        cells = [r for s in seeds for r in tables[s] if (r["setting"], r["method"]) == (setting, method)]
        row = {"variant": variant, "setting": setting, "method": method, "seeds": len(cells),
               "n_per_seed": int(cells[0]["n"])}
        for metric in METRICS:
            mean, std, ci = _interval(np.array([float(c[metric]) for c in cells]))
            row.update({f"{metric}_mean": mean, f"{metric}_std": std, f"{metric}_ci95": ci})
        out.append(row)
    return out


def verdict(a: dict, b: dict, metric: str = "rmse") -> str:
    """"a" or "b" when that row's 95 % interval lies wholly below the other's; else "tie"."""
    lo = lambda r: r[f"{metric}_mean"] - r[f"{metric}_ci95"]
    hi = lambda r: r[f"{metric}_mean"] + r[f"{metric}_ci95"]
    if hi(a) < lo(b):
        return "a"
    if hi(b) < lo(a):
        return "b"
    return "tie"


# the comparisons every table of methods carries paired (qpi_utils.metrics.paired_difference): (a, b)
COMPARISONS = (("two_step", "one_step_paper"), ("two_step", "one_step"), ("one_step", "one_step_paper"),
               ("hybrid", "two_step"), ("least_squares_subpixel", "two_step"),
               ("hybrid_subpixel", "least_squares_subpixel"))
PAIRED_COLUMNS = ("setting", "a", "b", "metric", "difference", "ci_low", "ci_high", "verdict", "kernels",
                  "observations", "a_better_kernels", "seeds")


def per_sample_rows(results_dir: str | Path, seed: int, variant: str = "") -> list[dict]:
    """One run's ``per_sample.csv`` with its seed and variant added (the units of a paired comparison)."""
    return [{**r, "seed": seed, "variant": variant} for r in read_csv(Path(results_dir) / "per_sample.csv")]


def paired_table(rows: list[dict], comparisons, metric: str = "rmse") -> list[dict]:
    """``comparisons``: ((variant a, method a), (variant b, method b)) pairs; one row per pair and
    setting that both scored: a minus b, paired per kernel over every seed (:data:`PAIRED_RULE`)."""
    out = []
    for setting in ("ID", "OOD"):
        for (va, ma), (vb, mb) in comparisons:
            pick = lambda v, m: [r for r in rows if r["setting"] == setting and r["variant"] == v and r["method"] == m]
            a, b = pick(va, ma), pick(vb, mb)
            if not a or not b:
                continue
            label = lambda v, m: f"{v}: {m}" if v else m
            out.append({"setting": setting, "a": label(va, ma), "b": label(vb, mb), "metric": metric,
                        **paired_difference(a, b, metric), "seeds": len({r["seed"] for r in a})})
    return out


def markdown_paired(rows: list[dict]) -> str:
    """The paired comparisons as markdown: a - b with its interval, the verdict, kernels where a is lower."""
    lines = ["| setting | a | b | a - b, RMSE [0,1] (95 % paired interval) | verdict | a lower on | seeds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = {"a": "a lower", "b": "b lower", "tie": "tie (interval covers 0)"}[r["verdict"]]
        lines.append(f"| {r['setting']} | {r['a']} | {r['b']} | {r['difference']:+.4f} [{r['ci_low']:+.4f}, "
                     f"{r['ci_high']:+.4f}] | {verdict} | {r['a_better_kernels']} of {r['kernels']} kernels | "
                     f"{r['seeds']} |")
    return "\n".join(lines) + "\n\nPaired per kernel: " + PAIRED_RULE + ".\n"


def write_paired(rows: list[dict], out_dir: str | Path, stem: str) -> None:
    write_csv(Path(out_dir) / f"{stem}_paired.csv", rows, PAIRED_COLUMNS)
    write_text(Path(out_dir) / f"{stem}_paired.md", markdown_paired(rows))


SUMMARY_COLUMNS = ("variant", "setting", "method", "seeds", "n_per_seed",
                   *(f"{m}_{s}" for m in METRICS for s in ("mean", "std", "ci95")), "paper_rmse_pm1", "note")


def write_summary(rows: list[dict], path: str | Path) -> Path:
    return write_csv(path, rows, SUMMARY_COLUMNS)


def markdown_summary(rows: list[dict], paper_label: str = "") -> str:
    """Mean ± 95 % interval half-width over seeds, on [0, 1] and on [-1, 1], with the paper's number."""
    head = ("| variant | setting | method | seeds | RMSE [0,1] | RMSE [-1,1] | MAE [0,1] |"
            + (f" paper RMSE [-1,1] ({paper_label}) |" if paper_label else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if r.get("note"):
            cells = f"| {r['variant']} | {r['setting']} | {r['method']} | - | {r['note']} | | |"
        else:
            cells = (f"| {r['variant']} | {r['setting']} | {r['method']} | {r['seeds']} | "
                     f"{r['rmse_mean']:.4f} ± {r['rmse_ci95']:.4f} | {r['rmse_pm1_mean']:.4f} ± {r['rmse_pm1_ci95']:.4f} | "
                     f"{r['mae_mean']:.4f} ± {r['mae_ci95']:.4f} |")
        if paper_label:
            paper = r.get("paper_rmse_pm1")
            cells += f" {paper:.4f} |" if isinstance(paper, float) and not math.isnan(paper) else " - |"
        lines.append(cells)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Ablation:
    """Variants (label -> overrides) compared on ``methods``; ``test_noise_snr_db``: also evaluate
    every variant on test data with noise at these SNRs; ``paper``: variant label -> (paper's OOD
    RMSE on [-1, 1], source); ``needs_pretrained``: variants that need pretrained weights."""

    title: str
    variants: dict
    methods: tuple = ("two_step",)
    test_noise_snr_db: tuple = ()
    paper: dict = field(default_factory=dict)
    needs_pretrained: tuple = ()
    explanation: str = ""
    test_realistic_snr_db: float | None = None  # also evaluate on the realistic copy of the test sets
    # (checkpoints.load_realistic_data, the profile's alignment settings) with white noise at this SNR
    real_maps: bool = False  # also score every variant on the real maps (real_map_scores)
    # variant label -> pretrain overrides: a change to step 1's loss is also made in the kit prior's
    # pretraining (the prior is trained with step 1's loss), else a variant that keeps the prior keeps
    # the very thing it removes; the variant then starts from its own prior (variant_prior)
    pretrain: dict = field(default_factory=dict)
    # variants that start their networks elsewhere than the profile does (random weights, another
    # architecture): the profile's learning rates were chosen for its own start, so these variants'
    # are chosen again by the same rule (qpi_lab.learning_rates), on the first seed's data, before
    # any seed trains (retuned_rates); the choice is kept with the results
    retune: tuple = ()


ABLATIONS = {
    "symmetric_loss": Ablation(
        "Symmetric loss in step 1 on / off (paper v1 Table 2, Fig. 4(b))",
        {"with (alpha 0.7)": {}, "without (alpha 0)": {"kernel_vae.alpha": 0.0}},
        pretrain={"without (alpha 0)": {"alpha": 0.0}},
        paper={"with (alpha 0.7)": (TABLE2_RMSE["with"], f"{V1}, Table 2"),
               "without (alpha 0)": (TABLE2_RMSE["without"], f"{V1}, Table 2")},
        explanation="Step 1 trained with and without the symmetric loss (from a kit prior pretrained likewise); "
                    "step 2 aligned to each."),
    "angles": Ablation(
        "Symmetric-loss angles: the full symmetry group vs the authors' code",
        {"group (k 2pi/n)": {}, "authors' angles": {"kernel_vae.sym_angles": "authors"}},
        pretrain={"authors' angles": {"sym_angles": "authors"}},
        explanation="The kit rotates by every non-trivial group rotation; the authors' code rotates by + and - "
                    "its angles: the full group for 3- and 6-fold kernels, 90 and 270 (not 180) for 4-fold. A kit "
                    "prior is pretrained with the variant's angles too."),
    "kl_reduction": Ablation(
        "The KL term summed over the 256 latent values (the kit) vs averaged over them (the authors' code)",
        {"summed": {}, "averaged (the authors')": {"kernel_vae.kl_reduction": "mean",
                                                   "one_step_paper.kl_reduction": "mean"}},
        methods=("one_step_paper", "two_step"), pretrain={"averaged (the authors')": {"kl_reduction": "mean"}},
        explanation="With beta = 1e-6 the authors' averaged KL is 256 times weaker than the kit's sum; step 1 and "
                    "the paper's one-step baseline train with each, from a kit prior pretrained likewise (the kit's "
                    "warm-started one-step is left out: "
                    "each of its trainings costs as much as step 1 and step 2 together)."),
    "warm_start": Ablation(
        "Step 2 started from the step-1 encoder vs from random weights",
        {"step-1 encoder": {}, "random init": {"alignment.init": "random"}},
        explanation="The kit starts the observation encoder from the trained kernel encoder (M channel at zero)."),
    "noise_augmentation": Ablation(
        "Noise augmentation in training (step 2 and one-step), tested clean and at 10 dB",
        {"off": {}, "on (0-30 dB)": {"alignment.augment_snr_db": [0.0, 30.0],
                                  "one_step_paper.augment_snr_db": [0.0, 30.0]}},
        methods=("one_step_paper", "two_step"), test_noise_snr_db=(10.0,),
        explanation="Training observations get white noise at an SNR drawn from 0-30 dB (the later version's "
                    "augmentation; its exact recipe is not given), for step 2 and the paper's one-step baseline."),
    "pretraining": Ablation(
        "Pretrained weights vs training from scratch (paper's later version, Table III)",
        {"pretrained (the kit prior)": {"model.pretrained": "qpi-kit/kernel-prior-small"},
         # from random weights step 1 needs the steps the prior's pretraining gave the others: the
         # previous quick profile's from-scratch schedule (150 epochs, the rate cut to 0.3 every 60;
         # its best validation epoch was 108, so validation had stopped improving before the cap)
         "from scratch": {"model.pretrained": None, "kernel_vae.epochs": 150, "kernel_vae.schedule": "step",
                          "kernel_vae.lr_step_size": 60, "kernel_vae.lr_gamma": 0.3},
         "pretrained (sdxl-vae-fp16-fix)": {"model.architecture": "sdxl", "model.block_out_channels": [128, 256, 512, 512],
                                            "model.layers_per_block": 2, "model.norm_num_groups": 32,
                                            "model.pretrained": "madebyollin/sdxl-vae-fp16-fix"}},
        methods=("two_step", "one_step_paper"),
        paper={"pretrained (sdxl-vae-fp16-fix)": (TABLE3_RMSE["pretrained"], f"{LATER}, Table III"),
               "from scratch": (TABLE3_RMSE["scratch"], f"{LATER}, Table III")},
        needs_pretrained=("pretrained (the kit prior)", "pretrained (sdxl-vae-fp16-fix)"),
        retune=("from scratch", "pretrained (sdxl-vae-fp16-fix)"),
        explanation="Both methods (two-step and the paper's one-step baseline) start from each: the kit prior "
                    "(the small VAE pretrained on simulated kernels kept away from every held-out kernel, "
                    "qpi_utils.prior), random weights, or the paper's SDXL-VAE where its weights load. A start "
                    "other than the profile's gets its learning rates chosen again by the profile's rule, on "
                    "validation (<name>_<variant>_learning_rates.json); from scratch, step 1 trains the previous "
                    "quick profile's from-scratch schedule."),
    "realistic_training": Ablation(
        "Step 2 trained on realistic observations: noise, scan-line offsets, hidden defects, position errors",
        {"clean": {}, "realistic": {"alignment.realistic_data": True, "alignment.augment_snr_db": [5.0, 30.0]}},
        methods=("two_step", "hybrid_subpixel"), test_realistic_snr_db=20.0, real_maps=True,
        explanation="The observation encoder trains, and chooses its epoch, on a copy of the data with the same "
                    "kernels and defects re-rendered with scan-line offsets (0.1 of the signal std), unlabelled "
                    "defects up to 16 px outside the view and 0.3 px position errors, plus white noise at 5-30 dB; "
                    "the step-1 VAE is shared. Tested on the clean test sets, on their realistic copy at 20 dB, and "
                    "on the real FeSe and Cu(111) maps (held-out score). The one-step baseline has the same option "
                    "(one_step.realistic_data); it is not part of this ablation."),
}


def _weights_available(profile: Profile) -> str | None:
    """None if the profile's pretrained weights (a kit prior, or Hugging Face weights) load here for
    its architecture, else why not (one line)."""
    try:
        if profile.model.pretrained.startswith(KIT_PRIOR):
            load_kit_prior(profile.model)
        else:
            load_pretrained_rgb(profile.model.pretrained)
        return None
    except (OSError, ModelConfigError) as exc:
        return str(exc).strip().splitlines()[0][:160]


def variant_prior(name: str, label: str, profile_name: str, root: str | Path, overrides: dict | None = None,
                  make: bool = False, progress: bool = True) -> dict:
    """The overrides that start variant ``label`` of ablation ``name`` from its own kit prior,
    pretrained with the variant's change to step 1's loss (:attr:`Ablation.pretrain`): {} when the
    variant changes no loss or the profile starts from no kit prior. ``make``: pretrain the prior
    (``<root>/prior-<label>``, written to :func:`qpi_utils.models.priors_dir`) when it is not there;
    otherwise a missing prior fails when the variant's networks load it."""
    extra = qpi_prior.variant_prior(get_profile(profile_name, overrides or {}), _slug(label),
                                    ABLATIONS[name].pretrain.get(label, {}))
    prior = extra.get("prior.name")
    if make and prior and kit_prior_file(prior) is None:
        from .prior import write_prior

        prof = get_profile(profile_name, {**(overrides or {}), **extra})
        write_prior(prof, RunLayout(Path(root) / f"prior-{_slug(label)}", prof.name), progress=progress,
                    command=f"qpi ablation {name} (variant {label!r})")
    return extra


def retuned_rates(name: str, label: str, profile_name: str, root: str | Path, seed: int = 0,
                  base_root: str | Path | None = None, overrides: dict | None = None, make: bool = False,
                  progress: bool = True) -> dict:
    """The learning rates variant ``label`` of ablation ``name`` trains with when it is one of the
    ablation's :attr:`Ablation.retune` variants ({} otherwise): the profile's rule
    (:func:`qpi_lab.learning_rates.choose_learning_rates`) run for the variant on seed ``seed``'s
    data, for the networks the ablation's methods train, as ``{"<section>.lr": rate}``. The choice
    is kept in ``<root>/<variant>/learning-rates/learning_rates.json``; ``make``: run the rule when
    it is not there (else :class:`FileNotFoundError`)."""
    ab = ABLATIONS[name]
    if label not in ab.retune:
        return {}
    settings = {**(overrides or {}), **ab.variants[label], **variant_prior(name, label, profile_name, root, overrides),
                **seed_overrides(seed)}
    prof = get_profile(profile_name, settings)
    record = retune_record(root, label)
    layout = RunLayout(record.parent, prof.name, "cli")
    steps = tuple(s for s in _steps_for(prof, ab.methods) if s in GRID)
    if record.is_file():
        out = json.loads(record.read_text())
        if out.get("settings") != json.loads(json.dumps(settings)) or sorted(out["steps"]) != sorted(steps):
            raise ValueError(f"{record} chose learning rates for other settings ({out.get('settings')}); "
                             "delete it to choose them again")
    elif not make:
        raise FileNotFoundError(f"{record}: the learning rates of {name}/{label} were not chosen yet "
                                f"(`qpi ablation {name}` chooses them)")
    else:
        if base_root is not None:
            _link(RunLayout(Path(base_root) / f"seed-{seed}", prof.name, "cli").data, layout.data)
        if not (layout.data / "meta.json").is_file():
            save_dataset(simulate_dataset(prof.simulation, profile=prof.name, progress=progress), layout.data)
        out = {"settings": settings, **choose_learning_rates(prof, layout, steps=steps, progress=progress,
                                                             overrides=settings)}
        write_text(record, json.dumps(out, indent=2) + "\n")
    return {f"{TRAIN_SECTIONS[s]}.lr": out["steps"][s]["chosen"] for s in steps}


def retune_record(root: str | Path, label: str) -> Path:
    """Where :func:`retuned_rates` keeps variant ``label``'s choice, under the ablation's ``root``."""
    return Path(root) / _slug(label) / "learning-rates" / "learning_rates.json"


def effective_variant(name: str, label: str, profile_name: str, root: str | Path, overrides: dict | None = None,
                      seeds=(0,), base_root: str | Path | None = None, make: bool = False,
                      progress: bool = True) -> dict:
    """The overrides variant ``label`` of ablation ``name`` trains with: its own, the prior it
    starts from (:func:`variant_prior`) and its learning rates where they are chosen again
    (:func:`retuned_rates`). ``make``: pretrain that prior and choose those rates when missing."""
    variant = {**ABLATIONS[name].variants[label],
               **variant_prior(name, label, profile_name, root, overrides, make=make, progress=progress)}
    return {**variant, **retuned_rates(name, label, profile_name, root, seeds[0], base_root, overrides, make=make,
                                       progress=progress)}


def run_ablation(name: str, profile_name: str, seeds, root: str | Path, base_root: str | Path | None = None,
                 overrides: dict | None = None, progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Every variant of ablation ``name`` over ``seeds``; returns (summary rows, with the paper's
    number where it has one; paired rows: every variant against the first, method by method, on
    the same test observations). Variants needing pretrained weights that do not load get one
    row saying so, never a random-init number under the pretrained name."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    ab = ABLATIONS[name]
    root = Path(root)
    rows, samples, compared = [], [], []
    first = next(iter(ab.variants))
    for label in ab.variants:
        paper = ab.paper.get(label, (float("nan"), ""))
        if label in ab.needs_pretrained:
            why = _weights_available(get_profile(profile_name, {**(overrides or {}), **ab.variants[label]}))
            if why is not None:
                rows.append({"variant": label, "setting": "OOD", "method": "two_step", "seeds": 0,
                             "paper_rmse_pm1": paper[0], "note": f"not run: weights unavailable ({why})"})
                continue
        variant = effective_variant(name, label, profile_name, root, overrides, seeds, base_root, make=True,
                                    progress=progress)
        tests = ([(None, False, "")] + [(snr, False, f", test {snr:g} dB") for snr in ab.test_noise_snr_db]
                 + ([(ab.test_realistic_snr_db, True, f", test realistic {ab.test_realistic_snr_db:g} dB")]
                    if ab.test_realistic_snr_db is not None else []))
        for snr, realistic, suffix in tests:
            tables = {}
            for seed in seeds:
                prof = get_profile(profile_name, {**(overrides or {}), **variant, **seed_overrides(seed)})
                slug = _slug(label)
                run_dir = root / slug / f"seed-{seed}"
                base = Path(base_root) / f"seed-{seed}" if base_root else None
                if realistic:  # the same trained models on the realistic copy of the test pairs
                    layout = RunLayout(run_dir, prof.name, "cli")
                    copy = load_realistic_data(prof, layout, prof.alignment, load_dataset(layout.data),
                                               progress=progress)
                    results = run_dir / f"results-test-realistic-{snr:g}dB"
                    tables[seed] = evaluate(prof, run_dir, results, progress=progress, methods=ab.methods,
                                            noise_snr_db=snr, test_data=copy, reuse=True)
                elif snr is not None:  # the same trained models, evaluated on noisy test data
                    results = run_dir / f"results-test-{snr:g}dB"
                    tables[seed] = evaluate(prof, run_dir, results, progress=progress, methods=ab.methods,
                                            noise_snr_db=snr, reuse=True)
                else:
                    results = run_dir / "results"
                    tables[seed] = run_table(prof, run_dir, ab.methods, base_dir=base, progress=progress)
                samples += per_sample_rows(results, seed, label + suffix)
            if label != first:
                compared += [((first + suffix, m), (label + suffix, m)) for m in ab.methods]
            for row in summarise(tables, label + suffix):
                row["paper_rmse_pm1"] = paper[0] if (row["setting"] == "OOD" and snr is None) else float("nan")
                rows.append(row)
    return rows, paired_table(samples, compared)


def ablation_layout(name: str, label: str, profile_name: str, root: str | Path, seed: int = 0,
                    overrides: dict | None = None) -> tuple[Profile, RunLayout]:
    """The profile and run directory with which :func:`run_ablation` trained variant ``label``
    of ablation ``name`` for ``seed``; ``root``: the ablation's directory (what ``qpi ablation``
    makes under ``--run-dir``: ``<run-dir>/<name>``)."""
    if name not in ABLATIONS or label not in ABLATIONS[name].variants:
        known = {n: list(a.variants) for n, a in ABLATIONS.items()}
        raise ValueError(f"unknown ablation variant {name!r}/{label!r}; known: {known}")
    variant = effective_variant(name, label, profile_name, root, overrides)
    prof = get_profile(profile_name, {**(overrides or {}), **variant, **seed_overrides(seed)})
    return prof, RunLayout(Path(root) / _slug(label) / f"seed-{seed}", prof.name)


def kernel_vae_reconstructions(profile: Profile, layout: RunLayout, n: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` OOD kernels of a run and what its step-1 VAE makes of them (the posterior
    mean decoded): (kernel ids (n,), kernels (n, 64, 64), reconstructions (n, 64, 64)), on [0, 1].
    The paper's Fig. 4(b) draws these for the VAEs trained with and without the symmetric loss."""
    ds, splits = load_data(profile, layout)
    vae, _ = load_kernel_vae(profile, layout, ds)
    ids = np.asarray(splits.ood_kernels[:n])
    kernels = np.asarray(ds.kernels[ids], np.float32)
    with torch.no_grad():
        rec = from_model_scale(reconstruct(vae, to_model_scale(torch.from_numpy(kernels)[:, None])))[:, 0].numpy()
    return ids, kernels, rec


REAL_MAP_METHODS = tuple(n for n, m in METHODS.items() if m.real_maps and m.networks)  # learned, on real maps


def real_map_scores(name: str, profile_name: str, seeds, root: str | Path, overrides: dict | None = None,
                    windows=None) -> list[dict]:
    """Held-out scores (:func:`qpi_utils.realdata.heldout_scores`: fraction of the dI/dV variance
    of one half of the map re-explained by the kernel fitted on the other half) of every variant
    of ablation ``name``, on the FeSe and Cu(111) maps, per seed from the networks
    :func:`run_ablation` trained under ``root``. ``windows``: the maps' windows (default
    :func:`~qpi_utils.realdata.fese_windows` and :func:`~qpi_utils.realdata.cu111_windows`).
    One row per (variant, map, method): mean, std and 95 % interval over seeds."""
    ab = ABLATIONS[name]
    windows = windows if windows is not None else (realdata.fese_windows(), realdata.cu111_windows())
    methods = tuple(m for m in REAL_MAP_METHODS if set(NETWORKS[m]) <= {s for x in ab.methods for s in NETWORKS.get(x, ())})
    rows = []
    for label in ab.variants:
        variant = effective_variant(name, label, profile_name, root, overrides, seeds)
        per_seed = {}
        for seed in seeds:
            prof = get_profile(profile_name, {**(overrides or {}), **variant, **seed_overrides(seed)})
            models = load_models(prof, Path(root) / _slug(label) / f"seed-{seed}", ("least_squares", *methods), progress=False)
            for w in windows:
                for method, score in realdata.heldout_scores(w, models).items():
                    per_seed.setdefault((w.name, method), []).append(score)
        for (map_name, method), scores in per_seed.items():
            mean, std, ci = _interval(np.asarray(scores, np.float64))
            rows.append({"variant": label, "map": map_name, "method": method, "seeds": len(scores),
                         "heldout_mean": mean, "heldout_std": std, "heldout_ci95": ci})
    return rows


def markdown_real_maps(rows: list[dict]) -> str:
    """The rows of :func:`real_map_scores` as a markdown table."""
    lines = ["| variant | map | method | seeds | held-out score (fraction of variance) |", "|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['map']} | {r['method']} | {r['seeds']} | "
              f"{r['heldout_mean']:.3f} ± {r['heldout_ci95']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def write_seed_results(rows: list[dict], out_dir: str | Path, stem: str, profile: Profile, seeds, title: str,
                       paper_label: str = "", extra: dict | None = None) -> None:
    """``<stem>.csv``, ``<stem>.md`` (title + table) and ``<stem>_provenance.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    write_summary(rows, out_dir / f"{stem}.csv")
    write_text(out_dir / f"{stem}.md", f"# {title}\n\n{markdown_summary(rows, paper_label)}")
    prov = provenance(profile, None, {"seeds": list(seeds), "seed_keys": list(SEED_KEYS), **(extra or {})})
    write_text(out_dir / f"{stem}_provenance.json", json.dumps(prov, indent=2, default=str))
