"""Tests of the dataset format (qpi_utils.data); the bad-input cases at the end: bad dataset targets and inconsistent data: clear errors, and nothing of the user's deleted.
"""
import dataclasses
import json
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qpi_utils.data import (DatasetError, KernelDataset, ObservationDataset, QPIDataset, load_dataset, save_dataset,
                            simulate_dataset, stack_pairs)
from qpi_utils.simulate import PARAM_NAMES, SYMMETRY_ORDERS, KernelParams, kernel_image, kernel_spectrum, render_observations
from qpi_utils.splits import make_splits
import os
from pathlib import Path
import subprocess
import sys
from qpi_utils.data import OWNER_FILE, recover_dataset


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


def test_training_only_kernels_keep_the_dataset_and_stay_away_from_held_out_ones(smoke_profile, tmp_path):
    """simulation.extra_train_kernels: the first n_kernels kernels and their observations are the
    dataset without them, bit for bit; every extra kernel lies at least extra_min_distance from
    each validation and OOD kernel; data read with other splits than they were drawn for are refused."""
    from qpi_utils.checkpoints import load_data
    from qpi_utils.config import get_profile
    from qpi_utils.prior import parameter_distance
    from qpi_utils.splits import splits_for

    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=20, n_observations=4)
    base = simulate_dataset(cfg, progress=False)
    more_cfg = dataclasses.replace(cfg, extra_train_kernels=15, extra_min_distance=0.3)
    more = simulate_dataset(more_cfg, progress=False)
    assert more.n_kernels == 35 and more.meta["simulation"]["extra_train_kernels"] == 15
    for name in ("kernels", "observations", "positions", "param_frequency"):
        np.testing.assert_array_equal(np.asarray(more.arrays[name])[:20], np.asarray(base.arrays[name]))
    splits = splits_for(more_cfg, more.symmetry, more.n_observations)
    held = np.concatenate([splits.val_kernels, splits.ood_kernels])
    params = lambda ids: {k: np.asarray(more.arrays[f"param_{k}"])[ids] for k in PARAM_NAMES}
    assert parameter_distance(params(held), params(np.arange(20, 35)), more_cfg).min() >= 0.3
    assert set(range(20, 35)) <= set(splits.train_kernels.tolist())
    again = simulate_dataset(more_cfg, progress=False)
    assert again.meta["content_hash"] == more.meta["content_hash"]  # seeded
    save_dataset(more, tmp_path / "run" / "data")
    overrides = {"simulation.n_kernels": 20, "simulation.n_observations": 4, "simulation.extra_train_kernels": 15,
                 "simulation.extra_min_distance": 0.3}
    load_data(get_profile("smoke", overrides), tmp_path / "run")  # the splits they were drawn for
    for seed in range(1, 100):  # another split seed that puts a held-out kernel near an extra one
        other = splits_for(dataclasses.replace(more_cfg, split_seed=seed), more.symmetry, more.n_observations)
        moved = np.concatenate([other.val_kernels, other.ood_kernels])
        if parameter_distance(params(moved), params(np.arange(20, 35)), more_cfg).min() < 0.3:
            break
    with pytest.raises(DatasetError, match=r"run/data: held-out kernel \d+ lies 0\.\d+ from a training-only kernel"):
        load_data(get_profile("smoke", {**overrides, "simulation.split_seed": seed}), tmp_path / "run")


def test_stack_pairs_matches_the_observation_dataset(tiny_dataset):
    pairs = np.array([[0, 1], [3, 2]])
    x = stack_pairs(tiny_dataset, pairs)
    items = ObservationDataset(tiny_dataset, pairs)
    assert x.shape == (2, 2, 64, 64)
    for i in range(2):
        assert np.array_equal(x[i].numpy(), items[i]["observation"].numpy())


# ------------------------------------------------------------------------------------------
# bad input


def _write_then(tiny, tmp_path, edit):
    path = save_dataset(tiny, tmp_path / "ds")
    edit(path)
    return path


def _npy(path, name, fn):
    a = np.load(path / f"{name}.npy")
    np.save(path / f"{name}.npy", fn(a.copy()))


LOAD_CASES = [
    ("meta is a list", lambda p: (p / "meta.json").write_text("[1, 2]"), "must hold a JSON object"),
    ("meta not JSON", lambda p: (p / "meta.json").write_text("{oops"), "not valid JSON"),
    ("meta missing", lambda p: (p / "meta.json").unlink(), "meta.json is missing"),
    ("wrong version", lambda p: (p / "meta.json").write_text(json.dumps({"format_version": 99})), "format_version 99"),
    ("array missing", lambda p: (p / "kernels.npy").unlink(), "kernels.npy is missing"),
    ("array not npy", lambda p: (p / "kernels.npy").write_bytes(b"garbage"), "cannot be read as .npy"),
    ("observations out of [0, 1]", lambda p: _npy(p, "observations", lambda a: a * 3), "changed after it was written"),
]


