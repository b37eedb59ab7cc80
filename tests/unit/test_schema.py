"""The committed sidecar JSON Schema is the one generated from the model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ota_release.sidecar import EXTRA_KEYS, FRIENDLY_TO_API, sidecar_json_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "sidecar.schema.json"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schema", ROOT / "scripts" / "gen_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schema_matches_the_model() -> None:
    expected = json.dumps(sidecar_json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert SCHEMA_FILE.exists(), (
        "schemas/sidecar.schema.json is missing; run: python scripts/gen_schema.py"
    )
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected, (
        "schemas/sidecar.schema.json is stale; run: python scripts/gen_schema.py"
    )


def test_generator_check_fails_on_a_stale_file_and_passes_after_regenerating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gen = load_generator()
    target = tmp_path / "sidecar.schema.json"
    target.write_text("{}\n", encoding="utf-8")
    assert gen.main(["--check", "--path", str(target)]) == 1
    assert "run: python scripts/gen_schema.py" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "{}\n"  # --check never writes
    assert gen.main(["--path", str(target)]) == 0
    assert gen.main(["--check", "--path", str(target)]) == 0


def test_schema_accepts_every_friendly_and_api_key_and_nothing_else() -> None:
    schema = sidecar_json_schema()
    props = schema["properties"]
    assert set(props) == {
        *FRIENDLY_TO_API,
        *FRIENDLY_TO_API.values(),
        *EXTRA_KEYS,
        "$schema",
        "files",
    }
    assert schema["additionalProperties"] is False
    assert props["DestVersion"] == {"$ref": "#/properties/version"}


EXAMPLES_VALID: list[dict[str, Any]] = [
    {"version": "2.0.0"},
    {"DestVersion": "2.0.0", "FirmwareName": "cam-fw", "Type": 1, "SrcVersion": "1.0.0"},
    {
        "$schema": "https://ota-release.dev/schemas/sidecar.schema.json",
        "version": "2.0.0",
        "name": "摄像头固件",
        "type": "diff",
        "src_version": "1.0",
        "description": "中" * 100,
        "sign_method": "SHA256",
        "size": 900,
        "need_to_verify": False,
        "udi": "{}",
    },
    {"version": "2.0.0", "verify": {"devices": ["cam-lab-01", "cam@lab.02"]}},
    {"version": "2.0.0", "verify": {"devices": ["cam-lab-01"], "timeout_minutes": 1440}},
    {"version": "2.0.0", "files": ["app.bin", {"name": "boot.img", "size": 4, "sign": "ab"}]},
]
EXAMPLES_INVALID: list[dict[str, Any]] = [
    {},
    {"version": "2.0.0", "FirmwareUrl": "https://x/y.bin"},
    {"version": "2.0.0", "colour": "blue"},
    {"version": 2.0},
    {"version": "v" * 65},
    {"version": "1", "name": "-cam"},
    {"version": "1", "type": 2},
    {"version": "1", "description": "d" * 101},
    {"version": "1", "verify": {"devices": []}},
    {"version": "1", "verify": {"devices": [f"device-{i:02d}" for i in range(11)]}},
    {"version": "1", "verify": {"devices": ["abc"]}},
    {"version": "1", "verify": {"devices": ["cam-lab-01"], "timeout_minutes": 1441}},
    {"version": "1", "verify": {"devices": ["cam-lab-01"], "timeout": 5}},
    {"version": "1", "files": ["app.bin"]},
    {"version": "1", "files": ["app.bin", "dir/boot.img"]},
    {"version": "1", "files": ["app.bin", "x" * 33]},
    {"version": "1", "files": ["app.bin", {"name": "b", "colour": 1}]},
    {"version": "1", "files": ["app.bin", "boot.img"], "size": 4},
    {"version": "1", "files": ["app.bin", "boot.img"], "FirmwareSign": "ab"},
    {"version": "1", "files": [f"f{i}" for i in range(21)]},
]


@pytest.mark.parametrize("example", EXAMPLES_VALID)
def test_valid_example_sidecars_pass_the_schema(example: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    jsonschema.Draft202012Validator(sidecar_json_schema()).validate(example)


@pytest.mark.parametrize("example", EXAMPLES_INVALID)
def test_invalid_example_sidecars_fail_the_schema(example: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    validator = jsonschema.Draft202012Validator(sidecar_json_schema())
    assert list(validator.iter_errors(example)) != []
