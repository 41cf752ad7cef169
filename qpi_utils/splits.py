"""The paper's splits, checked for leakage.

Kernels 80/20 (the 20 % are the out-of-domain, OOD, test set: never seen in training) and each
training kernel's observations 80/20 (the 20 % are the in-domain, ID, test set). Pairs are
(kernel index, observation index) rows into a :class:`qpi_utils.data.QPIDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .data import DatasetError
from .simulate import SYMMETRY_ORDERS

__all__ = ["Splits", "make_splits", "check_splits"]

@dataclass(frozen=True)
class Splits:
    """The paper's splits: kernels 80/20 (the 20 % are OOD: never seen in training), and each
    training kernel's observations 80/20 (the 20 % are the in-domain test set).

    Pair arrays are (N, 2) int64 rows of (kernel index, observation index).
    """

    train_kernels: np.ndarray
    ood_kernels: np.ndarray
    train: np.ndarray
    id_test: np.ndarray
    ood_test: np.ndarray
    seed: int

    NAMES = ("train", "id_test", "ood_test")

    def pairs(self, name: str) -> np.ndarray:
        if name not in self.NAMES:
            raise DatasetError(f"unknown split {name!r}; available: {', '.join(self.NAMES)}")
        return getattr(self, name)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train_kernels": self.train_kernels.tolist(),
                "ood_kernels": self.ood_kernels.tolist(),
                **{n: getattr(self, n).tolist() for n in self.NAMES}}


def make_splits(symmetry: Sequence[int], n_observations: int, ood_fraction: float = 0.2,
                id_test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Deterministic stratified splits.

    OOD kernels: round(ood_fraction * K) kernels, stratified by symmetry class: classes are
    visited round-robin (in a seeded order), each giving its next kernel of a seeded shuffle, so
    every class loses the same number (+-1). ID test: round(id_test_fraction * O) observations of
    each training kernel (at least 1), the rest are training observations.
    """
    symmetry = np.asarray(symmetry)
    k_total = len(symmetry)
    n_ood = int(round(ood_fraction * k_total))
    if not 1 <= n_ood < k_total:
        raise DatasetError(f"ood_fraction={ood_fraction} of {k_total} kernels gives {n_ood} OOD kernels; "
                           "need at least 1 and fewer than all")
    n_id = max(1, int(round(id_test_fraction * n_observations)))
    if n_id >= n_observations:
        raise DatasetError(f"id_test_fraction={id_test_fraction} of {n_observations} observations leaves none to train on")
    rng = np.random.default_rng(seed)
    classes = [c for c in SYMMETRY_ORDERS if (symmetry == c).any()]
    queues = {c: list(rng.permutation(np.flatnonzero(symmetry == c))) for c in classes}
    order = list(rng.permutation(len(classes)))
    ood: list[int] = []
    while len(ood) < n_ood:
        for ci in order:
            q = queues[classes[ci]]
            if q and len(ood) < n_ood:
                ood.append(int(q.pop(0)))
    ood_kernels = np.sort(np.array(ood, dtype=np.int64))
    train_kernels = np.setdiff1d(np.arange(k_total), ood_kernels)
    train, id_test = [], []
    for k in train_kernels:
        perm = rng.permutation(n_observations)
        id_test += [(k, o) for o in np.sort(perm[:n_id])]
        train += [(k, o) for o in np.sort(perm[n_id:])]
    ood_test = [(k, o) for k in ood_kernels for o in range(n_observations)]
    as_arr = lambda rows: np.array(rows, dtype=np.int64).reshape(-1, 2)
    return Splits(train_kernels, ood_kernels, as_arr(train), as_arr(id_test), as_arr(ood_test), seed)


def check_splits(splits: Splits) -> None:
    """Raise if any kernel or observation appears in two splits (leakage)."""
    if np.intersect1d(splits.train_kernels, splits.ood_kernels).size:
        raise DatasetError("a kernel is both a training and an OOD kernel")
    for name in ("train", "id_test"):
        leaked = np.intersect1d(splits.pairs(name)[:, 0], splits.ood_kernels)
        if leaked.size:
            raise DatasetError(f"OOD kernel(s) {leaked.tolist()} appear in split {name}")
    key = lambda p: set(map(tuple, p.tolist()))
    if key(splits.train) & key(splits.id_test):
        raise DatasetError("an observation is both in train and in id_test")


