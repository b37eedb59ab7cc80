"""The CLI applies the settings the function applies: OTA_SIDECAR_SUFFIXES and OTA_PRODUCT_KEY.

A deployment with custom sidecar suffixes or a default ProductKey must see the same
answer from `validate`, `init`, `upload` and `replay` as from the function, and a value
the function would refuse at cold start is refused here too, in the function's words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ota_release.settings import Settings

SUFFIXES = ".release.json,.release.yaml"
FIRMWARE_BYTES = b"firmware image " * 300


@pytest.fixture
def firmware(tmp_path: Path) -> Path:
    path = tmp_path / "cam-4.0.0.bin"
    path.write_bytes(FIRMWARE_BYTES)
    return path


def function_settings(**env: str) -> Settings:
    """What the function itself reads from the same variables."""
    base = {"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "t", "OTA_MNS_ENDPOINT": "http://m"}
    return Settings.from_env({**base, **env})


def test_init_writes_the_first_custom_suffix_of_the_format(run: Any, firmware: Path) -> None:
    json_run = run("init", firmware, "--version", "4.0.0", env={"OTA_SIDECAR_SUFFIXES": SUFFIXES})
    yaml_run = run(
        "init", firmware, "--version", "4.0.0", "--format", "yaml", "--force",
        "--sidecar-suffixes", ".release.yaml",
    )  # fmt: skip

    assert json_run.exit_code == 0, json_run.output
    assert firmware.with_name("cam-4.0.0.bin.release.json").is_file()
    assert not firmware.with_name("cam-4.0.0.bin.ota.json").exists()
    assert yaml_run.exit_code == 0, yaml_run.output
    assert firmware.with_name("cam-4.0.0.bin.release.yaml").is_file()


def test_init_refuses_a_second_sidecar_under_a_custom_suffix(run: Any, firmware: Path) -> None:
    env = {"OTA_SIDECAR_SUFFIXES": SUFFIXES}
    assert run("init", firmware, "--version", "4.0.0", env=env).exit_code == 0

    result = run("init", firmware, "--version", "4.0.0", "--format", "yaml", env=env)

    assert result.exit_code == 1
    assert "cam-4.0.0.bin.release.json already exists" in result.stderr


def test_init_without_a_suffix_for_the_format_is_a_usage_error(run: Any, firmware: Path) -> None:
    result = run("init", firmware, "--version", "4.0.0", env={"OTA_SIDECAR_SUFFIXES": ".meta.yaml"})

    assert result.exit_code == 2
    assert "no sidecar suffix in OTA_SIDECAR_SUFFIXES (.meta.yaml) fits a json sidecar" in (
        result.stderr
    )


def test_validate_derives_the_firmware_key_with_the_custom_suffix(run: Any, firmware: Path) -> None:
    sidecar = firmware.with_name("cam-4.0.0.bin.release.json")
    sidecar.write_text(json.dumps({"version": "4.0.0"}))
    env = {"OTA_SIDECAR_SUFFIXES": SUFFIXES}

    checked = run("validate", "--json", "--check-firmware", sidecar, env=env)
    default = run("validate", "--json", sidecar)

    assert checked.exit_code == 0, checked.output
    result = json.loads(checked.stdout)["results"][0]
    assert result["firmware_key"] == "cam-4.0.0.bin"
    assert result["release"]["name"] == "cam-4_0_0"
    assert result["digest"]["size"] == len(FIRMWARE_BYTES)
    # With the default suffixes the same file is not a sidecar at all, as for the function.
    assert default.exit_code == 1
    assert "file name must be the firmware file name plus .ota.json" in default.stdout


def test_a_suffix_setting_the_function_refuses_is_refused_in_its_words(
    run: Any, firmware: Path
) -> None:
    sidecar = firmware.with_name("cam-4.0.0.bin.ota.json")
    sidecar.write_text(json.dumps({"version": "4.0.0"}))
    with pytest.raises(ValueError) as function_refusal:
        function_settings(OTA_SIDECAR_SUFFIXES="release.json")

    result = run("validate", sidecar, env={"OTA_SIDECAR_SUFFIXES": "release.json"})

    assert result.exit_code == 2
    assert "OTA_SIDECAR_SUFFIXES" in result.stderr and "'release.json'" in result.stderr
    assert "OTA_SIDECAR_SUFFIXES" in str(function_refusal.value)


def test_a_product_key_setting_the_function_refuses_is_refused(run: Any, firmware: Path) -> None:
    sidecar = firmware.with_name("cam-4.0.0.bin.ota.json")
    sidecar.write_text(json.dumps({"version": "4.0.0"}))
    bad = "x" * 200
    with pytest.raises(ValueError, match="OTA_PRODUCT_KEY"):
        function_settings(OTA_PRODUCT_KEY=bad)

    result = run("validate", sidecar, env={"OTA_PRODUCT_KEY": bad})

    assert result.exit_code == 2 and "OTA_PRODUCT_KEY" in result.stderr


# upload (against the local OSS) ----------------------------------------------------------------


@pytest.mark.integration
def test_upload_finds_and_names_the_sidecar_by_the_custom_suffix(
    run: Any, local_cloud: Any, firmware: Path
) -> None:
    env = local_cloud.env(OTA_SIDECAR_SUFFIXES=SUFFIXES)
    assert run("init", firmware, "--version", "4.0.0", env=env).exit_code == 0

    result = run("upload", firmware, "--bucket", "firmware-bucket", "--json", env=env)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sidecar_key"] == "firmware/cam-4.0.0.bin.release.json"
    keys = sorted(local_cloud.oss.list_keys("firmware-bucket"))
    assert keys == ["firmware/cam-4.0.0.bin", "firmware/cam-4.0.0.bin.release.json"]


@pytest.mark.integration
def test_upload_names_a_sidecar_given_by_path_with_a_custom_suffix(
    run: Any, local_cloud: Any, firmware: Path
) -> None:
    release = firmware.with_name("release.yaml")
    release.write_text("version: 4.0.0\n")
    env = local_cloud.env(OTA_SIDECAR_SUFFIXES=SUFFIXES)

    result = run(
        "upload", firmware, "--sidecar", release, "--bucket", "firmware-bucket", "--json", env=env
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sidecar_key"] == "firmware/cam-4.0.0.bin.release.yaml"


@pytest.mark.integration
def test_upload_applies_the_default_product_key_as_validate_does(
    run: Any, local_cloud: Any, firmware: Path
) -> None:
    sidecar = firmware.with_name(firmware.name + ".ota.json")
    sidecar.write_text(json.dumps({"version": "4.0.0"}))
    env = local_cloud.env(OTA_PRODUCT_KEY="a1Default")

    validated = run("validate", "--json", sidecar, env=env)
    uploaded = run("upload", firmware, "--bucket", "firmware-bucket", "--json", env=env)

    assert json.loads(validated.stdout)["results"][0]["release"]["product_key"] == "a1Default"
    assert uploaded.exit_code == 0, uploaded.output
    assert json.loads(uploaded.stdout)["product_key"] == "a1Default"


@pytest.mark.integration
def test_replay_plans_with_the_custom_suffixes_from_the_environment(
    run: Any, local_cloud: Any
) -> None:
    put = local_cloud.oss.put_object
    put("firmware-bucket", "firmware/a.bin", b"aaaa", notify=False)
    put("firmware-bucket", "firmware/a.bin.release.json", b'{"version": "1.0.0"}', notify=False)

    result = run(
        "replay", "--bucket", "firmware-bucket", "--dry-run", "--json",
        env=local_cloud.env(OTA_SIDECAR_SUFFIXES=SUFFIXES),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [p["key"] for p in summary["planned"]] == ["firmware/a.bin.release.json"]
    assert summary["skipped"] == [{"key": "firmware/a.bin", "reason": "covered by its sidecar"}]
