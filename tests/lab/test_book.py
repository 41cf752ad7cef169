"""`make book` (qpi_lab.book): the site builds from the committed pages, and a broken internal
link or a missing figure stops the build, naming the page. (The built pages are opened in a real
browser by tests/browser/test_book.py.)"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("jupyter_book", reason="Jupyter Book is missing: pip install -e '.[dev]'")


def _copy_of_the_pages(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for name in ("README.md",):
        src.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    for folder in ("docs", "book", "notebooks", "figures"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return src


@pytest.mark.parametrize("bad, message", [
    ("[a page](docs/no-such-page.md)", "cross-reference target not found: 'docs/no-such-page.md'"),
    ("![a figure](figures/quick/no-such-figure.png)", "image file not readable: figures/quick/no-such-figure.png"),
])
def test_a_broken_link_or_a_missing_figure_fails_the_build(tmp_path, bad, message):
    src = _copy_of_the_pages(tmp_path)
    with open(src / "README.md", "a") as f:
        f.write(f"\n{bad}\n")
    done = subprocess.run([sys.executable, "-m", "qpi_lab.book", "--source", str(src), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert message in done.stdout + done.stderr and "README.md" in done.stdout + done.stderr
