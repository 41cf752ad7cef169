"""The committed results are what the committed code makes, and the README quotes only them.

* Every provenance file under ``results/`` records a clean commit (not ``+dirty-``), and the code
  that makes results (``qpi_utils/``, ``pyproject.toml``) has not changed since that commit: a
  result made by older code fails here until it is regenerated.
* Every number in the README's results blocks (between ``<!-- results -->`` and
  ``<!-- /results -->``) appears, at the precision the README prints it, in a committed results
  file or in the printed output of a committed notebook (what the chain wrote back with
  ``--update-notebooks``; the real-data scores exist only there).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from qpi_utils.provenance import CODE_PATHS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?(?![\w.])")


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def _provenance_files() -> list[Path]:
    return sorted(p for p in RESULTS.rglob("*provenance*.json"))


def test_results_have_provenance():
    assert _provenance_files(), "no provenance files under results/"


@pytest.mark.parametrize("path", _provenance_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_results_come_from_the_committed_code(path):
    if _git("rev-parse", "HEAD").returncode != 0:
        pytest.skip("not a git checkout")
    commit = json.loads(path.read_text()).get("git_commit")
    assert commit, f"{path} records no commit"
    assert "+dirty" not in commit, f"{path} was made by uncommitted code ({commit}): regenerate it at a commit"
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            pytest.skip(f"shallow clone: commit {commit[:12]} not available")
        pytest.fail(f"{path}: commit {commit} is not in this repository's history")
    changed = _git("diff", "--name-only", commit, "HEAD", "--", *CODE_PATHS).stdout.split()
    assert not changed, (f"{path} was made at {commit[:12]}; the code that makes results has changed since "
                         f"({', '.join(changed[:8])}): regenerate the results with the current code")


def _notebook_output_text(path: Path) -> str:
    """The text a notebook's code cells printed or displayed (not its source, not images)."""
    texts = []
    for cell in json.loads(path.read_text()).get("cells", []):
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            for kind in ("text/plain", "text/markdown"):
                texts.append("".join(out.get("data", {}).get(kind, "")))
    return "\n".join(texts)


def _committed_numbers() -> list[float]:
    values = []
    for p in RESULTS.rglob("*"):
        if p.is_file() and p.suffix in (".csv", ".json", ".md", ".txt"):
            values += [float(m) for m in NUMBER.findall(p.read_text(errors="replace"))]
    for p in sorted((ROOT / "notebooks").glob("*.ipynb")):
        values += [float(m) for m in NUMBER.findall(_notebook_output_text(p))]
    return values


def _readme_numbers() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- results -->(.*?)<!-- /results -->", text, flags=re.S)
    assert blocks, "README has no <!-- results --> block"
    return [n for block in blocks for n in NUMBER.findall(block)]


def test_every_number_the_readme_quotes_is_in_a_committed_results_file():
    have = _committed_numbers()
    missing = []
    for text in _readme_numbers():
        decimals = len(text.split(".")[1].split("e")[0])
        x = float(text)
        if not any(abs(v - x) <= 0.5 * 10 ** -decimals + 1e-12 for v in have):
            missing.append(text)
    assert not missing, f"README numbers found in no results file: {sorted(set(missing))}"


def test_the_readme_check_can_fail(monkeypatch):
    """The number check is not vacuous: a number no results file holds is reported."""
    have = _committed_numbers()
    assert have and not any(abs(v - 123.4567) < 1e-4 for v in have)
