"""The GPU profiles on a CPU: their estimate, and the real 84 M-parameter training path."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from qpi_lab.budget import SUSTAINED_TFLOPS, chain_flops, estimate_seconds, flops_per_sample, training_samples
from qpi_utils.config import get_profile
from qpi_utils.data import save_dataset, simulate_dataset
from qpi_utils.train import train_alignment, train_kernel_vae, train_one_step_paper


def test_flops_scale_with_what_the_profile_runs():
    quick = get_profile("quick")
    per = flops_per_sample(quick)
    assert per["kernel_vae"] > per["alignment"] > 0  # step 2 never runs the decoder
    doubled = get_profile("quick", {"alignment.epochs": 2 * quick.alignment.epochs})
    a, b = chain_flops(quick, per), chain_flops(doubled, per)
    assert b["alignment"] == pytest.approx(2 * a["alignment"]) and b["one_step"] == a["one_step"]
    assert training_samples(quick)["kernel_vae"] == 70 * quick.kernel_vae.epochs  # 100 - 20 OOD - 10 validation


def test_the_colab_profile_fits_an_hour_on_a_t4_and_paper_does_not():
    per = flops_per_sample(get_profile("colab"))  # the same SDXL-VAE architecture for both
    colab = estimate_seconds(chain_flops(get_profile("colab"), per), SUSTAINED_TFLOPS["T4"])
    paper = estimate_seconds(chain_flops(get_profile("paper"), per), SUSTAINED_TFLOPS["T4"])
    assert 0.3 * 3600 < colab < 3600 < 3 * 3600 < paper


@pytest.fixture
def memory_dir(tmp_path):
    """A folder in memory (/dev/shm) where there is one: the 84 M-parameter networks' checkpoints,
    with Adam's state about 1 GB each, are written as they would be anywhere, without waiting for a disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 8e9):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="qpi-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_one_training_step_of_the_paper_architecture_runs_on_a_cpu(memory_dir):
    """The real paper code path (SDXL-VAE, 84 M parameters, random weights since the pretrained
    ones cannot be downloaded here) for one step of each of the paper's trainings (step 1, step 2,
    its one-step baseline, which starts from the same weights as step 1), at batch 1, on tiny data
    (3 observations per kernel, the fewest the splits allow: validation is the costly part)."""
    prof = get_profile("paper", {"model.allow_random_init": True, "simulation.n_kernels": 10,
                                 "simulation.n_observations": 3, "simulation.max_scatterers": 30,
                                 **{f"{s}.{k}": v for s in ("kernel_vae", "alignment", "one_step_paper")
                                    for k, v in (("epochs", 1), ("batch_size", 1), ("max_train_samples", 1))}})
    save_dataset(simulate_dataset(prof.simulation, profile="paper", progress=False), memory_dir / "data")
    with pytest.warns(RuntimeWarning, match="RANDOM initialisation"):
        s1 = train_kernel_vae(prof, memory_dir, progress=False)
    s2 = train_alignment(prof, memory_dir, progress=False)
    with pytest.warns(RuntimeWarning, match="RANDOM initialisation"):
        s3 = train_one_step_paper(prof, memory_dir, progress=False)
    assert s1["model_info"]["parameters"] > 83e6 and s1["model_info"]["pretrained"] is False
    assert s2["latent_shape"] == [4, 8, 8] and s3["epochs"] == 1


def test_one_training_step_of_the_colab_profile_runs_on_a_cpu(memory_dir, tiny_dataset):
    """The colab profile's step 1 (same SDXL-VAE as paper, its own hyperparameters), one step."""
    prof = get_profile("colab", {"model.allow_random_init": True, "simulation.n_kernels": 10,
                                 "simulation.n_observations": 8, "simulation.max_scatterers": 30,
                                 "kernel_vae.epochs": 1, "kernel_vae.batch_size": 1,
                                 "kernel_vae.max_train_samples": 1})
    save_dataset(tiny_dataset, memory_dir / "data")
    with pytest.warns(RuntimeWarning, match="RANDOM initialisation"):
        summary = train_kernel_vae(prof, memory_dir, progress=False)
    assert summary["epochs"] == 1 and summary["model_info"]["architecture"] == "sdxl"


def test_split_sizes_are_those_of_the_real_splits(tiny_dataset, smoke_profile):
    from qpi_lab.budget import split_sizes
    from qpi_utils.splits import make_splits

    s = smoke_profile.simulation
    real = make_splits(tiny_dataset.symmetry, tiny_dataset.n_observations, s.ood_fraction, s.id_test_fraction,
                       s.split_seed)
    sizes = split_sizes(smoke_profile)
    assert sizes["ood_kernels"] == len(real.ood_kernels) and sizes["train"] == len(real.train)
    assert sizes["id_test"] == len(real.id_test) and sizes["ood_test"] == len(real.ood_test)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_split_sizes_count_training_only_kernels_for_step_2_not_step_1(smoke_profile, fraction):
    """With ``simulation.extra_train_kernels``, step 1 still trains on the paper's kernels and the
    networks that read observations on every training pair, as the real splits of such data are."""
    from qpi_lab.budget import split_sizes

    base = split_sizes(get_profile("smoke", {"simulation.train_kernel_fraction": fraction}))
    prof = get_profile("smoke", {"simulation.extra_train_kernels": 7, "simulation.extra_train_observations": 3,
                                 "simulation.train_kernel_fraction": fraction})
    sizes = split_sizes(prof)
    n_extra = 7 if fraction == 1 else round(fraction * 7)
    assert sizes["train_kernels"] == base["train_kernels"]
    assert sizes["train"] == base["train"] + 3 * n_extra
    assert {k: sizes[k] for k in ("val_id", "val_ood", "id_test", "ood_test")} == \
        {k: base[k] for k in ("val_id", "val_ood", "id_test", "ood_test")}
    samples = training_samples(prof)
    assert samples["kernel_vae"] == base["train_kernels"] * prof.kernel_vae.epochs
    assert samples["alignment"] == sizes["train"] * prof.alignment.epochs
