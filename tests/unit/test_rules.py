"""The CreateOTAFirmware rules, each at its limit and just past it."""

from __future__ import annotations

from typing import Any

import pytest

from ota_release import rules
from ota_release.rules import Violation, check_create_firmware

URL = "https://iotx-ota.oss-cn-shanghai.aliyuncs.com/ota/p/1.bin"


def request(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"DestVersion": "2.0.0", "FirmwareName": "cam", "FirmwareUrl": URL}
    params.update(overrides)
    return params


def fields_of(violations: list[Violation]) -> list[str]:
    return [v.field for v in violations]


def test_a_minimal_request_is_valid() -> None:
    assert check_create_firmware(request()) == []


def test_missing_required_parameters_are_each_reported() -> None:
    violations = check_create_firmware({})
    assert sorted(fields_of(violations)) == ["DestVersion", "FirmwareName", "FirmwareUrl"]
    assert all(v.rule == "is required" for v in violations)


def test_none_values_count_as_absent() -> None:
    assert fields_of(check_create_firmware(request(FirmwareDesc=None, Type=None))) == []


# FirmwareName ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a" * 40, "Firmware2", "fw_(beta)-1", "9lives", "固件升级", "ファームウェア", "カメラ_v2"],
)
def test_firmware_name_within_the_rules_is_accepted(name: str) -> None:
    assert rules.check_firmware_name(name) == []


def test_firmware_name_of_41_characters_is_rejected() -> None:
    [violation] = rules.check_firmware_name("a" * 41)
    assert violation.field == "FirmwareName"
    assert "1 to 40" in violation.rule


def test_firmware_name_of_40_cjk_characters_is_accepted_and_41_rejected() -> None:
    assert rules.check_firmware_name("固" * 40) == []
    assert rules.check_firmware_name("固" * 41) != []


@pytest.mark.parametrize("name", ["-fw", "_fw", "(fw)", ")x"])
def test_firmware_name_must_start_with_a_letter_or_digit(name: str) -> None:
    [violation] = rules.check_firmware_name(name)
    assert "start with a letter or a digit" in violation.rule
    assert violation.value == name


@pytest.mark.parametrize("name", ["fw.1", "fw 1", "fw/1", "fw\n", "fw\t1", "fw😀", "fw[1]"])
def test_firmware_name_with_a_character_outside_the_set_is_rejected(name: str) -> None:
    assert rules.check_firmware_name(name) != []


@pytest.mark.parametrize("value", [None, 5, ["a"]])
def test_firmware_name_that_is_not_a_string_is_rejected(value: Any) -> None:
    assert rules.check_firmware_name(value)[0].rule == "must be a string"


# Versions and module --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["DestVersion", "SrcVersion"])
def test_version_of_64_characters_is_accepted_and_65_rejected(field: str) -> None:
    assert rules.check_version("1" * 64, field) == []
    [violation] = rules.check_version("1" * 65, field)
    assert violation.field == field
    assert "1 to 64" in violation.rule


@pytest.mark.parametrize("version", ["2.0.0", "v2_0-rc.1", "A"])
def test_version_with_letters_digits_dot_dash_underscore_is_accepted(version: str) -> None:
    assert rules.check_version(version, "DestVersion") == []


@pytest.mark.parametrize("version", ["2.0.0 ", "2.0.0\n", "2,0", "2.0+build", "版本1", "2/0"])
def test_version_with_another_character_is_rejected(version: str) -> None:
    [violation] = rules.check_version(version, "DestVersion")
    assert "letters, digits" in violation.rule
    assert violation.value == version


def test_module_name_of_64_characters_is_accepted_and_65_rejected() -> None:
    assert rules.check_module_name("m" * 64) == []
    assert "1 to 64" in rules.check_module_name("m" * 65)[0].rule


@pytest.mark.parametrize("module", ["wifi module", "wifi/1", "", "模块"])
def test_module_name_outside_the_rules_is_rejected(module: str) -> None:
    assert rules.check_module_name(module) != []


# Description and Udi ---------------------------------------------------------------------------


def test_description_of_100_characters_is_accepted_and_101_rejected() -> None:
    assert rules.check_description("d" * 100) == []
    assert "1 to 100" in rules.check_description("d" * 101)[0].rule


def test_a_chinese_character_counts_as_one_in_the_description() -> None:
    # 100 Chinese characters are 300 bytes of UTF-8 but 100 characters.
    assert rules.check_description("中" * 100) == []
    assert rules.check_description("中" * 101) != []


def test_empty_description_is_rejected() -> None:
    assert rules.check_description("") != []


def test_udi_of_4096_characters_is_accepted_and_4097_rejected() -> None:
    assert rules.check_udi("u" * 4096) == []
    assert "4096" in rules.check_udi("u" * 4097)[0].rule


# Signatures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["MD5", "SHA256"])
def test_supported_sign_methods_are_accepted(method: str) -> None:
    assert rules.check_sign_method(method) == []


@pytest.mark.parametrize("method", ["SHA1", "md5", "", None, "SHA512"])
def test_other_sign_methods_are_rejected(method: Any) -> None:
    assert rules.check_sign_method(method)[0].rule == "must be one of MD5, SHA256"


@pytest.mark.parametrize(("method", "length"), [("MD5", 32), ("SHA256", 64)])
def test_sign_must_have_the_hex_length_of_its_method(method: str, length: int) -> None:
    assert rules.check_sign("a" * length, method) == []
    assert f"{length} hex characters" in rules.check_sign("a" * (length - 1), method)[0].rule
    assert f"{length} hex characters" in rules.check_sign("a" * (length + 1), method)[0].rule


