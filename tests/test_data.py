import dataclasses
import json

import numpy as np
import pytest

from qpi_utils.data import (DatasetError, KernelDataset, ObservationDataset, QPIDataset, load_dataset, save_dataset,
                            simulate_dataset, stack_pairs)
from qpi_utils.simulate import SYMMETRY_ORDERS, KernelParams, kernel_image, kernel_spectrum, render_observations
from qpi_utils.splits import make_splits


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
    arr.flat[1] = 1.0 - arr.flat[1]  # one pixel, in range, between the values the cheap check samples
    np.save(path / "observations.npy", arr)
    load_dataset(path)  # the cheap check on every load samples
    with pytest.raises(DatasetError, match="content hash"):
        load_dataset(path, verify=True)  # the full check sees every value
    arr.flat[0] = 1.0 - arr.flat[0]  # a sampled value
    np.save(path / "observations.npy", arr)
    with pytest.raises(DatasetError, match="changed after it was written"):
        load_dataset(path)
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
    with pytest.raises(DatasetError, match="kernel 4, observation 1 does not match"):
        QPIDataset.from_arrays(arrays, tiny_dataset.meta)  # checked on a sample (here: every map) at once


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


def test_dataset_is_bit_reproducible_and_seed_dependent(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=5, n_observations=6, snr_db=15.0,
                              line_noise=0.1, outside_margin=8.0)
    a = simulate_dataset(cfg, progress=False)
    b = simulate_dataset(cfg, progress=False, chunk=2)
    assert a.meta["content_hash"] == b.meta["content_hash"]
    for name, arr in a.arrays.items():
        np.testing.assert_array_equal(arr, b.arrays[name], err_msg=name)
    c = simulate_dataset(dataclasses.replace(cfg, seed=1), progress=False)
    assert c.meta["content_hash"] != a.meta["content_hash"]


def test_dataset_contents(tiny_dataset, smoke_profile):
    ds = tiny_dataset
    s = smoke_profile.simulation
    assert ds.kernels.shape == (s.n_kernels, 64, 64)
    assert ds.observations.shape == (s.n_kernels, s.n_observations, 64, 64)
    # even over classes
    counts = np.bincount(ds.symmetry, minlength=7)[list(SYMMETRY_ORDERS)]
    assert (counts == s.n_kernels // 5).all()
    assert ds.kernels.min() == 0 and ds.kernels.max() == 1
    assert np.allclose(ds.observations.min(axis=(-2, -1)), 0) and np.allclose(ds.observations.max(axis=(-2, -1)), 1)
    assert ds.n_scatterers.min() >= s.min_scatterers and ds.n_scatterers.max() <= s.max_scatterers
    ds.check_activation_maps()
    # undoing the normalisation gives back the raw kernel
    k = 3
    raw = kernel_image(KernelParams(**{**ds.params(k), "symmetry": int(ds.params(k)["symmetry"])}),
                       supersample=s.supersample)
    assert np.abs(ds.denormalise_kernel(k, ds.kernels[k]) - raw).max() < 1e-5


def test_noiseless_observation_is_rendered_from_stored_positions(tiny_dataset):
    ds = tiny_dataset
    k, o = 2, 5
    p = ds.params(k)
    spec = kernel_spectrum({key: np.array([v]) for key, v in p.items()})[0]
    raw = render_observations(spec, ds.positions[k, o][None].astype(np.float64))[0]
    lo, hi = ds.arrays["observation_range"][k, o]
    assert np.abs(ds.observations[k, o] * (hi - lo) + lo - raw).max() < 1e-5 * (hi - lo)


def test_outside_scatterers_appear_in_y_but_not_in_m(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=5, n_observations=4, outside_margin=12.0,
                              min_scatterers=40, max_scatterers=40)
    ds = simulate_dataset(cfg, progress=False)
    out = ds.arrays["outside_positions"]
    n_out = np.isfinite(out[..., 0]).sum(-1)
    assert n_out.mean() > 10  # about 40 * ((88/64)**2 - 1) = 36 expected
    inside_fov = ((out >= -0.5) & (out < 63.5)).all(-1) & np.isfinite(out[..., 0])
    assert not inside_fov.any()
    assert (ds.activation_maps.reshape(5, 4, -1).sum(-1) == 40).all()
    p = ds.params(0)
    spec = kernel_spectrum({key: np.array([v]) for key, v in p.items()})[0]
    only_labelled = render_observations(spec, ds.positions[0, :1].astype(np.float64))[0]
    lo, hi = ds.arrays["observation_range"][0, 0]
    assert np.abs(ds.observations[0, 0] * (hi - lo) + lo - only_labelled).max() > 1e-2


def test_given_kernels_and_position_errors(smoke_profile):
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=2, n_observations=3, position_error=1.5)
    params = {"symmetry": np.array([0, 6]), "orientation": np.array([0.0, 0.2]), "frequency": np.array([0.1, 0.15]),
              "phase": np.array([0.0, 1.0]), "decay": np.array([6.0, 9.0])}
    ds = simulate_dataset(cfg, progress=False, params=params)
    assert list(ds.symmetry) == [0, 6] and ds.params(1)["frequency"] == pytest.approx(0.15)
    ds.check_activation_maps()  # M matches the (erroneous) labelled positions it was built from
    clean = simulate_dataset(dataclasses.replace(cfg, position_error=0.0), progress=False, params=params)
    np.testing.assert_array_equal(ds.observations, clean.observations)  # Y uses the true positions
    shift = np.nanmean(np.hypot(*(ds.positions - clean.positions).transpose(3, 0, 1, 2)))
    assert 1.0 < shift < 3.0  # mean of a 2-D Gaussian error with std 1.5 px is about 1.9 px
    with pytest.raises(ValueError, match="params must give 2 kernels"):
        simulate_dataset(cfg, progress=False, params={k: v[:1] for k, v in params.items()})


def test_stack_pairs_matches_the_observation_dataset(tiny_dataset):
    pairs = np.array([[0, 1], [3, 2]])
    x = stack_pairs(tiny_dataset, pairs)
    items = ObservationDataset(tiny_dataset, pairs)
    assert x.shape == (2, 2, 64, 64)
    for i in range(2):
        assert np.array_equal(x[i].numpy(), items[i]["observation"].numpy())
