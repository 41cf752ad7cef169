"""Writing files safely (temporary name, then rename), fetching files by checksum, and the one
ownership rule: the kit replaces only what its record says it wrote. See ``docs/library.md``."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import QpiError

__all__ = ["atomic_path", "write_text", "write_csv", "read_csv", "format_value", "sha256", "data_dir", "FetchError",
           "fetch_verified", "OWNER_FILE", "owner_record", "OwnershipError", "check_results", "claim_results",
           "pid_alive", "stale_temporaries", "DiskError"]

OWNER_FILE = ".qpi-kit.json"  # in every folder the kit writes: what it wrote there, and which process


class OwnershipError(QpiError, FileExistsError):
    """The kit was asked to replace a file it did not write."""


def owner_record(folder: str | os.PathLike) -> dict | None:
    """The kit's record in ``folder`` (what it wrote, which kind of folder), or None when the kit did not make it."""
    try:
        record = json.loads((Path(folder) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("made_by") == "qpi-kit" else None


def _kit_provenance(path: Path) -> bool:
    """A ``provenance.json`` the kit wrote (before folders carried records): its own keys."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"profile", "git_commit"} <= set(record)


def check_results(folder: str | os.PathLike, names: Sequence[str], force: bool = False) -> set[str]:
    """The rule of :func:`claim_results`, writing nothing: every one of the results files ``names``
    that exists in ``folder`` must be the kit's (listed in the folder's record, or the folder is a
    results folder the kit wrote before records, recognised by its ``provenance.json``); otherwise
    :class:`OwnershipError` names the files. ``force`` lets them be replaced. Returns the names the
    record already lists. Call it before long work whose results go there, so a refusal comes first."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OwnershipError(f"{folder} is a file, not a folder for results: choose another --results-dir")
    record = owner_record(folder)
    if record is not None and record.get("kind") != "results":
        raise OwnershipError(f"{folder} is a {record.get('kind', 'other')} folder of the kit, not a results folder: "
                             "choose another --results-dir")
    listed = set(record.get("files", [])) if record else set()
    adopted = record is None and _kit_provenance(folder / "provenance.json")
    foreign = sorted(n for n in names if (folder / n).exists() and n not in listed and not adopted)
    if foreign and not force:
        raise OwnershipError(f"{folder}: {', '.join(foreign)} exist and were not written by the kit; it replaces only "
                             "its own results: choose another --results-dir, or move those files away")
    return listed


def claim_results(folder: str | os.PathLike, names: Sequence[str], force: bool = False) -> Path:
    """Before the kit writes the results files ``names`` into ``folder``: :func:`check_results`
    (nothing is written when it refuses); then the folder's record lists ``names``. Returns the folder."""
    folder = Path(folder)
    listed = check_results(folder, names, force=force)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / OWNER_FILE, json.dumps({"made_by": "qpi-kit", "kind": "results",
                                                "files": sorted(listed | set(names))}, indent=1) + "\n")
    return folder


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running (on this machine)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's, or not a pid we can ask about: assume alive, never delete
    return True


_TEMPORARY = re.compile(r"^\.(?P<stem>.+)\.tmp-(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


def stale_temporaries(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Files :func:`atomic_path` left behind when its process was killed (``kill -9``, a power cut):
    the kit's temporary names whose writer's pid is no longer running."""
    folder = Path(folder)
    found = folder.rglob(".*.tmp-*") if recursive else folder.glob(".*.tmp-*")
    return sorted(p for p in found if p.is_file() and (m := _TEMPORARY.match(p.name))
                  and int(m["pid"]) != os.getpid() and not pid_alive(int(m["pid"])))


class DiskError(QpiError, OSError):
    """A file could not be written: the message names the path and the system's reason."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, hidden name); on normal exit it is
    renamed over ``path`` (atomic on one file system), on an exception it is removed. Temporaries
    of the same target left by a killed writer are removed first; a full disk or a folder that
    cannot be written is a :class:`DiskError` naming the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(f"cannot create the folder {path.parent}: {exc.strerror or exc}") from None
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    for old in stale_temporaries(path.parent, recursive=False):
        if old.name.startswith(f".{path.stem}.tmp-") and old.name.endswith(path.suffix):
            with contextlib.suppress(OSError):
                old.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, QpiError):
            raise DiskError(f"cannot write {path}: {exc.strerror or exc}"
                            + (" (the disk is full)" if getattr(exc, "errno", None) == 28 else "")) from None
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically. Returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def format_value(v):
    """Floats to 6 significant digits (tables stay readable and diffs small); others as they are."""
    return f"{v:.6g}" if isinstance(v, float) else v


def write_csv(path: str | os.PathLike, rows: Iterable[dict], columns: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV atomically; ``columns`` (default: the first row's keys) fixes the
    order, other keys are ignored. Floats are written by :func:`format_value`."""
    rows = list(rows)
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows({k: format_value(v) for k, v in r.items()} for r in rows)
    return write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV written by :func:`write_csv` (values as strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_dir() -> Path:
    """Where fetched files are kept: ``$QPI_DATA_DIR``, else pooch's per-user cache for qpi-kit
    (tests and CI point ``QPI_DATA_DIR`` at ``../shared/data``)."""
    import pooch

    return Path(os.environ.get("QPI_DATA_DIR") or pooch.os_cache("qpi-kit"))


class FetchError(QpiError, ValueError):
    """A file to be fetched is missing, damaged or cannot be downloaded; the message says how to
    put it in place by hand."""


def fetch_verified(name: str, url: str, digest: str, folder: str | os.PathLike) -> Path:
    """``folder/name`` once its SHA-256 is ``digest``: a copy already there is used without any
    network access; otherwise it is downloaded from ``url`` (pooch) and checked. Every failure is a
    :class:`FetchError` naming the file, where to put it by hand, its URL and its checksum."""
    import pooch

    folder = Path(folder)
    local = folder / name
    by_hand = (f"download {url} yourself and put it at {local} (SHA-256 {digest}), "
               "or point the kit at a folder that holds it")
    problem = ""
    if local.is_file():
        found = sha256(local)
        if found == digest:
            return local
        problem = f"checksum mismatch: {local} has SHA-256 {found[:16]}..., expected {digest[:16]}...; "
    made = [d for d in (local.parent, *local.parent.parents) if not d.exists()]  # folders this call creates
    try:
        local.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"{name}: {problem}cannot create the folder {local.parent} ({exc.strerror or exc}): "
                         f"{by_hand}") from None
    if not os.access(local.parent, os.W_OK):
        raise FetchError(f"{name}: {problem}the folder {local.parent} is read-only, so it cannot be downloaded "
                         f"there: {by_hand}")
    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{digest}", fname=local.name, path=local.parent,
                                   progressbar=False))
    except ValueError as exc:  # pooch: the downloaded file has another hash
        _remove_empty(made)
        raise FetchError(f"{name}: checksum mismatch after downloading {url} ({exc}): {by_hand}") from None
    except Exception as exc:  # no network, DNS, HTTP errors: requests raises many kinds
        _remove_empty(made)
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise FetchError(f"{name}: {problem}could not download it ({type(exc).__name__}: {detail}); "
                         f"offline? {by_hand}") from None


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created (deepest first), where they are still empty:
    a failure leaves nothing behind, and nothing the kit did not make is touched."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
