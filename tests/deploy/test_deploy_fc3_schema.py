"""s.yaml's fc3 props conform to the fc3 component's schema (shared/reference)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scripts.check_fc3_schema import (
    SchemaCheckError,
    find_schema,
    load_s_yaml,
    main,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schema() -> Path:
    try:
        return find_schema()
    except SchemaCheckError as exc:  # CI lays shared/ beside the clone; say so if absent
        pytest.fail(str(exc))


def test_s_yaml_fc3_props_are_valid(schema):
    assert validate(load_s_yaml(ROOT / "s.yaml"), schema) == []


def test_check_script_exits_zero_for_the_repository_s_yaml(capsys):
    assert main([]) == 0
    assert "fc3 props valid" in capsys.readouterr().out


def test_schema_check_catches_an_invalid_memory_size_and_trigger(schema, tmp_path):
    # GIVEN an s.yaml with a memory size off the 64 MB grid and a misspelt trigger type
    doc = yaml.safe_load((ROOT / "s.yaml").read_text())
    props = doc["resources"]["create-firmware"]["props"]
    props["memorySize"] = 500
    props["triggers"][0]["triggerType"] = "OSS"
    broken = tmp_path / "s.yaml"
    broken.write_text(yaml.safe_dump(doc))

    problems = validate(load_s_yaml(broken), schema)

    assert any("memorySize" in p for p in problems)
    assert any("triggers/0/triggerType" in p for p in problems)


def test_missing_schema_is_reported_with_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("OTA_FC3_SCHEMA", raising=False)
    monkeypatch.setattr(
        "scripts.check_fc3_schema.DEFAULT_SCHEMA_CANDIDATES", (tmp_path / "nope.json",)
    )

    with pytest.raises(SchemaCheckError, match=r"fc3-props\.schema\.json not found"):
        find_schema()
