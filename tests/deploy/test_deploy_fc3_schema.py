"""s.yaml's fc3 props conform to the project's fc3 schema (schemas/fc3-props.schema.json).

The check needs nothing beside the repository. Where the fc3 component's own schema is
given (``OTA_FC3_SCHEMA``, or a shared reference folder beside the clone), s.yaml is checked
against it too, and the project's schema is held to accept nothing for s.yaml that the
component's refuses.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scripts.check_fc3_schema import (
    PROJECT_SCHEMA,
    SchemaCheckError,
    find_schema,
    find_upstream_schema,
    load_s_yaml,
    main,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> Path:
    return find_schema()


@pytest.fixture
def props() -> dict[str, Any]:
    """s.yaml's create-firmware props, variables resolved."""
    return copy.deepcopy(load_s_yaml(ROOT / "s.yaml")["resources"]["create-firmware"]["props"])


def _validator(path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(path.read_text(encoding="utf-8")))


def test_the_project_schema_is_in_the_repository_and_is_a_valid_draft7_schema(schema):
    assert schema == PROJECT_SCHEMA.resolve()
    jsonschema.Draft7Validator.check_schema(json.loads(schema.read_text(encoding="utf-8")))


def test_s_yaml_fc3_props_are_valid(schema):
    assert validate(load_s_yaml(ROOT / "s.yaml"), schema) == []


def test_check_script_exits_zero_for_the_repository_s_yaml(capsys):
    assert main([]) == 0
    assert "fc3 props valid" in capsys.readouterr().out


