"""Bad dataset targets and inconsistent data: clear errors, and nothing of the user's deleted."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from qpi_utils.data import DatasetError, QPIDataset, load_dataset, recover_dataset, save_dataset


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


def test_a_folder_of_other_files_is_never_replaced(tiny_dataset, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "thesis.txt").write_text("keep")
    with pytest.raises(DatasetError, match=r"holds files that are not a qpi dataset \(thesis.txt"):
        save_dataset(tiny_dataset, tmp_path / "x")
    assert (tmp_path / "x" / "thesis.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no debris either


def test_a_run_directory_is_not_a_dataset_target(tiny_dataset, tmp_path):
    save_dataset(tiny_dataset, tmp_path / "data")
    (tmp_path / "models").mkdir()
    with pytest.raises(DatasetError, match="not a qpi dataset"):
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
    assert load_dataset(path).n_kernels == tiny_dataset.n_kernels  # moved back on the next load
    assert not aside.exists()


def test_debris_of_a_killed_writer_is_cleaned(tiny_dataset, tmp_path):
    path = save_dataset(tiny_dataset, tmp_path / "ds")
    debris = tmp_path / ".ds.tmp-999999999_abc"
    debris.mkdir()
    (debris / "observations.npy").write_bytes(b"half")
    recover_dataset(path)
    assert not debris.exists() and path.is_dir()


def test_simulation_is_identical_for_every_thread_count(tmp_path):
    code = ("from qpi_utils.config import get_profile; from qpi_utils.data import simulate_dataset; "
            "print(simulate_dataset(get_profile('smoke').simulation, progress=False).meta['content_hash'])")
    hashes = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        hashes.add(out.stdout.strip())
    assert len(hashes) == 1
