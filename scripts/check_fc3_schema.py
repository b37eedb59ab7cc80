#!/usr/bin/env python3
"""Check that every fc3 resource in s.yaml validates against the fc3 props JSON Schema.

Why: Serverless Devs only validates ``s.yaml`` when ``s deploy`` talks to the cloud, so a
typo in a trigger or an out-of-range memory size would surface at deploy time. The schema
(``fc3-props.schema.json``) is kept in the shared reference folder next to the repo
(``../shared/reference`` from the repo root, as CI lays it out); ``--schema`` or
``OTA_FC3_SCHEMA`` override that.

Variables are substituted first (``${vars.x}``, ``${config('AccountID')}``,
``${env('NAME')}``) because the schema constrains the values, e.g. ``region`` is an enum.

Usage: ``python scripts/check_fc3_schema.py [--s-yaml s.yaml] [--account-id 1234]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
S_YAML = ROOT / "s.yaml"
SCHEMA_NAME = "fc3-props.schema.json"
#: The repo lives at <workdir>/<repo>; CI copies shared/ to <workdir>/shared.
DEFAULT_SCHEMA_CANDIDATES = (
    ROOT / ".." / "shared" / "reference" / SCHEMA_NAME,
    ROOT.parent / "shared" / "reference" / SCHEMA_NAME,
)
#: Stand-in for the deploying account's id: only its shape matters to the schema.
DUMMY_ACCOUNT_ID = "123456789012"

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


class SchemaCheckError(RuntimeError):
    """s.yaml cannot be checked or does not conform; the message says why."""


def find_schema(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate fc3-props.schema.json, or fail naming every place looked at."""
    candidates = [Path(explicit)] if explicit else []
    if os.environ.get("OTA_FC3_SCHEMA"):
        candidates.append(Path(os.environ["OTA_FC3_SCHEMA"]))
    candidates += list(DEFAULT_SCHEMA_CANDIDATES)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise SchemaCheckError(
        f"{SCHEMA_NAME} not found (looked at: {looked}); it is part of the shared reference "
        "folder laid next to the repository; pass --schema or set OTA_FC3_SCHEMA"
    )


def _lookup(
    expr: str, variables: Mapping[str, Any], account_id: str, env: Mapping[str, str]
) -> Any:
    expr = expr.strip()
    if expr.startswith("vars."):
        name = expr[len("vars.") :]
        if name not in variables:
            raise SchemaCheckError(f"s.yaml uses ${{{expr}}} but vars has no {name!r}")
        return variables[name]
    config = re.fullmatch(r"config\(\s*['\"](\w+)['\"]\s*\)", expr)
    if config:
        if config.group(1) != "AccountID":
            raise SchemaCheckError(f"unsupported config key in ${{{expr}}}")
        return account_id
    env_call = re.fullmatch(r"env\(\s*['\"](\w+)['\"]\s*(?:,\s*['\"]([^'\"]*)['\"])?\s*\)", expr)
    if env_call:
        value = env.get(env_call.group(1), env_call.group(2))
        if value is None:
            raise SchemaCheckError(f"${{{expr}}}: environment variable not set")
        return value
    raise SchemaCheckError(f"unsupported Serverless Devs expression ${{{expr}}}")


def substitute(
    node: Any, variables: Mapping[str, Any], account_id: str, env: Mapping[str, str]
) -> Any:
    """Replace ``${...}`` the way Serverless Devs does; a lone placeholder keeps its type."""
    if isinstance(node, dict):
        return {k: substitute(v, variables, account_id, env) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, variables, account_id, env) for v in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return _lookup(whole.group(1), variables, account_id, env)
        return _PLACEHOLDER.sub(
            lambda m: str(_lookup(m.group(1), variables, account_id, env)), node
        )
    return node


def load_s_yaml(
    path: Path = S_YAML,
    account_id: str = DUMMY_ACCOUNT_ID,
    var_overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Parse s.yaml and resolve its expressions; returns the whole document."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("edition") != "3.0.0":
        raise SchemaCheckError(f"{path}: expected a Serverless Devs 'edition: 3.0.0' document")
    variables = {**(doc.get("vars") or {}), **(var_overrides or {})}
    resolved = substitute(
        {k: v for k, v in doc.items() if k != "vars"},
        variables,
        account_id,
        os.environ if env is None else env,
    )
    resolved["vars"] = variables
    return resolved


def fc3_resources(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The props of every ``component: fc3`` resource, by resource name."""
    found = {
        name: res.get("props") or {}
        for name, res in (doc.get("resources") or {}).items()
        if isinstance(res, dict) and str(res.get("component", "")).split("@")[0] == "fc3"
    }
    if not found:
        raise SchemaCheckError("s.yaml declares no fc3 resource")
    return found


def validate(doc: Mapping[str, Any], schema_path: Path) -> list[str]:
    """Validate every fc3 resource; return one readable line per violation."""
    import jsonschema  # imported here so --help works without it

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    problems: list[str] = []
    for name, props in fc3_resources(doc).items():
        for error in sorted(validator.iter_errors(props), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(props)"
            problems.append(f"resources/{name}/props/{where}: {error.message}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s-yaml", type=Path, default=S_YAML)
    parser.add_argument("--schema", help=f"path to {SCHEMA_NAME}")
    parser.add_argument("--account-id", default=DUMMY_ACCOUNT_ID)
    args = parser.parse_args(argv)
    try:
        schema = find_schema(args.schema)
        problems = validate(load_s_yaml(args.s_yaml, args.account_id), schema)
    except SchemaCheckError as exc:
        print(f"check_fc3_schema: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(f"{args.s_yaml.name}: fc3 props valid against {schema}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
