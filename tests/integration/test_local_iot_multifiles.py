"""The local IoT Platform's multi-file packages (MultiFiles), driven by the real SDK."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from alibabacloud_iot20180120 import models as iot_models

from localcloud.contracts import ObjectFacts
from localcloud.iot import IotCode
from tests.integration import test_local_iot as base
from tests.integration.test_local_iot import IotEnv, create_request

pytestmark = pytest.mark.integration

# The local IoT's server and factory, shared with its main suite.
iot_server = base.iot_server
make_iot = base.make_iot


@pytest.fixture
def env(request: pytest.FixtureRequest) -> IotEnv:
    factory: base.IotFactory = request.getfixturevalue("make_iot")
    return factory()


BASE = "http://127.0.0.1:1/firmware/acme/cam-2.0.0/"
FILES = {"app.bin": b"application", "boot.img": b"bootloader!", "config.json": b"{}"}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def stored(env: IotEnv) -> None:
    for name, data in FILES.items():
        env.objects.by_url[BASE + name] = ObjectFacts(
            "firmware", f"acme/cam-2.0.0/{name}", len(data), md5(data)
        )


def entry(name: str, **fields: Any) -> iot_models.CreateOTAFirmwareRequestMultiFiles:
    return iot_models.CreateOTAFirmwareRequestMultiFiles(name=name, url=BASE + name, **fields)


def multi_request(*entries: Any, **overrides: Any) -> iot_models.CreateOTAFirmwareRequest:
    request = create_request(firmware_url=None, **overrides)
    request.multi_files = list(entries) or [entry(n) for n in FILES]
    return request


def test_a_multi_file_package_is_created_and_queried_with_its_files(env: IotEnv) -> None:
    # GIVEN three stored files
    stored(env)
    client = env.client()
    # WHEN a package names them in MultiFiles, one with a declared size and sign
    declared = entry("boot.img", size=11, sign_value="b" * 32)
    files = [entry("app.bin"), declared, entry("config.json")]
    response = client.create_otafirmware(multi_request(*files))
    assert response.body.success, response.body.error_message
    # THEN QueryOTAFirmware returns every file; undeclared values are the objects' own
    info = client.query_otafirmware(
        iot_models.QueryOTAFirmwareRequest(firmware_id=response.body.data.firmware_id)
    ).body.firmware_info
    got = [(f.name, f.size, f.sign_value, f.file_md_5) for f in info.multi_files]
    assert got == [
        ("app.bin", 11, md5(FILES["app.bin"]), md5(FILES["app.bin"])),
        ("boot.img", 11, "b" * 32, md5(FILES["boot.img"])),
        ("config.json", 2, md5(FILES["config.json"]), md5(FILES["config.json"])),
    ]
    assert [f.url for f in info.multi_files] == [BASE + n for n in FILES]
    assert info.firmware_url is None and info.firmware_size is None


def test_list_reports_a_multi_file_package_without_its_files(env: IotEnv) -> None:
    stored(env)
    client = env.client()
    assert client.create_otafirmware(multi_request()).body.success
    listed = client.list_otafirmware(iot_models.ListOTAFirmwareRequest(current_page=1))
    (item,) = listed.body.firmware_info.simple_firmware_info
    assert item.firmware_name == "cam-2_0_0"
    assert "MultiFiles" not in item.to_map()


def test_firmware_url_together_with_multifiles_is_refused(env: IotEnv) -> None:
    stored(env)
    request = multi_request(firmware_size=3)
    request.firmware_url = BASE + "app.bin"
    response = env.client().create_otafirmware(request)
    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    assert "FirmwareUrl" in response.body.error_message
    assert "FirmwareSize" in response.body.error_message
    assert env.iot.firmwares() == []


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ([entry("app.bin")], "MultiFiles"),
        ([entry(f"f{i}") for i in range(21)], "MultiFiles"),
        ([entry("app.bin"), entry("x" * 33)], "MultiFiles.2.Name"),
        ([entry("app.bin"), entry("app.bin")], "MultiFiles.2.Name"),
        ([entry("app.bin"), entry("boot.img", sign_value="zz")], "MultiFiles.2.SignValue"),
    ],
)
def test_multifiles_rules_are_enforced_naming_the_entry(
    env: IotEnv, files: list[Any], field: str
) -> None:
    stored(env)
    response = env.client().create_otafirmware(multi_request(*files))
    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    assert field in response.body.error_message
    assert env.iot.firmwares() == []


def test_a_file_url_naming_no_object_refuses_the_whole_package(env: IotEnv) -> None:
    stored(env)
    missing = iot_models.CreateOTAFirmwareRequestMultiFiles(name="gone.bin", url=BASE + "gone")
    response = env.client().create_otafirmware(multi_request(entry("app.bin"), missing))
    assert (response.body.success, response.body.code) == (False, IotCode.FIRMWARE_URL_INVALID)
    assert "MultiFiles.2.Url" in response.body.error_message
    assert env.iot.firmwares() == []
