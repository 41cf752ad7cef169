"""The manifest of committed files that a kit outside a checkout fetches with a checksum.

    python -m qpi_lab.manifest            # exit 1 (and say which) when it is out of date
    python -m qpi_lab.manifest --write    # rewrite qpi_utils/committed_files.json

Lists every file under ``results/`` and ``priors/`` that git tracks, with its SHA-256;
:func:`qpi_utils.runs.committed_file` reads it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from qpi_utils.files import sha256, write_text
from qpi_utils.runs import COMMITTED_FILES, project_root

FOLDERS = ("results", "priors")  # what notebooks and training read from the repository


def current() -> dict[str, str]:
    """path -> SHA-256 for every tracked file of :data:`FOLDERS` in the checkout."""
    root = project_root()
    listed = subprocess.run(["git", "ls-files", *FOLDERS], cwd=root, check=True, capture_output=True, text=True)
    files = sorted(line for line in listed.stdout.splitlines() if line)
    return {path: sha256(root / path) for path in files if (root / path).is_file()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    want = current()
    if "--write" in argv:
        write_text(COMMITTED_FILES, json.dumps(want, indent=1, sort_keys=True) + "\n")
        print(f"wrote {COMMITTED_FILES.relative_to(project_root())}: {len(want)} files")
        return 0
    have = json.loads(COMMITTED_FILES.read_text()) if COMMITTED_FILES.is_file() else {}
    stale = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    if stale:
        print(f"{len(stale)} results files differ from the manifest (first: {stale[0]}): "
              "python -m qpi_lab.manifest --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
