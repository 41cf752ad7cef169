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
