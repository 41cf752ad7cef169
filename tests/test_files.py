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


# --- ownership of results folders (claim_results) ---------------------------------------------

import json  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from qpi_utils.files import OWNER_FILE, OwnershipError, check_results, claim_results, owner_record  # noqa: E402

NAMES = ("table.csv", "table.md", "provenance.json")


def test_a_users_file_is_never_replaced_and_nothing_is_written(tmp_path):
    (tmp_path / "table.md").write_text("my notes")
    with pytest.raises(OwnershipError, match=r"table\.md exist and were not written by the kit"):
        claim_results(tmp_path, NAMES)
    assert (tmp_path / "table.md").read_text() == "my notes" and not (tmp_path / OWNER_FILE).exists()
    claim_results(tmp_path, NAMES, force=True)  # asked for: replaced, and from then on the kit's
    assert set(owner_record(tmp_path)["files"]) == set(NAMES)


def test_the_kits_own_files_and_folders_it_wrote_before_records_are_replaced(tmp_path):
    claim_results(tmp_path / "a", NAMES)
    (tmp_path / "a" / "table.md").write_text("the kit's")
    claim_results(tmp_path / "a", NAMES)  # listed in the record
    legacy = tmp_path / "b"
    legacy.mkdir()
    (legacy / "provenance.json").write_text(json.dumps({"profile": {}, "git_commit": "abc"}))
    (legacy / "table.md").write_text("the kit's, before records")
    claim_results(legacy, NAMES)  # recognised by its provenance
    assert owner_record(legacy)["kind"] == "results"


def test_a_dataset_folder_or_a_file_is_not_a_results_folder(tmp_path):
    (tmp_path / OWNER_FILE).write_text(json.dumps({"made_by": "qpi-kit", "kind": "dataset"}))
    with pytest.raises(OwnershipError, match="dataset folder of the kit"):
        claim_results(tmp_path, NAMES)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OwnershipError, match="is a file"):
        claim_results(tmp_path / "f", NAMES)


@settings(max_examples=40, deadline=None)
@given(existing=st.sets(st.sampled_from(NAMES + ("notes.txt",))), listed=st.sets(st.sampled_from(NAMES)))
def test_claiming_refuses_exactly_the_unlisted_files_it_would_replace(tmp_path_factory, existing, listed):
    folder = tmp_path_factory.mktemp("r")
    (folder / OWNER_FILE).write_text(json.dumps({"made_by": "qpi-kit", "kind": "results", "files": sorted(listed)}))
    for name in existing:
        (folder / name).write_text("x")
    foreign = sorted(n for n in existing if n in NAMES and n not in listed)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    if foreign:
        for rule in (check_results, claim_results):  # the check alone refuses the same files
            with pytest.raises(OwnershipError) as info:
                rule(folder, NAMES)
            assert all(n in str(info.value) for n in foreign)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # a refusal writes nothing
    else:
        assert check_results(folder, NAMES) == listed
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the check alone writes nothing
        claim_results(folder, NAMES)
        assert set(owner_record(folder)["files"]) == set(NAMES) | listed
    assert all((folder / n).read_text() == "x" for n in existing)  # claiming never writes a results file


# --- faults: killed writers and full disks -------------------------------------------------------

import errno  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from qpi_utils.files import DiskError, stale_temporaries  # noqa: E402


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_killed_writers_temporary_is_found_and_removed_by_the_next_write(tmp_path):
    dead = _dead_pid()
    left = tmp_path / f".model.tmp-{dead}.pt"
    left.write_bytes(b"half")
    mine = tmp_path / f".other.tmp-{os.getpid()}.pt"  # a live writer's (this process): never touched
    mine.write_bytes(b"in progress")
    users = tmp_path / "notes.tmp-1.txt"  # not the kit's name: never touched
    users.write_text("mine")
    assert stale_temporaries(tmp_path) == [left]
    write_text(tmp_path / "model.pt", "new")
    assert not left.exists() and users.read_text() == "mine" and (tmp_path / "model.pt").read_text() == "new"
    assert mine.read_bytes() == b"in progress"


def test_a_full_disk_is_one_error_naming_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskError, match=r"cannot write .*table\.md: No space left on device \(the disk is full\)"):
        write_text(tmp_path / "table.md", "x")
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    """fetch_verified creates the folders it downloads into; when the download fails it removes
    those (and only those) again, and names the file and where to put it by hand."""
    import pooch
    import requests

    from qpi_utils.files import FetchError, fetch_verified

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'example.org'")

    monkeypatch.setattr(pooch, "retrieve", offline)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    for target in (tmp_path / "new" / "deeper", tmp_path / "mine"):
        with pytest.raises(FetchError, match="could not download it") as info:
            fetch_verified("x.csv", "https://example.org/x.csv", "0" * 64, target)
        assert str(target / "x.csv") in str(info.value)
    assert not (tmp_path / "new").exists()  # made by the call, removed with its subfolder
    assert (tmp_path / "mine" / "notes.txt").read_text() == "the user's"  # was there before: kept
