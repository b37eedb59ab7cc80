"""The product's shape rules (issue 13): short functions, and no test machinery in src/."""

from __future__ import annotations

import ast
import fnmatch
import sys
from pathlib import Path

from tests.unit.project_scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
MAX_LINES = 60


def test_no_function_in_src_is_longer_than_sixty_lines() -> None:
    checker = load_script("check_function_length")
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for path in sorted(SRC.rglob("*.py"))
        for name, line, length in checker.function_lengths(path)
        if length > MAX_LINES
    ]
    assert too_long == []


def test_the_length_rule_counts_the_body_without_the_docstring(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1))
    doc = '    """A docstring.\n\n    Over several lines.\n    """\n'
    source = tmp_path / "m.py"
    source.write_text(f"def f():\n{doc}{body}\n\n\ndef g():\n{body}\n    x = 0\n")
    checker = load_script("check_function_length")
    lengths = {n: size for n, _, size in checker.function_lengths(source)}
    assert lengths == {"f": MAX_LINES, "g": MAX_LINES + 1}


def test_no_module_of_src_imports_localcloud() -> None:
    importers = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "localcloud" or n.startswith("localcloud.") for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert importers == []


def test_the_wheel_packs_the_function_library_and_not_the_stand_ins() -> None:
    # pyproject.toml's package search, applied as setuptools applies it (namespace
    # packages included): only ota_release goes into the wheel; localcloud, whose web
    # framework the wheel does not declare, stays a dev-only folder of the repository.
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = config["tool"]["setuptools"]["packages"]["find"]
    packed = {
        entry.name
        for where in find["where"]
        for entry in (ROOT / where).iterdir()
        if entry.is_dir()
        and entry.name.isidentifier()
        and any(fnmatch.fnmatchcase(entry.name, p) for p in find["include"])
    }
    assert packed == {"ota_release"}
