"""`validate` and `init` with folder defaults and a verify block: the function's resolution,
run on local folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ota_release.defaults import effective_spec, resolve

FIRMWARE_BYTES = b"\x7fELF firmware image " * 500


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A local folder laid out like the bucket below the watched prefix."""
    (tmp_path / "acme" / "cam").mkdir(parents=True)
    (tmp_path / ".ota-defaults.json").write_text(
        json.dumps({"product_key": "a1Root", "module": "camera"}), encoding="utf-8"
    )
    (tmp_path / "acme" / ".ota-defaults.yaml").write_text(
        "product_key: a1Acme\nverify:\n  devices: [cam-lab-01]\n  timeout_minutes: 30\n",
        encoding="utf-8",
    )
    (tmp_path / "acme" / "cam" / "cam-2.0.0.bin").write_bytes(FIRMWARE_BYTES)
    return tmp_path


def sidecar_in(tree: Path, doc: dict[str, Any]) -> Path:
    path = tree / "acme" / "cam" / "cam-2.0.0.bin.ota.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_validate_prints_each_effective_value_with_the_file_it_came_from(
    run: Any, tree: Path
) -> None:
    sidecar = sidecar_in(tree, {"version": "2.0.0", "module": "lens"})
    result = run("validate", "--defaults-root", tree, sidecar)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "verification on 1 device(s)" in out
    assert "product_key = a1Acme  (from acme/.ota-defaults.yaml)" in out
    assert "module = lens  (from acme/cam/cam-2.0.0.bin.ota.json)" in out
    assert '"devices": ["cam-lab-01"]' in out


def test_validate_json_gives_the_same_sources_as_the_function_s_resolution(
    run: Any, tree: Path
) -> None:
    sidecar = sidecar_in(tree, {"version": "2.0.0"})
    result = run("validate", "--json", "--defaults-root", tree, sidecar)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["results"]
    # the function, handed a reader of the same tree as if it were the bucket
    found = resolve(
        lambda key: (tree / key).read_bytes() if (tree / key).is_file() else None,
        "acme/cam/cam-2.0.0.bin.ota.json",
    )
    expected = effective_spec(
        sidecar.read_bytes(),
        sidecar_key="acme/cam/cam-2.0.0.bin.ota.json",
        firmware_key="acme/cam/cam-2.0.0.bin",
        defaults=found,
    )
    assert report["sources"] == expected.sources
    assert report["release"]["product_key"] == "a1Acme"
    assert report["release"]["verify"] == {"devices": ["cam-lab-01"], "timeout_minutes": 30}


def test_validate_refuses_a_bad_defaults_file_naming_it(run: Any, tree: Path) -> None:
    (tree / "acme" / "cam" / ".ota-defaults.json").write_text(
        json.dumps({"version": "9.9.9"}), encoding="utf-8"
    )
    sidecar = sidecar_in(tree, {"version": "2.0.0"})
    result = run("validate", "--defaults-root", tree, sidecar)
    assert result.exit_code == 1
    assert "version (in acme/cam/.ota-defaults.json)" in result.stdout
    assert "cannot be a folder default" in result.stdout


def test_validate_checks_the_verify_block_with_the_api_s_rules(run: Any, tmp_path: Path) -> None:
    sidecar = tmp_path / "cam.bin.ota.json"
    sidecar.write_text(
        json.dumps(
            {
                "version": "2.0.0",
                "need_to_verify": False,
                "verify": {"devices": ["x"], "timeout_minutes": 2000},
            }
        ),
        encoding="utf-8",
    )
    result = run("validate", "--json", sidecar)
    assert result.exit_code == 1
    fields = {e["field"] for e in json.loads(result.stdout)["results"][0]["errors"]}
    assert fields == {
        "verify",  # no product_key for CreateOTAVerifyJob
        "verify.devices[0]",
        "verify.timeout_minutes",
        "need_to_verify, verify",
    }


def test_init_writes_a_verify_block(run: Any, tmp_path: Path) -> None:
    firmware = tmp_path / "cam-2.0.0.bin"
    firmware.write_bytes(FIRMWARE_BYTES)
    result = run(
        "init",
        firmware,
        "--version",
        "2.0.0",
        "--product-key",
        "a1Cam",
        "--verify-device",
        "cam-lab-01",
        "--verify-device",
        "cam-lab-02",
        "--verify-timeout",
        "60",
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "cam-2.0.0.bin.ota.json").read_text())
    assert written["verify"] == {"devices": ["cam-lab-01", "cam-lab-02"], "timeout_minutes": 60}
    assert run("validate", tmp_path / "cam-2.0.0.bin.ota.json").exit_code == 0


def test_init_refuses_a_verify_block_the_api_would_refuse_and_writes_nothing(
    run: Any, tmp_path: Path
) -> None:
    firmware = tmp_path / "cam-2.0.0.bin"
    firmware.write_bytes(FIRMWARE_BYTES)
    result = run("init", firmware, "--version", "2.0.0", "--verify-device", "cam-lab-01")
    assert result.exit_code == 1
    assert "needs product_key" in result.stdout
    assert not (tmp_path / "cam-2.0.0.bin.ota.json").exists()


def test_init_leaves_what_folder_defaults_supply_to_them_and_says_so(run: Any, tree: Path) -> None:
    firmware = tree / "acme" / "cam" / "cam-2.0.0.bin"
    result = run(
        "init", firmware, "--version", "2.0.0", "--verify-device", "cam-lab-09",
        "--defaults-root", tree,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = json.loads(firmware.with_name(firmware.name + ".ota.json").read_text())
    assert "product_key" not in written and "module" not in written
    assert written["verify"] == {"devices": ["cam-lab-09"]}
    assert "product_key from the folder defaults acme/.ota-defaults.yaml" in result.stdout
    assert "module from the folder defaults .ota-defaults.json" in result.stdout


def test_verify_timeout_without_a_device_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    firmware = tmp_path / "cam.bin"
    firmware.write_bytes(FIRMWARE_BYTES)
    result = run("init", firmware, "--version", "1.0.0", "--verify-timeout", "5")
    assert result.exit_code == 2
