"""The 14 CreateOTAFirmware fields, listed once, match every place that names them."""

from __future__ import annotations

import inspect
from dataclasses import fields

from ota_release import rules
from ota_release.firmware_request import REQUEST_FIELDS, FirmwareRequest
from ota_release.sidecar import FRIENDLY_TO_API, ReleaseSpec


def test_every_listed_field_is_a_request_attribute_and_back() -> None:
    assert {f.attribute for f in REQUEST_FIELDS} == {f.name for f in fields(FirmwareRequest)}
    assert len(REQUEST_FIELDS) == 14


def test_the_request_attributes_are_the_iot_sdks_field_names() -> None:
    from alibabacloud_iot20180120 import models

    sdk = set(inspect.signature(models.CreateOTAFirmwareRequest.__init__).parameters)
    assert {f.attribute for f in REQUEST_FIELDS} <= sdk


def test_api_names_and_sidecar_keys_come_from_the_one_list() -> None:
    assert tuple(f.api for f in REQUEST_FIELDS) == rules.API_PARAMETERS
    assert set(rules.RULES_TABLE) == set(rules.API_PARAMETERS)
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
