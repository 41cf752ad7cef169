"""The ``qpi`` command line: every step of the kit, each reading one profile.

Run ``qpi --help`` or ``qpi COMMAND --help``. All commands take ``--profile`` (smoke, quick,
colab, paper; default ``$QPI_PROFILE``, else colab on a GPU and quick on a CPU) and ``--set
section.key=value`` overrides, and write under ``--run-dir`` (default ``runs/<profile>`` in the
checkout).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .budget import SUSTAINED_TFLOPS, chain_flops, estimate_seconds, measure_training, training_samples
from .chain import ChainError, run_chain
from qpi_utils import __version__
from qpi_utils.config import KIT_PRIOR, PROFILE_NAMES, parse_override, default_profile_name, get_profile
from qpi_utils.checkpoints import LOADERS, check_simulation_settings, check_weights, load_blob, step_fingerprint
from qpi_utils.errors import QpiError
from qpi_utils.data import check_dataset_target, load_dataset, save_dataset, simulate_dataset
from qpi_utils.evaluate import markdown_table

from .evaluate import evaluate
from .provenance import provenance
from qpi_utils.files import stale_temporaries, write_csv, write_text
from qpi_utils.models import PretrainedWeightsError, load_kit_prior, load_pretrained_rgb
from qpi_utils.paper import TABLE1_RMSE
from qpi_utils.plots import plot_history, save_figure
from qpi_utils.runs import STEPS, RunLayout, project_root
from .seeds import (ABLATIONS, COMPARISONS, effective_variant, markdown_paired, markdown_real_maps, markdown_summary,
                    paired_table, per_sample_rows, real_map_scores, retune_record, run_ablation, run_table, write_paired,
                    seed_overrides, summarise, write_seed_results)
from qpi_utils.train import TRAINERS
from .prior import write_prior

__all__ = ["main", "build_parser"]


def _common(p: argparse.ArgumentParser, run_dir: bool = True) -> None:
    p.add_argument("--profile", default=None, choices=PROFILE_NAMES,
                   help="size profile: smoke (CI, seconds), quick (a 2-core CPU; the chain's measured time is in results/quick/chain_times.json), colab (a "
                        "free T4, about 40 min of compute), paper (a big GPU, the paper's sizes); default $QPI_PROFILE, else "
                        "colab on a GPU, quick on a CPU")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one profile value, e.g. --set simulation.n_kernels=20 (repeatable)")
    if run_dir:
        p.add_argument("--run-dir", type=Path, default=None,
                       help="directory for every artefact of this run (default runs/<profile>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _layout(args) -> RunLayout:
    return RunLayout.for_profile(args.profile_obj, args.run_dir, context="cli")


def cmd_profile(args) -> int:
    print(args.profile_obj.to_json())
    return 0


def cmd_simulate(args) -> int:
    prof = args.profile_obj
    out = Path(args.out) if args.out else _layout(args).data
    check_dataset_target(out, args.force)  # before the work: a bad --out fails at once
    t0 = time.perf_counter()
    ds = simulate_dataset(prof.simulation, profile=prof.name, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    save_dataset(ds, out, force=args.force)
    extra = prof.simulation.extra_train_kernels
    print(f"wrote {out}: {ds.n_kernels} kernels"
          + (f" ({extra} of them training-only)" if extra else "") + f" x {ds.n_observations} observations "
          f"({ds.n_kernels * ds.n_observations / elapsed:.0f} observations/s, {elapsed:.1f} s); "
          f"content hash {ds.meta['content_hash'][:16]}")
    return 0


def cmd_import_authors(args) -> int:
    """The authors' released CSV files as the run's dataset (qpi_lab.authors_data)."""
    from .authors_data import load_authors_csv

    out = Path(args.out) if args.out else _layout(args).data
    check_dataset_target(out, args.force)  # before reading hundreds of MB: a bad --out fails at once
    ds = load_authors_csv(args.paths if len(args.paths) > 1 else args.paths[0], symmetry=args.symmetry,
                          order=args.order)
    save_dataset(ds, out, force=args.force)
    fits = ds.meta["forward_fit_median_r2"]
    print(f"wrote {out}: {ds.n_kernels} kernels x {ds.n_observations} observations from {len(fits)} files; "
          f"kernel origin {ds.kernel_origin:g} px; symmetry {ds.meta['symmetry_source']}; the forward model "
          f"explains the observations with median R^2 {min(fits):.3f} to {max(fits):.3f}; content hash "
          f"{ds.meta['content_hash'][:16]}")
    return 0


def _train(step: str):
    def run(args) -> int:
        fn = TRAINERS[step]
        layout = _layout(args)
        summary = fn(args.profile_obj, layout, progress=not args.no_progress, restart=args.restart)
        history = summary.pop("history")
        save_figure(plot_history(history, step, best_epoch=summary["best_epoch"]), layout.figure(f"{step}_loss"),
                    close=True)
        print(json.dumps(summary, indent=2))
        return 0

    return run


def cmd_learning_rates(args) -> int:
    """The learning-rate rule (qpi_lab.learning_rates) on this run's dataset (simulated if missing);
    writes <results-dir>/learning_rates.json with the trials and the provenance."""
    from qpi_utils.data import load_dataset as _load
    from .learning_rates import choose_learning_rates

    layout = _layout(args)
    if not (layout.data / "meta.json").is_file():
        cmd_simulate(argparse.Namespace(**{**vars(args), "out": None, "force": False}))
    t0 = time.perf_counter()
    out = choose_learning_rates(args.profile_obj, layout, progress=not args.no_progress,
                                overrides=_override_dict(args))
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    out["provenance"] = provenance(args.profile_obj, _load(layout.data),
                                   {"command": "qpi " + " ".join(sys.argv[1:])})
    target = Path(args.results_dir) if args.results_dir else project_root() / "results" / args.profile_obj.name
    write_text(target / "learning_rates.json", json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["chosen"] for k, v in out["steps"].items()}, indent=2))
    print(f"wrote {target / 'learning_rates.json'} ({out['total_seconds']:.0f} s)")
    return 0


def cmd_data_design(args) -> int:
    """How many training-only kernels the profile simulates, chosen on validation (qpi_lab.data_design);
    writes <results-dir>/data_design.json with every candidate and the provenance."""
    from .data_design import choose_data_design

    prof = args.profile_obj
    root = args.run_dir or Path("runs") / f"{prof.name}-data-design"
    t0 = time.perf_counter()
    out = choose_data_design(prof.name, root, overrides=_override_dict(args), progress=not args.no_progress)
    out["provenance"] = provenance(prof, None, {"command": "qpi " + " ".join(sys.argv[1:]),
                                                "total_seconds": round(time.perf_counter() - t0, 1)})
    target = Path(args.results_dir) if args.results_dir else project_root() / "results" / prof.name
    write_text(target / "data_design.json", json.dumps(out, indent=2) + "\n")
    print(f"chosen: {out['chosen']}; wrote {target / 'data_design.json'} ({time.perf_counter() - t0:.0f} s)")
    return 0


def cmd_pretrain(args) -> int:
    """The kit prior: the model section's VAE pretrained on a corpus of simulated kernels
    (qpi_utils.prior), then committed as priors/<name>.safetensors with its corpus and provenance."""
    prof = args.profile_obj
    layout = RunLayout.for_profile(prof, args.run_dir or project_root() / "runs" / f"{prof.name}-prior", context="cli")
    summary, out = write_prior(prof, layout, args.out, progress=not args.no_progress, restart=args.restart,
                               command="qpi " + " ".join(sys.argv[1:]))
    print(f"prior {prof.prior.name}: best validation-corpus RMSE {summary['best_val_rmse']:.4f} [0,1] at epoch "
          f"{summary['best_epoch']} of {summary['epochs_run']} ({summary['wall_seconds'] / 60:.1f} min); wrote {out}")
    return 0


def cmd_check(args) -> int:
    """Full check of a run directory: every dataset value against its hash, every activation
    map against its positions, every trained model readable and made with this profile."""
    layout = _layout(args)
    layout.require("data")
    ds = load_dataset(layout.data, verify=True)
    check_simulation_settings(args.profile_obj, ds, layout.display(layout.data))
    print(f"{layout.display(layout.data)}: {ds.n_kernels} kernels x {ds.n_observations} observations, "
          f"content hash {ds.meta['content_hash'][:16]} verified, made with this profile's simulation settings")
    for step in STEPS:
        load, network = LOADERS[step]
        if layout.model(step).is_file():  # what evaluation loads: fingerprint, summary, names, shapes, finite
            load(args.profile_obj, layout, ds)
        for path in (layout.model(step), layout.checkpoint(step)):
            if path.is_file():
                blob = load_blob(path, step, step_fingerprint(args.profile_obj, step, ds))
                check_weights(blob["state_dict"], network(args.profile_obj), path)
                print(f"{layout.display(path)}: readable, {len(blob['history'])} epochs, weights finite and of "
                      f"the right shapes, fits profile {args.profile_obj.name}")
    for debris in stale_temporaries(layout.root):  # a writer killed mid-save (kill -9, power cut)
        print(f"{layout.display(debris)}: a partial file left by a writer that was killed; the kit removes it "
              "the next time it writes that file, or delete it")
    return 0


def _estimate(profile) -> dict:
    flops = chain_flops(profile)
    return {"profile": profile.name, "pflop": {k: round(v / 1e15, 3) for k, v in flops.items()},
            "pflop_total": round(sum(flops.values()) / 1e15, 2),
            "assumed_sustained_tflops": SUSTAINED_TFLOPS,
            "estimated_hours": {gpu: round(estimate_seconds(flops, t) / 3600, 2) for gpu, t in SUSTAINED_TFLOPS.items()}}


def cmd_doctor(args) -> int:
    """Device, versions, pretrained weights, and how long the chosen profile will take."""
    import accelerate
    import diffusers
    import torch

    prof = args.profile_obj
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"accelerate {accelerate.__version__}")
    report = {"device": device, **_estimate(prof)}
    if not cuda and prof.name in ("colab", "paper"):
        report["warning"] = (f"the {prof.name} profile is sized for a GPU and this machine has none: expect hours "
                             "per network; use --profile quick on a CPU")
        print(f"warning: {report['warning']}")
    if prof.model.pretrained:
        try:  # the kit's own priors are files of the kit, not Hugging Face ids
            if prof.model.pretrained.startswith(KIT_PRIOR):
                load_kit_prior(prof.model)
            else:
                load_pretrained_rgb(prof.model.pretrained)
            report["pretrained_weights"] = "load"
        except (OSError, PretrainedWeightsError) as exc:
            report["pretrained_weights"] = f"do not load ({str(exc).strip().splitlines()[0]})"
        print(f"pretrained weights {prof.model.pretrained}: {report['pretrained_weights']}")
    article = lambda gpu: "an" if gpu[0] in "AEIOU" else "a"
    hours = ", ".join((f"{h:.2g} h" if h >= 1 else f"{h * 60:.0f} min") + f" on {article(gpu)} {gpu}"
                      for gpu, h in report["estimated_hours"].items())
    print(f"profile {prof.name}: {report['pflop_total']:.3g} PFLOP counted for the chain; about {hours} "
          f"(at an assumed sustained {', '.join(f'{t:g} TFLOP/s on {article(g)} {g}' for g, t in SUSTAINED_TFLOPS.items())})")
    if args.measure:
        per_sample, samples = measure_training(prof), training_samples(prof)
        seconds = {step: per_sample[step] * samples[step] for step in per_sample}
        report["measured_training_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        print(f"measured on this device: training about {sum(seconds.values()) / 3600:.2g} h "
              f"({', '.join(f'{k} {v / 60:.0f} min' for k, v in seconds.items())})")
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


def cmd_evaluate(args) -> int:
    layout = _layout(args)
    results = Path(args.results_dir) if args.results_dir else layout.results
    rows = evaluate(args.profile_obj, layout, results, progress=not args.no_progress, force=args.force)
    print(markdown_table(rows))
    print(f"wrote {results}/table.csv, table.md, per_sample.csv, provenance.json")
    return 0


def cmd_reproduce(args) -> int:
    """The main job: the numbered notebooks in order (papermill), figures and tables collected."""
    if args.profile_obj.name == "paper":  # hours of GPU time: say so before starting
        est = _estimate(args.profile_obj)
        print(f"the paper profile: about {est['estimated_hours']['T4']:.1f} h on a T4, "
              f"{est['estimated_hours']['A100']:.1f} h on an A100 (counted FLOPs; see `qpi doctor`)", flush=True)
    t0 = time.perf_counter()
    try:
        times = run_chain(args.profile_obj.name, _layout(args), args.figures_dir, args.results_dir,
                          args.notebooks_dir, update_notebooks=args.update_notebooks, progress=not args.no_progress,
                          overrides=args.overrides, only=args.only)
    except ChainError as exc:
        print(f"qpi reproduce: error: {exc}", file=sys.stderr)
        return 1
    print("notebook wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    print(f"chain done in {time.perf_counter() - t0:.0f} s")
    return 0


def cmd_seeds(args) -> int:
    """The table over several seeds (data, splits, training): mean and 95 % interval per cell."""
    prof = args.profile_obj
    root = args.run_dir or Path("runs") / f"{prof.name}-seeds"
    out = Path(args.results_dir) if args.results_dir else project_root() / "results" / prof.name
    t0 = time.perf_counter()
    tables, seconds, samples = {}, {}, []
    for seed in args.seeds:
        s0 = time.perf_counter()
        seeded = get_profile(prof.name, {**_override_dict(args), **seed_overrides(seed)})
        tables[seed] = run_table(seeded, Path(root) / f"seed-{seed}", progress=not args.no_progress)
        samples += per_sample_rows(Path(root) / f"seed-{seed}" / "results", seed)
        seconds[seed] = round(time.perf_counter() - s0, 1)
        print(f"seed {seed} done in {seconds[seed]:.0f} s", flush=True)
    rows = summarise(tables)
    for r in rows:
        r["paper_rmse_pm1"] = TABLE1_RMSE.get((r["setting"], r["method"]), float("nan"))
    write_seed_results(rows, out, "table_seeds", prof, args.seeds,
                       f"ID/OOD table over seeds {', '.join(map(str, args.seeds))} (profile {prof.name})",
                       "v1 Table 1", {"seconds_per_seed": seconds, "total_seconds": round(time.perf_counter() - t0, 1),
                                      "command": "qpi " + " ".join(sys.argv[1:])})
    paired = paired_table(samples, [(("", a), ("", b)) for a, b in COMPARISONS])
    write_paired(paired, out, "table_seeds")
    print(markdown_summary(rows, "v1 Table 1"))
    print(markdown_paired(paired))
    print(f"wrote {out}/table_seeds.csv, table_seeds.md, table_seeds_paired.* ({time.perf_counter() - t0:.0f} s)")
    return 0


def cmd_learning_curves(args) -> int:
    """Learning curves: both methods trained on less data (qpi_lab.learning_curves), over seeds."""
    from .learning_curves import AXES, FRACTIONS, METHODS, run_learning_curves

    prof = args.profile_obj
    root = args.run_dir or Path("runs") / f"{prof.name}-learning-curves"
    base = args.base_run_dir or Path("runs") / f"{prof.name}-seeds"
    out = Path(args.results_dir) if args.results_dir else project_root() / "results" / prof.name
    t0 = time.perf_counter()
    rows, paired = run_learning_curves(prof.name, args.seeds, root, base, overrides=_override_dict(args),
                                       progress=not args.no_progress)
    write_csv(out / "learning_curves.csv", rows)
    write_csv(out / "learning_curves_paired.csv", paired)
    write_text(out / "learning_curves_provenance.json", json.dumps(
        provenance(prof, None, {"command": "qpi " + " ".join(sys.argv[1:]), "seeds": list(args.seeds),
                                "axes": AXES, "fractions": list(FRACTIONS), "methods": list(METHODS),
                                "total_seconds": round(time.perf_counter() - t0, 1)}), indent=2) + "\n")
    for r in paired:
        print(f"{r['axis']:>12} {r['fraction']:>5g} {r['setting']:>3}: two-step - one-step "
              f"{r['two_step_minus_one_step_paper']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] {r['verdict']}")
    print(f"wrote {out}/learning_curves.csv, learning_curves_paired.csv ({time.perf_counter() - t0:.0f} s)")
    return 0


def cmd_ablation(args) -> int:
    """One of the paper's ablations (or the kit's), over several seeds."""
    prof = args.profile_obj
    root = args.run_dir or Path("runs") / f"{prof.name}-ablations"
    out = Path(args.results_dir) if args.results_dir else project_root() / "results" / prof.name / "ablations"
    t0 = time.perf_counter()
    names = list(ABLATIONS) if args.name == "all" else [args.name]
    for name in names:
        ab, t_ab = ABLATIONS[name], time.perf_counter()
        rows, paired = run_ablation(name, prof.name, args.seeds, Path(root) / name, base_root=args.base_run_dir,
                                    overrides=_override_dict(args), progress=not args.no_progress)
        write_paired(paired, out, name)
        ran = [label for label in ab.variants  # trained, not "not run" (a row per test: "<label>, test ...")
               if any(r["seeds"] and (r["variant"] == label or r["variant"].startswith(label + ",")) for r in rows)]
        variants = {label: effective_variant(name, label, prof.name, Path(root) / name, _override_dict(args), args.seeds)
                    for label in ran}
        for label in sorted(set(ran) & set(ab.retune)):  # the learning rates chosen again, kept with the results
            chosen = retune_record(Path(root) / name, label)
            write_text(out / f"{name}_{chosen.parent.parent.name}_learning_rates.json", chosen.read_text())
        write_seed_results(rows, out, name, prof, args.seeds, ab.title, "paper" if ab.paper else "",
                           {"ablation": name, "variants": variants, "methods": list(ab.methods),
                            "explanation": ab.explanation, "command": "qpi " + " ".join(sys.argv[1:]),
                            "total_seconds": round(time.perf_counter() - t_ab, 1)})
        print(f"## {ab.title}\n\n{markdown_summary(rows, 'paper' if ab.paper else '')}\n{markdown_paired(paired)}",
              flush=True)
        if ab.real_maps:  # the same networks on the real maps: <name>_real_maps.{csv,md}
            real = real_map_scores(name, prof.name, args.seeds, Path(root) / name, overrides=_override_dict(args))
            write_csv(out / f"{name}_real_maps.csv", real)
            write_text(out / f"{name}_real_maps.md", f"# {ab.title}: real maps, held out\n\n{markdown_real_maps(real)}")
            print(markdown_real_maps(real), flush=True)
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _recorded_seconds(profile_name: str) -> dict[str, float | None]:
    """What the committed results say each stage of `qpi figures` last took, in s (None: not recorded)."""
    res = project_root() / "results" / profile_name

    def read(path: Path, key: str | None = None) -> float | None:
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        value = value.get(key) if key else value
        return float(sum(value.values())) if isinstance(value, dict) else value

    ablations = [read(p, "total_seconds") for p in sorted((res / "ablations").glob("*_provenance.json"))]
    return {"seeds": read(res / "table_seeds_provenance.json", "total_seconds"),
            "ablation": sum(ablations) if ablations and None not in ablations else None,
            "reproduce": read(res / "chain_times.json")}


def cmd_figures(args) -> int:
    """Every paper figure and table the kit maps, in one go: the ID/OOD table over seeds (Table 1),
    every ablation (Tables 2 and III, the kit's own), then the notebook chain (Fig. 4(b), t-SNE,
    sweeps, real data) on seed 0's run. Networks already trained for the same settings are reused
    (each training checks its fingerprint and says "already trained")."""
    from tqdm.auto import tqdm

    prof = args.profile_obj
    seeds_root = args.run_dir or Path("runs") / f"{prof.name}-seeds"
    recorded = _recorded_seconds(prof.name)
    common = ["--profile", prof.name, *(f"--set={o}" for o in args.overrides), *(["--no-progress"] if args.no_progress else [])]
    seeds = [str(s) for s in args.seeds]
    stages = [
        ("seeds", f"Table 1 (ID/OOD, every method) over seeds {' '.join(seeds)}",
         ["seeds", *common, "--seeds", *seeds, "--run-dir", str(seeds_root)]),
        ("ablation", f"every ablation ({', '.join(ABLATIONS)}): Tables 2 and III and the kit's own",
         ["ablation", "all", *common, "--seeds", *seeds, "--run-dir", str(Path(seeds_root).with_name(f"{prof.name}-ablations")),
          "--base-run-dir", str(seeds_root)]),
        ("reproduce", "the notebook chain 01-09 on seed 0's run: Fig. 4(b), t-SNE, sweeps, real data, figures/",
         ["reproduce", *common, "--run-dir", str(Path(seeds_root) / f"seed-{seeds[0]}"),
          *(["--update-notebooks"] if args.update_notebooks else [])]),
    ]
    print(f"qpi figures --profile {prof.name}: the plan")
    for i, (name, what, argv) in enumerate(stages, 1):
        took = recorded[name]
        when = f"last recorded run: {took / 60:.0f} min" if took else "no recorded run for this profile"
        print(f"  {i}. qpi {' '.join(argv)}\n     {what} ({when}; networks trained before are reused)")
    if args.dry_run:
        return 0
    t0 = time.perf_counter()
    for name, what, argv in tqdm(stages, desc="qpi figures", unit="stage", disable=args.no_progress):
        code = main(argv)
        if code:
            print(f"qpi figures: stage `qpi {name}` failed (exit {code}); rerun `qpi figures` to resume: finished "
                  "trainings are reused", file=sys.stderr)
            return code
    print(f"qpi figures: done in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


def _override_dict(args) -> dict:
    return dict(parse_override(o) for o in (args.overrides or []))


COMMANDS = {
    "profile": (cmd_profile, "print a profile's full configuration as JSON", False),
    "simulate": (cmd_simulate, "simulate kernels and observations and write the dataset", True),
    "import-authors": (cmd_import_authors, "the authors' released CSV files (QPI-Dataset-100kernels) as the run's "
                                           "dataset; then train and evaluate as usual", True),
    "train-kernel-vae": (_train("kernel_vae"), "step 1: train the kernel VAE (MSE + alpha sym + beta KL)", True),
    "train-alignment": (_train("alignment"), "step 2: train the observation encoder to the frozen kernel latents", True),
    "train-one-step": (_train("one_step"), "the kit's baseline: train (Y, M) -> kernel directly, from the step-1 VAE", True),
    "train-one-step-paper": (_train("one_step_paper"), "the paper's baseline: the same, from the model section's "
                                                       "(pretrained) weights", True),
    "doctor": (cmd_doctor, "device, versions, pretrained weights, and the estimated time of a profile", False),
    "pretrain": (cmd_pretrain, "the kit prior: pretrain the model's VAE on a corpus of simulated kernels and write "
                               "priors/<name>.safetensors (a profile uses it as model.pretrained=qpi-kit/<name>)", False),
    "learning-rates": (cmd_learning_rates, "choose every network's learning rate on validation "
                                           "(qpi_lab.learning_rates); writes results/<profile>/learning_rates.json", True),
    "data-design": (cmd_data_design, "choose on validation how many training-only kernels the profile simulates "
                                     "(qpi_lab.data_design); writes results/<profile>/data_design.json", True),
    "check": (cmd_check, "verify a run directory in full: dataset hash, activation maps, model files", True),
    "evaluate": (cmd_evaluate, "ID/OOD table (MAE, MSE, RMSE on [0,1] and [-1,1]) with provenance", True),
    "seeds": (cmd_seeds, "the ID/OOD table over several seeds (data and training): mean and 95 % interval; "
                         "writes results/<profile>/table_seeds.*", True),
    "ablation": (cmd_ablation, "an ablation (symmetric_loss, angles, warm_start, noise_augmentation, pretraining, "
                               "realistic_training, or all) over several seeds; writes results/<profile>/ablations/<name>.*", True),
    "learning-curves": (cmd_learning_curves, "when does latent alignment beat one-step? both methods trained on "
                                             "fractions of the training kernels and observations, over seeds; writes "
                                             "results/<profile>/learning_curves*.csv", True),
    "figures": (cmd_figures, "every paper figure and table the kit maps: seeds, every ablation, then the notebook "
                             "chain; prints the plan first and reuses trained networks", False),
    "reproduce": (cmd_reproduce, "run the numbered notebooks in order (papermill) into --run-dir, collect "
                                 "figures into figures/<profile> and tables into results/<profile>", True),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qpi",
        description="qpi-kit: simulate QPI data, train the kernel VAE and the alignment encoder, "
                    "evaluate, and reproduce the whole notebook chain.",
    )
    parser.add_argument("--version", action="version", version=f"qpi-kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, help_text, has_run_dir) in COMMANDS.items():
        # help is %-formatted by argparse (a literal "95 % interval" broke `qpi --help`), description is not
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        _common(p, run_dir=has_run_dir)
        if name in ("simulate", "import-authors"):
            p.add_argument("--out", type=Path, default=None,
                           help="dataset directory to write (default <run-dir>/data); must be new, empty or a "
                                "dataset (replaced atomically)")
            p.add_argument("--force", action="store_true",
                           help="replace --out even if it holds other files (they are deleted)")
        for extra in EXTRA_ARGS.get(name, ()):
            extra(p)
        p.set_defaults(func=func)
    return parser


_restart = lambda p: p.add_argument("--restart", action="store_true",
                                    help="ignore checkpoints and trained models in the run directory")
_results = lambda p: p.add_argument("--results-dir", type=Path, default=None,
                                    help="where tables go (default <run-dir>/results for evaluate, "
                                         "results/<profile> for reproduce)")
_seeds = lambda p: p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                                  help="seeds to run (data, splits and training); default 0 1 2")
EXTRA_ARGS: dict = {
    "seeds": [_seeds, _results],
    "ablation": [lambda p: p.add_argument("name", choices=[*ABLATIONS, "all"], help="which ablation"), _seeds, _results,
                 lambda p: p.add_argument("--base-run-dir", type=Path, default=None,
                                          help="a `qpi seeds` run directory: its data and step-1 VAEs are reused")],
    "learning-curves": [_seeds, _results,
                        lambda p: p.add_argument("--base-run-dir", type=Path, default=None,
                                                 help="the `qpi seeds` run directory whose full-size runs are the "
                                                      "curves' last point (default runs/<profile>-seeds)")],
    "pretrain": [_restart,
                 lambda p: p.add_argument("--run-dir", type=Path, default=None,
                                          help="where the prior trains (default runs/<profile>-prior)"),
                 lambda p: p.add_argument("--out", type=Path, default=None,
                                          help="the prior file to write (default priors/<prior.name>.safetensors)")],
    "import-authors": [lambda p: p.add_argument("paths", nargs="+", type=Path,
                                                help="the CSV files, one per kernel, or a folder of them"),
                       lambda p: p.add_argument("--symmetry", type=int, nargs="+", default=None,
                                                help="each file's symmetry order (0 2 3 4 6), in the files' order; "
                                                     "default: estimated from the kernel images"),
                       lambda p: p.add_argument("--order", choices=("C", "F"), default="C",
                                                help="how the images are flattened: C row by row (default), F "
                                                     "column by column")],
    "train-kernel-vae": [_restart],
    "train-alignment": [_restart],
    "train-one-step": [_restart],
    "train-one-step-paper": [_restart],
    "evaluate": [_results, lambda p: p.add_argument("--force", action="store_true",
                                                     help="replace results files in --results-dir that the kit did not write")],
    "learning-rates": [_results],
    "data-design": [_results],
    "doctor": [lambda p: p.add_argument("--no-measure", dest="measure", action="store_false",
                                        help="skip timing real training steps on this device (slow on a CPU for "
                                             "the colab and paper profiles)"),
               lambda p: p.add_argument("--json", type=Path, default=None, help="also write the report here")],
    "figures": [_seeds,
                lambda p: p.add_argument("--run-dir", type=Path, default=None,
                                         help="the seeds' run directory (default runs/<profile>-seeds; the "
                                              "ablations go beside it, the chain runs in its seed-0 run)"),
                lambda p: p.add_argument("--dry-run", action="store_true", help="print the plan and stop"),
                lambda p: p.add_argument("--update-notebooks", action="store_true",
                                         help="write the executed notebooks back over the sources")],
    "reproduce": [_results,
                  lambda p: p.add_argument("--figures-dir", type=Path, default=None,
                                           help="where the chain's figures are collected (default figures/<profile>)"),
                  lambda p: p.add_argument("--notebooks-dir", type=Path, default=None,
                                           help="where the numbered notebooks are (default <checkout>/notebooks)"),
                  lambda p: p.add_argument("--update-notebooks", action="store_true",
                                           help="write the executed notebooks back over the sources (regenerates "
                                                "the committed outputs)"),
                  lambda p: p.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK",
                                           help="run only these notebooks (e.g. 09_ablations), with the run's "
                                                "artefacts in place; their times are merged into chain_times.json")],
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.profile_obj = get_profile(args.profile or default_profile_name(), args.overrides)
        return int(args.func(args) or 0)
    except (QpiError, FileNotFoundError, ChainError) as exc:  # every error the kit raises on purpose names its cause
        print(f"qpi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that is a file, a read-only place, a full disk: say which
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"qpi {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nqpi {args.command}: interrupted; rerun the same command to resume "
              "(training continues from its last checkpoint)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
