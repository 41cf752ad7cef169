"""The authors' CSV format (qpi_lab.authors_data): small files written in their layout from kernels
whose scatterer sits between pixels, as theirs does; imported, trained on and evaluated."""

import numpy as np
import pytest

from qpi_lab.authors_data import estimate_symmetry, forward_fit, load_authors_csv, write_authors_csv
from qpi_lab.cli import main
from qpi_utils.data import DatasetError, load_dataset
from qpi_utils.simulate import KernelParams, kernel_spectrum, render_observations

PIXEL = 400.0 / 63  # their field: -200..200 angstrom over 64 pixels
ORIGIN = 31.5  # where their (0, 0) falls


def _files(folder, symmetries=(0, 2, 3, 4, 6), n_obs=8, seed=0, transpose=False):
    """One file per kernel in the authors' layout; returns the true positions (their pixels)."""
    rng = np.random.default_rng(seed)
    truth = []
    for k, sym in enumerate(symmetries):
        params = KernelParams(symmetry=sym, orientation=0.3 * k, frequency=0.08 + 0.015 * k, phase=0.5, decay=8.0)
        spec = kernel_spectrum(params)[0]
        kernel = render_observations(spec, np.array([[[ORIGIN, ORIGIN]]]))[0]
        n = rng.integers(1, 21, size=n_obs)
        pos = np.full((n_obs, 20, 2), np.nan)
        for o in range(n_obs):
            pos[o, : n[o]] = rng.uniform(0, 63, size=(n[o], 2))
        obs = np.stack([render_observations(spec, p[np.isfinite(p[:, 0])][None])[0] for p in pos])
        if transpose:  # flattened column by column: every image of the file, the kernel's too
            kernel, obs = kernel.T, obs.transpose(0, 2, 1)
        write_authors_csv(folder / f"kernel_{k:03d}.csv", kernel, obs, pos, PIXEL)
        truth.append(pos)
    return np.stack(truth)


def test_their_files_become_a_dataset_the_forward_model_explains(tmp_path):
    truth = _files(tmp_path)
    ds = load_authors_csv(tmp_path, symmetry=[0, 2, 3, 4, 6])
    assert ds.kernel_origin == ORIGIN and ds.n_kernels == 5 and ds.n_observations == 8
    assert ds.meta["pixel_size_angstrom"] == pytest.approx(PIXEL)
    # each defect is where the kernel's pixel 32 lands: their position + 0.5 px
    np.testing.assert_allclose(ds.positions[..., :20, :], truth + 0.5, atol=1e-4)
    assert min(ds.meta["forward_fit_median_r2"]) > 0.99
    # the convention matters: the raw kernel at their own pixel positions (half a pixel off) fits worse
    raw = ds.denormalise_kernel(1, np.asarray(ds.kernels[1], np.float64))
    fit_here = forward_fit(raw, ds.observations[1], ds.positions[1]).mean()
    fit_half_off = forward_fit(raw, ds.observations[1], ds.positions[1] - 0.5).mean()
    assert fit_here > 0.99 and fit_half_off < fit_here - 0.02
    assert ds.kernels.min() == 0.0 and ds.kernels.max() == 1.0


def test_symmetry_is_estimated_about_their_origin(tmp_path):
    _files(tmp_path)
    ds = load_authors_csv(tmp_path)
    assert ds.symmetry.tolist() == [0, 2, 3, 4, 6]
    assert "estimated" in ds.meta["symmetry_source"]
    # about the wrong pixel, half a pixel off, a 6-fold kernel looks less symmetric
    assert estimate_symmetry(ds.kernels[4], origin=ORIGIN) == 6


def test_images_flattened_the_other_way_are_named_with_the_fix(tmp_path):
    _files(tmp_path, symmetries=(2, 3), transpose=True)
    with pytest.raises(DatasetError, match=r"kernel_000.csv: the observations do not fit.*x and y swapped.*--order F"):
        load_authors_csv(tmp_path)


