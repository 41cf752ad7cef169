"""The manifest of committed files (qpi_lab.manifest) and how a kit outside a checkout uses it
(qpi_utils.runs.committed_file, find_result)."""
import json

import pytest

import qpi_utils.runs as runs
from qpi_lab import manifest
from qpi_utils.files import FetchError, sha256


def test_the_manifest_lists_every_committed_results_file_with_its_checksum():
    """What a pip-installed kit trusts is what is committed: python -m qpi_lab.manifest --write."""
    assert json.loads(runs.COMMITTED_FILES.read_text()) == manifest.current()
    assert manifest.main([]) == 0


def test_outside_a_checkout_a_committed_table_comes_from_the_cache_when_its_checksum_matches(tmp_path, monkeypatch):
    """No checkout: the file is taken from the data cache without network when its SHA-256 is the
    one this version recorded; with other content it is refused (and, offline, named with its URL)."""
    relative = "results/quick/ablations/warm_start.md"
    real = runs.project_root() / relative
    monkeypatch.chdir(tmp_path)  # project_root() is now an empty folder
    monkeypatch.setenv("QPI_DATA_DIR", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "committed" / relative
    cached.parent.mkdir(parents=True)
    cached.write_bytes(real.read_bytes())
    assert runs.committed_file(relative) == cached and sha256(cached) == sha256(real)
    cached.write_text("edited")
    import pooch

    monkeypatch.setattr(pooch, "retrieve", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(FetchError, match="checksum mismatch.*raw.githubusercontent.com"):
        runs.committed_file(relative)
    assert runs.committed_file("results/smoke/table.md") is None  # nothing committed for smoke


def test_a_notebook_prefers_its_own_run_s_table_then_the_committed_one_then_says_why(tmp_path, monkeypatch):
    layout = runs.RunLayout(tmp_path / "run", "quick", "notebook")
    assert runs.find_result(layout, "ablations/warm_start.md") == runs.project_root() / "results/quick/ablations/warm_start.md"
    own = layout.results / "ablations" / "warm_start.md"
    own.parent.mkdir(parents=True)
    own.write_text("mine")
    assert runs.find_result(layout, "ablations/warm_start.md") == own
    smoke = runs.RunLayout(tmp_path / "s", "smoke", "notebook")
    assert "is not made for profile smoke yet" in runs.find_result(smoke, "ablations/warm_start.md")
