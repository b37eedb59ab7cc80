"""`validate` and `init` through click's CliRunner: no network, every exit code and shape."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

FIRMWARE_BYTES = b"\x7fELF firmware image " * 5000


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    path = tmp_path / "cam-2.0.0.bin"
    path.write_bytes(FIRMWARE_BYTES)
    return path


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# validate -------------------------------------------------------------------------------------


def test_valid_sidecar_exits_0_and_names_the_release(run: Any, firmware: Path) -> None:
    sidecar = write_json(firmware.with_name(firmware.name + ".ota.json"), {"version": "2.0.0"})

    result = run("validate", sidecar)

    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "cam-2_0_0 2.0.0" in result.stdout  # the name the function would derive


def test_invalid_sidecar_exits_1_listing_field_rule_and_value_of_every_problem(
    run: Any, tmp_path: Path
) -> None:
    # GIVEN a sidecar with three independent problems
    sidecar = write_json(
        tmp_path / "cam.bin.ota.json",
        {"version": "2.0 beta", "type": "diff", "nmae": "x"},
    )

    # WHEN it is validated
    result = run("validate", sidecar)

    # THEN all three are reported at once, each with field, rule and value seen
    assert result.exit_code == 1
    out = result.stdout
    assert "3 problems" in out
    assert "version: may contain only letters" in out and "'2.0 beta'" in out
    assert "nmae: is not a sidecar key; did you mean 'name'?" in out
    assert "src_version: is required when Type is 1" in out


def test_json_report_has_one_result_per_sidecar_with_structured_errors(
    run: Any, tmp_path: Path
) -> None:
    good = write_json(tmp_path / "a.bin.ota.json", {"version": "1.0.0", "module": "mcu"})
    bad = write_json(tmp_path / "b.bin.ota.json", {"version": ""})

    result = run("validate", "--json", good, bad)

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    first, second = report["results"]
    assert first["valid"] is True and first["errors"] == []
    assert first["release"]["name"] == "a-1_0_0" and first["release"]["module"] == "mcu"
    assert first["firmware_key"] == "a.bin" and first["digest"] is None
    assert second["valid"] is False and second["release"] is None
    assert set(second["errors"][0]) == {"field", "rule", "value"}


def test_missing_sidecar_file_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("validate", tmp_path / "absent.bin.ota.json")

    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_firmware_digest_mismatch_is_reported_with_the_real_digest(
    run: Any, firmware: Path
) -> None:
    sidecar = write_json(
        firmware.with_name(firmware.name + ".ota.json"),
        {"version": "2.0.0", "sign": "0" * 32, "size": len(FIRMWARE_BYTES)},
    )

    result = run("validate", sidecar, "--firmware", firmware)

    assert result.exit_code == 1
    assert f"sign: must match the MD5 of the firmware file ({md5(FIRMWARE_BYTES)})" in result.stdout


def test_firmware_size_mismatch_is_reported(run: Any, firmware: Path) -> None:
    sidecar = write_json(
        firmware.with_name(firmware.name + ".ota.json"), {"version": "2.0.0", "size": 5}
    )

    result = run("validate", "--json", sidecar, "--firmware", firmware)

    assert result.exit_code == 1
    errors = json.loads(result.stdout)["results"][0]["errors"]
    assert errors == [
        {
            "field": "size",
            "rule": f"must match the firmware file ({len(FIRMWARE_BYTES)} bytes)",
            "value": "5",
        }
    ]


def test_matching_digest_passes_and_reports_what_was_measured(run: Any, firmware: Path) -> None:
    sha = hashlib.sha256(FIRMWARE_BYTES).hexdigest()
    sidecar = firmware.with_name(firmware.name + ".ota.yaml")
    sidecar.write_text(f"version: '2.0.0'\nsign_method: sha-256\nsign: {sha.upper()}\n")

    result = run("validate", "--json", "--check-firmware", sidecar)

    assert result.exit_code == 0, result.stdout
    digest = json.loads(result.stdout)["results"][0]["digest"]
    assert digest == {"size": len(FIRMWARE_BYTES), "sign_method": "SHA256", "sign": sha}


def test_yaml_sidecar_with_an_alias_is_rejected_like_the_function_does(
    run: Any, tmp_path: Path
) -> None:
    sidecar = tmp_path / "cam.bin.ota.yml"
    sidecar.write_text("version: &v '1.0'\ndescription: *v\n")

    result = run("validate", sidecar)

    assert result.exit_code == 1
    assert "sidecar: must be valid YAML" in result.stdout


def test_sidecar_not_named_after_a_firmware_file_is_invalid_without_firmware_option(
    run: Any, tmp_path: Path, firmware: Path
) -> None:
    sidecar = write_json(tmp_path / "release.json", {"version": "2.0.0"})

    alone = run("validate", sidecar)
    with_firmware = run("validate", sidecar, "--firmware", firmware)

    assert alone.exit_code == 1
    assert "file name must be the firmware file name plus .ota.json" in alone.stdout
    assert with_firmware.exit_code == 0, with_firmware.stdout
    assert "cam-2_0_0 2.0.0" in with_firmware.stdout


def test_oversized_sidecar_is_rejected_without_being_read_whole(run: Any, tmp_path: Path) -> None:
    sidecar = tmp_path / "cam.bin.ota.json"
    sidecar.write_bytes(b" " * (64 * 1024 + 1))

    result = run("validate", sidecar)

    assert result.exit_code == 1
    assert "sidecar: must be at most 65536 bytes (got '65537 bytes')" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--firmware", "FW", "SECOND"], "--firmware goes with exactly one SIDECAR"),
        (["--check-firmware"], "its firmware file"),
        ([], "Missing argument"),
    ],
)
def test_contradictory_or_incomplete_invocations_exit_2(
    run: Any, tmp_path: Path, firmware: Path, extra: list[str], message: str
) -> None:
    sidecar = write_json(tmp_path / "other.bin.ota.json", {"version": "1.0.0"})
    args = [str(firmware) if a == "FW" else str(sidecar) if a == "SECOND" else a for a in extra]
    if extra:
        args.insert(0, str(sidecar))

    result = run("validate", *args)

    assert result.exit_code == 2
    assert message in result.stderr


def test_default_product_key_is_applied_as_the_function_would(run: Any, tmp_path: Path) -> None:
    sidecar = write_json(tmp_path / "cam.bin.ota.json", {"version": "2.0.0"})

    result = run("validate", "--json", sidecar, env={"OTA_PRODUCT_KEY": "a1Default"})

    assert json.loads(result.stdout)["results"][0]["release"]["product_key"] == "a1Default"


# init -----------------------------------------------------------------------------------------


def test_init_writes_a_json_sidecar_with_schema_name_size_and_digest(
    run: Any, firmware: Path
) -> None:
    result = run("init", firmware, "--version", "2.0.0", "--product-key", "a1Cam")

    assert result.exit_code == 0, result.output
    written = json.loads(firmware.with_name(firmware.name + ".ota.json").read_text())
    assert written == {
        "$schema": "https://ota-release.dev/schemas/sidecar.schema.json",
        "name": "cam-2_0_0",
        "version": "2.0.0",
        "product_key": "a1Cam",
        "size": len(FIRMWARE_BYTES),
        "sign_method": "MD5",
        "sign": md5(FIRMWARE_BYTES),
    }


def test_what_init_writes_passes_validate_against_the_same_file(run: Any, firmware: Path) -> None:
    run("init", firmware, "--version", "2.0.0", "--type", "diff", "--src-version", "1.9.0")

    result = run("validate", "--check-firmware", firmware.with_name(firmware.name + ".ota.json"))

    assert result.exit_code == 0, result.stdout


def test_init_yaml_keeps_numeric_looking_versions_as_strings_and_uses_sha256(
    run: Any, firmware: Path
) -> None:
    result = run(
        "init", firmware, "--version", "2.0", "--format", "yaml", "--sign-method", "sha256"
    )

    assert result.exit_code == 0, result.output
    text = firmware.with_name(firmware.name + ".ota.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=https://ota-release.dev/")
    doc = yaml.safe_load(text)
    assert doc["version"] == "2.0"
    assert (doc["sign_method"], doc["sign"]) == (
        "SHA256",
        hashlib.sha256(FIRMWARE_BYTES).hexdigest(),
    )


def test_init_refuses_to_overwrite_without_force(run: Any, firmware: Path) -> None:
    target = firmware.with_name(firmware.name + ".ota.json")
    target.write_text('{"version": "1.0.0"}')

    refused = run("init", firmware, "--version", "2.0.0")

    assert refused.exit_code == 1
    assert "already exists; pass --force to overwrite it" in refused.stderr
    assert target.read_text() == '{"version": "1.0.0"}'

    forced = run("init", firmware, "--version", "2.0.0", "--force")

    assert forced.exit_code == 0
    assert json.loads(target.read_text())["version"] == "2.0.0"


def test_init_refuses_a_second_sidecar_of_another_format_even_with_force(
    run: Any, firmware: Path
) -> None:
    firmware.with_name(firmware.name + ".ota.yaml").write_text("version: '1.0'\n")

    result = run("init", firmware, "--version", "2.0.0", "--force")

    assert result.exit_code == 1
    assert "ambiguous" in result.stderr
    assert not firmware.with_name(firmware.name + ".ota.json").exists()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--type", "diff"], "src_version: is required when Type is 1"),
        (["--name", "-bad name"], "name: may contain only letters"),
        (["--description", "x" * 101], "description: must be 1 to 100 characters long"),
    ],
)
def test_init_writes_nothing_when_the_values_break_a_rule(
    run: Any, firmware: Path, args: list[str], problem: str
) -> None:
    result = run("init", firmware, "--version", "2.0.0", *args)

    assert result.exit_code == 1
    assert problem in result.stdout
    assert list(firmware.parent.glob("*.ota.*")) == []


def test_init_rejects_an_empty_firmware_file(run: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")

    result = run("init", empty, "--version", "1.0.0")

    assert result.exit_code == 1
    assert "size: must be at least 1 byte (got 0)" in result.stdout


def test_init_on_a_missing_file_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("init", tmp_path / "nope.bin", "--version", "1.0.0")

    assert result.exit_code == 2


def test_progress_bars_are_not_drawn_when_output_is_not_a_terminal(
    run: Any, firmware: Path
) -> None:
    result = run("init", firmware, "--version", "2.0.0")

    assert result.stderr == ""
    assert "\r" not in result.output and "\x1b[" not in result.output


# the command line as a whole ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "init", "upload", "replay", "status"])
def test_every_command_has_help_with_examples(run: Any, command: str) -> None:
    result = run(command, "--help")

    assert result.exit_code == 0
    assert "Examples:" in result.stdout and f"ota-release {command}" in result.stdout


def test_help_and_validate_do_not_import_cloud_sdks(tmp_path: Path) -> None:
    sidecar = write_json(tmp_path / "cam.bin.ota.json", {"version": "2.0.0"})
    probe = (
        "import sys\n"
        "from ota_release.cli import cli\n"
        "for args in (['--help'], ['validate', sys.argv[1]]):\n"
        "    try:\n"
        "        cli.main(args, prog_name='ota-release', standalone_mode=True)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, exit.code\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in\n"
        "         ('oss2', 'alibabacloud_iot20180120', 'alibabacloud_tea_openapi', 'fc2')]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(sidecar)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
