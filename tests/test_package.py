"""The package's shape: no import cycles, no private names used across modules, no imports of
the package hidden inside functions (each module says what it depends on at its top)."""

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qpi_utils"
MODULES = {p.stem: p for p in sorted(PACKAGE.glob("*.py"))}


def _imported_module(node: ast.ImportFrom, alias: ast.alias | None = None) -> str | None:
    """The qpi_utils submodule an ``import`` statement refers to (None: another package)."""
    if node.level == 1:
        if node.module is None:  # from . import x
            return alias.name if alias is not None else None
        return node.module.split(".")[0]
    if node.module and node.module.startswith("qpi_utils."):
        return node.module.split(".")[1]
    if node.module == "qpi_utils" and alias is not None:
        return alias.name
    return None


def _module_level_imports(tree: ast.Module) -> set[str]:
    deps = set()
    for node in tree.body:  # top level only: function bodies are checked separately
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                mod = _imported_module(node, a)
                if mod in MODULES:
                    deps.add(mod)
        elif isinstance(node, ast.Import):
            deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("qpi_utils.")}
    return deps


def _graph() -> dict[str, set[str]]:
    return {name: _module_level_imports(ast.parse(path.read_text())) - {name} for name, path in MODULES.items()}


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name)


def test_no_package_import_inside_a_function():
    """Heavy optional libraries (diffusers, matplotlib, papermill, ...) may be imported lazily;
    the package's own modules are imported at the top of each module."""
    bad = []
    for name, path in MODULES.items():
        if name == "__init__":  # its __getattr__ imports submodules on first use, by design
            continue
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("qpi_utils")):
                        bad.append(f"{path.name}:{node.lineno} in {fn.name}()")
    assert not bad, "package imports inside functions: " + ", ".join(bad)


def _private_uses(source: str, where: str) -> list[str]:
    tree = ast.parse(source)
    aliases = set()  # names bound to qpi_utils modules in this source
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for a in node.names:
                if _imported_module(node, a) == a.name and a.name in MODULES:
                    aliases.add(a.asname or a.name)
                elif (node.level > 0 or (node.module or "").startswith("qpi_utils")) and a.name.startswith("_") \
                        and not a.name.startswith("__"):
                    found.append(f"{where}:{node.lineno} imports {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("qpi_utils"):
                    aliases.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                found.append(f"{where}:{node.lineno} uses {ast.unparse(node)}")
    return found


def _sources():
    for path in MODULES.values():
        yield path.read_text(), str(path.relative_to(ROOT))
    for path in sorted((ROOT / "tests").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        yield path.read_text(), str(path.relative_to(ROOT))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        # IPython magics (%pip, !cmd) are not Python: parse them as `pass` at the same indentation
        code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                         else line for line in code.splitlines())
        yield code, str(path.relative_to(ROOT))


def test_no_private_name_is_used_outside_its_module():
    found = [f for src, where in _sources() for f in _private_uses(src, where)]
    assert not found, "private names used across modules: " + "; ".join(found)


def test_the_checks_catch_what_they_look_for():
    """The checks above fail on the faults they exist for (so they cannot pass vacuously)."""
    assert _private_uses("from qpi_utils.baselines import _rfft", "x")
    assert _private_uses("from qpi_utils import baselines\nbaselines._rfft(1)", "x")
    assert _private_uses("import qpi_utils as qpi\nqpi.simulate._add_noise(1)", "x")
    assert not _private_uses("import numpy as np\nnp._x", "x")
    assert _module_level_imports(ast.parse("from .data import QPIDataset\nfrom . import train")) == {"data", "train"}
    assert _graph()["data"] >= {"simulate"}  # the graph sees real edges


def test_qpi_utils_never_imports_the_lab():
    """One direction: notebooks import qpi_utils; the lab (qpi_lab) imports qpi_utils, never the
    reverse, not even lazily inside a function."""
    bad = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] == "qpi_lab"]
    assert not bad, "qpi_utils imports the lab: " + ", ".join(bad)


