"""Tests of the qpi command (qpi_lab.cli); the bad-input cases at the end: the command line: every bad input is one line on stderr and a non-zero exit, never a traceback.
"""
import subprocess
import sys
import pytest
from qpi_lab.cli import main
from qpi_utils.data import load_dataset
import qpi_lab.cli as cli


def test_simulate_writes_a_loadable_dataset(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["simulate", "--profile", "smoke", "--out", str(out), "--no-progress",
                 "--set", "simulation.n_observations=3"]) == 0
    ds = load_dataset(out, verify=True)
    assert ds.observations.shape == (10, 3, 64, 64)
    assert "content hash" in capsys.readouterr().out


def test_bad_override_is_a_clear_error(tmp_path, capsys):
    code = main(["simulate", "--profile", "smoke", "--out", str(tmp_path / "d"), "--set", "simulation.n_kernel=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown key(s) simulation.n_kernel" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_every_help_page_prints(capsys):
    """`qpi --help` and each command's --help print (a literal % in a command's help once made
    argparse raise a TypeError for the top-level page)."""
    from qpi_lab.cli import COMMANDS

    for argv in (["--help"], *([name, "--help"] for name in COMMANDS)):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0, argv
        out = capsys.readouterr().out
        assert "usage: qpi" in out, argv
        if argv == ["--help"]:
            assert "95 % interval" in out and all(name in out for name in COMMANDS)


def test_console_script_help_explains_itself():
    out = subprocess.run([sys.executable, "-m", "qpi_lab.cli", "simulate", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--profile" in out and "--out" in out and "smoke" in out


# ------------------------------------------------------------------------------------------
# bad input


def _run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


def test_simulate_into_a_folder_of_other_files_keeps_them(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "thesis.txt").write_text("keep")
    code, err = _run(capsys, "simulate", "--profile", "smoke", "--out", str(tmp_path / "x"), "--no-progress")
    assert code == 2 and "not a dataset the kit wrote" in err and "Traceback" not in err
    assert (tmp_path / "x" / "thesis.txt").read_text() == "keep"


@pytest.mark.parametrize("argv, message", [
    (["simulate", "--profile", "smoke", "--set", "simulation.snr_db=NaN"], "snr_db must be a finite number"),
    (["simulate", "--profile", "smoke", "--set", "physics.ls_iterations=-5"], "ls_iterations must be >= 1"),
    (["train-alignment", "--profile", "smoke", "--run-dir", "{tmp}/empty"], "qpi simulate --profile smoke"),
    (["evaluate", "--profile", "smoke", "--run-dir", "{tmp}/empty"], "is missing"),
    (["simulate", "--profile", "smoke", "--out", "{tmp}/afile/ds"], "is a file"),
    (["simulate", "--profile", "smoke", "--out", "{tmp}/afile"], "is not a directory"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("x")
    code, err = _run(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv], "--no-progress")
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_an_os_error_names_the_path(tmp_path, capsys, monkeypatch):
    def fail(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "results"))

    monkeypatch.setattr(cli, "evaluate", fail)
    code, err = _run(capsys, "evaluate", "--profile", "smoke", "--run-dir", str(tmp_path))
    assert code == 2 and f"{tmp_path / 'results'}: Permission denied" in err


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.TRAINERS, "kernel_vae", interrupted)
    code, err = _run(capsys, "train-kernel-vae", "--profile", "smoke", "--run-dir", str(tmp_path))
    assert code == 130 and "interrupted; rerun the same command to resume" in err


def test_check_verifies_the_dataset_in_full(tmp_path, capsys, tiny_dataset):
    import numpy as np

    from qpi_utils.data import save_dataset

    save_dataset(tiny_dataset, tmp_path / "data")
    assert main(["check", "--profile", "smoke", "--run-dir", str(tmp_path)]) == 0
    obs = np.load(tmp_path / "data" / "observations.npy")
    obs[1, 3, 5, 5] = 0.5  # an edit the sampled load check does not see
    np.save(tmp_path / "data" / "observations.npy", obs)
    code, err = _run(capsys, "check", "--profile", "smoke", "--run-dir", str(tmp_path))
    assert code == 2 and ("content hash" in err or "changed after it was written" in err)


def test_version_names_the_kit(capsys):
    from qpi_utils import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"qpi-kit {__version__}"


def test_doctor_offline_names_the_missing_network_and_the_missing_gpu(capsys, monkeypatch, tmp_path):
    """`qpi doctor --profile colab` on this CPU machine without a hub: it says the hub cannot be
    reached (not that a file is missing) and that a GPU profile on a CPU takes hours."""
    import qpi_utils.models as models

    monkeypatch.setattr(models, "_hub_reachable", lambda host="huggingface.co": False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["doctor", "--profile", "colab", "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "the hub cannot be reached" in out and "madebyollin/sdxl-vae-fp16-fix" in out
    assert "sized for a GPU and this machine has none" in out


def test_doctor_loads_the_kit_prior_from_the_kit_and_names_a_missing_one(capsys, monkeypatch, tmp_path):
    """`qpi doctor --profile quick`: its prior is a file of the kit, not a hub id, so no hub is
    needed to load it; a prior that is not there is named with how to make it."""
    import qpi_utils.models as models

    monkeypatch.setattr(models, "_hub_reachable", lambda host="huggingface.co": False)
    assert main(["doctor", "--profile", "quick", "--no-measure"]) == 0
    assert "pretrained weights qpi-kit/kernel-prior-small: load" in capsys.readouterr().out
    monkeypatch.setenv("QPI_PRIORS_DIR", str(tmp_path))
    assert main(["doctor", "--profile", "quick", "--no-measure", "--set", "model.pretrained=qpi-kit/no-such-prior"]) == 0
    out = capsys.readouterr().out
    assert "qpi-kit/no-such-prior: do not load" in out and "qpi pretrain" in out


def test_figures_prints_its_plan_with_every_stage(capsys):
    """`qpi figures --dry-run`: the three commands it will run, in order, each with what it makes and
    what its last recorded run took."""
    assert main(["figures", "--profile", "quick", "--dry-run"]) == 0
    out = capsys.readouterr().out
    stages = [line.strip() for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert [s.split()[2] for s in stages] == ["seeds", "ablation", "reproduce"]
    assert "--base-run-dir runs/quick-seeds" in stages[1] and "runs/quick-seeds/seed-0" in stages[2]
    assert "last recorded run" in out and "Fig. 4(b)" in out


def test_pretrain_writes_a_prior_that_training_starts_from(tmp_path, capsys, monkeypatch):
    """`qpi pretrain` at smoke: a prior file with the weights of the epoch chosen on the validation
    corpus, its corpus and its provenance; a profile naming it starts step 1 from those weights,
    and a run whose held-out kernels the corpus came near is refused (PriorLeakError)."""
    import torch
    from safetensors import safe_open

    import qpi_utils.models as models
    from qpi_utils.config import get_profile
    from qpi_utils.models import build_kernel_vae, build_one_step, load_kit_prior

    monkeypatch.setenv("QPI_PRIORS_DIR", str(tmp_path / "priors"))  # no prior of the user's here
    out = tmp_path / "prior.safetensors"
    assert main(["pretrain", "--profile", "smoke", "--no-progress", "--run-dir", str(tmp_path / "run"),
                 "--out", str(out)]) == 0
    assert "best validation-corpus RMSE" in capsys.readouterr().out
    with safe_open(str(out), framework="pt") as fh:
        keys = list(fh.keys())
        assert "corpus.frequency" in keys and fh.get_tensor("corpus.frequency").shape == (40,)
    monkeypatch.setattr(models, "committed_file", lambda relative: out if relative.endswith("-smoke.safetensors") else None)
    prof = get_profile("smoke", {"model.pretrained": "qpi-kit/kernel-prior-smoke"})
    prior, record, corpus = load_kit_prior(prof.model)
    assert record["summary"]["best_epoch"] in (0, 1) and record["prior"]["n_kernels"] == 40 and len(corpus["phase"]) == 40
    vae, info = build_kernel_vae(prof.model)
    assert info.pretrained and info.source == "qpi-kit/kernel-prior-smoke"
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), prior.state_dict().values()))
    one, _ = build_one_step(prof.model)  # (Y, M) in: the M filter starts at zero
    assert torch.equal(one.encoder.conv_in.weight[:, :1], prior.encoder.conv_in.weight)
    assert not one.encoder.conv_in.weight[:, 1:].any()
    wrong = get_profile("smoke", {"model.pretrained": "qpi-kit/kernel-prior-smoke", "model.block_out_channels": [8, 8, 16, 16]})
    with pytest.raises(models.PretrainedWeightsError, match="another architecture: model.block_out_channels"):
        load_kit_prior(wrong.model)
    monkeypatch.setattr(models, "committed_file", lambda relative: None)
    with pytest.raises(models.PretrainedWeightsError, match="neither in .* nor committed with this version of the kit"):
        load_kit_prior(prof.model)
    # a prior the user made with `qpi pretrain` (written to QPI_PRIORS_DIR) loads without being committed
    assert main(["pretrain", "--profile", "smoke", "--no-progress", "--run-dir", str(tmp_path / "run")]) == 0
    assert (tmp_path / "priors" / "kernel-prior-smoke.safetensors").is_file()
    assert load_kit_prior(prof.model)[1]["prior"]["name"] == "kernel-prior-smoke"


@pytest.mark.parametrize("command", ["check", "train-kernel-vae", "evaluate"])
def test_settings_the_runs_data_were_not_made_with_stop_every_command(tmp_path, capsys, command):
    """A --set simulation.* override that the run's dataset was not made with is refused, naming
    both values, before any training or evaluation, and nothing is written."""
    run = tmp_path / "run"
    assert main(["simulate", "--profile", "smoke", "--run-dir", str(run), "--no-progress"]) == 0
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    capsys.readouterr()
    code = main([command, "--profile", "smoke", "--run-dir", str(run), "--no-progress",
                 "--set", "simulation.max_scatterers=12"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "simulation.max_scatterers: the data have 30, the profile asks for 12" in err
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_evaluate_never_replaces_a_users_table(trained_run, tmp_path, capsys, monkeypatch):
    import qpi_lab.evaluate

    run, _ = trained_run
    out = tmp_path / "mine"
    out.mkdir()
    (out / "table.md").write_text("my table")
    loaded = []  # the refusal comes before the networks are loaded and scored (minutes on quick)
    monkeypatch.setattr(qpi_lab.evaluate, "load_models", lambda *a, **k: loaded.append(1))
    code = main(["evaluate", "--profile", "smoke", "--run-dir", str(run), "--results-dir", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "table.md exist and were not written by the kit" in err and "Traceback" not in err
    assert not loaded
    assert (out / "table.md").read_text() == "my table" and sorted(p.name for p in out.iterdir()) == ["table.md"]
