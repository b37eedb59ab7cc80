"""The outcome message: deterministic id, fits MNS, says what it dropped."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ota_release.notification import (
    MAX_MESSAGE_BYTES,
    MAX_TAG_LENGTH,
    SCHEMA,
    Notification,
    Outcome,
    fit_message,
)

NOW = datetime(2025, 11, 20, 3, 14, 7, 123456, tzinfo=timezone.utc)


def note(**kwargs: Any) -> Notification:
    base: dict[str, Any] = {
        "outcome": Outcome.CREATED,
        "summary": "registered cam 2.0.0 as fw-1",
        "bucket": "firmware-bucket",
        "key": "fw/cam.bin",
        "identity": ("fw/cam.bin", "ETAG", "fw-1"),
    }
    base.update(kwargs)
    return Notification(**base)


def test_body_has_every_documented_field() -> None:
    body = json.loads(note(size=5, etag="E", spec={"version": "1"}).to_body(NOW))
    assert set(body) == {
        "schema",
        "message_id",
        "outcome",
        "summary",
        "object",
        "event",
        "firmware_key",
        "sidecar_key",
        "spec",
        "firmware",
        "digest",
        "errors",
        "errors_dropped",
        "request_ids",
        "published_at",
    }
    assert body["schema"] == SCHEMA
    assert body["object"] == {
        "bucket": "firmware-bucket",
        "key": "fw/cam.bin",
        "size": 5,
        "etag": "E",
    }
    assert body["published_at"] == "2025-11-20T03:14:07.123Z"


def test_message_id_is_deterministic_and_depends_on_outcome_and_identity() -> None:
    assert note().message_id == note(summary="other words").message_id
    assert note().message_id != note(outcome=Outcome.CONFLICT).message_id
    assert note().message_id != note(identity=("fw/cam.bin", "ETAG", "fw-2")).message_id
    assert note().message_id != note(bucket="other").message_id


def test_every_tag_fits_the_mns_limit_and_names_the_outcome() -> None:
    for outcome in Outcome:
        assert 1 <= len(outcome.tag) <= MAX_TAG_LENGTH
        assert outcome.value.startswith(outcome.tag)
    assert len({o.tag for o in Outcome}) == len(Outcome)


def test_chinese_text_is_kept_readable() -> None:
    body = note(summary="固件已注册").to_body(NOW)
    assert "固件已注册" in body


def test_small_message_is_not_trimmed() -> None:
    errors = [{"field": "f", "rule": "r", "value": "v"}] * 3
    body = json.loads(note(outcome=Outcome.REJECTED, errors=errors).to_body(NOW))
    assert (len(body["errors"]), body["errors_dropped"]) == (3, 0)


def test_huge_error_list_is_cut_from_the_end_and_counted() -> None:
    errors = [{"field": f"k{i}", "rule": "x" * 200, "value": "v"} for i in range(2000)]
    body = note(outcome=Outcome.REJECTED, errors=errors).to_body(NOW)
    message = json.loads(body)
    assert len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert message["errors_dropped"] > 0
    assert len(message["errors"]) + message["errors_dropped"] == 2000
    assert message["errors"][0]["field"] == "k0"  # the first problems are kept


def test_long_spec_strings_are_shortened_as_a_last_resort() -> None:
    spec = {"version": "1", "udi": "u" * 4096}
    message: dict[str, Any] = {"summary": "s", "errors": [], "errors_dropped": 0, "spec": spec}
    body = fit_message(message, limit=1000)
    assert len(body.encode("utf-8")) <= 1000
    assert "4096 characters, truncated" in json.loads(body)["spec"]["udi"]


def test_multibyte_text_is_measured_in_bytes_not_characters() -> None:
    errors = [{"field": "description", "rule": "中" * 100, "value": "中"} for _ in range(300)]
    body = note(outcome=Outcome.REJECTED, errors=errors).to_body(NOW)
    assert len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert json.loads(body)["errors_dropped"] > 0
