"""Real-data faults: offline, wrong content, read-only folders, impossible headers (one case a line)."""
import os
from pathlib import Path

import pooch
import pytest

from qpi_utils import realdata as R
from qpi_utils.realdata import RealDataError

CU = "Cu111_createc_terrace.dat"


def _offline(*args, **kwargs):
    import requests

    raise requests.exceptions.ConnectionError("Failed to resolve 'raw.githubusercontent.com'")


def test_offline_with_an_empty_folder_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QPI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(pooch, "retrieve", _offline)
    entry = R.DATA_FILES[CU]
    with pytest.raises(RealDataError) as info:
        R.fetch(CU)
    msg = str(info.value)
    assert "could not download" in msg and entry["url"] in msg and entry["sha256"] in msg
    assert str(tmp_path / CU) in msg


def test_a_file_with_wrong_content_is_a_checksum_mismatch(tmp_path, monkeypatch):
    monkeypatch.setenv("QPI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(pooch, "retrieve", _offline)
    (tmp_path / CU).write_bytes(b"not the file")
    with pytest.raises(RealDataError, match="checksum mismatch"):
        R.fetch(CU)


def test_a_read_only_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("QPI_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(R.os, "access", lambda path, mode: False)  # root ignores chmod; test the check
    with pytest.raises(RealDataError, match="is read-only"):
        R.fetch(CU)


@pytest.mark.parametrize("field, value, message", [
    (b"Num.X / Num.X=512", b"Num.X / Num.X=0  ", "Num.X is 0; it must be >= 1"),
    (b"Length x[A]=1087.5332", b"Length x[A]=-1.000000", "scan lengths must be > 0"),
])
def test_impossible_createc_headers_are_named(tmp_path, field, value, message):
    folder = Path(os.environ.get("QPI_DATA_DIR", ""))
    if not (folder / CU).is_file():
        pytest.fail(f"the real STM files must be in QPI_DATA_DIR ({folder}); see ../shared/data")
    raw = (folder / CU).read_bytes()
    assert field in raw
    bad = tmp_path / "bad.dat"
    bad.write_bytes(raw.replace(field, value, 1))
    with pytest.raises(RealDataError, match=message):
        R.read_createc(bad)
