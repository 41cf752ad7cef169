import re
import subprocess
from pathlib import Path

import qpi_lab.provenance as P
from qpi_lab.provenance import CODE_PATHS, git_commit, same_code


def test_the_commit_is_recorded_with_a_hash_of_any_code_change():
    commit = git_commit()  # tests run in a checkout (CI: a fresh clone)
    assert commit is not None and re.fullmatch(r"[0-9a-f]{40}(\+dirty-[0-9a-f]{12})?", commit)


def commits_with_and_without_a_code_change():
    """(a, b, c) from this checkout's history: b changed no code since a (only pages or results), c did."""
    git = lambda *args: subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    log = git("log", "--format=%H", "-n", "300").stdout.split()
    same = next(((log[i + 1], log[i]) for i in range(len(log) - 1)
                 if git("diff", "--quiet", log[i + 1], log[i], "--", *CODE_PATHS).returncode == 0), None)
    assert same, "the history has no commit that changed no code"
    other = next((c for c in log if git("diff", "--quiet", same[0], c, "--", *CODE_PATHS).returncode == 1), None)
    assert other, "the history has no commit that changed code"
    return same[0], same[1], other


def test_same_code_is_a_clean_commit_or_a_later_one_that_changed_no_code(monkeypatch):
    made, pages_only, code_changed = commits_with_and_without_a_code_change()
    now = {"commit": pages_only}
    monkeypatch.setattr(P, "git_commit", lambda: now["commit"])
    assert same_code(made) and same_code(pages_only)
    assert not same_code(code_changed) and not same_code(None) and not same_code("0" * 40)  # unknown commit
    assert not same_code(made + "+dirty-0123456789ab")
    now["commit"] = pages_only + "+dirty-0123456789ab"  # uncommitted code now
    assert not same_code(made) and not same_code(pages_only)
