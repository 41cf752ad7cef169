import dataclasses

import pytest
import torch

from qpi_utils.config import get_profile
from qpi_utils.models import (ModelConfigError, PretrainedWeightsError, adapt_rgb_autoencoder, autoencoder_config,
                              build_kernel_vae, build_observation_encoder, build_one_step, latent_shape)


@pytest.fixture(scope="module")
def small_cfg():
    return get_profile("smoke").model


def test_small_models_have_the_papers_latent(small_cfg):
    vae, info = build_kernel_vae(small_cfg)
    assert latent_shape(lambda x: vae.encode(x), 1) == (4, 8, 8)
    assert vae(torch.zeros(2, 1, 64, 64)).sample.shape == (2, 1, 64, 64)
    one, _ = build_one_step(small_cfg)
    assert one(torch.zeros(2, 2, 64, 64)).sample.shape == (2, 1, 64, 64)
    enc, _ = build_observation_encoder(small_cfg, vae, info)
    assert latent_shape(enc, 2) == (4, 8, 8)
    assert info.pretrained is False and info.source == "random init"


def test_quick_model_size_matches_its_budget():
    vae, info = build_kernel_vae(get_profile("quick").model)
    assert 0.9e6 < info.parameters < 1.1e6  # the 0.98 M-parameter config sized for 2 CPU cores


def test_observation_encoder_starts_from_the_kernel_encoder(small_cfg):
    vae, info = build_kernel_vae(small_cfg)
    enc, _ = build_observation_encoder(small_cfg, vae, info)
    y = torch.rand(3, 1, 64, 64)
    mean, logvar = enc(torch.cat([y, torch.zeros_like(y)], dim=1))
    post = vae.encode(y).latent_dist
    assert torch.allclose(mean, post.mean, atol=1e-5) and torch.allclose(logvar, post.logvar, atol=1e-5)
    with pytest.raises(ModelConfigError, match="expects 2 channels"):
        enc(torch.zeros(1, 1, 64, 64))


def test_rgb_adaptation_keeps_the_pretrained_function(small_cfg):
    from diffusers import AutoencoderKL

    torch.manual_seed(1)
    rgb = AutoencoderKL(**autoencoder_config(small_cfg, 3, 3)).eval()
    grey = adapt_rgb_autoencoder(rgb, small_cfg, 1, 1).eval()
    g = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        z_rgb = rgb.encode(g.repeat(1, 3, 1, 1)).latent_dist.mean
        z_grey = grey.encode(g).latent_dist.mean
        assert torch.allclose(z_rgb, z_grey, atol=1e-4)
        out_rgb = rgb.decode(z_rgb).sample.mean(dim=1, keepdim=True)
        assert torch.allclose(grey.decode(z_grey).sample, out_rgb, atol=1e-4)
    obs = adapt_rgb_autoencoder(rgb, small_cfg, 2, 1).eval()
    y, m = torch.rand(1, 1, 64, 64), (torch.rand(1, 1, 64, 64) > 0.99).float()
    with torch.no_grad():  # (Y, M) is seen as the grey image Y + M
        assert torch.allclose(obs.encode(torch.cat([y, m], 1)).latent_dist.mean,
                              rgb.encode((y + m).repeat(1, 3, 1, 1)).latent_dist.mean, atol=1e-4)
    with pytest.raises(ModelConfigError, match="expected an RGB autoencoder"):
        adapt_rgb_autoencoder(grey, small_cfg, 1, 1)


def test_pretrained_weights_load_from_a_local_copy(small_cfg, tmp_path):
    from diffusers import AutoencoderKL

    rgb = AutoencoderKL(**autoencoder_config(small_cfg, 3, 3))
    rgb.save_pretrained(tmp_path / "vae")
    cfg = dataclasses.replace(small_cfg, pretrained=str(tmp_path / "vae"))
    vae, info = build_kernel_vae(cfg)
    assert info.pretrained is True and info.source == str(tmp_path / "vae")
    w = rgb.state_dict()["encoder.conv_in.weight"].sum(1, keepdim=True)
    assert torch.equal(vae.state_dict()["encoder.conv_in.weight"], w)


def test_missing_pretrained_weights_stop_with_one_line_unless_allowed(small_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = dataclasses.replace(small_cfg, pretrained=str(tmp_path / "no-such-weights"))
    with pytest.raises(PretrainedWeightsError, match="cannot be loaded.*model.allow_random_init=true") as info:
        build_kernel_vae(cfg)
    assert "\n" not in str(info.value)
    allowed = dataclasses.replace(cfg, allow_random_init=True)
    with pytest.warns(RuntimeWarning, match="RANDOM initialisation"):
        vae, info = build_kernel_vae(allowed)
    assert info.pretrained is False and "unavailable" in info.source


def test_the_paper_profile_offline_is_an_error_not_hours_of_random_training(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError, match="madebyollin/sdxl-vae-fp16-fix"):
        build_kernel_vae(get_profile("paper").model)


def test_paper_architecture_shapes_at_batch_1():
    """The GPU profile's SDXL-VAE, random weights (no download), on CPU at batch 1."""
    cfg = dataclasses.replace(get_profile("paper").model, pretrained=None)
    vae, info = build_kernel_vae(cfg)
    assert 83e6 < info.parameters < 84.5e6  # the SDXL-VAE, 1-channel in/out
    with torch.no_grad():
        post = vae.encode(torch.zeros(1, 1, 64, 64)).latent_dist
        assert post.mean.shape == (1, 4, 8, 8)
        assert vae.decode(post.mean).sample.shape == (1, 1, 64, 64)
        enc, _ = build_observation_encoder(cfg, vae, info)
        mean, logvar = enc(torch.zeros(1, 2, 64, 64))
        assert mean.shape == logvar.shape == (1, 4, 8, 8)
    del vae, enc
    one, _ = build_one_step(cfg)
    with torch.no_grad():
        assert one(torch.zeros(1, 2, 64, 64)).sample.shape == (1, 1, 64, 64)


def test_a_network_too_big_for_free_memory_is_refused_before_it_is_built(monkeypatch):
    from qpi_utils import validate
    from qpi_utils.config import get_profile
    from qpi_utils.models import autoencoder_config

    monkeypatch.setattr(validate, "available_memory", lambda: 2**30)
    big = get_profile("smoke", {"model.block_out_channels": [512, 1024, 2048, 2048], "model.norm_num_groups": 4}).model
    with pytest.raises(validate.SizeError, match=r"block_out_channels \(512, 1024, 2048, 2048\) .* GiB"):
        autoencoder_config(big, 2, 1)
    autoencoder_config(get_profile("quick").model, 2, 1)  # 1 M parameters: fine
