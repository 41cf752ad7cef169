"""Tests of profiles (qpi_utils.config); the bad-input cases at the end: bad profile values: each is refused with a message naming the key (one case a line).
"""
import pytest
from qpi_utils.config import PROFILE_NAMES, ProfileError, get_profile, profile_from_dict


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_validates_and_round_trips(name):
    prof = get_profile(name)
    assert prof.name == name
    assert profile_from_dict(prof.to_dict()) == prof


def test_paper_profile_has_the_papers_hyperparameters():
    p = get_profile("paper")
    assert (p.simulation.n_kernels, p.simulation.n_observations) == (100, 500)
    assert p.model.block_out_channels == (128, 256, 512, 512) and p.model.layers_per_block == 2
    assert p.model.pretrained == "madebyollin/sdxl-vae-fp16-fix"
    assert (p.kernel_vae.lr, p.alignment.lr, p.kernel_vae.batch_size) == (1e-4, 5e-5, 8)
    assert (p.kernel_vae.alpha, p.kernel_vae.beta) == (0.7, 1e-6)


def test_overrides_from_dict_and_from_cli_strings():
    assert get_profile("smoke", {"simulation.n_kernels": 20}).simulation.n_kernels == 20
    p = get_profile("smoke", ["simulation.snr_db=10", "kernel_vae.mixed_precision=fp16"])
    assert p.simulation.snr_db == 10 and p.kernel_vae.mixed_precision == "fp16"


@pytest.mark.parametrize("override, message", [
    ({"simulation.n_kernel": 3}, "unknown key"),
    ({"simulation.n_kernels": "many"}, "must be an integer"),
    ({"simulation.n_kernels": 2}, "n_kernels must be >= 5"),
    ({"model.latent_channels": 8}, "latent_channels must be 4"),
    ({"kernel_vae.lr": -1.0}, "lr must be > 0"),
    ({"optimiser.lr": 1.0}, "unknown section"),
    ({"simulation.frequency_range": [0.1, 0.6]}, "frequency_range"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ProfileError, match=message):
        get_profile("smoke", override)


def test_unknown_profile_lists_the_choices():
    with pytest.raises(ProfileError, match="smoke, quick, colab, paper"):
        get_profile("fast")


def test_default_profile_follows_the_environment(monkeypatch):
    from qpi_utils.config import default_profile_name

    monkeypatch.setenv("QPI_PROFILE", "smoke")
    assert default_profile_name() == "smoke"
    monkeypatch.delenv("QPI_PROFILE")
    assert default_profile_name() in PROFILE_NAMES


# ------------------------------------------------------------------------------------------
# bad input


CASES = [
    ("physics.ls_iterations=-5", "physics.ls_iterations must be >= 1"),
    ("physics.ls_lambda_grid=[-1]", "ls_lambda_grid values must be > 0"),
    ("physics.ls_lambda_grid=[]", "must be a non-empty list"),
    ("physics.hybrid_test_observations=abc", "hybrid_test_observations must be an integer"),
    ("physics.hybrid_test_observations=0", "hybrid_test_observations must be >= 1"),
    ("physics.hybrid_lr=0", "hybrid_lr must be > 0"),
    ("physics.sweep_outside_margin=[40]", "sweep_outside_margin values must be in"),
    ("physics.sweep_position_error=[-1]", "sweep_position_error values must be >= 0"),
    ("physics.sweep_scatterers=[0]", "sweep_scatterers must be >= 1"),
    ("simulation.seed=-1", "seed and split_seed must be in [0, 2"),
    ("simulation.split_seed=-3", "seed and split_seed must be in [0, 2"),
    ("simulation.seed=18446744073709551616", "seed and split_seed must be in [0, 2"),
    ("simulation.position_error=-1", "position_error must be >= 0"),
    ("simulation.extra_train_kernels=-1", "simulation.extra_train_kernels must be >= 0"),
    ("simulation.extra_train_observations=9", "extra_train_observations in [0, n_observations=8], got 0, 9"),
    ("simulation.extra_min_distance=-0.1", "simulation.extra_min_distance must be >= 0"),
    ("simulation.snr_db=NaN", "snr_db must be a finite number"),
    ("simulation.snr_db=-1e6", "simulation.snr_db must be in [-40, 200] dB, got -1000000.0"),
    ("physics.sweep_snr_db=[10, 1e9]", "physics.sweep_snr_db must be in [-40, 200] dB"),
    ("model.norm_num_groups=0", "model.norm_num_groups must be >= 1, got 0"),
    ("simulation.snr_db=Infinity", "snr_db must be a finite number"),
    ("simulation.snr_db=abc", "snr_db must be a finite number"),
    ("simulation.line_noise=-0.1", "line_noise must be >= 0"),
    ("kernel_vae.lr=Infinity", "kernel_vae.lr must be a finite number"),
    ("kernel_vae.lr=-1e-3", "kernel_vae.lr must be > 0"),
    ("alignment.seed=-1", "alignment.seed must be in [0, 2"),
    ("kernel_vae.seed=99999999999999999999", "kernel_vae.seed must be in [0, 2"),
    ("one_step.max_train_samples=0", "max_train_samples must be a positive integer"),
    ("kernel_vae.realistic_data=true", "kernel_vae.realistic_data must be false"),
    ("alignment.realistic_data=1", "alignment.realistic_data must be true or false"),
    ("alignment.realistic_position_error=-0.5", "realistic_position_error must be >= 0"),
    ("one_step.realistic_outside_margin=40", "realistic_outside_margin in [0, 31] px"),
    ("one_step.max_train_samples=1.5", "max_train_samples must be an integer"),
    ("model.pretrained=3", "model.pretrained must be a string"),
    ("model.block_out_channels=[8, 16]", "must have 4 entries"),
    ("simulation.nkernels=3", "unknown key"),
    ("nosection.x=1", "unknown section"),
    ("simulation.n_kernels", "must look like section.key=value"),
]


@pytest.mark.parametrize("override, message", CASES)
def test_bad_value_is_refused_naming_the_key(override, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace("[", r"\[")):
        get_profile("smoke", [override])
