"""The outcome message: deterministic id, fits MNS, says what it dropped."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ota_release.digest import Digest
from ota_release.notification import (
    MAX_MESSAGE_BYTES,
    MAX_TAG_LENGTH,
    RELEASE_OUTCOMES,
    SCHEMA,
    ErrorItem,
    FileRef,
    Notification,
    Outcome,
    PackageRef,
    QuotaUsage,
    RequestIds,
    fit_message,
)
from ota_release.sidecar import ReleaseSpec

NOW = datetime(2025, 11, 20, 3, 14, 7, 123456, tzinfo=timezone.utc)


def note(**kwargs: Any) -> Notification:
    base: dict[str, Any] = {
        "outcome": Outcome.CREATED,
        "summary": "registered cam 2.0.0 as fw-1",
        "bucket": "firmware-bucket",
        "key": "fw/cam.bin",
        "firmware_file": FileRef("fw/cam.bin", "ETAG"),
    }
    base.update(kwargs)
    return Notification(**base)


def test_body_has_every_documented_field() -> None:
    body = json.loads(
        note(size=5, etag="E", spec=ReleaseSpec(version="1", name="cam")).to_body(NOW)
    )
    assert set(body) == {
        "schema",
        "message_id",
        "outcome",
        "summary",
        "object",
        "event",
        "firmware_key",
        "sidecar_key",
        "firmware_etag",
        "sidecar_etag",
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
    assert note().message_id == note().message_id
    assert note().message_id != note(outcome=Outcome.CONFLICT).message_id
    assert note().message_id != note(firmware_file=FileRef("fw/cam.bin", "ETAG2")).message_id
    assert note().message_id != note(bucket="other").message_id


def test_two_rejections_of_one_release_with_different_problems_get_different_ids() -> None:
    # GIVEN the same release rejected first for a too-large sidecar, then as ambiguous
    about: dict[str, Any] = {
        "firmware_file": FileRef("fw/cam.bin", "E1"),
        "sidecar_file": FileRef("fw/cam.bin.ota.json", "E2"),
    }
    too_large = note(
        outcome=Outcome.REJECTED,
        summary="the sidecar is too large",
        errors=[ErrorItem("sidecar", "must be at most 65536 bytes", "1 MB")],
        **about,
    )
    ambiguous = note(
        outcome=Outcome.REJECTED,
        summary="fw/cam.bin has more than one sidecar; keep exactly one",
        errors=[ErrorItem("sidecar", "exactly one sidecar per firmware file")],
        **about,
    )
    # THEN a subscriber that drops duplicates by id still sees both
    assert too_large.message_id != ambiguous.message_id


def test_request_ids_quoted_in_an_error_do_not_change_the_id() -> None:
    # GIVEN the same refusal seen by two attempts, each quoting its own request id
    def refused(request_id: str) -> Notification:
        message = f"code: 403, denied request id: {request_id}"
        return note(
            outcome=Outcome.FAILED,
            firmware_file=None,
            errors=[ErrorItem("ListOTAFirmware", "Forbidden.RAM", message)],
            request_ids=RequestIds(fc="fc-" + request_id, calls={"iot": [request_id]}),
        )

    # THEN both publish under one id
    assert refused("6E1F3A2B-0001-REQ").message_id == refused("6E1F3A2B-0002-REQ").message_id


# Message identity, as a property (docs/notifications.md, "Message identity") ------------

_WORDS = st.sampled_from(["", "a", "b", "a\x1fb", "中", "E1", "<request-id>"])
_ERRORS = st.lists(st.builds(ErrorItem, _WORDS, _WORDS, _WORDS), max_size=2)
_FILES = st.none() | st.builds(FileRef, _WORDS, st.sampled_from(["E1", "E2"]))
_SOURCES = st.sampled_from(["etag", "stream"])
_QUOTAS = st.none() | st.builds(
    QuotaUsage,
    st.none() | st.integers(min_value=0, max_value=600),
    st.sampled_from([10, 500]),
    st.none() | st.just("2025-11-20T04:00:00.000Z"),
    st.none() | st.just("ListOTAFirmware failed: Throttling.User"),
)


@st.composite
def notifications(draw: st.DrawFn) -> Notification:
    """Notifications over a small alphabet, so that equal content is drawn often."""
    return Notification(
        outcome=draw(st.sampled_from(list(Outcome))),
        summary=draw(_WORDS),
        bucket=draw(st.sampled_from(["b1", "b2"])),
        key=draw(_WORDS),
        etag=draw(st.none() | _WORDS),
        firmware_file=draw(_FILES),
        sidecar_file=draw(_FILES),
        spec=draw(st.none() | st.builds(ReleaseSpec, version=_WORDS, name=st.just("cam"))),
        package=draw(st.none() | st.builds(PackageRef, _WORDS, _WORDS, st.none())),
        digest=draw(st.none() | st.builds(Digest, st.just(1), st.just("MD5"), _WORDS, _SOURCES)),
        errors=draw(_ERRORS),
        quota=draw(_QUOTAS),
    )


def _content(n: Notification) -> str:
    """The documented identity, read from the published body (not from message_id's code).

    The body minus the delivery's facts; ``object`` stands for itself unless the
    notification reports on a release and knows either half: then both halves' keys and
    ETags.
    """
    body = json.loads(n.to_body(NOW))
    for name in ("message_id", "published_at", "request_ids", "errors_dropped", "event"):
        del body[name]
    # The package count is a delivery's fact: its key, and its line in the summary.
    quota = body.pop("quota", None)
    line = n.quota.summary_line if n.quota is not None else ""
    if quota is not None and line:
        assert body["summary"] == f"{n.summary} {line}"
        body["summary"] = n.summary
    body["object"].pop("size")
    fw, sc = n.firmware_file, n.sidecar_file
    if (fw or sc) and n.outcome in RELEASE_OUTCOMES:
        halves = [[f.key, f.etag] if f else ["", ""] for f in (fw, sc)]
        body["object"] = {"bucket": body["object"]["bucket"], "about": halves}
    elif body["object"]["etag"] is None:
        body["object"]["etag"] = ""
    if body["firmware"] is not None:
        body["firmware"].pop("utc_create", None)
    if body["digest"] is not None:
        body["digest"].pop("source", None)
    return json.dumps(body, sort_keys=True)


@settings(max_examples=300)
@given(notifications(), notifications())
def test_equal_content_shares_an_id_and_different_content_never_does(
    a: Notification, b: Notification
) -> None:
    assert (_content(a) == _content(b)) == (a.message_id == b.message_id)


@settings(max_examples=200)
@given(
    notifications(),
    st.text(min_size=8, max_size=24),
    st.text(max_size=8),
    st.integers(min_value=0),
    st.text(max_size=8),
    _QUOTAS,
)
def test_a_replay_with_other_delivery_facts_keeps_its_id(
    n: Notification,
    request_id: str,
    event_time: str,
    size: int,
    utc_create: str,
    quota: QuotaUsage | None,
) -> None:
    # GIVEN the same fact, published by another attempt: other request ids (quoted in an
    # error too), event time, object size as delivered and the package's creation stamp,
    # the digest obtained another way (the ETag instead of the stream, say) and another
    # package count (with or without its warning)
    package, digest = n.package, n.digest
    replay = dataclasses.replace(
        n,
        request_ids=RequestIds(fc="FC-" + request_id, calls={"iot": [request_id]}),
        event_name="ObjectCreated:PostObject",
        event_time=event_time,
        size=size,
        package=package and dataclasses.replace(package, utc_create=utc_create),
        digest=digest and dataclasses.replace(digest, source="etag"),
        errors=[*n.errors, ErrorItem("f", "r", f"request id: {request_id}")],
        quota=quota,
    )
    original = dataclasses.replace(
        n,
        digest=digest and dataclasses.replace(digest, source="stream"),
        errors=[*n.errors, ErrorItem("f", "r", "request id: <request-id>")],
    )
    # THEN it is published under the same id
    assert replay.message_id == original.message_id


def test_every_tag_fits_the_mns_limit_and_names_the_outcome() -> None:
    for outcome in Outcome:
        assert 1 <= len(outcome.tag) <= MAX_TAG_LENGTH
        assert outcome.value.startswith(outcome.tag)
    assert len({o.tag for o in Outcome}) == len(Outcome)


def test_chinese_text_is_kept_readable() -> None:
    body = note(summary="固件已注册").to_body(NOW)
    assert "固件已注册" in body


def test_small_message_is_not_trimmed() -> None:
    errors = [ErrorItem("f", "r", "v")] * 3
    body = json.loads(note(outcome=Outcome.REJECTED, errors=errors).to_body(NOW))
    assert (len(body["errors"]), body["errors_dropped"]) == (3, 0)


def test_huge_error_list_is_cut_from_the_end_and_counted() -> None:
    errors = [ErrorItem(f"k{i}", "x" * 200, "v") for i in range(2000)]
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
    errors = [ErrorItem("description", "中" * 100, "中") for _ in range(300)]
    body = note(outcome=Outcome.REJECTED, errors=errors).to_body(NOW)
    assert len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert json.loads(body)["errors_dropped"] > 0


def test_fields_that_are_not_known_are_null_never_absent() -> None:
    # GIVEN a `waiting` for a firmware file whose sidecar has not arrived
    body = json.loads(
        note(outcome=Outcome.WAITING, firmware_file=FileRef("fw/cam.bin", "E")).to_body(NOW)
    )
    # THEN every documented field is present; what is not known is null
    for name in ("sidecar_key", "spec", "firmware", "digest"):
        assert name in body and body[name] is None, name
