"""`make book`: the README, the docs pages and the numbered notebooks as a website (Jupyter Book 1,
configured by book/_config.yml and book/_toc.yml), rendered from the committed notebook outputs;
nothing is executed. The build fails on any warning, so a broken internal link, a page missing
from the table of contents or a missing figure stops it.

    python -m qpi_lab.book [--out DIR]    # the site is DIR/_build/html (default: _build/book)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from qpi_utils.runs import project_root


def build_command(out: Path, root: Path) -> list[str]:
    jupyter_book = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    return [jupyter_book, "build", str(root), "--config", str(root / "book" / "_config.yml"),
            "--toc", str(root / "book" / "_toc.yml"), "--path-output", str(out),
            "--warningiserror", "--nitpick", "--quiet"]


def main(argv: list[str] | None = None) -> int:
    root = project_root()
    parser = argparse.ArgumentParser(prog="python -m qpi_lab.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=root / "_build" / "book",
                        help="output folder; the site is <out>/_build/html (default _build/book)")
    parser.add_argument("--source", type=Path, default=root,
                        help="the folder holding README.md, docs/, notebooks/ and book/ (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.source.resolve()
    command = build_command(args.out.resolve(), root)
    if not Path(command[0]).exists():
        print("qpi book: error: jupyter-book is not installed: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    done = subprocess.run(command, cwd=root)
    if done.returncode == 0:
        print(f"the book: {args.out.resolve() / '_build' / 'html' / 'index.html'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
