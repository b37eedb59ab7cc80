#!/usr/bin/env python3
"""Write ``schemas/sidecar.schema.json`` (and ``defaults.schema.json``) from the sidecar model.

Usage::

    python scripts/gen_schema.py           # (re)write the schema
    python scripts/gen_schema.py --check   # exit 1 when the committed file is stale

The schema is generated, never edited by hand: the rules live in ``ota_release.rules`` and
the field types in ``ota_release.sidecar.SidecarDocument``. The folder defaults schema is
the sidecar's narrowed to the keys a default may supply (``ota_release.defaults``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ota_release.defaults import defaults_json_schema
from ota_release.sidecar import sidecar_json_schema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "sidecar.schema.json"
DEFAULTS_SCHEMA_PATH = SCHEMA_PATH.with_name("defaults.schema.json")


def render(schema: Callable[[], dict[str, Any]] = sidecar_json_schema) -> str:
    """A schema file's exact text."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _sync(path: Path, text: str, *, check: bool) -> int:
    """Write ``text`` to ``path`` when it differs (``check``: report, never write)."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if check:
        if current != text:
            print(f"{path} is stale; run: python scripts/gen_schema.py", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    else:
        print(f"{path} unchanged")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is stale"
    )
    parser.add_argument("--path", type=Path, default=SCHEMA_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    targets = [(args.path, render())]
    if args.path == SCHEMA_PATH:  # --path (tests) names one sidecar schema file only
        targets.append((DEFAULTS_SCHEMA_PATH, render(defaults_json_schema)))
    return max(_sync(path, text, check=args.check) for path, text in targets)


if __name__ == "__main__":
    sys.exit(main())
