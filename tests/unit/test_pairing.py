"""Pairing and the one naming rule: which key is a sidecar, which can never be paired."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ota_release.errors import PermanentError
from ota_release.pairing import (
    OSS_MAX_KEY_BYTES,
    find_pair,
    naming_problem,
    role_of,
    sidecar_suffix_of,
)
from ota_release.ports import ObjectInfo
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES

SUFFIXES = DEFAULT_SIDECAR_SUFFIXES


class Bucket:
    """A HEAD that behaves like OSS: a key over 1023 bytes is an HTTP 400, not a miss."""

    def __init__(self, *keys: str) -> None:
        self.objects = {k: ObjectInfo("b", k, 1, "E-" + k[-8:]) for k in keys}
        self.heads: list[str] = []

    def head(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        if len(key.encode("utf-8")) > OSS_MAX_KEY_BYTES:
            raise PermanentError("oss", "HeadObject", "HTTP400", "key too long", status=400)
        return self.objects.get(key)

    def info(self, key: str) -> ObjectInfo:
        return self.objects[key]


def _key_of_bytes(n: int, prefix: str = "firmware/") -> str:
    return prefix + "k" * (n - len(prefix))


def test_a_long_firmware_key_only_looks_up_sidecar_names_within_the_limit() -> None:
    # GIVEN a 1015-byte firmware key whose .ota.yml sidecar (1023 bytes) exists
    fw = _key_of_bytes(1015)
    bucket = Bucket(fw, fw + ".ota.yml")
    # WHEN the firmware's event looks for its sidecar
    pairing = find_pair(bucket.head, bucket.info(fw), SUFFIXES)
    # THEN only the names OSS can hold were looked up, and the pair is complete
    assert pairing.complete and pairing.sidecar is not None
    assert pairing.sidecar.key == fw + ".ota.yml"
    assert all(len(k.encode()) <= OSS_MAX_KEY_BYTES for k in bucket.heads)


def test_a_long_sidecar_key_only_looks_up_siblings_within_the_limit() -> None:
    fw = _key_of_bytes(1015)
    bucket = Bucket(fw, fw + ".ota.yml")
    pairing = find_pair(bucket.head, bucket.info(fw + ".ota.yml"), SUFFIXES)
    assert pairing.complete
    assert bucket.heads == [fw]


def test_a_firmware_key_whose_every_sidecar_name_is_too_long_is_refused_naming_the_limit() -> None:
    # GIVEN a firmware key so long that even key + ".ota.yml" exceeds 1023 bytes
    fw = _key_of_bytes(1016)
    bucket = Bucket(fw)
    # WHEN its event is paired
    pairing = find_pair(bucket.head, bucket.info(fw), SUFFIXES)
    # THEN nothing is looked up and the refusal names the limit and the key's length
    assert bucket.heads == []
    assert pairing.refusal is not None and not pairing.complete
    assert "1015 bytes" in pairing.refusal["rule"] and "1023-byte" in pairing.refusal["rule"]
    assert pairing.refusal["value"] == "1016 bytes"


def test_multibyte_keys_are_measured_in_utf8_bytes() -> None:
    fw = "固" * 336 + ".bin"  # 1012 bytes, 340 characters
    assert naming_problem(fw, SUFFIXES) is None
    assert naming_problem("固" * 338 + ".bin", SUFFIXES) is not None  # 1018 bytes


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a/cam.bin.ota.json", ".ota.json"),
        ("a/cam.bin.ota.yaml", ".ota.yaml"),
        ("a/cam.bin.ota.yml", ".ota.yml"),
        ("a/cam.bin", None),
        ("a/cam.bin.OTA.JSON", None),
        ("a/cam.bin.ota.json.bak", None),
    ],
)
def test_sidecar_suffix_of_is_exact_and_case_sensitive(key: str, expected: str | None) -> None:
    assert sidecar_suffix_of(key, SUFFIXES) == expected
    assert role_of(key, SUFFIXES).is_sidecar is (expected is not None)


def test_the_longest_suffix_wins() -> None:
    assert sidecar_suffix_of("x.ota.yaml", (".yaml", ".ota.yaml")) == ".ota.yaml"


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("a/cam.bin.OTA.JSON", "case-sensitive"),
        ("a/cam.bin.Ota.Yml", "case-sensitive"),
        ("a/.ota.json", "<firmware file name><suffix>"),
        (".ota.yaml", "<firmware file name><suffix>"),
        ("a/cam.bin.ota.json.ota.json", "must not be named like a sidecar"),
        ("a/cam.bin.OTA.JSON.ota.yml", "must not be named like a sidecar"),
    ],
)
def test_keys_that_can_never_be_paired_are_refused_with_the_rule(key: str, words: str) -> None:
    bucket = Bucket(key)
    pairing = find_pair(bucket.head, bucket.info(key), SUFFIXES)
    assert pairing.refusal is not None and words in pairing.refusal["rule"]
    assert pairing.refusal["field"] == "key"
    assert bucket.heads == []


def test_a_file_named_like_a_sidecar_is_a_sidecar_waiting_for_its_firmware() -> None:
    # GIVEN a file X.ota.json without X
    bucket = Bucket("a/X.ota.json")
    pairing = find_pair(bucket.head, bucket.info("a/X.ota.json"), SUFFIXES)
    # THEN it is a sidecar waiting for X, never a firmware waiting for X.ota.json.ota.json
    assert pairing.firmware is None and pairing.missing == ("a/X",)
    assert pairing.refusal is None


_NAME = st.text(st.sampled_from("aA./-_固"), min_size=0, max_size=12)
_SUFFIX = st.sampled_from([".ota.json", ".OTA.JSON", ".ota.yaml", ".Ota.Yml", ".ota.yml", ""])


@given(_NAME, _SUFFIX)
def test_every_key_is_exactly_one_of_sidecar_firmware_or_refused_and_agrees_with_the_rule(
    stem: str, suffix: str
) -> None:
    key = stem + suffix
    role = role_of(key, SUFFIXES)
    problem = naming_problem(key, SUFFIXES)
    # A sidecar is exactly a key ending in a configured suffix, as sidecar_suffix_of says
    assert role.is_sidecar is any(key.endswith(s) for s in SUFFIXES)
    if role.is_sidecar:
        assert role.firmware_key + str(role.suffix) == key
    # A key the pairing accepts is one whose partner can be found by its exact name
    if problem is None and not role.is_sidecar:
        assert not any(key.casefold().endswith(s.casefold()) for s in SUFFIXES)
    if problem is None and role.is_sidecar:
        assert role.firmware_key and not role.firmware_key.endswith("/")
        assert naming_problem(role.firmware_key, SUFFIXES) is None
        assert not role_of(role.firmware_key, SUFFIXES).is_sidecar
