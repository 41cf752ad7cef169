import numpy as np
import pytest

from qpi_utils.analysis import latent_embeddings, two_step_diagnostics


def test_diagnostics_split_the_two_step_error(trained_run):
    _, models = trained_run
    d = two_step_diagnostics(models, n_pairs=8)
    assert set(d["vae_ceiling_rmse"]) == {"train_kernels", "ood_kernels"}
    assert all(0 <= v < 1 for v in d["vae_ceiling_rmse"].values())
    assert set(d["alignment_mse"]) == {"ID", "OOD"} and d["latent"]["mean_std_across_kernels"] > 0


def test_embeddings_are_two_dimensional_and_labelled(trained_run):
    _, models = trained_run
    emb = latent_embeddings(models, per_kernel=2)
    k, o = emb["kernels"], emb["observations"]
    assert k["embedding"].shape == (models.ds.n_kernels, 2) and o["embedding"].shape[1] == 2
    assert k["ood"].sum() == len(models.splits.ood_kernels)
    assert np.array_equal(o["symmetry"], models.ds.symmetry[o["kernel_id"]])


def test_class_agreement_is_one_for_separated_classes_and_chance_for_noise():
    from qpi_utils.analysis import class_agreement

    labels = np.repeat([0, 2, 3, 4, 6], 20)
    separated = labels[:, None] * 10.0 + np.random.default_rng(0).normal(size=(100, 3))
    a = class_agreement(separated, labels)
    assert a["nearest_neighbour_same_class"] == 1.0 and a["chance"] == pytest.approx(0.2)
    noise = class_agreement(np.random.default_rng(1).normal(size=(100, 3)), labels)
    assert noise["nearest_neighbour_same_class"] < 0.5


def test_class_agreement_ignores_neighbours_of_the_same_group():
    from qpi_utils.analysis import class_agreement

    labels = np.repeat([0, 2], 10)
    # pairs of identical points (one group each), the pairs themselves scattered at random
    pts = np.repeat(np.random.default_rng(0).normal(size=(10, 2)), 2, axis=0)
    labels = np.repeat(np.random.default_rng(1).permutation(np.repeat([0, 2], 5)), 2)
    assert class_agreement(pts, labels)["nearest_neighbour_same_class"] == 1.0  # trivially: its twin
    fair = class_agreement(pts, labels, groups=np.repeat(np.arange(10), 2))["nearest_neighbour_same_class"]
    assert fair < 1.0
