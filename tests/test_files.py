import pytest

from qpi_utils.files import atomic_path, write_csv, write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_debris(tmp_path):
    target = write_text(tmp_path / "table.md", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_write_creates_folders_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    write_text(target, "1")
    write_text(target, "2")
    assert target.read_text() == "2"


def test_csv_columns_order_and_float_format(tmp_path):
    path = write_csv(tmp_path / "t.csv", [{"b": 1.0 / 3, "a": "x", "extra": 5}], columns=["a", "b"])
    assert path.read_text().splitlines() == ["a,b", "x,0.333333"]