CODE_LINE_BUDGET = 4500  # issue 25: qpi_utils stays thin enough to read; documentation does not count against it


def code_lines(source: str) -> int:
    """Lines of ``source`` that hold code: not blank, not only a comment, not part of a docstring
    (of the module, a class or a function). The explanations a reader needs cost nothing."""
    lines = source.splitlines()
    docs = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1].lstrip().startswith("#")}
    return sum(1 for i, line in enumerate(lines, 1) if line.strip() and i not in docs and i not in comments)


def test_code_lines_counts_code_only():
    source = '''"""A module.

More."""

import os  # why


def f(x):
    """Doc."""
    # a comment
    return """not a docstring
    but code"""
'''
    assert code_lines(source) == 4  # import, def, and the two lines of the returned string


def test_qpi_utils_stays_within_its_code_line_budget():
    """What notebooks import stays thin: at most CODE_LINE_BUDGET lines of code over the package
    (docstrings, comments and blank lines aside; ``docs/library.md`` holds the long explanations)."""
    counts = {name: code_lines(path.read_text()) for name, path in MODULES.items()}
    total = sum(counts.values())
    largest = ", ".join(f"{n} {c}" for n, c in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
    assert total <= CODE_LINE_BUDGET, f"qpi_utils holds {total} lines of code, over {CODE_LINE_BUDGET} (largest: {largest})"


def test_the_lab_check_sees_an_import_of_the_lab(tmp_path, monkeypatch):
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from qpi_lab.seeds import ABLATIONS\n")
    monkeypatch.setitem(MODULES, "fake", fake)
    with pytest.raises(AssertionError, match="fake.py:2 imports qpi_lab.seeds"):
        test_qpi_utils_never_imports_the_lab()


def test_the_conda_files_install_the_torch_build_they_say():
    """environment.yml (CPU) takes torch from PyTorch's CPU index with the +cpu build label (PyPI's
    Linux wheel is the CUDA build); environment-cuda.yml takes PyPI's CUDA build. Both list the
    same other packages, and every dependency of pyproject.toml appears in both."""
    import tomllib

    import yaml

    root = Path(__file__).resolve().parents[1]

    def pip_and_conda(name):
        env = yaml.safe_load((root / name).read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        conda = [d for d in env["dependencies"] if isinstance(d, str)]
        return conda, pip

    cpu_conda, cpu_pip = pip_and_conda("environment.yml")
    cuda_conda, cuda_pip = pip_and_conda("environment-cuda.yml")
    assert "torch==2.13.0+cpu" in cpu_pip and "--extra-index-url https://download.pytorch.org/whl/cpu" in cpu_pip
    assert "torch==2.13.0" in cuda_pip and not any("whl/cpu" in line or "+cpu" in line for line in cuda_pip)
    assert cpu_conda == cuda_conda and [p for p in cpu_pip if "torch" not in p] == [p for p in cuda_pip if "torch" not in p]
    names = {re.split(r"[<>=\[ ]", p, maxsplit=1)[0].lower() for p in cpu_conda + cpu_pip if not p.startswith("-")}
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {re.split(r"[<>=\[ ]", d, maxsplit=1)[0].lower() for d in deps} <= names


def test_every_error_the_kit_raises_on_purpose_is_a_qpi_error():
    """One error family (qpi_utils.errors): each module's error class subclasses QpiError, so the
    CLI and users catch them all in one place."""
    import importlib
    import inspect

    from qpi_utils.errors import QpiError

    found = []
    for name in MODULES:
        module = importlib.import_module(f"qpi_utils.{name}")
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Exception):
                found.append(cls_name)
                assert issubclass(cls, QpiError), f"qpi_utils.{name}.{cls_name} is not a QpiError"
    assert {"ProfileError", "DatasetError", "CheckpointError", "RealDataError", "TrainingError"} <= set(found)