def test_the_check_needs_nothing_beside_the_repository(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("OTA_FC3_SCHEMA", raising=False)
    monkeypatch.setattr(
        "scripts.check_fc3_schema.DEFAULT_UPSTREAM_CANDIDATES", (tmp_path / "absent.json",)
    )
    assert find_upstream_schema() is None
    assert main([]) == 0
    assert str(PROJECT_SCHEMA.resolve()) in capsys.readouterr().out


def test_an_upstream_schema_asked_for_but_missing_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("OTA_FC3_SCHEMA", str(tmp_path / "nope.json"))
    with pytest.raises(SchemaCheckError, match=r"OTA_FC3_SCHEMA=.*nope\.json: no such file"):
        find_upstream_schema()


def test_an_upstream_schema_that_refuses_s_yaml_fails_the_check(monkeypatch, tmp_path, capsys):
    # GIVEN a component schema that wants a memory size s.yaml does not have
    strict = tmp_path / "fc3-props.schema.json"
    strict.write_text(json.dumps({"properties": {"memorySize": {"const": 128}}}))
    monkeypatch.setenv("OTA_FC3_SCHEMA", str(strict))
    # THEN the check fails, naming that schema
    assert main([]) == 1
    assert str(strict) in capsys.readouterr().err


# What the project's schema refuses: (what is wrong, the change, the reported path).
BROKEN = [
    ("memory off the 64 MB grid", ("memorySize",), 500, "memorySize"),
    ("memory above 32 GB", ("memorySize",), 65536, "memorySize"),
    ("timeout of 0", ("timeout",), 0, "timeout"),
    ("timeout above a day", ("timeout",), 86401, "timeout"),
    ("unknown region", ("region",), "cn-atlantis", "region"),
    ("runtime the code cannot run on", ("runtime",), "nodejs18", "runtime"),
    ("misspelt prop", ("memorysize",), 512, "(props)"),
    ("number as an environment value", ("environmentVariables", "OTA_IOT_QPS"), 2, "OTA_IOT_QPS"),
    ("retries above FC's 8", ("asyncInvokeConfig", "maxAsyncRetryAttempts"), 9, "maxAsync"),
    ("event age above 7 days", ("asyncInvokeConfig", "maxAsyncEventAgeInSeconds"), 604801, "Age"),
    (
        "destination that is no ARN",
        ("asyncInvokeConfig", "destinationConfig", "onFailure", "destination"),
        "ota-release-failures",
        "destination",
    ),
    ("trigger type in capitals", ("triggers", 0, "triggerType"), "OSS", "triggers/0/triggerType"),
    ("unknown OSS event", ("triggers", 0, "triggerConfig", "events", 0), "oss:Put", "events/0"),
    ("filter without suffix", ("triggers", 0, "triggerConfig", "filter", "key"), {}, "key"),
    ("role that is no ARN", ("role",), "ota-release-fc-role", "role"),
    ("layer that is no ARN", ("layers", 0), "ota-release-deps", "layers/0"),
    ("log config without a store", ("logConfig",), {"project": "p"}, "logConfig"),
    ("negative reserved concurrency", ("concurrencyConfig", "reservedConcurrency"), -1, "reserved"),
]


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    node: Any = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(("why", "path", "value", "where"), BROKEN, ids=[b[0] for b in BROKEN])
def test_the_project_schema_refuses(why, path, value, where, schema, props):
    doc = {"resources": {"create-firmware": {"component": "fc3", "props": props}}}
    _set(props, path, value)

    problems = validate(doc, schema)

    assert problems, why
    assert any(where in p for p in problems), problems


def test_the_check_script_reports_a_broken_s_yaml_with_the_field(tmp_path, capsys):
    doc = yaml.safe_load((ROOT / "s.yaml").read_text())
    doc["resources"]["create-firmware"]["props"]["memorySize"] = 500
    broken = tmp_path / "s.yaml"
    broken.write_text(yaml.safe_dump(doc))

    assert main(["--s-yaml", str(broken)]) == 1
    assert "resources/create-firmware/props/memorySize" in capsys.readouterr().err


# -- cross-check with the fc3 component's own schema, where one is given ---------------------


def _variants(schema: dict[str, Any], props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """s.yaml's props changed one value at a time, through every enum member and range end
    the project's schema declares for a prop s.yaml sets, plus the BROKEN changes."""
    properties = schema["properties"]
    for name in props:
        spec = properties.get(name, {})
        for value in spec.get("enum", []):
            yield f"{name}={value}", _set(copy.deepcopy(props), (name,), value)
        for bound in ("minimum", "maximum"):
            if bound in spec:
                value = spec[bound]
                if spec.get("multipleOf"):
                    value = value - value % spec["multipleOf"]
                yield f"{name}={value}", _set(copy.deepcopy(props), (name,), value)
    events = schema["definitions"]["ossTrigger"]["properties"]["triggerConfig"]["properties"]
    for event in events["events"]["items"]["enum"]:
        variant = copy.deepcopy(props)
        variant["triggers"][0]["triggerConfig"]["events"] = [event]
        yield f"event={event}", variant
    async_props = properties["asyncInvokeConfig"]["properties"]
    for name in ("maxAsyncRetryAttempts", "maxAsyncEventAgeInSeconds"):
        for bound in ("minimum", "maximum"):
            value = async_props[name][bound]
            yield f"{name}={value}", _set(copy.deepcopy(props), ("asyncInvokeConfig", name), value)
    for why, path, value, _ in BROKEN:
        yield why, _set(copy.deepcopy(props), path, value)


def test_the_project_schema_accepts_nothing_for_s_yaml_that_the_components_refuses(
    schema, props, monkeypatch
):
    upstream = find_upstream_schema()
    if upstream is None:
        pytest.skip("no fc3 component schema given (OTA_FC3_SCHEMA or ../shared/reference)")
    ours, theirs = _validator(schema), _validator(upstream)
    own_schema = json.loads(schema.read_text(encoding="utf-8"))

    accepted = refused_by_them = 0
    for label, variant in _variants(own_schema, props):
        if ours.is_valid(variant):
            accepted += 1
            errors = [e.message for e in theirs.iter_errors(variant)]
            assert errors == [], f"{label}: ours accepts, the component's refuses: {errors}"
        elif not theirs.is_valid(variant):
            refused_by_them += 1
    # The walk really covered both sides (a schema that accepts or refuses all fails here).
    assert accepted > 30
    assert refused_by_them > 5
