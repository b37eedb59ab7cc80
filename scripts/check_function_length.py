"""Fail when a function in src/ is longer than the limit (docstring excluded).

A function's length is counted from its ``def`` line to its last line (decorators, such
as a CLI command's option declarations, are not counted), minus the lines of its
docstring; nested functions count towards the function that holds them too.
Run: ``python scripts/check_function_length.py [--max 60] [paths...]``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_MAX = 60


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def function_lengths(path: Path) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, length without docstring) of each function in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                end = child.end_lineno or child.lineno
                length = end - child.lineno + 1 - _docstring_lines(child)
                name = f"{prefix}{child.name}"
                yield name, child.lineno, length
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=DEFAULT_MAX)
    parser.add_argument("paths", nargs="*", default=["src"])
    args = parser.parse_args(argv)
    too_long = []
    for root in map(Path, args.paths):
        for path in sorted(root.rglob("*.py") if root.is_dir() else [root]):
            for name, line, length in function_lengths(path):
                if length > args.max:
                    too_long.append(f"{path}:{line}: {name} is {length} lines (max {args.max})")
    print("\n".join(too_long) or f"every function is at most {args.max} lines")
    return 1 if too_long else 0


if __name__ == "__main__":
    sys.exit(main())
