"""The paper's ID/OOD test splits plus a validation split carved out of training, checked for
leakage. Pairs are (kernel, observation) index rows. The rules: ``docs/library.md``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import DatasetError
from .simulate import SYMMETRY_ORDERS

__all__ = ["Splits", "make_splits", "check_splits", "splits_for", "subsample_training"]


@dataclass(frozen=True)
class Splits:
    """Kernel sets (1-D int64 arrays) and observation pair sets ((N, 2) int64 rows of
    (kernel index, observation index)).

    ``train``/``val_id``/``id_test`` are observations of the training kernels; ``val_ood`` all
    observations of the validation kernels; ``ood_test`` all observations of the OOD kernels.
    """

    train_kernels: np.ndarray
    val_kernels: np.ndarray
    ood_kernels: np.ndarray
    train: np.ndarray
    val_id: np.ndarray
    val_ood: np.ndarray
    id_test: np.ndarray
    ood_test: np.ndarray
    seed: int

    NAMES = ("train", "val_id", "val_ood", "id_test", "ood_test")
    TEST_NAMES = ("id_test", "ood_test")

    def pairs(self, name: str) -> np.ndarray:
        if name not in self.NAMES:
            raise DatasetError(f"unknown split {name!r}; available: {', '.join(self.NAMES)}")
        return getattr(self, name)

    def validation_pairs(self, cap: int | None = None, seed: int = 0) -> np.ndarray:
        """Validation observations for model selection: equal numbers (up to ``cap // 2`` each, a
        seeded subset) from ``val_id`` (seen kernels, unseen observations) and ``val_ood`` (unseen
        kernels), so a choice weighs in-domain accuracy and generalisation alike."""
        rng = np.random.default_rng(seed)
        half = min(len(self.val_id), len(self.val_ood), cap // 2 if cap else max(len(self.val_id), len(self.val_ood)))
        parts = [p[np.sort(rng.permutation(len(p))[:half])] for p in (self.val_id, self.val_ood)]
        return np.concatenate(parts)

    def to_dict(self) -> dict:
        return {"seed": self.seed, "train_kernels": self.train_kernels.tolist(),
                "val_kernels": self.val_kernels.tolist(), "ood_kernels": self.ood_kernels.tolist(),
                **{n: getattr(self, n).tolist() for n in self.NAMES}}


def _stratified(symmetry: np.ndarray, candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``candidates``, classes visited round-robin (in a seeded order), each giving its
    next kernel of a seeded shuffle, so every class loses the same number (+-1)."""
    classes = [c for c in SYMMETRY_ORDERS if (symmetry[candidates] == c).any()]
    queues = {c: list(rng.permutation(candidates[symmetry[candidates] == c])) for c in classes}
    order = list(rng.permutation(len(classes)))
    chosen: list[int] = []
    while len(chosen) < n:
        for ci in order:
            q = queues[classes[ci]]
            if q and len(chosen) < n:
                chosen.append(int(q.pop(0)))
    return np.sort(np.array(chosen, dtype=np.int64))


def make_splits(symmetry: Sequence[int], n_observations: int, ood_fraction: float = 0.2,
                id_test_fraction: float = 0.2, seed: int = 0, val_kernel_fraction: float = 0.1,
                val_fraction: float = 0.1, n_extra: int = 0, extra_observations: int = 0) -> Splits:
    """Deterministic stratified splits (rules in ``docs/library.md``).

    OOD kernels: round(ood_fraction * K), stratified by symmetry class. Validation kernels:
    round(val_kernel_fraction * K) of the rest, stratified the same way (drawn from an
    independent stream, so the OOD and ID test sets do not depend on it). ID test:
    round(id_test_fraction * O) observations of each training kernel (at least 1); validation:
    round(val_fraction * O) of the others (at least 1); the rest are training observations.
    ``n_extra``: the last ``n_extra`` kernels are training-only (``simulation.extra_train_kernels``):
    K counts the others, whose splits do not change, and each extra kernel adds its first
    ``extra_observations`` observations (0: all) to the training pairs.
    """
    symmetry = np.asarray(symmetry)
    if not 0 <= n_extra < len(symmetry) or not 0 <= extra_observations <= n_observations:
        raise DatasetError(f"n_extra={n_extra} training-only kernels of {len(symmetry)}, extra_observations="
                           f"{extra_observations} of {n_observations}: need 0 <= n_extra < kernels and "
                           "0 <= extra_observations <= observations")
    k_total = len(symmetry) - n_extra
    extra = np.arange(k_total, len(symmetry), dtype=np.int64)
    symmetry = symmetry[:k_total]
    n_ood = int(round(ood_fraction * k_total))
    n_val_k = max(1, int(round(val_kernel_fraction * k_total)))
    if not 1 <= n_ood or n_ood + n_val_k >= k_total:
        raise DatasetError(f"ood_fraction={ood_fraction} and val_kernel_fraction={val_kernel_fraction} of {k_total} "
                           f"kernels give {n_ood} OOD and {n_val_k} validation kernels; need at least 1 of each "
                           "and some left to train on")
    n_id = max(1, int(round(id_test_fraction * n_observations)))
    n_val = max(1, int(round(val_fraction * n_observations)))
    if n_id + n_val >= n_observations:
        raise DatasetError(f"id_test_fraction={id_test_fraction} and val_fraction={val_fraction} of {n_observations} "
                           "observations per kernel leave none to train on")
    rng = np.random.default_rng(seed)
    ood_kernels = _stratified(symmetry, np.arange(k_total), n_ood, rng)
    fit_kernels = np.setdiff1d(np.arange(k_total), ood_kernels)
    val_rng = np.random.default_rng([seed, 1])  # independent of the test sets' stream
    val_kernels = _stratified(symmetry, fit_kernels, n_val_k, val_rng)
    train_kernels = np.setdiff1d(fit_kernels, val_kernels)
    train, val_id, id_test = [], [], []
    for k in fit_kernels:  # every fit kernel draws its permutation, so ID test does not depend on the validation split
        perm = rng.permutation(n_observations)
        if k in val_kernels:
            continue
        rest = val_rng.permutation(perm[n_id:])
        id_test += [(k, o) for o in np.sort(perm[:n_id])]
        val_id += [(k, o) for o in np.sort(rest[:n_val])]
        train += [(k, o) for o in np.sort(rest[n_val:])]
    val_ood = [(k, o) for k in val_kernels for o in range(n_observations)]
    ood_test = [(k, o) for k in ood_kernels for o in range(n_observations)]
    train += [(k, o) for k in extra for o in range(extra_observations or n_observations)]
    as_arr = lambda rows: np.array(rows, dtype=np.int64).reshape(-1, 2)
    return Splits(np.concatenate([train_kernels, extra]), val_kernels, ood_kernels, as_arr(train), as_arr(val_id),
                  as_arr(val_ood), as_arr(id_test), as_arr(ood_test), seed)


