import json
import math

import numpy as np
import pytest
from scipy import stats

import qpi_lab.seeds as seeds
from qpi_lab.cli import main
from qpi_utils.config import get_profile
from qpi_utils.files import read_csv


def _rows(rmse: float, method: str = "two_step") -> list[dict]:
    return [{"setting": "OOD", "method": method, "n": 10, "rmse": rmse, "rmse_pm1": 2 * rmse,
             "rmse_affine": rmse / 2, "mae": rmse, "mse": rmse ** 2}]


def test_summary_is_mean_and_student_t_interval_over_seeds():
    out = seeds.summarise({0: _rows(0.1), 1: _rows(0.2), 2: _rows(0.3)}, "v")
    assert len(out) == 1 and out[0]["seeds"] == 3 and out[0]["variant"] == "v"
    assert out[0]["rmse_mean"] == pytest.approx(0.2) and out[0]["rmse_std"] == pytest.approx(0.1)
    assert out[0]["rmse_ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3))
    assert out[0]["rmse_pm1_mean"] == pytest.approx(0.4)


def test_a_win_needs_separate_intervals():
    a = seeds.summarise({0: _rows(0.10), 1: _rows(0.11), 2: _rows(0.12)})[0]
    b = seeds.summarise({0: _rows(0.20), 1: _rows(0.21), 2: _rows(0.22)})[0]
    wide = seeds.summarise({0: _rows(0.05), 1: _rows(0.30), 2: _rows(0.12)})[0]
    assert seeds.verdict(a, b) == "a" and seeds.verdict(b, a) == "b"
    assert seeds.verdict(a, wide) == "tie"


def test_seed_overrides_change_data_splits_and_training():
    p = get_profile("smoke", seeds.seed_overrides(3))
    assert p.simulation.seed == p.simulation.split_seed == 3
    assert p.kernel_vae.seed == p.alignment.seed == p.one_step.seed == 3


def test_pretrained_variant_without_weights_is_marked_not_run(monkeypatch, tmp_path):
    """Offline the pretrained row says why it was not run; no random-init number carries its name."""
    calls = []
    monkeypatch.setattr(seeds, "run_table", lambda prof, run_dir, methods, base_dir=None, progress=True:
                        calls.append(prof.model.architecture) or _rows(0.1 + 0.01 * prof.simulation.seed))
    monkeypatch.setattr(seeds, "per_sample_rows", lambda results, seed, variant="": [])
    monkeypatch.setattr(seeds, "retuned_rates", lambda *a, **k: {})  # tested on its own below
    rows, _ = seeds.run_ablation("pretraining", "smoke", [0, 1], tmp_path)
    pre = [r for r in rows if r["variant"].startswith("pretrained")]
    # at smoke neither the kit prior (made for the quick architecture) nor the SDXL-VAE (offline) loads
    assert len(pre) == 2 and all(r["note"].startswith("not run: weights unavailable") and "rmse_mean" not in r
                                 for r in pre)
    assert calls == ["small", "small"]  # only the from-scratch variant ran, once per seed
    scratch = [r for r in rows if r["variant"] == "from scratch"]
    assert scratch[0]["paper_rmse_pm1"] == pytest.approx(0.1643)
    assert "not run" in seeds.markdown_summary(rows, "paper")


def test_a_variant_that_starts_elsewhere_gets_its_learning_rates_chosen_again_and_kept_with_its_results(
        tmp_path, monkeypatch, trained_run):
    """`qpi ablation pretraining`: from scratch, the profile's learning rates (chosen for its own
    start) are chosen again by the profile's rule on the first seed's data, for every network the
    ablation trains; the variant trains with them and the choice is written beside the results,
    the same as its record; it is reused, not made again, and refused for other settings. A
    pretrained start whose weights do not load here is a row that says so, not a number."""
    import dataclasses

    from qpi_lab.learning_rates import GRID

    ab = seeds.ABLATIONS["pretraining"]
    short = {**ab.variants["from scratch"], "kernel_vae.epochs": 2}  # the command is under test, not the schedule
    monkeypatch.setitem(seeds.ABLATIONS, "pretraining",
                        dataclasses.replace(ab, variants={**ab.variants, "from scratch": short}))
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "seed-0").symlink_to(trained_run[0])  # the smoke profile's seed 0, trained
    out = tmp_path / "results"
    code = main(["ablation", "pretraining", "--profile", "smoke", "--seeds", "0", "--run-dir", str(tmp_path / "ab"),
                 "--base-run-dir", str(tmp_path / "base"), "--results-dir", str(out), "--no-progress"])
    assert code == 0
    root = tmp_path / "ab" / "pretraining"
    record = seeds.retune_record(root, "from scratch")
    settings = json.loads(record.read_text())["settings"]
    assert settings["kernel_vae.schedule"] == "step" and settings["model.pretrained"] is None
    kept = out / "pretraining_from-scratch_learning_rates.json"
    assert kept.read_text() == record.read_text()
    chosen = json.loads(kept.read_text())["steps"]
    assert set(chosen) == {"kernel_vae", "alignment", "one_step_paper"}
    assert all(chosen[s]["chosen"] in GRID[s] for s in chosen)
    provenance = json.loads((out / "pretraining_provenance.json").read_text())
    trained_with = provenance["variants"]["from scratch"]
    assert {s: trained_with[f"{s}.lr"] for s in chosen} == {s: chosen[s]["chosen"] for s in chosen}
    rows = read_csv(out / "pretraining.csv")
    assert any(r["variant"] == "from scratch" and r["seeds"] == "1" and np.isfinite(float(r["rmse_mean"]))
               for r in rows)
    sdxl = [r for r in rows if r["variant"] == "pretrained (sdxl-vae-fp16-fix)"]
    assert sdxl and all(r["note"].startswith("not run: weights unavailable") for r in sdxl)
    # reused, not chosen again; and what the variant trains with
    monkeypatch.setattr(seeds, "choose_learning_rates", None)
    rates = seeds.retuned_rates("pretraining", "from scratch", "smoke", root, make=True)
    assert rates == {f"{s}.lr": chosen[s]["chosen"] for s in chosen}
    assert seeds.effective_variant("pretraining", "from scratch", "smoke", root)["kernel_vae.lr"] == rates["kernel_vae.lr"]
    # a variant the profile itself starts like is not retuned; a choice made for other settings is refused
    assert seeds.retuned_rates("warm_start", "random init", "smoke", tmp_path / "w") == {}
    with pytest.raises(ValueError, match="other settings"):
        seeds.retuned_rates("pretraining", "from scratch", "smoke", root, overrides={"alignment.batch_size": 4})
    with pytest.raises(FileNotFoundError, match="not chosen yet"):
        seeds.retuned_rates("pretraining", "from scratch", "smoke", tmp_path / "elsewhere")


