"""Tests of the rules that chose benchmark constants (qpi_lab.calibrate)."""
import numpy as np
import pytest
import torch

from qpi_lab.calibrate import choose_edge_check
from qpi_utils.baselines import EdgeCheck, hybrid
from qpi_utils.config import PhysicsConfig
from tests.test_baselines import _hidden_defect_scenes, _untrained_networks


def test_edge_check_thresholds_are_chosen_by_the_hybrid_they_would_make(smoke_profile):
    """choose_edge_check scores each threshold pair by selecting between two cached fits; each
    score must be the RMSE the sub-pixel hybrid really has with that check (and "off" without
    one), the choice the lowest score, and on data with hidden outside defects a check beats none."""
    import dataclasses

    vae, enc = _untrained_networks(smoke_profile)
    x, inside, kernel = _hidden_defect_scenes(np.random.default_rng(11), n=2)
    cfg = PhysicsConfig(hybrid_steps=1, hybrid_position_lr=0.0, ls_iterations=60)
    decoded = hybrid(enc, vae, x, dataclasses.replace(cfg, hybrid_residual=False), positions=inside)
    kernels = np.repeat(kernel[None], len(x), 0)
    chosen, scores = choose_edge_check(x, inside, decoded, kernels, cfg, ratios=(1.2, 2.0), noise_fractions=(0.7,),
                                       max_snrs_db=(10.0, np.inf))
    assert set(scores) == {"off", "1.2,0.7,10", "1.2,0.7,inf", "2,0.7,10", "2,0.7,inf"}
    _, again = choose_edge_check(x.numpy(), inside, decoded.numpy(), kernels, cfg, ratios=(1.2, 2.0),
                                 noise_fractions=(0.7,), max_snrs_db=(10.0, np.inf))
    assert again == scores  # numpy arrays are taken as well as tensors
    rmse = lambda out: float(np.sqrt(((out[:, 0].numpy() - kernel) ** 2).mean(axis=(1, 2))).mean())
    assert scores["off"] == pytest.approx(rmse(hybrid(enc, vae, x, cfg, positions=inside, edge_check=None)), abs=1e-5)
    for key, check in (("1.2,0.7,inf", EdgeCheck(8, 1.2, 0.7)), ("2,0.7,inf", EdgeCheck(8, 2.0, 0.7)),
                       ("1.2,0.7,10", EdgeCheck(8, 1.2, 0.7, 10.0))):
        assert scores[key] == pytest.approx(rmse(hybrid(enc, vae, x, cfg, positions=inside, edge_check=check)),
                                            abs=1e-5), key
    # a gate below the data's 20 dB turns the check off
    assert scores["1.2,0.7,10"] == scores["2,0.7,10"] == scores["off"]
    key = f"{chosen.ratio:g},{chosen.noise_fraction:g},{chosen.max_snr_db:g}"
    assert chosen.max_snr_db == np.inf and scores[key] == min(scores.values()) < scores["off"]


def test_edge_check_inputs_are_named():
    x = torch.zeros(2, 2, 64, 64)
    with pytest.raises(ValueError, match=r"decoded must be \(2, 1, 64, 64\)"):
        choose_edge_check(x, np.zeros((2, 3, 2)), torch.zeros(3, 1, 64, 64), np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match=r"kernels must be \(2, 64, 64\)"):
        choose_edge_check(x, np.zeros((2, 3, 2)), torch.zeros(2, 1, 64, 64), np.zeros((64, 64)))
