"""Report import cycles among the project's own modules (exit 1 if there is one).

Every ``import`` counts, wherever it is written (module level, inside a function, or
under ``if TYPE_CHECKING:``): a cycle hidden in a function is still a cycle. Importing
``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, so those count as imported
too.

Usage: ``python scripts/check_import_cycles.py [ROOT ...]`` (default: every package of the
repository: src/ota_release, localcloud, benchmarks).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOTS = (REPO / "src" / "ota_release", REPO / "localcloud", REPO / "benchmarks")


def module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Names ``tree`` imports (absolute; relative imports resolved): ``a.b`` for
    ``import a.b``, ``a.b`` and ``a.b.x`` for ``from a.b import x``."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph(roots: list[Path]) -> dict[str, set[str]]:
    """Module -> the project modules importing it runs.

    The module an import names counts, even when it is the importer's own package
    (``from pkg import x`` inside ``pkg.mod`` runs ``pkg/__init__.py``). The packages above
    it count too, except the importer's own ancestors: a package is always initialized
    before its submodules, so reaching a sibling through it is no cycle.
    """
    modules: dict[str, tuple[Path, bool]] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            modules[module_name(path, root)] = (path, path.name == "__init__.py")
    edges: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str] = set()
        for target in imported(ast.parse(path.read_text(encoding="utf-8")), name, is_package):
            parts = target.split(".")
            prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
            known = [p for p in prefixes if p in modules]
            if not known:
                continue
            named = known[-1]  # the module the import names (``x`` may be an attribute)
            targets.add(named)
            targets.update(p for p in known[:-1] if not name.startswith(p + "."))
        targets.discard(name)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    roots = [Path(a).resolve() for a in argv] or list(DEFAULT_ROOTS)
    found = cycles(graph(roots))
    for component in found:
        print("import cycle: " + " <-> ".join(component))
    if not found:
        print(f"no import cycle in {', '.join(r.name for r in roots)}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