def test_seeds_command_end_to_end_on_smoke(tmp_path):
    code = main(["seeds", "--profile", "smoke", "--seeds", "0", "1", "--run-dir", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "table_seeds.csv")
    cells = {(r["setting"], r["method"]) for r in rows}
    assert ("OOD", "two_step") in cells and ("ID", "least_squares") in cells
    assert cells == {(s, m) for s in ("ID", "OOD") for m in seeds.TABLE_METHODS}
    assert all(r["seeds"] == "2" and np.isfinite(float(r["rmse_ci95"])) for r in rows)
    # two seeds are two datasets
    h0 = (tmp_path / "runs" / "seed-0" / "data" / "meta.json").read_text()
    h1 = (tmp_path / "runs" / "seed-1" / "data" / "meta.json").read_text()
    assert h0 != h1
    assert (tmp_path / "out" / "table_seeds_provenance.json").is_file()
    paired = read_csv(tmp_path / "out" / "table_seeds_paired.csv")
    # the paper's comparison, paired per kernel over both seeds' test kernels
    two_vs_paper = [r for r in paired if (r["a"], r["b"]) == ("two_step", "one_step_paper")]
    assert {r["setting"] for r in two_vs_paper} == {"ID", "OOD"} and all(r["seeds"] == "2" for r in two_vs_paper)
    assert "paired interval" in (tmp_path / "out" / "table_seeds_paired.md").read_text()


def test_ablation_layout_is_where_run_ablation_trains(tmp_path):
    from qpi_lab.seeds import ABLATIONS, ablation_layout

    prof, layout = ablation_layout("symmetric_loss", "without (alpha 0)", "smoke", tmp_path / "symmetric_loss", seed=1)
    assert prof.kernel_vae.alpha == 0.0 and prof.simulation.seed == 1
    # the directory run_ablation trains the variant in (its label, slugged)
    assert layout.root == (tmp_path / "symmetric_loss" / "without-alpha-0" / "seed-1").resolve()
    with pytest.raises(ValueError, match="unknown ablation variant"):
        ablation_layout("symmetric_loss", "sometimes", "smoke", tmp_path)
    assert set(ABLATIONS["symmetric_loss"].variants) == {"with (alpha 0.7)", "without (alpha 0)"}


def test_realistic_training_ablation_end_to_end_on_smoke(tmp_path, trained_run):
    """Both variants are tested on the clean test sets and on the same realistic copy of them;
    the realistic variant trains its own step 2 on its copy; real-map scores come per variant."""
    import json

    import torch

    from qpi_utils import realdata as R
    from qpi_lab.seeds import ABLATIONS, markdown_real_maps, real_map_scores, run_ablation

    ab = ABLATIONS["realistic_training"]
    assert set(ab.variants) == {"clean", "realistic"} and ab.real_maps
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "seed-0").symlink_to(trained_run[0])  # the smoke profile's seed 0, trained
    rows, paired = run_ablation("realistic_training", "smoke", [0], tmp_path / "ab", base_root=tmp_path / "base",
                                progress=False)
    # every method of the realistic variant against the clean one, on the same test observations
    assert {(r["setting"], r["a"], r["b"]) for r in paired} >= {
        ("OOD", f"clean: {m}", f"realistic: {m}") for m in ab.methods}
    assert all(r["verdict"] in ("a", "b", "tie") and r["ci_low"] <= r["difference"] <= r["ci_high"] for r in paired)
    cells = {(r["variant"], r["setting"], r["method"]) for r in rows}
    for variant in ("clean", "realistic", "clean, test realistic 20 dB", "realistic, test realistic 20 dB"):
        assert {(variant, s, m) for s in ("ID", "OOD") for m in ab.methods} <= cells
    dirs = {v: tmp_path / "ab" / v / "seed-0" for v in ("clean", "realistic")}
    metas = [json.loads((d / "data-realistic" / "meta.json").read_text())["simulation"] for d in dirs.values()]
    assert metas[0] == metas[1]  # one realistic test set for both variants
    summaries = {v: torch.load(d / "models" / "alignment.pt", weights_only=False)["summary"] for v, d in dirs.items()}
    assert summaries["clean"]["best_val_rmse"] != summaries["realistic"]["best_val_rmse"]

    img, _, pos, _ = R.simulated_ag111(size_px=192, n_defects=30, seed=1)
    obs, maps, origins = R.tiles(R.level(img.data), pos, stride=32)
    windows = (R.RealWindows("simulated", obs, maps, origins, img.data, pos, img.pixel_nm[0]),)
    real = real_map_scores("realistic_training", "smoke", [0], tmp_path / "ab", windows=windows)
    assert {(r["variant"], r["method"]) for r in real} == {
        (v, m) for v in ("clean", "realistic") for m in ("defect_average", "least_squares", "two_step", "hybrid")}
    assert all(0 <= r["heldout_mean"] <= 1 and r["seeds"] == 1 for r in real)
    assert "| realistic | simulated | two_step | 1 |" in markdown_real_maps(real)


