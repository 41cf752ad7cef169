import numpy as np
import pytest

from qpi_utils.authors_csv import estimate_symmetry, load_authors_csv, write_authors_csv
from qpi_utils.data import DatasetError
from qpi_utils.simulate import SYMMETRY_ORDERS


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
