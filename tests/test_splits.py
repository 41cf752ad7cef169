import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpi_utils.data import DatasetError
from qpi_utils.simulate import SYMMETRY_ORDERS
from qpi_utils.splits import check_splits, make_splits


def test_paper_splits_are_stratified_and_do_not_leak():
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(100)])
    s = make_splits(symmetry, n_observations=500, seed=3)
    check_splits(s)
    assert len(s.ood_kernels) == 20 and len(s.val_kernels) == 10 and len(s.train_kernels) == 70
    assert (np.bincount(symmetry[s.ood_kernels], minlength=7)[list(SYMMETRY_ORDERS)] == 4).all()
    assert (np.bincount(symmetry[s.val_kernels], minlength=7)[list(SYMMETRY_ORDERS)] == 2).all()
    assert len(s.id_test) == 70 * 100 and len(s.val_id) == 70 * 50 and len(s.train) == 70 * 350
    assert len(s.val_ood) == 10 * 500 and len(s.ood_test) == 20 * 500
    # every observation in exactly one split
    everything = np.concatenate([s.pairs(n) for n in s.NAMES])
    assert len(everything) == len(np.unique(everything, axis=0)) == 100 * 500
    for name in ("train", "val_id", "id_test"):
        assert set(s.pairs(name)[:, 0]) == set(s.train_kernels)
    assert set(s.val_ood[:, 0]) == set(s.val_kernels) and set(s.ood_test[:, 0]) == set(s.ood_kernels)
    # deterministic, seed-dependent
    again = make_splits(symmetry, 500, seed=3)
    np.testing.assert_array_equal(again.train, s.train)
    assert not np.array_equal(make_splits(symmetry, 500, seed=4).ood_kernels, s.ood_kernels)


def test_small_splits_keep_classes_apart(tiny_dataset):
    s = make_splits(tiny_dataset.symmetry, tiny_dataset.n_observations)
    check_splits(s)
    assert len(s.ood_kernels) == 2
    assert len(set(tiny_dataset.symmetry[s.ood_kernels])) == 2  # two different classes


def test_leak_is_detected():
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(10)])
    s = make_splits(symmetry, 10)
    from dataclasses import replace

    leaky = replace(s, train=np.concatenate([s.train, s.ood_test[:1]]))
    with pytest.raises(DatasetError, match="OOD kernel"):
        check_splits(leaky)
    leaky = replace(s, id_test=np.concatenate([s.id_test, s.train[:1]]))
    with pytest.raises(DatasetError, match="both in train and in id_test"):
        check_splits(leaky)
    leaky = replace(s, val_id=np.concatenate([s.val_id, s.id_test[:1]]))
    with pytest.raises(DatasetError, match="both in val_id and in id_test"):
        check_splits(leaky)
    leaky = replace(s, train=np.concatenate([s.train, s.val_ood[:1]]))
    with pytest.raises(DatasetError, match="validation kernel"):
        check_splits(leaky)
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        s.pairs("val")


def test_validation_split_leaves_the_test_sets_as_the_paper_split_makes_them():
    """Carving validation out of training must not move a test observation: the OOD kernels are
    the paper split's, and ID test is the paper split's ID test minus the validation kernels."""
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(100)])
    a = make_splits(symmetry, 100, seed=1, val_kernel_fraction=0.1, val_fraction=0.1)
    b = make_splits(symmetry, 100, seed=1, val_kernel_fraction=0.2, val_fraction=0.3)
    np.testing.assert_array_equal(a.ood_kernels, b.ood_kernels)
    common = np.intersect1d(a.train_kernels, b.train_kernels)
    pick = lambda p: p[np.isin(p[:, 0], common)]
    np.testing.assert_array_equal(pick(a.id_test), pick(b.id_test))


def test_validation_pairs_are_balanced_and_never_test():
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(50)])
    s = make_splits(symmetry, 40)
    v = s.validation_pairs(cap=64, seed=0)
    assert len(v) == 64
    assert np.isin(v[:, 0], s.val_kernels).sum() == 32  # half unseen kernels, half seen
    assert not np.isin(v[:, 0], s.ood_kernels).any()
    rows = set(map(tuple, v.tolist()))
    assert not rows & set(map(tuple, s.id_test.tolist())) and not rows & set(map(tuple, s.train.tolist()))
    np.testing.assert_array_equal(v, s.validation_pairs(cap=64, seed=0))


