"""Sidecar parsing and validation: every rule, every format trap, never an exception."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota_release import rules
from ota_release.sidecar import (
    FRIENDLY_TO_API,
    MAX_SIDECAR_BYTES,
    ReleaseSpec,
    SidecarResult,
    derive_firmware_name,
    parse_sidecar,
    sidecar_format,
    validate_document,
)

FIRMWARE = "firmware/acme/cam-2.0.0.bin"
JSON_KEY = FIRMWARE + ".ota.json"
YAML_KEY = FIRMWARE + ".ota.yaml"
MD5_HEX = hashlib.md5(b"firmware").hexdigest()  # noqa: S324
SHA_HEX = hashlib.sha256(b"firmware").hexdigest()


def from_json(doc: Any, **kwargs: Any) -> SidecarResult:
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return parse_sidecar(raw, sidecar_key=JSON_KEY, firmware_key=FIRMWARE, **kwargs)


def from_text(text: str | bytes, key: str = YAML_KEY) -> SidecarResult:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return parse_sidecar(raw, sidecar_key=key, firmware_key=FIRMWARE)


def spec_of(result: SidecarResult) -> ReleaseSpec:
    assert result.spec is not None, [str(e) for e in result.errors]
    assert result.errors == []
    return result.spec


def only_error(result: SidecarResult) -> rules.Violation:
    assert result.spec is None
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return result.errors[0]


def error_fields(result: SidecarResult) -> list[str]:
    assert result.spec is None
    return [e.field for e in result.errors]


# The happy paths -------------------------------------------------------------------------------


def test_a_version_alone_is_a_valid_sidecar() -> None:
    spec = spec_of(from_json({"version": "2.0.0"}))
    assert spec.version == "2.0.0"
    assert spec.type == rules.TYPE_FULL
    assert spec.sign_method == "MD5"
    assert spec.name_derived is True


def test_friendly_keys_map_onto_every_api_parameter() -> None:
    doc = {
        "version": "2.0.0",
        "name": "cam-fw",
        "module": "wifi",
        "type": "diff",
        "src_version": "1.0.0",
        "product_key": "a1uctKe",
        "description": "固件 update",
        "sign_method": "MD5",
        "sign": MD5_HEX,
        "size": 8,
        "need_to_verify": False,
        "udi": "{}",
        "iot_instance_id": "iot-cn-0pp1",
    }
    spec = spec_of(from_json(doc))
    params = spec.api_params("https://x/y.bin", MD5_HEX, 8)
    assert set(params) == {*FRIENDLY_TO_API.values(), "FirmwareUrl"}
    assert params["Type"] == 1
    assert params["NeedToVerify"] is False
    assert params["FirmwareName"] == "cam-fw"


def test_api_parameter_names_are_accepted_as_keys() -> None:
    spec = spec_of(
        from_json({"DestVersion": "2.0.0", "FirmwareName": "cam", "Type": 1, "SrcVersion": "1"})
    )
    assert (spec.version, spec.name, spec.type, spec.src_version) == ("2.0.0", "cam", 1, "1")


def test_schema_key_is_allowed_and_ignored() -> None:
    spec = spec_of(from_json({"$schema": "https://x/sidecar.schema.json", "version": "2.0.0"}))
    assert "$schema" not in spec.model_dump()


def test_defaults_from_settings_fill_product_key_and_instance() -> None:
    spec = spec_of(
        from_json({"version": "1"}, default_product_key="pk1", default_iot_instance_id="iot-1")
    )
    assert (spec.product_key, spec.iot_instance_id) == ("pk1", "iot-1")


def test_sidecar_values_override_defaults_from_settings() -> None:
    spec = spec_of(from_json({"version": "1", "product_key": "mine"}, default_product_key="pk1"))
    assert spec.product_key == "mine"


def test_null_optional_values_count_as_absent() -> None:
    # YAML "name:" with nothing after it is null: the name is derived, not a crash
    spec = spec_of(from_text("version: '2.0.0'\nname:\nmodule: null\n"))
    assert spec.name_derived is True
    assert spec.module is None


# Names and versions at their limits ------------------------------------------------------------


def test_name_of_40_characters_is_accepted_and_41_rejected() -> None:
    assert spec_of(from_json({"version": "1", "name": "n" * 40})).name == "n" * 40
    error = only_error(from_json({"version": "1", "name": "n" * 41}))
    assert (error.field, error.value) == ("name", "n" * 41)
    assert "1 to 40" in error.rule


def test_cjk_name_is_accepted() -> None:
    assert (
        spec_of(from_json({"version": "1", "name": "摄像头固件(测试)"})).name == "摄像头固件(测试)"
    )


@pytest.mark.parametrize("name", ["(beta)", "_x", "-x", ""])
def test_name_that_does_not_start_with_a_letter_or_digit_is_rejected(name: str) -> None:
    assert error_fields(from_json({"version": "1", "name": name})) == ["name"]


def test_name_with_parentheses_inside_is_accepted() -> None:
    assert spec_of(from_json({"version": "1", "name": "cam(beta)"})).name == "cam(beta)"


def test_version_of_64_characters_is_accepted_and_65_rejected() -> None:
    assert spec_of(from_json({"version": "1" * 64, "name": "n"})).version == "1" * 64
    assert error_fields(from_json({"version": "1" * 65, "name": "n"})) == ["version"]


@pytest.mark.parametrize("version", ["2.0.0 beta", "2.0.0\n", "2/0", "v2+1", ""])
def test_version_outside_the_charset_is_rejected(version: str) -> None:
    assert error_fields(from_json({"version": version, "name": "n"})) == ["version"]


def test_module_of_64_characters_is_accepted_and_65_rejected() -> None:
    assert spec_of(from_json({"version": "1", "module": "m" * 64})).module == "m" * 64
    assert error_fields(from_json({"version": "1", "module": "m" * 65})) == ["module"]
    assert error_fields(from_json({"version": "1", "module": "wifi module"})) == ["module"]


def test_description_of_100_chinese_characters_is_accepted_and_101_rejected() -> None:
    assert spec_of(from_json({"version": "1", "description": "中" * 100})).description
    error = only_error(from_json({"version": "1", "description": "中" * 101}))
    assert error.field == "description"
    assert "1 to 100" in error.rule


def test_description_of_100_ascii_characters_is_accepted_and_101_rejected() -> None:
    assert spec_of(from_json({"version": "1", "description": "d" * 100}))
    assert error_fields(from_json({"version": "1", "description": "d" * 101})) == ["description"]


def test_udi_of_4096_characters_is_accepted_and_4097_rejected() -> None:
    assert spec_of(from_json({"version": "1", "udi": "u" * 4096})).udi == "u" * 4096
    assert error_fields(from_json({"version": "1", "udi": "u" * 4097})) == ["udi"]


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("product_key", "a1uctKe", "a1 uct"),
        ("ProductKey", "k" * 64, "k" * 65),
        ("iot_instance_id", "iot-cn-0pp1n8t", "iot/cn"),
    ],
)
def test_product_key_and_instance_id_follow_their_pattern(key: str, good: str, bad: str) -> None:
    assert spec_of(from_json({"version": "1", key: good}))
    assert error_fields(from_json({"version": "1", key: bad})) == [key]


# Signatures ------------------------------------------------------------------------------------


def test_uppercase_hex_sign_is_normalised_to_lowercase() -> None:
    assert spec_of(from_json({"version": "1", "sign": MD5_HEX.upper()})).sign == MD5_HEX


def test_base64_md5_sign_is_normalised_to_hex() -> None:
    b64 = base64.b64encode(bytes.fromhex(MD5_HEX)).decode()
    assert spec_of(from_json({"version": "1", "sign": b64})).sign == MD5_HEX


def test_base64_sha256_sign_is_normalised_to_hex() -> None:
    b64 = base64.b64encode(bytes.fromhex(SHA_HEX)).decode()
    spec = spec_of(from_json({"version": "1", "sign_method": "SHA256", "sign": b64}))
    assert (spec.sign_method, spec.sign) == ("SHA256", SHA_HEX)


@pytest.mark.parametrize("method", ["sha256", "SHA-256", "Sha256"])
def test_sign_method_spellings_of_sha256_are_normalised(method: str) -> None:
    spec = spec_of(from_json({"version": "1", "sign_method": method, "sign": SHA_HEX}))
    assert spec.sign_method == "SHA256"


def test_unknown_sign_method_is_rejected() -> None:
    error = only_error(from_json({"version": "1", "sign_method": "SHA1"}))
    assert (error.field, error.value) == ("sign_method", "SHA1")


@pytest.mark.parametrize(
    ("method", "sign"),
    [
        ("MD5", "a" * 31),
        ("MD5", "a" * 33),
        ("MD5", SHA_HEX),
        ("SHA256", MD5_HEX),
        ("MD5", "z" * 32),
    ],
)
def test_sign_of_the_wrong_length_or_alphabet_is_rejected(method: str, sign: str) -> None:
    error = only_error(from_json({"version": "1", "sign_method": method, "sign": sign}))
    assert error.field == "sign"
    assert error.value == sign


# Size, type, flags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ok"),
    [(1, True), (rules.FIRMWARE_SIZE_MAX, True), (0, False), (rules.FIRMWARE_SIZE_MAX + 1, False)],
)
def test_size_is_checked_at_its_limits(size: int, ok: bool) -> None:
    assert from_json({"version": "1", "size": size}).ok is ok


@pytest.mark.parametrize("size", ["900", 9.0, True, -1, [9]])
def test_size_must_be_a_json_integer(size: Any) -> None:
    assert error_fields(from_json({"version": "1", "size": size})) == ["size"]


@pytest.mark.parametrize(("value", "expected"), [("full", 0), (0, 0), ("diff", 1), (1, 1)])
def test_type_words_and_numbers_are_accepted(value: Any, expected: int) -> None:
    spec = spec_of(from_json({"version": "2", "type": value, "src_version": "1"}))
    assert spec.type == expected


@pytest.mark.parametrize("value", [2, "2", "1", True, False, 1.0, "Full"])
def test_other_type_values_are_rejected(value: Any) -> None:
    error = only_error(from_json({"version": "2", "type": value, "src_version": "1"}))
    assert error.field == "type"
    assert error.value == value


def test_type_1_without_src_version_is_rejected() -> None:
    error = only_error(from_json({"version": "2.0.0", "type": 1}))
    assert error.field == "src_version"
    assert "required when Type is 1" in error.rule


def test_type_diff_with_src_version_equal_to_version_is_rejected() -> None:
    error = only_error(from_json({"version": "2.0.0", "type": "diff", "src_version": "2.0.0"}))
    assert (error.field, error.value) == ("src_version", "2.0.0")
    assert "must differ" in error.rule


def test_type_1_error_uses_the_key_the_author_wrote() -> None:
    error = only_error(from_json({"DestVersion": "2", "Type": 1, "SrcVersion": "2"}))
    assert error.field == "SrcVersion"


@pytest.mark.parametrize("value", [True, False])
def test_need_to_verify_takes_a_boolean(value: bool) -> None:
    assert spec_of(from_json({"version": "1", "need_to_verify": value})).need_to_verify is value


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_need_to_verify_other_than_a_boolean_is_rejected(value: Any) -> None:
    assert error_fields(from_json({"version": "1", "need_to_verify": value})) == ["need_to_verify"]


# Keys ------------------------------------------------------------------------------------------


def test_missing_version_is_reported_once() -> None:
    error = only_error(from_json({"name": "cam"}))
    assert (error.field, error.rule, error.value) == ("version", "is required", None)


def test_unknown_key_gets_a_did_you_mean_hint() -> None:
    error = only_error(from_json({"version": "1", "verison": "2"}))
    assert error.field == "verison"
    assert "did you mean 'version'?" in error.rule


def test_key_in_the_wrong_case_gets_a_hint() -> None:
    error = only_error(from_json({"version": "1", "PRODUCTKEY": "pk"}))
    assert "did you mean 'ProductKey'?" in error.rule


def test_unknown_key_without_a_near_match_lists_the_known_keys() -> None:
    error = only_error(from_json({"version": "1", "zzzzzz": 1}))
    assert "known keys: version, name" in error.rule


def test_the_same_field_under_both_names_is_rejected() -> None:
    error = only_error(from_json({"version": "1", "DestVersion": "1"}))
    assert error.field == "DestVersion"
    assert "given twice" in error.rule


@pytest.mark.parametrize("key", ["FirmwareUrl", "url"])
def test_a_firmware_url_in_the_sidecar_is_refused(key: str) -> None:
    error = only_error(from_json({"version": "1", key: "https://evil.example/fw.bin"}))
    assert error.field == key
    assert "sets FirmwareUrl" in error.rule


def test_multi_file_packages_are_refused() -> None:
    assert error_fields(from_json({"version": "1", "MultiFiles": []})) == ["MultiFiles"]


def test_every_problem_is_reported_together_naming_field_rule_and_value() -> None:
    # GIVEN a sidecar with five independent problems
    doc = {
        "version": "2.0.0 final",
        "name": "-cam",
        "description": "d" * 101,
        "sign_method": "CRC32",
        "colour": "blue",
    }
    # WHEN it is validated
    result = from_json(doc)
    # THEN there is no spec and exactly five violations, one per problem
    assert result.spec is None
    assert sorted(e.field for e in result.errors) == sorted(doc)
    for error in result.errors:
        assert error.rule
        assert error.value == doc[error.field]
        assert error.field in str(error)


def test_type_errors_and_rule_errors_are_reported_together() -> None:
    result = from_json({"version": 2.0, "size": "9", "module": "a b", "udi": 7})
    assert sorted(error_fields(result)) == ["module", "size", "udi", "version"]


# Formats ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fmt"),
    [("a.ota.json", "json"), ("a.OTA.JSON", "json"), ("a.ota.yaml", "yaml"), ("a.ota.yml", "yaml")],
)
def test_format_follows_the_suffix(key: str, fmt: str) -> None:
    assert sidecar_format(key) == fmt


def test_yaml_sidecar_is_parsed() -> None:
    text = "version: '2.0.0'\ntype: diff\nsrc_version: '1.9'\ndescription: 中文说明\n"
    spec = spec_of(from_text(text))
    assert (spec.version, spec.type, spec.description) == ("2.0.0", 1, "中文说明")


def test_json_content_under_a_yaml_suffix_parses_as_yaml() -> None:
    assert spec_of(from_text('{"version": "1"}', key="fw.bin.ota.yml")).version == "1"


def test_yaml_content_under_a_json_suffix_is_invalid_json() -> None:
    error = only_error(from_text("version: '1'\n", key=JSON_KEY))
    assert (error.field, error.rule) == ("sidecar", "must be valid JSON")


@pytest.mark.parametrize(
    "text", ["version: 2.0", "version: 1.10", "version: 2", "version: 2025-01-02"]
)
def test_unquoted_yaml_version_gets_a_quote_hint(text: str) -> None:
    error = only_error(from_text(text))
    assert error.field == "version"
    assert "quote" in error.rule


def test_number_as_version_in_json_is_rejected_with_the_value() -> None:
    error = only_error(from_json({"version": 2}))
    assert (error.field, error.value) == ("version", 2)


def test_utf8_bom_is_tolerated() -> None:
    raw = b"\xef\xbb\xbf" + json.dumps({"version": "1"}).encode()
    assert spec_of(parse_sidecar(raw, sidecar_key=JSON_KEY, firmware_key=FIRMWARE)).version == "1"


def padded_to(size: int) -> bytes:
    head = b'{"version": "1", "udi": "'
    tail = b'"}'
    return head + b"u" * (size - len(head) - len(tail) - 100) + tail + b" " * 100


def test_sidecar_of_exactly_64_kib_is_read() -> None:
    raw = padded_to(MAX_SIDECAR_BYTES)
    assert len(raw) == MAX_SIDECAR_BYTES
    # The Udi is too long, but the document was read: the error is about the Udi.
    assert error_fields(parse_sidecar(raw, sidecar_key=JSON_KEY, firmware_key=FIRMWARE)) == ["udi"]


def test_sidecar_one_byte_over_64_kib_is_refused_before_parsing() -> None:
    error = only_error(
        parse_sidecar(padded_to(MAX_SIDECAR_BYTES + 1), sidecar_key=JSON_KEY, firmware_key=FIRMWARE)
    )
    assert error.field == "sidecar"
    assert str(MAX_SIDECAR_BYTES) in error.rule


def test_non_utf8_sidecar_is_refused_with_the_offset() -> None:
    error = only_error(from_text(b'{"version": "1\xff"}', key=JSON_KEY))
    assert error.rule == "must be UTF-8 text"
    assert "offset 14" in str(error.value)


def test_nul_bytes_are_refused_as_binary() -> None:
    error = only_error(from_text(b"version: '1'\x00\x00\x01"))
    assert error.rule == "must be text, not binary"


def test_a_binary_file_uploaded_as_sidecar_is_refused() -> None:
    assert error_fields(from_text(bytes(range(256)) * 4)) == ["sidecar"]


@pytest.mark.parametrize(
    ("text", "kind"), [("[1, 2]", "list"), ('"2.0.0"', "str"), ("42", "int"), ("", "nothing")]
)
def test_top_level_that_is_not_a_mapping_is_refused(text: str, kind: str) -> None:
    error = only_error(from_text(text))
    assert error.rule == "must hold a mapping of keys to values at the top"
    assert error.value == kind


def test_duplicate_json_keys_are_refused() -> None:
    error = only_error(from_text('{"version": "1", "version": "2"}', key=JSON_KEY))
    assert "duplicate key 'version'" in str(error.value)


def test_duplicate_yaml_keys_are_refused() -> None:
    error = only_error(from_text("version: '1'\nversion: '2'\n"))
    assert "duplicate key 'version'" in str(error.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    error = only_error(from_text(f'{{"version": "1", "size": {constant}}}', key=JSON_KEY))
    assert error.rule == "must be valid JSON"


def test_yaml_anchors_and_aliases_are_refused() -> None:
    error = only_error(from_text("a: &x '1'\nversion: *x\n"))
    assert "anchors" in str(error.value)


def test_billion_laughs_is_refused_fast() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.process_time()
    result = from_text("\n".join(lines))
    assert error_fields(result) == ["sidecar"]
    assert time.process_time() - started < 2.0  # expanding it would take minutes


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_deep_nesting_is_refused(fmt: str) -> None:
    depth = 5000
    text = '{"version": "1", "udi": ' + "[" * depth + "]" * depth + "}"
    result = from_text(text, key=JSON_KEY if fmt == "json" else YAML_KEY)
    error = only_error(result)
    assert error.field == "sidecar"


def test_moderate_nesting_inside_a_value_is_a_type_error_not_a_crash() -> None:
    result = from_json({"version": "1", "udi": [[[["x"]]]]})
    assert error_fields(result) == ["udi"]


def test_non_string_keys_are_refused() -> None:
    result = from_text("1: one\nversion: '1'\n")
    assert error_fields(result) == ["sidecar"]


def test_yaml_python_tags_are_refused() -> None:
    result = from_text("version: !!python/object/apply:os.system ['echo hi']\n")
    assert error_fields(result) == ["sidecar"]


# Derived names ---------------------------------------------------------------------------------


def test_derived_name_drops_the_extension_and_keeps_a_version_already_in_it() -> None:
    assert derive_firmware_name("firmware/acme/cam-2.0.0.bin", "2.0.0") == "cam-2_0_0"


def test_derived_name_appends_a_version_not_in_the_file_name() -> None:
    assert derive_firmware_name("firmware/acme/cam.bin", "2.0.0") == "cam-2_0_0"
    assert derive_firmware_name("cam.bin", "1.0") == "cam-1_0"


def test_a_version_inside_a_longer_version_in_the_file_name_is_still_appended() -> None:
    # GIVEN cam-12.0.0.bin released as 2.0.0 and as 12.0.0
    # THEN the two releases get different names (no accidental conflict)
    as_2 = derive_firmware_name("fw/cam-12.0.0.bin", "2.0.0")
    as_12 = derive_firmware_name("fw/cam-12.0.0.bin", "12.0.0")
    assert as_12 == "cam-12_0_0"
    assert as_2 == "cam-12_0_0-2_0_0"
    assert derive_firmware_name("fw/cam-2.0.0.1.bin", "2.0.0") == "cam-2_0_0_1-2_0_0"


def test_derived_name_keeps_chinese_file_names() -> None:
    assert derive_firmware_name("固件/摄像头.bin", "v1") == "摄像头-v1"


def test_derived_name_drops_leading_punctuation() -> None:
    assert derive_firmware_name("fw/..._cam.bin", "1") == "cam-1"
    assert derive_firmware_name("fw/.bin", "1") == "bin-1"


def test_long_derived_names_are_hashed_to_40_and_stay_distinct() -> None:
    a = derive_firmware_name("fw/" + "x" * 60 + "-a.bin", "1.0")
    b = derive_firmware_name("fw/" + "x" * 60 + "-b.bin", "1.0")
    assert len(a) == len(b) == rules.FIRMWARE_NAME_MAX
    assert a != b
    assert a[:31] == b[:31] == "x" * 31


def test_a_spec_with_a_derived_name_says_so() -> None:
    spec = spec_of(from_json({"version": "2.0.0"}))
    assert (spec.name, spec.name_derived) == ("cam-2_0_0", True)


def test_a_derived_name_that_breaks_the_rules_is_labelled_as_derived() -> None:
    # A version of 64 characters is fine, but the name built from it is hashed down to 40.
    spec = spec_of(from_json({"version": "v" * 64}))
    assert len(spec.name) == 40
    # An unusable version makes the derived name unusable too, and the label says why.
    result = from_json({"version": "x" * 65})
    assert "version" in error_fields(result)


@given(
    key=st.text(min_size=0, max_size=120),
    version=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
)
@settings(max_examples=300, deadline=None)
def test_derived_names_are_deterministic_valid_and_at_most_40(key: str, version: str) -> None:
    name = derive_firmware_name(key, version)
    assert name == derive_firmware_name(key, version)
    assert rules.check_firmware_name(name) == []


# Never an exception ----------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
known_keys = st.sampled_from(
    [*FRIENDLY_TO_API, *FRIENDLY_TO_API.values(), "$schema", "FirmwareUrl"]
)
plausible_values = (
    json_scalars
    | st.sampled_from(["full", "diff", "MD5", "SHA256", "sha-256", MD5_HEX, SHA_HEX, "2.0.0"])
    | st.from_regex(r"[A-Za-z0-9._()\-]{0,70}", fullmatch=True)
)
sidecar_docs = st.dictionaries(
    known_keys | st.text(max_size=12), plausible_values | json_values, max_size=10
)


def assert_spec_xor_errors(result: SidecarResult) -> None:
    assert isinstance(result, SidecarResult)
    assert (result.spec is None) != (result.errors == [])
    if result.spec is not None:
        params = result.spec.api_params("https://x/y.bin", "0" * 32, 1)
        params["FirmwareSign"] = result.spec.sign or (
            "0" * 64 if result.spec.sign_method == "SHA256" else "0" * 32
        )
        assert rules.check_create_firmware(params) == []
    for error in result.errors:
        assert isinstance(error, rules.Violation)
        assert isinstance(error.field, str) and error.rule
        str(error)
        json.dumps(error.as_dict())


@given(doc=sidecar_docs)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_documents_give_a_spec_or_errors(doc: dict[str, Any]) -> None:
    assert_spec_xor_errors(validate_document(doc, firmware_key=FIRMWARE))


@given(doc=sidecar_docs)
@settings(max_examples=200, deadline=None)
def test_arbitrary_json_text_gives_a_spec_or_errors(doc: dict[str, Any]) -> None:
    assert_spec_xor_errors(from_json(doc))


@given(doc=sidecar_docs)
@settings(max_examples=200, deadline=None)
def test_arbitrary_yaml_text_gives_a_spec_or_errors(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    assert_spec_xor_errors(from_text(text))


@given(raw=st.binary(max_size=512), key=st.sampled_from([JSON_KEY, YAML_KEY]))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_give_a_spec_or_errors(raw: bytes, key: str) -> None:
    assert_spec_xor_errors(from_text(raw, key=key))


@given(text=st.text(max_size=300), key=st.sampled_from([JSON_KEY, YAML_KEY]))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_gives_a_spec_or_errors(text: str, key: str) -> None:
    assert_spec_xor_errors(from_text(text.encode("utf-8", "surrogatepass"), key=key))


# Text the API cannot send, or would send invisibly ----------------------------------------------


@pytest.mark.parametrize("key", ["description", "udi"])
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b'"\\ud800"', rules.ENCODABLE_RULE),
        (b'"night \\udfff mode"', rules.ENCODABLE_RULE),
        (b'"a\\u0007b"', rules.CONTROL_RULE),
        (b'"line\\nbreak"', rules.CONTROL_RULE),
        (b'"c1 \\u0085 char"', rules.CONTROL_RULE),
    ],
)
def test_free_text_that_cannot_be_sent_is_refused_naming_field_rule_and_value(
    key: str, text: bytes, rule: str
) -> None:
    # GIVEN a JSON sidecar whose description/udi holds a lone surrogate or a control char
    raw = b'{"version": "2.0.0", "' + key.encode() + b'": ' + text + b"}"
    # WHEN it is parsed THEN the one error names the field, the rule and the value
    error = only_error(parse_sidecar(raw, sidecar_key=JSON_KEY, firmware_key=FIRMWARE))
    assert (error.field, error.rule) == (key, rule)
    assert error.as_dict()["value"] == repr(json.loads(text))


def test_a_lone_surrogate_in_an_api_name_field_is_refused_once() -> None:
    raw = b'{"DestVersion": "2.0.0", "FirmwareName": "cam\\ud800"}'
    error = only_error(parse_sidecar(raw, sidecar_key=JSON_KEY, firmware_key=FIRMWARE))
    assert error.field == "FirmwareName"


def test_unicode_and_a_human_readable_udi_are_accepted() -> None:
    spec = spec_of(
        from_json({"version": "2.0.0", "description": "夜间模式 😀", "udi": "(01)00844588003288"})
    )
    assert spec.api_params("https://x/y", MD5_HEX, 1)["Udi"] == "(01)00844588003288"