@pytest.mark.parametrize("sign", ["g" * 32, "a" * 31 + "\n", "0x" + "a" * 30, ""])
def test_sign_that_is_not_hex_is_rejected(sign: str) -> None:
    assert rules.check_sign(sign, "MD5") != []


# Size, type, flags -----------------------------------------------------------------------------


def test_size_at_the_limits_is_accepted_and_past_them_rejected() -> None:
    assert rules.check_size(1) == []
    assert rules.check_size(rules.FIRMWARE_SIZE_MAX) == []
    assert rules.check_size(0) != []
    assert rules.check_size(rules.FIRMWARE_SIZE_MAX + 1) != []


@pytest.mark.parametrize("value", [True, 1.0, "1.5", "-1", None, "ten"])
def test_size_that_is_not_an_integer_is_rejected(value: Any) -> None:
    assert rules.check_size(value)[0].rule == "must be an integer number of bytes"


def test_size_as_a_query_string_is_accepted() -> None:
    assert rules.check_size("900") == []


@pytest.mark.parametrize("value", [0, 1, "0", "1"])
def test_type_0_or_1_is_accepted(value: Any) -> None:
    assert rules.check_type(value) == []


@pytest.mark.parametrize("value", [2, "2", True, False, 1.0, -1, "full"])
def test_type_other_than_0_or_1_is_rejected(value: Any) -> None:
    assert rules.check_type(value) != []


def test_type_1_without_src_version_is_rejected() -> None:
    violations = check_create_firmware(request(Type=1))
    assert violations == [
        Violation("SrcVersion", "is required when Type is 1 (differential)", None)
    ]


def test_type_1_with_src_version_equal_to_dest_version_is_rejected() -> None:
    [violation] = check_create_firmware(request(Type=1, SrcVersion="2.0.0"))
    assert violation.field == "SrcVersion"
    assert "must differ" in violation.rule


def test_type_1_with_a_different_src_version_is_accepted() -> None:
    assert check_create_firmware(request(Type="1", SrcVersion="1.0.0")) == []


def test_type_0_may_name_the_same_src_version() -> None:
    assert check_create_firmware(request(Type=0, SrcVersion="2.0.0")) == []


@pytest.mark.parametrize("value", [True, False, "True", "false"])
def test_need_to_verify_as_bool_or_sdk_string_is_accepted(value: Any) -> None:
    assert rules.check_need_to_verify(value) == []


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_need_to_verify_other_than_a_bool_is_rejected(value: Any) -> None:
    assert rules.check_need_to_verify(value) != []


# Identifiers and URL ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["ProductKey", "IotInstanceId"])
def test_identifiers_follow_their_pattern(field: str) -> None:
    assert check_create_firmware(request(**{field: "a1uctKe_x-9"})) == []
    assert check_create_firmware(request(**{field: "k" * 64})) == []
    for bad in ("k" * 65, "a b", "a/b", "", "pk\n"):
        assert fields_of(check_create_firmware(request(**{field: bad}))) == [field], bad


@pytest.mark.parametrize("url", ["ftp://x/y.bin", "/relative.bin", "https://", 7])
def test_firmware_url_must_be_http_or_https(url: Any) -> None:
    assert fields_of(check_create_firmware(request(FirmwareUrl=url))) == ["FirmwareUrl"]


# All at once -----------------------------------------------------------------------------------


def test_every_violation_is_returned_together_with_field_rule_and_value() -> None:
    # GIVEN a request with five independent problems
    params = request(
        FirmwareName="-bad",
        DestVersion="v" * 65,
        FirmwareDesc="d" * 101,
        SignMethod="SHA1",
        Type=1,
    )
    # WHEN it is checked
    violations = check_create_firmware(params)
    # THEN all five are reported, each naming the field, the rule and the value seen
    assert sorted(fields_of(violations)) == sorted(
        ["FirmwareName", "DestVersion", "FirmwareDesc", "SignMethod", "SrcVersion"]
    )
    for v in violations:
        assert v.rule
        assert v.field in str(v)
    assert {v.field: v.value for v in violations}["SignMethod"] == "SHA1"


def test_violation_text_shows_long_values_and_containers_briefly() -> None:
    long = Violation("Udi", "too long", "u" * 5000)
    assert len(str(long)) < 200
    nested = Violation("x", "bad", {"a": [1, 2, 3]})
    assert nested.as_dict()["value"] == "<dict of 1 items>"


def test_parse_query_helpers_read_sdk_strings() -> None:
    assert rules.parse_query_bool("True") is True
    assert rules.parse_query_bool("False") is False
    assert rules.parse_query_bool("1") is None
    assert rules.parse_query_int("42") == 42
    assert rules.parse_query_int("-1") is None


@pytest.mark.parametrize("name", ["FirmwareDesc", "Udi", "DestVersion", "ModuleName", "SrcVersion"])
def test_every_string_parameter_must_be_encodable_as_the_api_sends_it(name: str) -> None:
    params = {"DestVersion": "1.0.0", "FirmwareName": "cam", "FirmwareUrl": "https://a/b"}
    violations = check_create_firmware({**params, name: "x\ud800"})
    assert [(v.field, v.rule) for v in violations] == [(name, rules.ENCODABLE_RULE)]
    assert violations[0].as_dict()["value"] == repr("x\ud800")


@pytest.mark.parametrize("text", ["\x00", "tab\there", "del\x7f", "\x9b[31m"])
def test_control_characters_are_refused_in_free_text(text: str) -> None:
    params = {"DestVersion": "1.0.0", "FirmwareName": "cam", "FirmwareUrl": "https://a/b"}
    for name in ("FirmwareDesc", "Udi"):
        [violation] = check_create_firmware({**params, name: text})
        assert (violation.field, violation.rule) == (name, rules.CONTROL_RULE)
