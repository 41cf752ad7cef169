import json

import numpy as np
import pytest

from qpi_utils.data import (DatasetError, KernelDataset, ObservationDataset, QPIDataset, check_splits,
                            estimate_symmetry, load_authors_csv, load_dataset, make_splits, save_dataset,
                            write_authors_csv)
from qpi_utils.simulate import SYMMETRY_ORDERS


def test_save_load_round_trip_memory_mapped(tiny_dataset, tmp_path):
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    loaded = load_dataset(path, verify=True)
    assert isinstance(loaded.observations, np.memmap)
    for name, arr in tiny_dataset.arrays.items():
        np.testing.assert_array_equal(np.asarray(loaded.arrays[name]), arr, err_msg=name)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["content_hash"] == tiny_dataset.meta["content_hash"]
    assert meta["profile"] == "smoke" and meta["seed"] == 0 and "qpi_utils_version" in meta


def test_interrupted_write_leaves_old_dataset_intact(tiny_dataset, tmp_path, monkeypatch):
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    import qpi_utils.data as data_mod

    calls = {"n": 0}
    real_save = np.save

    def failing_save(f, arr, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("interrupted")
        return real_save(f, arr, **kw)

    monkeypatch.setattr(data_mod.np, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        save_dataset(tiny_dataset, path)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        save_dataset(tiny_dataset, tmp_path / "fresh")
    monkeypatch.undo()
    assert load_dataset(path, verify=True).meta["content_hash"] == tiny_dataset.meta["content_hash"]
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temporary debris


def test_load_errors_name_the_problem(tiny_dataset, tmp_path):
    with pytest.raises(DatasetError, match="no dataset directory"):
        load_dataset(tmp_path / "nothing")
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    (path / "kernels.npy").write_bytes((path / "kernels.npy").read_bytes()[:200])  # truncated
    with pytest.raises(DatasetError, match="kernels.npy"):
        load_dataset(path)
    path = save_dataset(tiny_dataset, tmp_path / "ds2")
    arr = np.load(path / "observations.npy")
    arr[0, 0, 0, 0] += 0.5
    np.save(path / "observations.npy", arr)
    load_dataset(path)  # shapes fine
    with pytest.raises(DatasetError, match="content hash"):
        load_dataset(path, verify=True)
    (path / "meta.json").unlink()
    with pytest.raises(DatasetError, match="meta.json is missing"):
        load_dataset(path)


def test_validation_catches_nan_and_bad_activation_maps(tiny_dataset):
    arrays = {k: np.array(v) for k, v in tiny_dataset.arrays.items()}
    arrays["observations"][1, 2, 3, 4] = np.nan
    with pytest.raises(DatasetError, match=r"observations contains NaN.*\[1, 2, 3, 4\]"):
        QPIDataset.from_arrays(arrays, tiny_dataset.meta)
    arrays = {k: np.array(v) for k, v in tiny_dataset.arrays.items()}
    arrays["activation_maps"][4, 1] = 0
    ds = QPIDataset.from_arrays(arrays, tiny_dataset.meta)
    with pytest.raises(DatasetError, match="kernel 4, observation 1 does not match"):
        ds.check_activation_maps()


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


def test_torch_datasets(tiny_dataset):
    import torch

    s = make_splits(tiny_dataset.symmetry, tiny_dataset.n_observations)
    kd = KernelDataset(tiny_dataset, s.train_kernels)
    item = kd[0]
    assert item["kernel"].shape == (1, 64, 64) and item["kernel"].dtype == torch.float32
    assert item["symmetry"] in SYMMETRY_ORDERS
    od = ObservationDataset(tiny_dataset, s.train)
    item = od[3]
    k, o = s.train[3]
    assert item["observation"].shape == (2, 64, 64)
    assert torch.equal(item["observation"][1], torch.from_numpy(tiny_dataset.activation_maps[k, o].astype(np.float32)))
    assert torch.equal(item["kernel"][0], torch.from_numpy(tiny_dataset.kernels[k]))
    assert item["kernel_id"] == k and item["observation_id"] == o
    with pytest.raises(DatasetError, match="out of range"):
        ObservationDataset(tiny_dataset, np.array([[99, 0]]))


def test_authors_csv_round_trip(tiny_dataset, tmp_path):
    ds = tiny_dataset
    files = []
    for k in range(ds.n_kernels):
        files.append(write_authors_csv(tmp_path / f"kernel_{k:03d}.csv", ds.kernels[k], ds.observations[k],
                                       ds.positions[k], kernel_origin=32.0, pixel_size=100 / 63,
                                       max_scatterers=ds.positions.shape[2]))
    loaded = load_authors_csv(tmp_path, symmetry=ds.symmetry)
    np.testing.assert_allclose(loaded.kernels, ds.kernels, atol=1e-6)
    np.testing.assert_allclose(loaded.observations, ds.observations, atol=1e-6)
    np.testing.assert_allclose(loaded.positions, ds.positions, atol=1e-4)
    np.testing.assert_array_equal(loaded.activation_maps, ds.activation_maps)
    assert loaded.meta["kernel_origin"] == pytest.approx([32.0, 32.0])
    loaded.check_activation_maps()
    # symmetry estimated from the kernel images when not given
    guessed = load_authors_csv(files[:5])
    assert guessed.meta["symmetry_source"].startswith("estimated")


def test_authors_csv_bad_input(tiny_dataset, tmp_path):
    ds = tiny_dataset
    good = write_authors_csv(tmp_path / "k.csv", ds.kernels[0], ds.observations[0], ds.positions[0],
                             kernel_origin=32.0, pixel_size=1.0, max_scatterers=ds.positions.shape[2])
    with pytest.raises(DatasetError, match="file not found"):
        load_authors_csv([tmp_path / "missing.csv"])
    lines = good.read_text().splitlines()
    bad = tmp_path / "short.csv"
    bad.write_text("\n".join(lines[:4] + [lines[4].rsplit(",", 1)[0]]) + "\n")
    with pytest.raises(DatasetError, match=r"short.csv, row 5: expected \d+ values"):
        load_authors_csv([bad])
    nan = tmp_path / "nan.csv"
    nan.write_text("\n".join(lines[:3] + ["nan," + lines[3].split(",", 1)[1]] + lines[4:]) + "\n")
    with pytest.raises(DatasetError, match="nan.csv, row 4, column 1: NaN"):
        load_authors_csv([nan])
    text = tmp_path / "text.csv"
    text.write_text("64,100\nhello\n")
    with pytest.raises(DatasetError, match="text.csv, row 2: not a number"):
        load_authors_csv([text])


def test_estimate_symmetry_recovers_the_class(tiny_dataset):
    right = sum(estimate_symmetry(k, origin=32.0) == s for k, s in zip(tiny_dataset.kernels, tiny_dataset.symmetry))
    assert right >= 8  # of 10
