#!/usr/bin/env python3
"""Check that every fc3 resource in s.yaml validates against the project's fc3 props schema.

Why: Serverless Devs only validates ``s.yaml`` when ``s deploy`` talks to the cloud, so a
typo in a trigger or an out-of-range memory size would surface at deploy time. The schema
is the project's own, ``schemas/fc3-props.schema.json`` (written from the fc3 component's
documented props), so the check needs nothing beside the repository.

When the fc3 component's own schema is at hand (``--upstream``, ``OTA_FC3_SCHEMA``, or the
shared reference folder laid next to the repository), s.yaml is checked against it too.

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
#: The project's schema: always used.
PROJECT_SCHEMA = ROOT / "schemas" / SCHEMA_NAME
#: Where the fc3 component's own schema may be laid (a shared reference folder beside the
#: clone); used for a cross-check only when present.
DEFAULT_UPSTREAM_CANDIDATES = (ROOT.parent / "shared" / "reference" / SCHEMA_NAME,)
UPSTREAM_ENV = "OTA_FC3_SCHEMA"
#: Stand-in for the deploying account's id: only its shape matters to the schema.
DUMMY_ACCOUNT_ID = "123456789012"

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


class SchemaCheckError(RuntimeError):
    """s.yaml cannot be checked or does not conform; the message says why."""


def find_schema(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The project's schema (or ``explicit``), or fail naming the path looked at."""
    path = Path(explicit) if explicit else PROJECT_SCHEMA
    if not path.is_file():
        raise SchemaCheckError(f"{SCHEMA_NAME} not found at {path}")
    return path.resolve()


def find_upstream_schema(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The fc3 component's own schema when one is given or laid beside the clone, else None.

    An explicit path (argument or ``OTA_FC3_SCHEMA``) that does not exist is an error: it
    was asked for. The default place is only looked at.
    """
    asked = explicit or os.environ.get(UPSTREAM_ENV)
    if asked:
        path = Path(asked)
        if not path.is_file():
            source = "--upstream" if explicit else UPSTREAM_ENV
            raise SchemaCheckError(f"{source}={asked}: no such file")
        return path.resolve()
    for candidate in DEFAULT_UPSTREAM_CANDIDATES:
        if candidate.is_file():
            return candidate.resolve()
    return None


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
    parser.add_argument("--schema", help=f"the schema to check against (default {PROJECT_SCHEMA})")
    parser.add_argument(
        "--upstream",
        help=f"the fc3 component's own {SCHEMA_NAME}, for a cross-check "
        f"(default: ${UPSTREAM_ENV}, else ../shared/reference/ when present)",
    )
    parser.add_argument("--account-id", default=DUMMY_ACCOUNT_ID)
    args = parser.parse_args(argv)
    try:
        schemas = [find_schema(args.schema)]
        upstream = find_upstream_schema(args.upstream)
        if upstream is not None:
            schemas.append(upstream)
        doc = load_s_yaml(args.s_yaml, args.account_id)
        problems = [(schema, line) for schema in schemas for line in validate(doc, schema)]
    except SchemaCheckError as exc:
        print(f"check_fc3_schema: {exc}", file=sys.stderr)
        return 2
    for schema, line in problems:
        print(f"{line} (schema {schema})", file=sys.stderr)
    if problems:
        return 1
    checked = " and ".join(str(s) for s in schemas)
    print(f"{args.s_yaml.name}: fc3 props valid against {checked}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
