"""Tests of training (qpi_utils.train); the bad-input cases at the end: training that cannot go right stops with a clear error; damaged files are named.
"""
import pytest
import torch
from qpi_utils.config import get_profile
from qpi_utils.data import save_dataset
from qpi_utils.models import ModelConfigError
from qpi_utils.runs import MissingArtefactError
from qpi_utils.train import train_alignment, train_kernel_vae, train_one_step, train_one_step_paper
from qpi_utils.checkpoints import CheckpointError, load_blob
from qpi_utils.train import TrainingError


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_three_trainings_run_end_to_end_on_smoke(run_dir, smoke_profile):
    s1 = train_kernel_vae(smoke_profile, run_dir, progress=False)
    s2 = train_alignment(smoke_profile, run_dir, progress=False)
    s3 = train_one_step(smoke_profile, run_dir, progress=False)
    for step, s in (("kernel_vae", s1), ("alignment", s2), ("one_step", s3)):
        assert (run_dir / "models" / f"{step}.pt").is_file()
        assert (run_dir / "logs" / f"{step}.csv").read_text().count("\n") == smoke_profile.kernel_vae.epochs + 1
        assert [r["epoch"] for r in s["history"]] == list(range(1, smoke_profile.kernel_vae.epochs + 1))
        curve = [s["start_val_rmse"]] + [r["val_rmse"] for r in s["history"]]  # epoch 0 is the start
        assert curve[s["best_epoch"]] == s["best_val_rmse"] == min(curve)  # the curves the notebook plots
        assert not (run_dir / "figures").exists()  # training draws nothing
        assert s["model_info"]["pretrained"] is False
    assert s2["latent_shape"] == [4, 8, 8]
    # a second call finds the trained model and does not train again
    again = train_kernel_vae(smoke_profile, run_dir, progress=False)
    assert again == s1


def test_kernel_vae_loss_goes_down(run_dir):
    prof = get_profile("smoke", {"kernel_vae.epochs": 16, "kernel_vae.lr_step_size": 100})
    train_kernel_vae(prof, run_dir, progress=False)
    import csv

    rows = list(csv.DictReader(open(run_dir / "logs" / "kernel_vae.csv")))
    first, last = float(rows[0]["train_loss"]), float(rows[-1]["train_loss"])
    assert last < 0.75 * first


