"""Tests of the kit prior's corpus and pretraining (qpi_lab.prior): held-out kernels stay unseen."""
import dataclasses

import numpy as np

from qpi_utils.config import get_profile
from qpi_utils.data import simulate_dataset
from qpi_lab.prior import corpus_parameters, held_out_parameters, render_kernels
from qpi_utils.prior import parameter_distance
from qpi_utils.splits import splits_for

SIM = get_profile("quick").simulation


def test_held_out_kernels_are_those_the_datasets_hold_out():
    """The parameters the rule protects are exactly the validation and OOD kernels that
    simulate_dataset and the splits make for that seed (drawn without rendering)."""
    sim = dataclasses.replace(SIM, n_kernels=10, n_observations=4, seed=3, split_seed=3)
    ds = simulate_dataset(sim, progress=False)
    splits = splits_for(sim, ds.symmetry, ds.n_observations)
    held = np.concatenate([splits.val_kernels, splits.ood_kernels])
    got = held_out_parameters(dataclasses.replace(sim, seed=0, split_seed=0), [3])
    for name in ("symmetry", "frequency", "phase", "decay", "orientation"):
        assert np.allclose(got[name], np.asarray(ds.arrays[f"param_{name}"])[held])


def test_the_corpus_keeps_away_from_every_protected_kernel_and_is_reproducible():
    prior = dataclasses.replace(get_profile("quick").prior, n_kernels=400, n_validation=50, protected_seeds=(0, 1))
    corpus = corpus_parameters(prior, SIM)
    held = held_out_parameters(SIM, prior.protected_seeds)
    assert len(corpus["symmetry"]) == 400 and set(np.unique(corpus["symmetry"])) == {0, 2, 3, 4, 6}
    assert parameter_distance(held, corpus, SIM).min() >= prior.min_distance
    again = corpus_parameters(prior, SIM)
    assert all(np.array_equal(corpus[k], again[k]) for k in corpus)
    val = corpus_parameters(prior, SIM, validation=True)
    assert len(val["symmetry"]) == 50 and not np.array_equal(val["frequency"], corpus["frequency"][:50])


def test_corpus_kernels_are_rendered_as_datasets_render_them():
    sim = dataclasses.replace(SIM, n_kernels=5, n_observations=2, supersample=2)
    ds = simulate_dataset(sim, progress=False)
    params = {k: np.asarray(ds.arrays[f"param_{k}"]) for k in ("symmetry", "orientation", "frequency", "phase", "decay")}
    kernels = render_kernels(params, supersample=2, progress=False)
    assert kernels.dtype == np.float32 and np.abs(kernels - np.asarray(ds.kernels)).max() < 1e-6
