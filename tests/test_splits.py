import numpy as np
import pytest

from qpi_utils.data import DatasetError
from qpi_utils.simulate import SYMMETRY_ORDERS
from qpi_utils.splits import check_splits, make_splits


def test_paper_splits_are_stratified_and_do_not_leak():
    symmetry = np.array([SYMMETRY_ORDERS[k % 5] for k in range(100)])
    s = make_splits(symmetry, n_observations=500, seed=3)
    check_splits(s)
    assert len(s.ood_kernels) == 20 and len(s.train_kernels) == 80
    assert (np.bincount(symmetry[s.ood_kernels], minlength=7)[list(SYMMETRY_ORDERS)] == 4).all()
    assert len(s.train) == 80 * 400 and len(s.id_test) == 80 * 100 and len(s.ood_test) == 20 * 500
    # no observation in two splits; every observation of a training kernel in exactly one
    everything = np.concatenate([s.train, s.id_test, s.ood_test])
    assert len(np.unique(everything, axis=0)) == 100 * 500
    assert set(s.train[:, 0]) == set(s.train_kernels) and set(s.id_test[:, 0]) == set(s.train_kernels)
    assert set(s.ood_test[:, 0]) == set(s.ood_kernels)
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
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        s.pairs("val")
