"""Tests of qpi_utils.prior: the distance between kernels, the rule that keeps held-out kernels
away from a prior's corpus, and the prior a step-1 loss variant starts from."""
import numpy as np
import pytest

from qpi_utils.config import get_profile
from qpi_utils.prior import PriorLeakError, check_held_out, parameter_distance, variant_prior

SIM = get_profile("quick").simulation


def _one(**kw):
    base = {"symmetry": 4, "orientation": 0.0, "frequency": 0.1, "phase": 0.0, "decay": 8.0}
    return {k: np.array([v]) for k, v in {**base, **kw}.items()}


def test_distance_is_circular_scaled_and_infinite_across_classes():
    period = 2 * np.pi / 4
    d = lambda **kw: float(parameter_distance(_one(), _one(**kw), SIM)[0, 0])
    assert d() == 0.0
    assert d(orientation=0.9 * period) == pytest.approx(0.1)  # orientation wraps at its period
    assert d(phase=1.9 * np.pi) == pytest.approx(0.05)  # phase wraps at 2 pi
    assert d(frequency=0.1 + 0.012) == pytest.approx(0.1)  # 0.012 of the 0.12-wide range
    assert d(symmetry=6) == np.inf


def test_a_run_whose_held_out_kernel_the_corpus_came_near_is_refused():
    held = _one(frequency=0.12)
    near = _one(frequency=0.121)
    far = _one(frequency=0.17)
    assert check_held_out(far, held, np.array([0]), SIM, 0.2, "qpi-kit/test") >= 0.2
    with pytest.raises(PriorLeakError, match="held-out kernel 0 of this dataset"):
        check_held_out(near, held, np.array([0]), SIM, 0.2, "qpi-kit/test")


def test_a_loss_variant_starts_from_a_prior_pretrained_with_the_same_change():
    quick = get_profile("quick")
    got = variant_prior(quick, "without-alpha-0", {"alpha": 0.0})
    assert got == {"pretrain.alpha": 0.0, "prior.name": f"{quick.prior.name}-without-alpha-0",
                   "model.pretrained": f"qpi-kit/{quick.prior.name}-without-alpha-0"}
    # the overrides give a profile whose pretraining makes that very prior, with the change
    variant = get_profile("quick", got)
    assert variant.pretrain.alpha == 0.0 and variant.model.pretrained == "qpi-kit/" + variant.prior.name
    # nothing to do for a variant that changes no loss, or a profile that starts from no kit prior
    assert variant_prior(quick, "x", {}) == {}
    assert variant_prior(get_profile("quick", {"model.pretrained": None}), "x", {"alpha": 0.0}) == {}
    assert variant_prior(get_profile("smoke"), "x", {"alpha": 0.0}) == {}