def test_interrupted_training_resumes_to_the_same_weights(run_dir, tmp_path_factory, tiny_dataset, smoke_profile):
    prof = get_profile("smoke", {"one_step.epochs": 3, "one_step.init": "model"})
    straight = tmp_path_factory.mktemp("straight")
    save_dataset(tiny_dataset, straight / "data")
    train_one_step(prof, straight, progress=False)

    out = train_one_step(prof, run_dir, progress=False, stop_after=1)
    assert out == {"interrupted_after_epoch": 1}
    assert not (run_dir / "models" / "one_step.pt").exists()
    assert (run_dir / "checkpoints" / "one_step.pt").is_file()
    train_one_step(prof, run_dir, progress=False)
    a, b = _state(straight / "models" / "one_step.pt"), _state(run_dir / "models" / "one_step.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    hist_a = load_blob(straight / "models" / "one_step.pt")["history"]
    hist_b = load_blob(run_dir / "models" / "one_step.pt")["history"]
    assert [r["train_loss"] for r in hist_a] == [r["train_loss"] for r in hist_b]


def test_a_one_step_baseline_that_would_repeat_the_other_is_not_trained_twice(run_dir, tmp_path_factory,
                                                                               tiny_dataset, capsys):
    # the kit's baseline started where the paper's starts (as when step 1 keeps the prior itself):
    # the same start, settings and data
    prof = get_profile("smoke", {"one_step.init": "model"})
    train_one_step(prof, run_dir, progress=False)
    capsys.readouterr()
    copied = train_one_step_paper(prof, run_dir, progress=False)
    assert "the same training as one_step" in capsys.readouterr().out
    assert copied["same_training_as"] == "one_step" and copied["step"] == "one_step_paper"
    # what training it would have given: the paper's baseline trained alone
    alone = tmp_path_factory.mktemp("alone")
    save_dataset(tiny_dataset, alone / "data")
    trained = train_one_step_paper(prof, alone, progress=False)
    assert "same_training_as" not in trained
    a, b = _state(run_dir / "models" / "one_step_paper.pt"), _state(alone / "models" / "one_step_paper.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["val_rmse"] for r in copied["history"]] == [r["val_rmse"] for r in trained["history"]]
    assert (run_dir / "logs" / "one_step_paper.csv").read_text().count("\n") == prof.one_step.epochs + 1
    assert train_one_step_paper(prof, run_dir, progress=False)["same_training_as"] == "one_step"  # a model as any
    # one setting apart, or another start (the kit's default: from step 1): trained, not copied
    for overrides in ({"one_step.init": "model", "one_step_paper.lr": 2e-3}, {}):
        other = tmp_path_factory.mktemp("other")
        save_dataset(tiny_dataset, other / "data")
        prof = get_profile("smoke", overrides)
        if not overrides:
            train_kernel_vae(prof, other, progress=False)
        train_one_step(prof, other, progress=False)
        assert "same_training_as" not in train_one_step_paper(prof, other, progress=False)


def test_checkpoint_from_another_profile_is_refused(run_dir, smoke_profile):
    train_kernel_vae(smoke_profile, run_dir, progress=False, stop_after=1)
    other = get_profile("smoke", {"kernel_vae.lr": 5e-4})
    with pytest.raises(ModelConfigError, match="different configuration.*train"):
        train_kernel_vae(other, run_dir, progress=False)
    renamed = get_profile("quick", {"simulation.n_kernels": 10, "simulation.n_observations": 8,
                                    "simulation.max_scatterers": 30, "model.pretrained": None})
    with pytest.raises(ModelConfigError, match="made with profile 'smoke'"):
        train_kernel_vae(renamed, run_dir, progress=False)


def test_steps_in_the_wrong_order_fail_before_training(run_dir, smoke_profile, tmp_path_factory):
    with pytest.raises(MissingArtefactError, match="step-1 kernel VAE is missing.*qpi train-kernel-vae"):
        train_alignment(smoke_profile, run_dir, progress=False)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(MissingArtefactError, match="qpi simulate"):
        train_kernel_vae(smoke_profile, empty, progress=False)
    assert not (run_dir / "checkpoints" / "alignment.pt").exists()


def test_latent_mismatch_between_steps_is_refused(run_dir, smoke_profile):
    train_kernel_vae(smoke_profile, run_dir, progress=False)
    changed = get_profile("smoke", {"model.block_out_channels": [8, 16, 16, 32]})
    with pytest.raises(ModelConfigError, match="different configuration"):
        train_alignment(changed, run_dir, progress=False)


def test_realistic_training_sees_the_realistic_copy_and_is_another_model(run_dir, smoke_profile, tmp_path_factory,
                                                                         tiny_dataset):
    """Step 2 with ``realistic_data`` trains and selects its epoch on the realistic copy: from the
    same start and seed its losses differ from the clean run's, the copy is in the run directory,
    and the clean profile refuses its model (and the other way round)."""
    import shutil

    from qpi_utils.checkpoints import load_observation_encoder

    train_kernel_vae(smoke_profile, run_dir, progress=False)
    clean = train_alignment(smoke_profile, run_dir, progress=False)
    other = tmp_path_factory.mktemp("realistic")
    save_dataset(tiny_dataset, other / "data")
    (other / "models").mkdir()
    shutil.copy(run_dir / "models" / "kernel_vae.pt", other / "models" / "kernel_vae.pt")
    realistic = get_profile("smoke", {"alignment.realistic_data": True, "alignment.augment_snr_db": [10.0, 30.0]})
    summary = train_alignment(realistic, other, progress=False)
    assert (other / "data-realistic" / "meta.json").is_file() and not (run_dir / "data-realistic").exists()
    assert summary["best_val_rmse"] != pytest.approx(clean["best_val_rmse"], rel=1e-6)
    load_observation_encoder(realistic, other, tiny_dataset)
    with pytest.raises(ModelConfigError, match="different configuration"):
        load_observation_encoder(smoke_profile, other, tiny_dataset)


# ------------------------------------------------------------------------------------------
# bad input


def test_a_diverging_run_stops_and_saves_nothing(run_dir):
    prof = get_profile("smoke", {"kernel_vae.lr": 1e6})
    with pytest.raises(TrainingError, match=r"kernel_vae: .*(loss became|non-finite).*lower kernel_vae.lr"):
        train_kernel_vae(prof, run_dir, progress=False)
    assert not (run_dir / "models" / "kernel_vae.pt").exists()


DAMAGE = [
    ("empty", b""),
    ("random bytes", bytes(range(256)) * 4),
    ("not a checkpoint", None),  # a valid torch file holding something else
]


@pytest.mark.parametrize("case, content", DAMAGE, ids=[d[0] for d in DAMAGE])
@pytest.mark.parametrize("artefact", ["checkpoints", "models"])
def test_a_damaged_file_is_named_with_what_to_do(run_dir, smoke_profile, case, content, artefact):
    path = run_dir / artefact / "kernel_vae.pt"
    path.parent.mkdir()
    if content is None:
        torch.save({"hello": 1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{path.name}.*--restart"):
        train_kernel_vae(smoke_profile, run_dir, progress=False)


def test_a_truncated_model_file_is_named(run_dir, smoke_profile):
    train_kernel_vae(smoke_profile, run_dir, progress=False)
    path = run_dir / "models" / "kernel_vae.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged or incomplete"):
        load_blob(path)


def test_a_run_is_extended_by_raising_its_epochs(run_dir, smoke_profile, tmp_path_factory, tiny_dataset):
    train_kernel_vae(smoke_profile, run_dir, progress=False)
    longer = get_profile("smoke", {"kernel_vae.epochs": smoke_profile.kernel_vae.epochs + 1})
    summary = train_kernel_vae(longer, run_dir, progress=False)
    assert summary["epochs"] == longer.kernel_vae.epochs
    straight = tmp_path_factory.mktemp("straight")
    save_dataset(tiny_dataset, straight / "data")
    train_kernel_vae(longer, straight, progress=False)
    a, b = (load_blob(d / "models" / "kernel_vae.pt")["state_dict"] for d in (run_dir, straight))
    assert all(torch.equal(a[k], b[k]) for k in a)  # extending = having asked for more at the start
    with pytest.raises(TrainingError, match="more than"):
        train_kernel_vae(smoke_profile, run_dir, progress=False)


def test_ctrl_c_keeps_the_last_checkpoint_and_says_how_to_resume(run_dir, smoke_profile, monkeypatch, capsys):
    import qpi_utils.train as train_module

    real = train_module.kernel_vae_loss
    calls = {"n": 0}

    def interrupting(tcfg, *origin):
        loss_fn = real(tcfg, *origin)

        def wrapped(model, batch):
            calls["n"] += 1
            if calls["n"] == 3:  # in epoch 2 (epoch 1: 2 training batches; validation does not call the loss)
                raise KeyboardInterrupt
            return loss_fn(model, batch)

        return wrapped

    monkeypatch.setattr(train_module, "kernel_vae_loss", interrupting)
    with pytest.raises(KeyboardInterrupt):
        train_kernel_vae(smoke_profile, run_dir, progress=False)
    assert "interrupted; 1 of 2 epochs are saved in the checkpoint" in capsys.readouterr().out
    assert load_blob(run_dir / "checkpoints" / "kernel_vae.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "kernel_vae_loss", real)
    assert train_kernel_vae(smoke_profile, run_dir, progress=False)["epochs"] == 2
