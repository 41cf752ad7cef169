import re

from qpi_lab.provenance import git_commit


def test_the_commit_is_recorded_with_a_hash_of_any_code_change():
    commit = git_commit()  # tests run in a checkout (CI: a fresh clone)
    assert commit is not None and re.fullmatch(r"[0-9a-f]{40}(\+dirty-[0-9a-f]{12})?", commit)