def splits_for(simulation, symmetry: Sequence[int], n_observations: int) -> Splits:
    """The splits a profile's :class:`~qpi_utils.config.SimulationConfig` asks for, checked."""
    s = simulation
    splits = make_splits(symmetry, n_observations, s.ood_fraction, s.id_test_fraction, s.split_seed,
                         s.val_kernel_fraction, s.val_fraction, s.extra_train_kernels, s.extra_train_observations)
    splits = subsample_training(splits, symmetry, s.train_kernel_fraction, s.train_observation_fraction, s.n_kernels)
    check_splits(splits)
    return splits


def check_splits(splits: Splits) -> None:
    """Raise if a kernel or observation appears in two splits (leakage), or a test kernel or test
    observation appears in a training or validation split."""
    kernel_sets = {"train_kernels": splits.train_kernels, "val_kernels": splits.val_kernels,
                   "ood_kernels": splits.ood_kernels}
    names = list(kernel_sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = np.intersect1d(kernel_sets[a], kernel_sets[b])
            if both.size:
                raise DatasetError(f"kernel(s) {both.tolist()} are both in {a} and {b}")
    for name in ("train", "val_id", "val_ood", "id_test"):
        leaked = np.intersect1d(splits.pairs(name)[:, 0], splits.ood_kernels)
        if leaked.size:
            raise DatasetError(f"OOD kernel(s) {leaked.tolist()} appear in split {name}")
    for name in ("train", "val_id", "id_test"):
        leaked = np.intersect1d(splits.pairs(name)[:, 0], splits.val_kernels)
        if leaked.size:
            raise DatasetError(f"validation kernel(s) {leaked.tolist()} appear in split {name}")
    key = lambda p: set(map(tuple, p.tolist()))
    for a, b in (("train", "id_test"), ("train", "val_id"), ("val_id", "id_test")):
        if key(splits.pairs(a)) & key(splits.pairs(b)):
            raise DatasetError(f"an observation is both in {a} and in {b}")


def subsample_training(splits: Splits, symmetry: Sequence[int], kernel_fraction: float = 1.0,
                       observation_fraction: float = 1.0, n_kernels: int | None = None) -> Splits:
    """The same splits trained on less: ``kernel_fraction`` of the training kernels (stratified by
    symmetry, seeded by the splits' seed) and ``observation_fraction`` of each kept kernel's training
    observations (at least one). The ID test and in-domain validation keep only the kept kernels'
    observations (ID stays "kernels the networks were trained on"); validation kernels, OOD kernels
    and their observations are unchanged. For learning curves (``qpi learning-curves``).
    ``n_kernels``: kernels from this index on are training-only (``simulation.extra_train_kernels``);
    they are subsampled apart, by the same fraction, so step 1 (the first ``n_kernels`` only) and
    the networks that read observations both train on that fraction of what they would see."""
    if kernel_fraction >= 1 and observation_fraction >= 1:
        return splits
    symmetry = np.asarray(symmetry)
    rng = np.random.default_rng([splits.seed, 2])  # a stream of its own: the full splits do not move
    n_kernels = len(symmetry) if n_kernels is None else n_kernels
    kept = []
    paper = splits.train_kernels < n_kernels
    for group in (splits.train_kernels[paper], splits.train_kernels[~paper]):
        if group.size:  # without training-only kernels, the draws are those of the paper's kernels alone
            kept.append(_stratified(symmetry, group, max(1, int(round(kernel_fraction * len(group)))), rng))
    kept = np.concatenate(kept)
    keep_rows = lambda pairs: pairs[np.isin(pairs[:, 0], kept)]
    train = []
    for k in kept:
        rows = splits.train[splits.train[:, 0] == k]
        n = max(1, int(round(observation_fraction * len(rows))))
        train.append(rows[np.sort(rng.permutation(len(rows))[:n])])
    return Splits(kept, splits.val_kernels, splits.ood_kernels, np.concatenate(train).reshape(-1, 2),
                  keep_rows(splits.val_id), splits.val_ood, keep_rows(splits.id_test), splits.ood_test, splits.seed)
