"""docs/fidelity.md holds the local cloud to its sources: every row cites one and names a test.

Rules (stated in the document's introduction too):

- every table under a ``## <stand-in>`` heading has the columns behaviour, stand-in,
  source, test;
- every row fills all four;
- the source either starts with "assumed" followed by why, or cites a document: a link
  (``https://...``), or an SDK source file (a backticked ``*.py``/``*.js``/``*.ts`` path)
  together with the SDK's version;
- no source cites the team's internal notes (PLATFORM_NOTES), which readers cannot open;
- the test cell names one or more tests as backticked ``tests/...py::test_name`` (an
  optional ``[param]`` suffix and a ``Class::`` part are allowed); each file exists and
  defines each named function.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "fidelity.md"
COLUMNS = ["behaviour", "stand-in", "source", "test"]
SECTIONS = ["OSS", "IoT Platform", "MNS", "Function Compute"]
# Sections this branch fills; the others are filled by their own owners.
MUST_HAVE_ROWS = ["IoT Platform", "MNS"]

_URL = re.compile(r"https?://[^\s)>\]]+")
_SDK_FILE = re.compile(r"`[^`\s]+\.(?:py|js|ts)`")
_VERSION = re.compile(r"\b\d+\.\d+(?:\.\d+)?\b")
_TEST_REF = re.compile(r"`(tests/[^`:\s]+\.py)((?:::[A-Za-z_][A-Za-z0-9_]*)+)(?:\[[^`\]]*\])?`")
_ASSUMED_REASON_WORDS = 4
#: Team-internal files outside the repository: never a source a reader can check.
_INTERNAL_SOURCES = ("PLATFORM_NOTES",)


@dataclass(frozen=True)
class Row:
    section: str
    line: int
    cells: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"docs/fidelity.md:{self.line} ({self.section})"


def split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; ``\\|`` and pipes inside backticks stay in the cell."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells: list[str] = []
    current: list[str] = []
    in_code = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] == "|":
            current.append("|")
            index += 2
            continue
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    cells.append("".join(current).strip())
    return cells


def parse(text: str) -> tuple[dict[str, list[list[str]]], list[Row]]:
    """Headers of each section's tables, and every data row, with its line number."""
    headers: dict[str, list[list[str]]] = {}
    rows: list[Row] = []
    section = ""
    in_table = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            section = line[3:].strip()
            headers.setdefault(section, [])
            in_table = False
            continue
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = split_row(line)
        if not in_table:
            headers.setdefault(section, []).append([c.lower() for c in cells])
            in_table = True
            continue
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            continue
        rows.append(Row(section, number, tuple(cells)))
    return headers, rows


@cache
def defined_names(path: Path) -> frozenset[str]:
    """Function names, and ``Class::method`` pairs, defined in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


def source_problem(source: str) -> str | None:
    """Why a source cell is not acceptable, or None."""
    plain = source.replace("*", "").strip()
    if not plain:
        return "the source is empty"
    internal = [name for name in _INTERNAL_SOURCES if name in source]
    if internal:
        return f"the source cites {internal[0]}, a team-internal file; cite the public document"
    if plain.lower().startswith("assumed"):
        reason = re.sub(r"^assumed\W*", "", plain, flags=re.IGNORECASE)
        if len(reason.split()) < _ASSUMED_REASON_WORDS:
            return f"'assumed' must say why (got {source!r})"
        return None
    if _URL.search(source):
        return None
    if _SDK_FILE.search(source) and _VERSION.search(source):
        return None
    return (
        "the source must start with 'assumed' and say why, or cite a document "
        f"(a link, or an SDK source file with the SDK's version); got {source!r}"
    )


def named_test_problems(cell: str) -> list[str]:
    """Why a test cell does not name existing tests (empty when it does)."""
    references = _TEST_REF.findall(cell)
    if not references:
        return [f"no `tests/...py::test_name` reference in {cell!r}"]
    problems = []
    for file_name, qualified in references:
        path = REPO / file_name
        name = qualified[2:]
        if not path.is_file():
            problems.append(f"{file_name} does not exist")
        elif name not in defined_names(path):
            problems.append(f"{file_name} defines no {name.replace('::', '.')}")
    return problems


DOC_TEXT = DOC.read_text(encoding="utf-8")
HEADERS, ROWS = parse(DOC_TEXT)


def test_every_stand_in_has_its_section_with_the_four_columns() -> None:
    for section in SECTIONS:
        assert section in HEADERS, f"docs/fidelity.md has no '## {section}' section"
        tables = HEADERS[section]
        assert tables, f"section {section!r} has no table"
        for header in tables:
            assert header == COLUMNS, f"section {section!r}: columns {header}, want {COLUMNS}"


@pytest.mark.parametrize("section", MUST_HAVE_ROWS)
def test_sections_of_this_branch_have_rows(section: str) -> None:
    assert any(row.section == section for row in ROWS), f"section {section!r} has no rows"


def test_every_row_has_four_filled_cells() -> None:
    bad = [
        f"{row.where}: {len(row.cells)} cells {row.cells}"
        for row in ROWS
        if len(row.cells) != len(COLUMNS) or not all(row.cells)
    ]
    assert not bad, "\n".join(bad)


def test_every_row_cites_a_source_or_says_why_it_is_assumed() -> None:
    bad = [
        f"{row.where}: {problem}"
        for row in ROWS
        if len(row.cells) == len(COLUMNS) and (problem := source_problem(row.cells[2]))
    ]
    assert not bad, "\n".join(bad)


def test_every_named_test_exists() -> None:
    bad = [
        f"{row.where}: {problem}"
        for row in ROWS
        if len(row.cells) == len(COLUMNS)
        for problem in named_test_problems(row.cells[3])
    ]
    assert not bad, "\n".join(bad)


# The checker itself -------------------------------------------------------------------------


def test_checker_splits_cells_on_unescaped_pipes_outside_code() -> None:
    cells = split_row(r"| a \| b | `x|y` | c |")

    assert cells == ["a | b", "`x|y`", "c"]


@pytest.mark.parametrize(
    ("source", "accepted"),
    [
        ("https://www.alibabacloud.com/help/en/doc-detail/27497.htm", True),
        ("[PublishMessage](https://www.alibabacloud.com/help/doc-detail/27497.htm)", True),
        ("aliyun-mns-sdk 1.3.0 `mns/mns_tool.py`", True),
        ("**assumed**: no public source names the code for a taken name", True),
        ("assumed", False),
        ("assumed: unknown", False),
        ("the docs", False),
        ("`mns/mns_tool.py`", False),
        ("https://www.alibabacloud.com/help/doc-detail/27497.htm; PLATFORM_NOTES", False),
        ("", False),
    ],
)
def test_checker_accepts_only_cited_or_explained_sources(source: str, accepted: bool) -> None:
    assert (source_problem(source) is None) is accepted


def test_checker_finds_missing_files_and_functions() -> None:
    this_file = "tests/unit/test_fidelity_doc.py"
    good = f"`{this_file}::test_every_named_test_exists[x]`"
    missing_function = f"`{this_file}::test_that_is_not_here`"
    missing_file = "`tests/unit/no_such_file.py::test_x`"

    assert named_test_problems(good) == []
    assert named_test_problems(missing_function) == [
        f"{this_file} defines no test_that_is_not_here"
    ]
    assert named_test_problems(missing_file) == ["tests/unit/no_such_file.py does not exist"]
    assert named_test_problems("see the integration tests") != []