@pytest.mark.parametrize("case, edit, message", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_a_damaged_dataset_is_named(tiny_dataset, tmp_path, case, edit, message):
    path = _write_then(tiny_dataset, tmp_path, edit)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def _arrays(tiny, **changes):
    arrays = {k: np.array(v) for k, v in tiny.arrays.items()}
    for name, fn in changes.items():
        arrays[name] = fn(arrays[name])
    return arrays


ARRAY_CASES = [
    ("observations outside [0, 1]", {"observations": lambda a: a * 2 - 0.5}, "must be min-max scaled"),
    ("kernels with NaN", {"kernels": lambda a: np.where(a > 0.99, np.nan, a)}, "kernels contains NaN"),
    ("infinite ranges", {"kernel_range": lambda a: a * np.inf}, "kernel_range contains NaN or inf"),
    ("negative counts", {"n_scatterers": lambda a: -a}, "negative counts"),
    ("all-zero maps", {"activation_maps": lambda a: np.zeros_like(a)}, "does not match its positions"),
    ("maps off their positions", {"activation_maps": lambda a: np.roll(a, 3, axis=-1)}, "does not match its positions"),
    ("bad symmetry", {"param_symmetry": lambda a: np.full_like(a, 5)}, "param_symmetry has values"),
    ("wrong shape", {"kernels": lambda a: a[:, :32]}, "kernels has shape"),
]


@pytest.mark.parametrize("case, changes, message", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_inconsistent_arrays_are_refused(tiny_dataset, case, changes, message):
    with pytest.raises(DatasetError, match=message):
        QPIDataset.from_arrays(_arrays(tiny_dataset, **changes), tiny_dataset.meta)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(origin=st.one_of(st.lists(st.one_of(st.floats(-10, 80), st.integers(-10, 80), st.text(max_size=2)),
                                 max_size=3), st.floats(0, 63), st.none()))
def test_the_kernel_origin_rule(tiny_dataset, origin):
    """meta kernel_origin: [c, c] with 0 <= c <= 63 (the scatterer's pixel, both axes) or refused by name."""
    valid = (isinstance(origin, list) and len(origin) == 2 and origin[0] == origin[1]
             and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 63 for v in origin))
    meta = {**tiny_dataset.meta, "kernel_origin": origin}
    if valid:
        assert QPIDataset.from_arrays(dict(tiny_dataset.arrays), meta).kernel_origin == float(origin[0])
    else:
        with pytest.raises(DatasetError, match="kernel_origin must be"):
            QPIDataset.from_arrays(dict(tiny_dataset.arrays), meta)


def test_a_folder_of_other_files_is_never_replaced(tiny_dataset, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "thesis.txt").write_text("keep")
    with pytest.raises(DatasetError, match=r"holds files that are not a dataset the kit wrote \(thesis.txt"):
        save_dataset(tiny_dataset, tmp_path / "x")
    assert (tmp_path / "x" / "thesis.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no debris either


def test_a_run_directory_is_not_a_dataset_target(tiny_dataset, tmp_path):
    save_dataset(tiny_dataset, tmp_path / "data")
    (tmp_path / "models").mkdir()
    with pytest.raises(DatasetError, match="not a dataset the kit wrote"):
        save_dataset(tiny_dataset, tmp_path)
    assert (tmp_path / "data" / "meta.json").is_file() and (tmp_path / "models").is_dir()


@pytest.mark.parametrize("target, message", [
    ("file", "exists and is not a directory"),
    ("under_a_file/ds", "is a file"),
    (".", "current folder"),
    ("..", "current folder"),
])
def test_impossible_targets_are_named(tiny_dataset, tmp_path, monkeypatch, target, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "under_a_file").write_text("x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=message):
        save_dataset(tiny_dataset, target)


def test_a_read_only_parent_is_named(tiny_dataset, tmp_path, monkeypatch):
    # these tests run as root on CI, where chmod does not stop writes: the permission check is
    # what is tested, so os.access reports the folder read-only
    import qpi_utils.data as data_module

    monkeypatch.setattr(data_module.os, "access", lambda path, mode: False)
    with pytest.raises(DatasetError, match="is not writable"):
        save_dataset(tiny_dataset, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_force_replaces_an_unrelated_folder(tiny_dataset, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "old.txt").write_text("bye")
    save_dataset(tiny_dataset, tmp_path / "x", force=True)
    assert load_dataset(tmp_path / "x").n_kernels == tiny_dataset.n_kernels


def test_a_crash_between_the_two_renames_is_recovered(tiny_dataset, tmp_path):
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    aside = tmp_path / ".ds.old-999999999"  # what a writer killed after its first rename leaves
    os.replace(path, aside)
    record = json.loads((aside / OWNER_FILE).read_text())
    (aside / OWNER_FILE).write_text(json.dumps({**record, "pid": 999999999}))
    assert load_dataset(path).n_kernels == tiny_dataset.n_kernels  # moved back on the next load
    assert not aside.exists()


def _kit_debris(folder: Path, pid: int = 999999999) -> Path:
    """What a writer killed mid-write leaves: its temporary folder, with the kit's record and its pid."""
    folder.mkdir()
    (folder / "observations.npy").write_bytes(b"half")
    (folder / OWNER_FILE).write_text(json.dumps({"made_by": "qpi-kit", "kind": "dataset", "pid": pid, "files": []}))
    return folder


def test_debris_of_a_killed_writer_is_cleaned_and_only_the_kits_own(tiny_dataset, tmp_path):
    """The kit deletes only what it made: a temporary folder with its record and a dead writer's pid.
    A folder that only looks like one (no record), and a live writer's, stay; reading deletes nothing."""
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    debris = _kit_debris(tmp_path / ".ds.tmp-999999999_abc")
    lookalike = tmp_path / ".ds.tmp-999999999_mine"
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("mine")
    live = _kit_debris(tmp_path / ".ds.tmp-1_xyz", pid=os.getpid())
    load_dataset(path)
    assert debris.exists()  # a read leaves it
    recover_dataset(path)
    assert not debris.exists() and lookalike.exists() and live.exists() and path.is_dir()


def test_a_users_folder_or_file_is_never_replaced_without_force(tiny_dataset, tmp_path):
    """A folder with a meta.json of the right format but other files is not a dataset of the kit;
    a file a user added to a kit dataset folder is named, and kept, before anything is written."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "meta.json").write_text(json.dumps({"format_version": 1}))
    (mine / "notes.md").write_text("keep me")
    with pytest.raises(DatasetError, match="not a dataset the kit wrote .meta.json, notes.md"):
        save_dataset(tiny_dataset, mine)
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    (path / "figure.png").write_bytes(b"png")
    with pytest.raises(DatasetError, match="files the kit did not write .figure.png"):
        save_dataset(tiny_dataset, path)
    assert (path / "figure.png").read_bytes() == b"png" and (mine / "notes.md").is_file()
    (path / "figure.png").unlink()
    assert save_dataset(tiny_dataset, path) == path  # the kit's own folder alone is replaced


def test_simulation_is_identical_for_every_thread_count(tmp_path):
    code = ("from qpi_utils.config import get_profile; from qpi_utils.data import simulate_dataset; "
            "print(simulate_dataset(get_profile('smoke').simulation, progress=False).meta['content_hash'])")
    hashes = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1


def test_a_dataset_too_big_for_free_memory_is_refused_before_allocating(monkeypatch, smoke_profile):
    """Sizes are estimated and refused up front (qpi_utils.validate.check_memory), naming the estimate."""
    import dataclasses

    from qpi_utils import validate
    from qpi_utils.data import simulate_dataset

    monkeypatch.setattr(validate, "available_memory", lambda: 2**30)  # 1 GiB free
    cfg = dataclasses.replace(smoke_profile.simulation, n_kernels=100, n_observations=500)  # ~1.1 GiB
    with pytest.raises(validate.SizeError, match=r"100 kernels x 500 observations .* needs about 1\.\d GiB"):
        simulate_dataset(cfg, progress=False)
    simulate_dataset(dataclasses.replace(cfg, n_kernels=5, n_observations=2), progress=False)  # small: made


def test_a_full_disk_while_saving_names_the_dataset_and_keeps_the_old_one(tmp_path, tiny_dataset, monkeypatch):
    import errno

    from qpi_utils.data import DatasetError, load_dataset, save_dataset

    target = save_dataset(tiny_dataset, tmp_path / "data")
    real_save = np.save

    def full(path, *a, **k):
        if "observations" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(path, *a, **k)

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(DatasetError, match=r"cannot write the dataset .*data: No space left on device \(the disk is full\)"):
        save_dataset(tiny_dataset, target)
    monkeypatch.undo()
    assert load_dataset(target).meta["content_hash"] == tiny_dataset.meta["content_hash"]  # the old one, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary left
