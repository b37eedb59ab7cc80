"""`init --file`, `validate` and `upload` of a multi-file release folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

BUCKET = "firmware-bucket"
FILES = {"app.bin": b"application" * 100, "boot.img": b"boot" * 50, "config.json": b"{}"}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "build" / "cam-2.0.0"
    path.mkdir(parents=True)
    for name, data in FILES.items():
        (path / name).write_bytes(data)
    return path


def init(run: Any, folder: Path, *extra: str) -> Any:
    args = [a for name in FILES for a in ("--file", name)]
    return run("init", folder, "--version", "2.0.0", *args, *extra)


def test_init_with_files_writes_a_multi_file_sidecar_next_to_the_folder(
    run: Any, folder: Path
) -> None:
    result = init(run, folder)
    assert result.exit_code == 0, result.output
    doc = json.loads(folder.with_name("cam-2.0.0.ota.json").read_text())
    assert doc["name"] == "cam-2_0_0" and "size" not in doc and "sign" not in doc
    assert doc["files"] == [{"name": n, "size": len(d), "sign": md5(d)} for n, d in FILES.items()]
    assert "3 files" in result.stdout


def test_init_with_a_file_missing_from_the_folder_is_a_usage_error(run: Any, folder: Path) -> None:
    result = run("init", folder, "--version", "2.0.0", "--file", "app.bin", "--file", "nope")
    assert result.exit_code == 2
    assert "nope" in result.output
    assert not folder.with_name("cam-2.0.0.ota.json").exists()


def test_init_with_one_file_or_a_bad_name_writes_nothing(run: Any, folder: Path) -> None:
    (folder / "boot img").write_bytes(b"x")
    result = run("init", folder, "--version", "2.0.0", "--file", "app.bin", "--file", "boot img")
    assert result.exit_code == 1
    assert "files[1].name" in result.stdout
    assert not folder.with_name("cam-2.0.0.ota.json").exists()


def test_validate_checks_every_file_of_the_folder(run: Any, folder: Path) -> None:
    assert init(run, folder).exit_code == 0
    sidecar = folder.with_name("cam-2.0.0.ota.json")
    assert run("validate", "--check-firmware", sidecar).exit_code == 0
    # WHEN a file changes, one goes missing and a stray one appears
    (folder / "boot.img").write_bytes(b"other bytes")
    (folder / "config.json").unlink()
    (folder / "notes.txt").write_bytes(b"stray")
    result = run("validate", "--check-firmware", "--json", sidecar)
    # THEN each problem names its entry, the rule and the value
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["results"][0]["errors"]
    fields = sorted(e["field"] for e in errors)
    assert fields == ["files", "files[1].sign", "files[1].size", "files[2].name"]
    assert any(e["value"] == "'notes.txt'" for e in errors)


@pytest.mark.integration
def test_upload_puts_every_file_then_the_sidecar(run: Any, local_cloud: Any, folder: Path) -> None:
    assert init(run, folder).exit_code == 0
    result = run(
        "upload", folder, "--bucket", BUCKET, "--prefix", "firmware/acme", "--json",
        env=local_cloud.env(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sidecar_key"] == "firmware/acme/cam-2.0.0.ota.json"
    oss = local_cloud.oss
    for name, data in FILES.items():
        assert oss.read_object(BUCKET, f"firmware/acme/cam-2.0.0/{name}") == data
    assert oss.drain(5)
    order = [e["events"][0]["oss"]["object"]["key"] for e in local_cloud.events]
    assert order[-1] == "firmware/acme/cam-2.0.0.ota.json"
    assert sorted(order[:-1]) == [f"firmware/acme/cam-2.0.0/{n}" for n in sorted(FILES)]


@pytest.mark.integration
def test_upload_of_an_invalid_folder_uploads_nothing(
    run: Any, local_cloud: Any, folder: Path
) -> None:
    assert init(run, folder).exit_code == 0
    (folder / "app.bin").write_bytes(b"changed")
    result = run("upload", folder, "--bucket", BUCKET, env=local_cloud.env())
    assert result.exit_code == 1
    assert "files[0]" in result.stdout
    assert local_cloud.oss.list_keys(BUCKET) == []


@pytest.mark.integration
def test_the_iot_adapter_creates_multifiles_and_reads_them_back_for_idempotency(
    local_cloud: Any,
) -> None:
    # The adapter the function uses, against the local IoT over the real SDK.
    from ota_release.adapters import CloudCredentials
    from ota_release.adapters.iot import IotOtaPlatform
    from ota_release.ports import FirmwareRequest, ListedFile, MultiFile

    entries = []
    for name, data in FILES.items():
        key = f"firmware/hub-5.1.0/{name}"
        local_cloud.oss.put_object(BUCKET, key, data, notify=False)
        url = local_cloud.oss.url_for(BUCKET, key)
        entries.append(MultiFile(name, url, len(data), md5(data), md5(data)))
    iot = IotOtaPlatform(
        CloudCredentials("LTAI-cli-test", "cli-test-secret"),
        local_cloud.iot_url.removeprefix("http://"),
        "cn-shanghai",
        protocol="http",
    )
    created = iot.create_firmware(
        FirmwareRequest(
            firmware_name="hub-5_1_0",
            dest_version="5.1.0",
            firmware_url=None,
            multi_files=tuple(entries),
        )
    )
    found = iot.find_firmware("hub-5_1_0", "5.1.0", None, None).package
    assert found is not None and found.firmware_id == created.firmware_id
    assert found.files == tuple(ListedFile(n, len(d), md5(d)) for n, d in FILES.items())
