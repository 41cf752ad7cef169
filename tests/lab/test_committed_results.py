"""The committed results are what the committed code makes, and the README quotes only them.

* Every provenance file under ``results/`` records a clean commit (not ``+dirty-``), and the code
  that makes results (``qpi_utils/``, ``qpi_lab/``, ``pyproject.toml``) has not changed since that
  commit: a result made by older code fails here until it is regenerated. Two refinements. A change
  that moved code without changing what it computes is recorded in ``results/equivalence.json`` by
  ``tools/compare_runs.py`` (two smoke chains, at the base commit and at the new one: every network's
  weights, every table number and the real-data output identical): results made at its base commit
  then count as made at its new commit. And for the
  ablation tables (hours of training each): a changed module none of whose code runs while the
  ablation is made does not make it stale. Which modules run is measured, not declared: the
  ablation is run at the smoke profile under a profiler hook that records every qpi_utils/qpi_lab file
  with a function (or module body) entered. Why that suffices: the modules that ran are the same
  at the recorded commit and at HEAD, so the same inputs take the same path through them, and a
  module they never called at HEAD they never called then (the ablation's methods, not the
  profile, decide which methods' code runs; ``tests/test_seeds.py`` runs the ablations end to end).
  What a trace cannot see, a module-level value of a module whose code never runs read by code that
  does (the paper's numbers in ``paper.py``, say), is added from the source: any qpi_utils module a
  module that ran imports such a value from counts as used (:func:`_constant_sources`).
* Every number in the results blocks of the README and the docs pages (between ``<!-- results -->`` and
  ``<!-- /results -->``) appears, at the precision the README prints it, in a committed results
  file or in the printed output of a committed notebook (what the chain wrote back with
  ``--update-notebooks``; the real-data scores exist only there).
"""

import functools
import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from qpi_lab.provenance import CODE_PATHS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
EQUIVALENCE = RESULTS / "equivalence.json"
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?(?![\w.])")


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def _provenance_files() -> list[Path]:
    return sorted(p for p in RESULTS.rglob("*provenance*.json"))


QPI_UTILS = ROOT / "qpi_utils"
QPI_LAB = ROOT / "qpi_lab"
# the code that decides which modules an ablation runs is unchanged by this: fewer epochs only make
# the traced run fast
_TRACE_OVERRIDES = {"kernel_vae.epochs": 1, "alignment.epochs": 1, "one_step.epochs": 1}


@functools.lru_cache(maxsize=None)
def files_run_by_ablation(name: str) -> frozenset[str]:
    """Repository paths (``qpi_utils/x.py``) of the modules whose code runs while ablation
    ``name`` is made (:func:`qpi_lab.seeds.run_ablation`, smoke profile, one seed, fresh
    directories): every Python frame entered, in every thread, is recorded by its file."""
    from qpi_lab.seeds import run_ablation

    ran = set()

    def hook(frame, event, arg):
        if event == "call":
            ran.add(frame.f_code.co_filename)

    with tempfile.TemporaryDirectory() as tmp:
        threading.setprofile(hook)
        sys.setprofile(hook)
        try:
            run_ablation(name, "smoke", [0], Path(tmp) / "ablation", overrides=_TRACE_OVERRIDES, progress=False)
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    files = {Path(f).resolve().relative_to(ROOT).as_posix() for f in ran
             if Path(f).resolve().is_relative_to(QPI_UTILS) or Path(f).resolve().is_relative_to(QPI_LAB)}
    return frozenset(files | _constant_sources(files))


def _module_values(path: Path) -> set[str]:
    """Names a module binds at its top level to values other than functions and classes."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _constant_sources(files: set[str]) -> set[str]:
    """The qpi_utils/qpi_lab modules from which a module in ``files`` reads a value that is not a
    function or class (``from qpi_utils.paper import TABLE1_RMSE``, ``from .paper import ...``, or
    ``realdata.SOME_VALUE`` after ``from qpi_utils import realdata``): such a value is used without
    any of its module's code running under the trace."""
    import ast

    found = set()
    for rel in files:
        tree = ast.parse((ROOT / rel).read_text())
        modules = {}  # local name -> module file, for `from . import m`
        package = (ROOT / rel).parent  # `from .x import` inside qpi_utils or qpi_lab
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 1:
                base, module = package, node.module
            elif node.level == 0 and (node.module or "").split(".")[0] in ("qpi_utils", "qpi_lab"):
                parts = node.module.split(".")
                base, module = ROOT / parts[0], (parts[1] if len(parts) > 1 else None)
            else:
                continue
            for alias in node.names:
                source = base / f"{module or alias.name}.py"
                if not source.is_file():
                    continue
                if module is None:
                    modules[alias.asname or alias.name] = source
                elif alias.name in _module_values(source):
                    found.add(source.relative_to(ROOT).as_posix())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
                source = modules[node.value.id]
                if node.attr in _module_values(source):
                    found.add(source.relative_to(ROOT).as_posix())
    return found


