"""The 14 CreateOTAFirmware fields, listed once, match every place that names them."""

from __future__ import annotations

import inspect
from dataclasses import fields

from ota_release import rules
from ota_release.firmware_request import (
    MULTI_FILES_FIELD,
    REQUEST_FIELDS,
    FirmwareRequest,
    MultiFile,
)
from ota_release.sidecar import FRIENDLY_TO_API, ReleaseSpec


def test_every_listed_field_is_a_request_attribute_and_back() -> None:
    listed = {f.attribute for f in (*REQUEST_FIELDS, MULTI_FILES_FIELD)}
    assert listed == {f.name for f in fields(FirmwareRequest)}
    assert len(REQUEST_FIELDS) == 14


def test_the_request_attributes_are_the_iot_sdks_field_names() -> None:
    from alibabacloud_iot20180120 import models

    sdk = set(inspect.signature(models.CreateOTAFirmwareRequest.__init__).parameters)
    assert {f.attribute for f in (*REQUEST_FIELDS, MULTI_FILES_FIELD)} <= sdk
    entry = set(inspect.signature(models.CreateOTAFirmwareRequestMultiFiles.__init__).parameters)
    assert {f.name for f in fields(MultiFile)} == entry - {"self"}


def test_api_names_and_sidecar_keys_come_from_the_one_list() -> None:
    assert tuple(f.api for f in REQUEST_FIELDS) == rules.API_PARAMETERS
    multi = {MULTI_FILES_FIELD.api, "MultiFiles.N.Name"}
    assert set(rules.RULES_TABLE) == set(rules.API_PARAMETERS) | multi
    assert {f.sidecar_key: f.api for f in REQUEST_FIELDS if f.sidecar_key} == FRIENDLY_TO_API


def test_a_spec_becomes_a_request_that_sends_only_what_is_set() -> None:
    spec = ReleaseSpec(version="2.0.0", name="cam", module="cam", product_key="a1Key")
    request = spec.firmware_request("https://x/y.bin", "0" * 32, 8)
    assert request.api_params() == {
        "DestVersion": "2.0.0",
        "FirmwareName": "cam",
        "ModuleName": "cam",
        "Type": 0,
        "ProductKey": "a1Key",
        "SignMethod": "MD5",
        "FirmwareSign": "0" * 32,
        "FirmwareSize": 8,
        "FirmwareUrl": "https://x/y.bin",
    }
    assert request.sent_attributes()["module_name"] == "cam"
    assert "udi" not in request.sent_attributes()


def test_a_multi_file_request_sends_multifiles_and_no_single_file_fields() -> None:
    # API reference 147311: FirmwareUrl/FirmwareSign/FirmwareSize only for a one-file package
    spec = ReleaseSpec(version="2.0.0", name="cam")
    files = (
        MultiFile("app.bin", "https://x/1.bin", 3, "a" * 32, "a" * 32),
        MultiFile("boot.bin", "https://x/2.bin", 4, "b" * 32),
    )
    params = spec.multi_file_request(files).api_params()
    assert not {"FirmwareUrl", "FirmwareSign", "FirmwareSize"} & set(params)
    assert params["MultiFiles"] == [
        {
            "Name": "app.bin",
            "Url": "https://x/1.bin",
            "Size": 3,
            "SignValue": "a" * 32,
            "FileMd5": "a" * 32,
        },
        {"Name": "boot.bin", "Url": "https://x/2.bin", "Size": 4, "SignValue": "b" * 32},
    ]
    assert rules.check_create_firmware(params) == []