def test_a_smaller_training_set_keeps_test_and_validation_kernels_and_stays_stratified():
    """subsample_training (learning curves): fewer training kernels, stratified by symmetry, and
    fewer observations of each; OOD and validation kernels and their observations untouched; ID
    test and in-domain validation only of the kept kernels; the full size is the same splits."""
    from qpi_utils.splits import make_splits, subsample_training

    symmetry = np.repeat([0, 2, 3, 4, 6], 20)
    full = make_splits(symmetry, 50, seed=3)
    assert subsample_training(full, symmetry) is full
    half = subsample_training(full, symmetry, kernel_fraction=0.5, observation_fraction=0.4)
    check_splits(half)
    assert len(half.train_kernels) == round(0.5 * len(full.train_kernels))
    assert set(half.train_kernels) <= set(full.train_kernels)
    counts = np.bincount(np.searchsorted([0, 2, 3, 4, 6], symmetry[half.train_kernels]), minlength=5)
    assert counts.max() - counts.min() <= 1  # stratified
    for name in ("val_ood", "ood_test"):
        assert np.array_equal(half.pairs(name), full.pairs(name))
    assert np.array_equal(half.val_kernels, full.val_kernels) and np.array_equal(half.ood_kernels, full.ood_kernels)
    for name in ("train", "val_id", "id_test"):
        assert set(half.pairs(name)[:, 0]) == set(half.train_kernels)
        assert {tuple(r) for r in half.pairs(name)} <= {tuple(r) for r in full.pairs(name)}
    per_kernel = np.bincount(half.train[:, 0])[half.train_kernels]
    full_per_kernel = np.bincount(full.train[:, 0])[half.train_kernels]
    assert np.array_equal(per_kernel, np.maximum(1, np.round(0.4 * full_per_kernel)).astype(int))
    again = subsample_training(full, symmetry, kernel_fraction=0.5, observation_fraction=0.4)
    assert np.array_equal(again.train, half.train)  # seeded: the same every time


@settings(max_examples=40, deadline=None)
@given(k=st.integers(10, 60), n_extra=st.integers(0, 30), n_obs=st.integers(5, 30), extra_obs=st.integers(0, 30),
       seed=st.integers(0, 2**32 - 1))
def test_training_only_kernels_change_no_test_or_validation_split(k, n_extra, n_obs, extra_obs, seed):
    """The rule of ``n_extra``: the first kernels split exactly as without the extra kernels, and
    the extra kernels are training kernels whose first ``extra_observations`` (0: all) observations
    are training pairs and nothing else."""
    extra_obs = min(extra_obs, n_obs)
    symmetry = np.array([SYMMETRY_ORDERS[i % 5] for i in range(k + n_extra)])
    base = make_splits(symmetry[:k], n_obs, seed=seed)
    more = make_splits(symmetry, n_obs, seed=seed, n_extra=n_extra, extra_observations=extra_obs)
    check_splits(more)
    for name in ("val_id", "val_ood", "id_test", "ood_test"):
        assert np.array_equal(base.pairs(name), more.pairs(name))
    assert np.array_equal(base.ood_kernels, more.ood_kernels) and np.array_equal(base.val_kernels, more.val_kernels)
    extra = np.arange(k, k + n_extra)
    assert np.array_equal(more.train_kernels, np.concatenate([base.train_kernels, extra]))
    added = more.train[len(base.train):]
    assert np.array_equal(more.train[:len(base.train)], base.train)
    assert np.array_equal(added, np.array([(e, o) for e in extra for o in range(extra_obs or n_obs)]).reshape(-1, 2))


@settings(max_examples=40, deadline=None)
@given(k=st.integers(10, 40), n_extra=st.integers(0, 40), fraction=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_a_smaller_training_set_takes_the_same_fraction_of_paper_and_training_only_kernels(k, n_extra, fraction, seed):
    """Learning curves with training-only kernels: the paper's training kernels (step 1's) and the
    training-only ones are each cut to ``fraction``, so a point of the curve trains both steps on
    the same fraction of what they see at full size; without training-only kernels the cut is the
    one the paper's kernels alone would get."""
    from qpi_utils.splits import subsample_training

    symmetry = np.array([SYMMETRY_ORDERS[i % 5] for i in range(k + n_extra)])
    full = make_splits(symmetry, 10, seed=seed, n_extra=n_extra, extra_observations=4)
    cut = subsample_training(full, symmetry, kernel_fraction=fraction, n_kernels=k)
    check_splits(cut)
    paper, extra = full.train_kernels[full.train_kernels < k], full.train_kernels[full.train_kernels >= k]
    assert np.sum(cut.train_kernels < k) == max(1, round(fraction * len(paper)))
    assert np.sum(cut.train_kernels >= k) == (max(1, round(fraction * len(extra))) if n_extra else 0)
    alone = subsample_training(make_splits(symmetry[:k], 10, seed=seed), symmetry[:k], kernel_fraction=fraction)
    assert np.array_equal(cut.train_kernels[cut.train_kernels < k], alone.train_kernels)


@pytest.mark.parametrize("n_extra, extra_obs", [(-1, 0), (10, 0), (2, 11)])
def test_impossible_training_only_kernels_are_named(n_extra, extra_obs):
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(10)])
    with pytest.raises(DatasetError, match=f"n_extra={n_extra} training-only kernels of 10"):
        make_splits(symmetry, 10, n_extra=n_extra, extra_observations=extra_obs)