def _ablation_name(path: Path) -> str | None:
    """The ablation a provenance file belongs to (``results/<profile>/ablations/<name>_provenance.json``)."""
    if path.parent.name != "ablations" or not path.name.endswith("_provenance.json"):
        return None
    from qpi_lab.seeds import ABLATIONS

    name = path.name[: -len("_provenance.json")]
    return name if name in ABLATIONS else None


def stale_because_of(path: Path, changed: list[str]) -> list[str]:
    """The files of ``changed`` (code changed since ``path``'s result was made) that make it stale:
    all of them, except, for an ablation table, qpi_utils modules none of whose code runs while
    that ablation is made (:func:`files_run_by_ablation`)."""
    name = _ablation_name(path)
    if not changed or name is None:
        return changed
    ran = files_run_by_ablation(name)
    return [f for f in changed if not (f.startswith(("qpi_utils/", "qpi_lab/")) and f.endswith(".py")) or f in ran]


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
    made = equivalent_commit(commit, path)
    changed = stale_because_of(path, _git("diff", "--name-only", made, "HEAD", "--", *CODE_PATHS).stdout.split())
    via = f" (computes as {made[:12]}, results/equivalence.json)" if made != commit else ""
    assert not changed, (f"{path} was made at {commit[:12]}{via}; the code that makes results has changed since "
                         f"({', '.join(changed[:8])}): regenerate the results with the current code")


def profile_differences(made: dict) -> list[str]:
    """The settings of a result's recorded profile ``made`` that differ from today's profile of that
    name (seeds aside: ``qpi seeds`` sets them per seed). A setting added since (absent from the
    record) was made with the behaviour its default keeps (that is how a setting is added), so it
    counts as its default: a profile that moves it away makes the result stale."""
    from qpi_lab.seeds import SEED_KEYS
    from qpi_utils.config import get_profile, profile_from_dict

    today = json.loads(json.dumps(get_profile(made["name"]).to_dict()))  # tuples as JSON lists
    defaults = json.loads(json.dumps(profile_from_dict({"name": made["name"]}).to_dict()))
    seeds = {tuple(k.split(".")) for k in SEED_KEYS}
    recorded = lambda section, key: (made.get(section) or {}).get(key, (defaults.get(section) or {}).get(key))
    return [f"{section}.{key}: made with {recorded(section, key)!r}, today {value!r}"
            for section, values in today.items() if isinstance(values, dict)
            for key, value in values.items()
            if (section, key) not in seeds and recorded(section, key) != value]


@pytest.mark.parametrize("path", _provenance_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_results_were_made_with_todays_profile(path):
    """Every setting a result's provenance records equals today's profile of that name
    (:func:`profile_differences`). The equivalence records compare smoke chains, so they cannot see
    a change to another profile: a quick-profile result made before the quick profile changed
    would otherwise be carried as current."""
    made = json.loads(path.read_text()).get("profile")
    if not isinstance(made, dict):
        pytest.skip(f"{path.name} records no profile")
    differ = profile_differences(made)
    assert not differ, f"{path.relative_to(ROOT)} was made with another {made['name']} profile: " + "; ".join(differ[:5])


def test_a_setting_the_record_lacks_counts_as_its_default():
    """A result made before a setting existed is stale once the profile moves that setting off its
    default, and current while the profile keeps it."""
    from qpi_utils.config import get_profile, profile_from_dict

    made = json.loads(json.dumps(get_profile("quick").to_dict()))
    assert profile_differences(made) == []
    made["alignment"]["lr"] = made["alignment"]["lr"] * 2
    assert [d.split(":")[0] for d in profile_differences(made)] == ["alignment.lr"]
    made = json.loads(json.dumps(get_profile("quick").to_dict()))
    added = next(k for k, v in made["simulation"].items() if v == 0)  # a setting at its default
    del made["simulation"][added]
    assert profile_differences(made) == []
    made = json.loads(json.dumps(get_profile("smoke").to_dict()))
    defaults = json.loads(json.dumps(profile_from_dict({"name": "smoke"}).to_dict()))
    moved = next(k for k, v in made["simulation"].items() if v != defaults["simulation"][k])  # smoke's n_kernels
    del made["simulation"][moved]  # as if made before the setting existed: then it was the default
    assert [d.split(":")[0] for d in profile_differences(made)] == [f"simulation.{moved}"]


def _same_code(a: str, b: str) -> bool:
    return _git("diff", "--quiet", a, b, "--", *CODE_PATHS).returncode == 0


def equivalent_commit(commit: str, path: Path | None = None) -> str:
    """The latest commit whose code computes what ``commit``'s did: following the records of
    ``results/equivalence.json`` in order, a record moves ``commit`` to its new commit when
    ``commit`` holds the same code (``CODE_PATHS``) as the record's base commit, or when the record
    lists the result ``path``, made at ``commit``, among those current at its base (this very test
    passed for it there: how an ablation table, current through the files it runs, is carried)."""
    records = json.loads(EQUIVALENCE.read_text()) if EQUIVALENCE.is_file() else []
    rel = None if path is None else Path(path).resolve().relative_to(ROOT).as_posix()
    for record in records:
        current = {(r["path"], r["git_commit"]) for r in record.get("current_at_base", [])}
        if record.get("identical") and (_same_code(commit, record["base_commit"]) or (rel, commit) in current):
            commit = record["new_commit"]
    return commit


def test_every_equivalence_record_names_commits_of_this_history_and_what_was_compared():
    records = json.loads(EQUIVALENCE.read_text()) if EQUIVALENCE.is_file() else []
    for record in records:
        assert record["identical"] is True and record["compared"], record
        assert any(c.startswith("models/") for c in record["compared"]), "the networks' weights were compared"
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            continue
        for key in ("base_commit", "new_commit"):
            assert _git("cat-file", "-e", f"{record[key]}^{{commit}}").returncode == 0, f"{key} {record[key]} unknown"
        # the record says code moved: the base must be an ancestor of the new commit
        assert _git("merge-base", "--is-ancestor", record["base_commit"], record["new_commit"]).returncode == 0


def test_the_trace_sees_what_an_ablation_runs_and_what_it_does_not():
    """The measurement the staleness exemption rests on: the warm-start ablation trains and
    evaluates the networks (train.py, evaluate.py, models.py run) and never enters the physics
    baselines or the real-data code."""
    ran = files_run_by_ablation("warm_start")
    assert {"qpi_utils/train.py", "qpi_utils/evaluate.py", "qpi_utils/models.py", "qpi_lab/seeds.py"} <= ran
    assert "qpi_utils/baselines.py" not in ran and "qpi_utils/realdata.py" not in ran
    assert "qpi_utils/paper.py" in ran  # no code of it runs, but seeds.py reads its numbers
    path = RESULTS / "quick" / "ablations" / "warm_start_provenance.json"
    assert stale_because_of(path, ["qpi_utils/baselines.py", "qpi_utils/train.py", "pyproject.toml"]) == [
        "qpi_utils/train.py", "pyproject.toml"]
    assert stale_because_of(RESULTS / "quick" / "provenance.json", ["qpi_utils/baselines.py"]) == [
        "qpi_utils/baselines.py"]  # only ablation tables are refined


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


PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))  # the pages whose numbers are checked


