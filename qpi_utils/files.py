"""Writing files safely: every artefact of the kit is written to a temporary name beside its
target and renamed into place, so a reader (or a crash) never sees a half-written file.

* :func:`atomic_path` -- a context manager yielding the temporary path to write; renamed to the
  target on success, removed on error.
* :func:`write_text`, :func:`write_csv` -- the common cases on top of it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

__all__ = ["atomic_path", "write_text", "write_csv", "read_csv", "format_value"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, hidden name); on normal exit it is
    renamed over ``path`` (atomic on one file system), on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
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
