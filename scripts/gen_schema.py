#!/usr/bin/env python3
"""Write ``schemas/sidecar.schema.json`` from the sidecar's pydantic model.

Usage::

    python scripts/gen_schema.py           # (re)write the schema
    python scripts/gen_schema.py --check   # exit 1 when the committed file is stale

The schema is generated, never edited by hand: the rules live in ``ota_release.rules`` and
the field types in ``ota_release.sidecar.SidecarDocument``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ota_release.sidecar import sidecar_json_schema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "sidecar.schema.json"


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(sidecar_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is stale"
    )
    parser.add_argument("--path", type=Path, default=SCHEMA_PATH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = render()
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else None
    if args.check:
        if current != text:
            print(f"{args.path} is stale; run: python scripts/gen_schema.py", file=sys.stderr)
            return 1
        print(f"{args.path} is up to date")
        return 0
    if current != text:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text, encoding="utf-8")
        print(f"wrote {args.path}")
    else:
        print(f"{args.path} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
