"""No module of the repository imports itself back through others (issue 13: no cycles).

Counts every import, lazy and TYPE_CHECKING ones included (scripts/check_import_cycles.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.project_scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def test_no_import_cycle_in_the_repository() -> None:
    # src/ota_release, localcloud and benchmarks (scripts/ and functions/ are loose
    # modules that import the packages and are imported by none of them)
    checker = load_script("check_import_cycles")
    assert checker.cycles(checker.graph(list(checker.DEFAULT_ROOTS))) == []


def test_the_checker_finds_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    # GIVEN a package whose modules import each other, one of them lazily
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "a.py").write_text("from pkg.b import x\n", encoding="utf-8")
    (pkg / "b.py").write_text("x = 1\n\ndef f():\n    from pkg import a\n", encoding="utf-8")
    checker = load_script("check_import_cycles")

    # WHEN the checker reads it THEN it reports the cycle
    assert checker.cycles(checker.graph([pkg])) == [["pkg.a", "pkg.b"]]


def test_a_submodule_importing_its_packages_reexport_is_a_cycle_a_sibling_is_not(
    tmp_path: Path,
) -> None:
    # GIVEN a package that re-exports a.A, where a imports its sibling b directly
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg.a import A\n", encoding="utf-8")
    (pkg / "a.py").write_text("from pkg.b import B\n\nclass A: ...\n", encoding="utf-8")
    (pkg / "b.py").write_text("class B: ...\n", encoding="utf-8")
    checker = load_script("check_import_cycles")
    # THEN that is no cycle
    assert checker.cycles(checker.graph([pkg])) == []

    # WHEN b takes A from the package instead (as fc_api once took the facade)
    (pkg / "b.py").write_text("from pkg import A\n\nclass B: ...\n", encoding="utf-8")
    # THEN the package, a and b form a cycle
    assert checker.cycles(checker.graph([pkg])) == [["pkg", "pkg.a", "pkg.b"]]