def _lines(path):
    return path.read_text().splitlines()


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows[:3], "needs at least 4 rows"),
    (lambda rows: ["32,20", *rows[1:]], "resolution 32"),
    (lambda rows: ["nan,20", *rows[1:]], r"row 1: expected \[resolution, max scatterers\]"),
    (lambda rows: [rows[0], "0,1,2", *rows[2:]], "row 2: expected 64 increasing"),
    (lambda rows: [*rows[:3], rows[3].replace(",", ",x", 1)], "row 4: not a number"),
    (lambda rows: [*rows[:3], rows[3] + ",1.0"], "row 4: expected 4136 values"),
    (lambda rows: [*rows[:3], ",".join(rows[3].split(",")[:4096] + ["500.0"] + rows[3].split(",")[4097:])],
     "row 4: a scatterer at 500 angstrom lies outside"),
    (lambda rows: [*rows[:2], ",".join(rows[2].split(",")[:4098] + ["10.0", "10.0"] + rows[2].split(",")[4100:]),
                   *rows[3:]], "row 3: the kernel row must have exactly one scatterer"),
    (lambda rows: [*rows[:3], ",".join(["nan"] + rows[3].split(",")[1:])], "row 4, column 1: NaN or inf"),
])
def test_a_broken_file_is_named_with_its_row(tmp_path, edit, message):
    _files(tmp_path, symmetries=(2,))
    path = tmp_path / "kernel_000.csv"
    path.write_text("\n".join(edit(_lines(path))) + "\n")
    with pytest.raises(DatasetError, match=message):
        load_authors_csv(path)


def test_files_too_big_for_free_memory_are_refused_before_reading_them_all(tmp_path, monkeypatch):
    import qpi_utils.validate as validate
    from qpi_utils.validate import SizeError

    _files(tmp_path, symmetries=(2, 4))
    monkeypatch.setattr(validate, "available_memory", lambda: 1000)
    with pytest.raises(SizeError, match="reading the 2 files of .* needs about"):
        load_authors_csv(tmp_path)


def test_files_that_disagree_with_each_other_are_refused(tmp_path):
    _files(tmp_path, symmetries=(2, 4))
    second = tmp_path / "kernel_001.csv"
    second.write_text("\n".join(_lines(second)[:-1]) + "\n")
    with pytest.raises(DatasetError, match="kernel_001.csv: 7 observations, .*kernel_000.csv has 8"):
        load_authors_csv(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no CSV files"):
        load_authors_csv(tmp_path / "empty")
    with pytest.raises(DatasetError, match="one order in .* per file"):
        load_authors_csv(tmp_path, symmetry=[2, 5])


def test_their_data_train_and_evaluate_end_to_end_on_smoke(tmp_path):
    """`qpi import-authors`, then the usual commands: step 1 rotates about 31.5, the table is written."""
    _files(tmp_path / "csv", symmetries=(0, 2, 3, 4, 6) * 2, n_obs=8)
    run = tmp_path / "run"
    common = ["--profile", "smoke", "--run-dir", str(run), "--no-progress"]
    assert main(["import-authors", str(tmp_path / "csv"), *common, "--symmetry", *"0 2 3 4 6 0 2 3 4 6".split()]) == 0
    assert load_dataset(run / "data").kernel_origin == ORIGIN
    for command in ("train-kernel-vae", "train-alignment", "train-one-step-paper", "train-one-step", "evaluate"):
        assert main([command, *common]) == 0, command
    table = (run / "results" / "table.md").read_text()
    assert "two_step" in table and "least_squares" in table
    # importing again over the run's dataset replaces it; over a folder of other files it refuses
    assert main(["import-authors", str(tmp_path / "csv"), *common]) == 0
    assert main(["import-authors", str(tmp_path / "csv"), *common, "--out", str(tmp_path / "csv")]) == 2