def _readme_numbers() -> list[str]:
    """The numbers inside the results blocks of the README and of every docs page."""
    blocks = {page: re.findall(r"<!-- results -->(.*?)<!-- /results -->", page.read_text(), flags=re.S)
              for page in PAGES}
    assert blocks[ROOT / "README.md"], "README has no <!-- results --> block"
    assert blocks.get(ROOT / "docs" / "results.md"), "docs/results.md has no <!-- results --> block"
    return [n for page_blocks in blocks.values() for block in page_blocks for n in NUMBER.findall(block)]


def test_every_number_the_readme_quotes_is_in_a_committed_results_file():
    have = _committed_numbers()
    missing = []
    for text in _readme_numbers():
        decimals = len(text.split(".")[1].split("e")[0])
        # magnitudes: a paired difference is rendered as this minus the first variant where its file
        # holds the first minus this (tests/lab/test_readme_results.py checks each cell's sign)
        x = abs(float(text))
        if not any(abs(abs(v) - x) <= 0.5 * 10 ** -decimals + 1e-12 for v in have):
            missing.append(text)
    assert not missing, f"README numbers found in no results file: {sorted(set(missing))}"


def test_the_readme_check_can_fail(monkeypatch):
    """The number check is not vacuous: a number no results file holds is reported."""
    have = _committed_numbers()
    assert have and not any(abs(v - 123.4567) < 1e-4 for v in have)


def test_an_equivalence_record_moves_only_results_made_by_its_base_code(tmp_path, monkeypatch):
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("needs the full history")
    first = _git("rev-list", "--max-parents=0", "HEAD").stdout.split()[0]
    head = _git("rev-parse", "HEAD").stdout.strip()
    other = _git("rev-parse", "HEAD~3").stdout.strip()
    assert not _same_code(first, other)  # the first commit's code is not today's
    record = tmp_path / "equivalence.json"
    record.write_text(json.dumps([{"base_commit": first, "new_commit": head, "identical": True,
                                   "compared": ["models/kernel_vae.pt"]}]))
    monkeypatch.setattr(sys.modules[__name__], "EQUIVALENCE", record)
    assert equivalent_commit(first) == head  # made by the base's code: counts as made at the new commit
    assert equivalent_commit(other) == other  # other code: the record says nothing about it
    table = RESULTS / "quick" / "ablations" / "x_provenance.json"
    record.write_text(json.dumps([{"base_commit": head, "new_commit": head, "identical": True,
                                   "compared": ["models/kernel_vae.pt"],
                                   "current_at_base": [{"path": "results/quick/ablations/x_provenance.json",
                                                        "git_commit": other}]}]))
    assert equivalent_commit(other, table) == head  # listed as current at the base, made at that commit
    assert equivalent_commit(first, table) == first  # the same file made at another commit is not