def test_a_step_1_loss_ablation_starts_its_variant_from_a_prior_pretrained_the_same_way(tmp_path, monkeypatch):
    """The kit prior is pretrained with step 1's loss: the variant without the symmetric loss gets a
    prior pretrained without it (else a variant that keeps the prior keeps the loss), made once."""
    from safetensors import safe_open

    from qpi_lab.seeds import ablation_layout, variant_prior

    monkeypatch.setenv("QPI_PRIORS_DIR", str(tmp_path / "priors"))
    assert main(["pretrain", "--profile", "smoke", "--no-progress", "--run-dir", str(tmp_path / "base-prior")]) == 0
    with_prior = {"model.pretrained": "qpi-kit/kernel-prior-smoke"}
    extra = variant_prior("symmetric_loss", "without (alpha 0)", "smoke", tmp_path / "ab", with_prior, make=True,
                          progress=False)
    assert extra["model.pretrained"] == "qpi-kit/kernel-prior-smoke-without-alpha-0" and extra["pretrain.alpha"] == 0
    with safe_open(str(tmp_path / "priors" / "kernel-prior-smoke-without-alpha-0.safetensors"), "pt") as fh:
        record = json.loads(fh.metadata()["provenance"])
    assert record["pretrain"]["alpha"] == 0.0 and record["prior"]["name"] == "kernel-prior-smoke-without-alpha-0"
    made = (tmp_path / "priors" / "kernel-prior-smoke-without-alpha-0.safetensors").stat().st_mtime_ns
    assert variant_prior("symmetric_loss", "without (alpha 0)", "smoke", tmp_path / "ab", with_prior,
                         make=True) == extra  # made once
    assert (tmp_path / "priors" / "kernel-prior-smoke-without-alpha-0.safetensors").stat().st_mtime_ns == made
    # the reference variant, an ablation of no loss, and a profile without a prior need none
    assert variant_prior("symmetric_loss", "with (alpha 0.7)", "smoke", tmp_path / "ab", with_prior) == {}
    assert variant_prior("warm_start", "random init", "smoke", tmp_path / "ab", with_prior) == {}
    assert variant_prior("symmetric_loss", "without (alpha 0)", "smoke", tmp_path / "ab") == {}
    prof, _ = ablation_layout("symmetric_loss", "without (alpha 0)", "smoke", tmp_path / "ab", overrides=with_prior)
    assert prof.model.pretrained == extra["model.pretrained"] and prof.kernel_vae.alpha == 0.0
