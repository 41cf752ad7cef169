"""Training that cannot go right stops with a clear error; damaged files are named."""
import pytest
import torch

from qpi_utils.checkpoints import CheckpointError, load_blob
from qpi_utils.config import get_profile
from qpi_utils.data import save_dataset
from qpi_utils.train import TrainingError, train_kernel_vae


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

    def interrupting(tcfg):
        loss_fn = real(tcfg)

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
