"""The release pipeline against in-memory fakes: every outcome, both URL modes, retries."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ota_release.errors import (
    AuthError,
    DuplicateNameError,
    InvalidRequestError,
    PermanentError,
    PlatformError,
    RetriesExhausted,
)
from ota_release.notification import MAX_MESSAGE_BYTES, MAX_TAG_LENGTH, SCHEMA, Outcome
from ota_release.pipeline import ReleaseConfig, ReleasePipeline, Result
from ota_release.ports import CreatedFirmware, FirmwareRequest
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import UrlMode
from tests.unit.fakes import (
    BUCKET,
    PLATFORM_NOW,
    UPLOADED_AT,
    Ports,
    crc64_of,
    not_found,
    object_created,
    permanent,
    transient,
)

FW_KEY = "firmware/acme/cam-2.0.0.bin"
SC_KEY = FW_KEY + ".ota.json"
FW = b"\x7fELF" + bytes(range(256)) * 64
FW_MD5 = hashlib.md5(FW).hexdigest()  # noqa: S324
FW_SHA256 = hashlib.sha256(FW).hexdigest()
NAME = "cam-2_0_0"  # derived from FW_KEY and version 2.0.0
PUBLISHED_AT = datetime(2025, 11, 20, 4, 0, tzinfo=timezone.utc)


class Harness:
    """A pipeline wired to fresh fakes, with a retry policy that records its sleeps."""

    def __init__(self, config: ReleaseConfig | None = None, max_attempts: int = 6) -> None:
        self.ports = Ports()
        self.store = self.ports.store
        self.platform = self.ports.platform
        self.notifier = self.ports.notifier
        self.sleeps: list[float] = []
        self.retry = RetryPolicy(sleep=self._sleep, rng=random.Random(0), max_attempts=max_attempts)
        self.pipeline = ReleasePipeline(
            self.store,
            self.platform,
            self.notifier,
            config,
            retry=self.retry,
            fc_request_id="fc-request-1",
            clock=lambda: PUBLISHED_AT,
            staging=self.ports.staging,
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.ports.clock.advance(seconds)

    def firmware(self, data: bytes = FW, key: str = FW_KEY, **kwargs: Any) -> None:
        self.store.put(key, data, **kwargs)

    def sidecar(self, doc: dict[str, Any] | str, key: str = SC_KEY, **kwargs: Any) -> None:
        text = doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
        self.store.put(key, text.encode("utf-8"), **kwargs)

    def both(self, doc: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.firmware(**kwargs)
        self.sidecar(doc or {"version": "2.0.0"})

    def run(self, key: str = FW_KEY, event_time: datetime | None = UPLOADED_AT) -> Result:
        record = object_created(key, event_time=event_time)
        return self.pipeline.process(record, Deadline(600))

    def message(self, index: int = -1) -> dict[str, Any]:
        body, tag = self.notifier.messages[index]
        message: dict[str, Any] = json.loads(body)
        assert tag == Outcome(message["outcome"]).tag, "MessageTag must name the outcome"
        return message


def error_fields(message: dict[str, Any]) -> list[str]:
    return [e["field"] for e in message["errors"]]


# created --------------------------------------------------------------------------------------


def test_staged_release_uploads_the_bytes_and_registers_the_ticket_url() -> None:
    # GIVEN a firmware file and its sidecar in the watched bucket
    h = Harness()
    h.both({"version": "2.0.0", "product_key": "a1uctKe"})
    # WHEN the firmware's event is processed in the default (staged) mode
    result = h.run()
    # THEN an upload URL is generated, the full bytes are posted, and the package is created
    # with the ticket's URL and the measured digest
    assert result.outcome.value == "created"
    [ticket] = h.platform.tickets
    assert h.platform.calls[-3:] == [
        ("generate_upload_url", ("bin", None)),
        ("create_firmware", (h.platform.created_params[0],)),
        ("count_packages", (None,)),  # the quota the notification reports
    ]
    staged = h.store.staged[ticket.key]
    assert staged.data == FW
    assert (staged.size, staged.filename) == (len(FW), "cam-2.0.0.bin")
    assert h.platform.created_params == [
        {
            "DestVersion": "2.0.0",
            "FirmwareName": NAME,
            "FirmwareUrl": ticket.firmware_url,
            "SignMethod": "MD5",
            "FirmwareSign": FW_MD5,
            "FirmwareSize": len(FW),
            "Type": 0,
            "ProductKey": "a1uctKe",
        }
    ]
    assert all(stream.closed for stream in h.store.streams)
    message = h.message()
    assert message["firmware"] == {
        "id": "fw-0001",
        "name": NAME,
        "utc_create": "2025-11-20T03:15:07.000Z",
        "url_mode": "staged",
    }
    assert message["message_id"] == result.message_id


@pytest.mark.parametrize(
    ("key", "suffix"),
    [("fw/a.tar.gz", "tar.gz"), ("fw/a.ZIP", "zip"), ("fw/a.img", "bin"), ("fw/a", "bin")],
)
def test_staged_upload_asks_for_a_suffix_the_platform_accepts(key: str, suffix: str) -> None:
    h = Harness()
    h.firmware(key=key)
    h.sidecar({"version": "1.0", "name": "fw"}, key=key + ".ota.json")
    assert h.run(key).outcome.value == "created"
    assert h.platform.calls[-3] == ("generate_upload_url", (suffix, None))


@pytest.mark.parametrize(
    ("ttl", "url"),
    [
        (0, f"https://{BUCKET}.oss-cn-shanghai.aliyuncs.com/{FW_KEY}"),
        (
            3600,
            f"https://{BUCKET}.oss-cn-shanghai.aliyuncs.com/{FW_KEY}"
            "?OSSAccessKeyId=AK&Expires=3600&Signature=fake",
        ),
    ],
)
def test_direct_release_registers_the_objects_own_url(ttl: int, url: str) -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT, signed_url_ttl=ttl))
    h.both()
    assert h.run().outcome.value == "created"
    assert h.store.count("object_url") == 1
    assert h.platform.created_params[0]["FirmwareUrl"] == url
    assert h.platform.count("generate_upload_url") == 0
    assert h.store.staged == {}
    assert h.message()["firmware"]["url_mode"] == "direct"


def test_the_sidecars_event_releases_too() -> None:
    h = Harness()
    h.both()
    assert h.run(SC_KEY).outcome.value == "created"
    assert h.message()["object"]["key"] == SC_KEY


def test_both_halves_events_report_the_release_under_one_message_id() -> None:
    # GIVEN both halves present and the firmware's event already processed
    h = Harness()
    h.both()
    first = h.run(FW_KEY)
    # WHEN the sidecar's event arrives too
    second = h.run(SC_KEY)
    # THEN nothing new is registered and the same fact keeps its id
    assert h.platform.count("create_firmware") == 1
    assert (first.outcome.value, second.outcome.value) == ("created", "created")
    assert first.message_id == second.message_id


def test_sidecar_defaults_from_config_reach_the_request() -> None:
    h = Harness(ReleaseConfig(product_key="pk-default", iot_instance_id="iot-cn-1"))
    h.both()
    h.run()
    params = h.platform.created_params[0]
    assert (params["ProductKey"], params["IotInstanceId"]) == ("pk-default", "iot-cn-1")
    assert h.platform.calls[-3] == ("generate_upload_url", ("bin", "iot-cn-1"))
    assert h.platform.calls[-1] == ("count_packages", ("iot-cn-1",))


def test_declared_sha256_is_checked_and_sent() -> None:
    h = Harness()
    h.both({"version": "2.0.0", "sign_method": "SHA256", "sign": FW_SHA256.upper()})
    assert h.run().outcome.value == "created"
    params = h.platform.created_params[0]
    assert (params["SignMethod"], params["FirmwareSign"]) == ("SHA256", FW_SHA256)


# already registered and replays ---------------------------------------------------------------


def test_same_content_uploaded_again_later_is_already_registered() -> None:
    # GIVEN the release was created, and the same files are uploaded again an hour later
    h = Harness()
    h.both()
    first = h.run()
    later = PLATFORM_NOW + timedelta(hours=1)
    h.store.touch(FW_KEY, later)
    h.store.touch(SC_KEY, later)
    # WHEN the new upload is processed
    again = h.run(event_time=later)
    # THEN it is reported as already registered, under its own message id
    assert again.outcome.value == "already_registered"
    assert h.platform.count("create_firmware") == 1
    assert again.message_id != first.message_id
    assert h.message()["firmware"]["id"] == "fw-0001"


def test_package_registered_before_the_upload_with_same_content_is_already_registered() -> None:
    h = Harness()
    h.both()
    h.platform.add(
        firmware_id="fw-old",
        name=NAME,
        dest_version="2.0.0",
        sign_method="MD5",
        sign=FW_MD5.upper(),
        size=len(FW),
        module="default",
        type=0,
        utc_create="2025-01-01T00:00:00.000Z",
    )
    assert h.run().outcome.value == "already_registered"
    assert h.platform.count("create_firmware") == 0
    assert h.platform.count("generate_upload_url") == 0
    assert h.message()["firmware"]["id"] == "fw-old"


def test_retry_after_a_crash_between_create_and_publish_republishes_the_same_message() -> None:
    # GIVEN publishing fails for good after the package was created
    h = Harness()
    h.both()
    h.notifier.fail("publish", PermanentError("mns", "PublishMessage", "TopicNotExist", "no"))
    with pytest.raises(PermanentError):
        h.run()
    assert h.platform.count("create_firmware") == 1
    assert h.notifier.messages == []
    lost = json.loads(h.notifier.attempts[0][0])
    # WHEN Function Compute retries the same event against the same state
    retried = h.run()
    # THEN nothing new is registered and the same message (id, outcome, firmware) goes out
    assert h.platform.count("create_firmware") == 1
    assert retried.outcome.value == "created"
    assert retried.message_id == lost["message_id"]
    assert h.message()["firmware"]["id"] == lost["firmware"]["id"]


def test_package_created_after_the_upload_is_this_uploads_own_earlier_attempt() -> None:
    # GIVEN a package with our name and content, created after both halves were stored
    h = Harness()
    h.both()
    h.platform.add(
        firmware_id="fw-mine",
        name=NAME,
        dest_version="2.0.0",
        sign=FW_MD5,
        size=len(FW),
        utc_create=(UPLOADED_AT + timedelta(seconds=5)).isoformat(),
    )
    # WHEN processed THEN the outcome stays "created", reported as that attempt would have
    result = h.run()
    assert result.outcome.value == "created"
    assert h.platform.count("create_firmware") == 0
    assert h.message()["firmware"] == {
        "id": "fw-mine",
        "name": NAME,
        "utc_create": (UPLOADED_AT + timedelta(seconds=5)).isoformat(),
        "url_mode": "staged",
    }


# waiting ---------------------------------------------------------------------------------------


def test_firmware_first_waits_for_any_sidecar_suffix() -> None:
    h = Harness()
    h.firmware()
    result = h.run()
    assert result.outcome.value == "waiting"
    message = h.message()
    assert message["errors"] == []
    assert f"its sidecar {FW_KEY}.ota.json (or .ota.yaml, .ota.yml)" in message["summary"]
    assert h.platform.calls == []


def test_sidecar_first_reads_the_sidecar_once_and_waits_for_the_firmware() -> None:
    # A sidecar whose stem is no object may be a multi-file release's: it is read (once)
    # to learn that it has no files list, and then waits for its firmware as before.
    h = Harness()
    h.sidecar({"version": "2.0.0"})
    assert h.run(SC_KEY).outcome.value == "waiting"
    assert FW_KEY in h.message()["summary"]
    assert h.store.count("read_small") == 1
    assert h.platform.calls == []


# rejected --------------------------------------------------------------------------------------


def test_bad_sidecar_is_rejected_with_every_problem_and_no_platform_call() -> None:
    h = Harness()
    h.both({"version": "2.0.0 beta", "name": "-x", "type": 1, "colour": "red", "size": "1"})
    result = h.run()
    assert result.outcome.value == "rejected"
    message = h.message()
    assert sorted(error_fields(message)) == ["colour", "name", "size", "src_version", "version"]
    assert all({"field", "rule", "value"} <= set(e) for e in message["errors"])
    assert h.platform.calls == []
    assert h.store.count("open_stream") == 0


def test_size_and_sign_mismatch_show_both_values() -> None:
    h = Harness()
    h.both({"version": "2.0.0", "size": len(FW) + 1, "sign": "0" * 32})
    assert h.run().outcome.value == "rejected"
    errors = {e["field"]: e["value"] for e in h.message()["errors"]}
    assert errors == {
        "size": f"declared {len(FW) + 1}, file has {len(FW)}",
        "sign": f"declared {'0' * 32}, file has {FW_MD5}",
    }
    assert h.platform.calls == []


@pytest.mark.parametrize("trigger", [FW_KEY, SC_KEY, FW_KEY + ".ota.yaml"])
def test_two_sidecars_for_one_file_are_ambiguous_whichever_event_arrives(trigger: str) -> None:
    h = Harness()
    h.both()
    h.sidecar("version: '2.0.0'\n", key=FW_KEY + ".ota.yaml")
    assert h.run(trigger).outcome.value == "rejected"
    [error] = h.message()["errors"]
    assert error["value"] == [SC_KEY, FW_KEY + ".ota.yaml"]
    assert h.platform.calls == []


def test_ambiguous_releases_get_one_message_id_whichever_half_triggered() -> None:
    h = Harness()
    h.both()
    h.sidecar("version: '2.0.0'\n", key=FW_KEY + ".ota.yaml")
    ids = {h.run(key).message_id for key in (FW_KEY, SC_KEY, FW_KEY + ".ota.yaml")}
    assert len(ids) == 1


@pytest.mark.parametrize("code", ["InvalidParameter", "iot.system.IllegalRequest"])
def test_platform_refusing_the_parameters_is_rejected(code: str) -> None:
    h = Harness()
    h.both()
    refused = InvalidRequestError(
        "iot", "CreateOTAFirmware", code, "refused", request_id="REQ-P", status=400
    )
    h.platform.fail("create_firmware", refused)
    assert h.run().outcome.value == "rejected"
    message = h.message()
    assert message["errors"] == [{"field": "CreateOTAFirmware", "rule": code, "value": "refused"}]
    assert "REQ-P" in message["request_ids"]["iot"]


@pytest.mark.parametrize(
    "code", ["InvalidAccessKeyId.NotFound", "InvalidSecurityToken.Expired", "Forbidden.RAM"]
)
def test_refused_keys_or_token_are_a_failed_deployment_not_a_rejected_upload(code: str) -> None:
    h = Harness()
    h.both()
    h.platform.fail("create_firmware", AuthError("iot", "CreateOTAFirmware", code, "refused"))
    assert h.run().outcome.value == "failed"


def test_oversized_sidecar_is_rejected_without_parsing() -> None:
    h = Harness()
    h.firmware()
    h.store.put(SC_KEY, b" " * (64 * 1024 + 1))
    assert h.run().outcome.value == "rejected"
    assert error_fields(h.message()) == ["sidecar"]


# conflict --------------------------------------------------------------------------------------


def test_same_name_with_different_content_is_a_conflict_and_leaves_the_original() -> None:
    # GIVEN a package already registered under our name with other bytes
    h = Harness()
    h.both()
    original = h.platform.add(
        firmware_id="fw-orig", name=NAME, dest_version="2.0.0", sign="f" * 32, size=10
    )
    # WHEN our upload is processed
    assert h.run().outcome.value == "conflict"
    # THEN the conflict names what differs, and the original is untouched
    message = h.message()
    assert sorted(error_fields(message)) == ["sign", "size"]
    assert message["firmware"]["id"] == "fw-orig"
    assert h.platform.firmware == [original]
    assert h.platform.count("create_firmware") == 0


def test_name_taken_by_another_version_is_found_after_the_duplicate_error() -> None:
    # GIVEN the name is taken by a package of version 1.0.0 (the narrow search misses it)
    h = Harness()
    h.both({"version": "2.0.0", "name": "cam"})
    h.platform.add(firmware_id="fw-v1", name="cam", dest_version="1.0.0", sign=FW_MD5)
    # WHEN created, the platform refuses the duplicate name
    result = h.run()
    # THEN the unfiltered search finds the owner and the outcome is a conflict on version
    assert result.outcome.value == "conflict"
    finds = [args for op, args in h.platform.calls if op == "find_firmware"]
    assert finds == [("cam", "2.0.0", None, None), ("cam", None, None, None)]
    assert error_fields(h.message()) == ["version"]


def test_duplicate_name_with_no_package_found_is_raised_for_fc_to_retry() -> None:
    h = Harness()
    h.both()
    h.platform.fail("create_firmware", DuplicateNameError("iot", "Create", "Dup", "taken"))
    with pytest.raises(DuplicateNameError):
        h.run()
    assert h.notifier.messages == []


# failed ----------------------------------------------------------------------------------------


def test_object_deleted_before_processing_fails() -> None:
    h = Harness()
    assert h.run().outcome.value == "failed"
    message = h.message()
    assert message["errors"] == [
        {"field": "object", "rule": "must exist when the function runs", "value": FW_KEY}
    ]


def test_firmware_deleted_before_it_is_read_fails() -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    h.both(object_type="Multipart")
    h.store.fail("open_stream", not_found())
    assert h.run().outcome.value == "failed"
    assert h.platform.count("create_firmware") == 0
    assert "no longer exists; it was deleted" in h.message()["summary"]


def test_sidecar_deleted_before_it_is_read_fails() -> None:
    h = Harness()
    h.both()
    h.store.fail("read_small", not_found())
    assert h.run().outcome.value == "failed"


@pytest.mark.parametrize(
    ("quota", "error"),
    [
        (0, None),
        (500, permanent(code="iot.common.RamActionPermissionDeny")),
        (500, permanent(code="iot.system.InstanceNotFound")),
    ],
)
def test_quota_and_permission_errors_fail(quota: int, error: PermanentError | None) -> None:
    h = Harness()
    h.platform.quota = quota
    if error is not None:
        h.platform.fail("create_firmware", error)
    h.both()
    assert h.run().outcome.value == "failed"
    assert h.message()["errors"][0]["field"] == "CreateOTAFirmware"


# Retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "operation"),
    [
        ("store", "head"),
        ("store", "read_small"),
        ("store", "stage_copy"),
        ("platform", "find_firmware"),
        ("platform", "generate_upload_url"),
        ("platform", "create_firmware"),
        ("notifier", "publish"),
    ],
)
def test_transient_errors_are_retried_with_backoff_then_succeed(port: str, operation: str) -> None:
    h = Harness()
    h.both()
    getattr(h, port).fail(operation, transient(), transient(code="Throttling", retry_after=0.5))
    assert h.run().outcome.value == "created"
    assert len(h.sleeps) == 2
    assert h.sleeps[1] >= 0.5
    assert h.platform.count("create_firmware") == (3 if operation == "create_firmware" else 1)
    assert len(h.notifier.messages) == 1


def test_exhausted_retries_raise_and_publish_nothing() -> None:
    h = Harness(max_attempts=3)
    h.both()
    h.platform.fail("create_firmware", *[transient("iot", code="ServiceUnavailable")] * 5)
    with pytest.raises(RetriesExhausted):
        h.run()
    assert len(h.sleeps) == 2
    assert h.notifier.attempts == []


def test_with_crc64_verification_on_a_corrupted_read_is_raised_for_fc_to_retry() -> None:
    # The deployed function leaves CRC-64 off (docs/benchmarks.md); this is the opt-in.
    h = Harness(ReleaseConfig(verify_crc64=True))
    h.both(object_type="Multipart", crc64=crc64_of(FW) ^ 0xFF)
    with pytest.raises(PlatformError) as caught:
        h.run()
    assert caught.value.code == "IntegrityError"
    assert h.notifier.attempts == []


# Digest ----------------------------------------------------------------------------------------


def test_etag_fast_path_is_used_for_a_normal_object_and_md5() -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    h.both()
    h.run()
    assert h.store.count("open_stream") == 0
    assert h.message()["digest"] == {
        "sign_method": "MD5",
        "sign": FW_MD5,
        "size": len(FW),
        "source": "etag",
    }


@pytest.mark.parametrize(
    ("object_kwargs", "doc"),
    [
        ({"object_type": "Multipart"}, {"version": "2.0.0"}),
        ({"object_type": "Appendable", "etag": "A" * 32}, {"version": "2.0.0"}),
        ({}, {"version": "2.0.0", "sign_method": "SHA256"}),
    ],
)
def test_without_proof_from_the_etag_the_object_is_streamed(
    object_kwargs: dict[str, Any], doc: dict[str, Any]
) -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    h.firmware(crc64=True, **object_kwargs)
    h.sidecar(doc)
    assert h.run().outcome.value == "created"
    assert h.store.count("open_stream") == 1
    digest = h.message()["digest"]
    assert digest["source"] == "stream"
    assert digest["sign"] == (FW_SHA256 if "sign_method" in doc else FW_MD5)


# Keys -----------------------------------------------------------------------------------------


def test_percent_encoded_key_in_the_event_resolves_to_the_decoded_object() -> None:
    h = Harness()
    key = "firmware/acme/固件 v2.bin"
    h.firmware(key=key)
    h.sidecar({"version": "2.0.0"}, key=key + ".ota.json")
    encoded = "firmware/acme/%E5%9B%BA%E4%BB%B6%20v2.bin"
    result = h.run(encoded)
    assert (result.outcome.value, result.key) == ("created", key)
    assert [args[1] for op, args in h.store.calls if op == "head"][:2] == [encoded, key]
    assert h.message()["object"]["key"] == key


# The message ----------------------------------------------------------------------------------


def test_notification_carries_schema_object_spec_firmware_and_request_ids() -> None:
    h = Harness()
    h.both({"version": "2.0.0", "description": "新固件"})
    h.run()
    message = h.message()
    assert message["schema"] == SCHEMA
    assert message["outcome"] == "created"
    assert len(message["message_id"]) == 32
    assert message["object"] == {"bucket": BUCKET, "key": FW_KEY, "size": None, "etag": None}
    assert (message["firmware_key"], message["sidecar_key"]) == (FW_KEY, SC_KEY)
    assert message["spec"]["description"] == "新固件"
    assert message["spec"]["name"] == NAME
    assert message["errors"] == []
    assert message["errors_dropped"] == 0
    assert message["published_at"] == "2025-11-20T04:00:00.000Z"
    ids = message["request_ids"]
    assert ids["fc"] == "fc-request-1"
    assert ids["oss_event"] == "691E84B3A2F5C10D3E7B9A42"
    # every call's request id, in order: HEADs, the sidecar's GetObject, one listing per
    # folder for its defaults files, the staged copy's pinned GetObject and PostObject;
    # ListOTAFirmware, the upload ticket, the create
    assert ids["oss"] == [
        f"OSS-{FW_KEY}",
        f"OSS-{SC_KEY}",
        f"OSS-GET-{SC_KEY}",
        "OSS-LIST-.ota-defaults.",
        "OSS-LIST-firmware/.ota-defaults.",
        "OSS-LIST-firmware/acme/.ota-defaults.",
        "OSS-STREAM-1",
        "OSS-POST-1",
    ]
    assert ids["iot"] == ["IOT-LIST-1", "IOT-UPLOAD-1", "IOT-CREATE-1"]


def test_the_listing_and_query_request_ids_reach_the_notification_but_not_its_identity() -> None:
    # GIVEN a release already created
    h = Harness()
    h.both()
    h.run()
    # WHEN the same upload is delivered twice more
    second = h.run()
    second_ids = h.message()["request_ids"]
    third = h.run()
    third_ids = h.message()["request_ids"]
    # THEN each notification names the ListOTAFirmware and QueryOTAFirmware that found
    # the package
    assert h.platform.count("create_firmware") == 1
    assert second.outcome == third.outcome
    assert second_ids["iot"] == ["IOT-LIST-2", "IOT-QUERY-2"]
    assert third_ids["iot"] == ["IOT-LIST-3", "IOT-QUERY-3"]
    # AND the differing request ids leave the message id as it was
    assert second.message_id == third.message_id


def test_huge_error_list_is_trimmed_to_fit_a_message_and_counted() -> None:
    # GIVEN a sidecar of 64 KiB made of thousands of unknown keys
    h = Harness()
    doc = {"version": "2.0.0", **{f"k{i:05d}": "v" * 4 for i in range(3000)}}
    h.firmware()
    h.sidecar(doc)
    # WHEN it is rejected
    h.run()
    body, _ = h.notifier.messages[-1]
    message = h.message()
    # THEN the body fits MNS's limit and says how many errors it left out
    assert len(body.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert message["errors_dropped"] > 0
    assert len(message["errors"]) + message["errors_dropped"] == 3000
    assert "3000 problem(s)" in message["summary"]


@pytest.mark.parametrize(
    ("setup", "tag"),
    [
        ("none", "failed"),
        ("firmware", "waiting"),
        ("both", "created"),
        ("bad", "rejected"),
    ],
)
def test_message_tag_is_the_outcome(setup: str, tag: str) -> None:
    h = Harness()
    if setup in ("firmware", "both", "bad"):
        h.firmware()
    if setup == "both":
        h.sidecar({"version": "2.0.0"})
    if setup == "bad":
        h.sidecar({"version": 2})
    result = h.run()
    assert h.notifier.messages[-1][1] == tag == result.outcome.value


def test_already_registered_gets_a_tag_that_fits_mns() -> None:
    h = Harness()
    h.both()
    h.run()
    h.run(event_time=PLATFORM_NOW + timedelta(hours=1))
    assert [tag for _, tag in h.notifier.messages] == ["created", "already_reg"]
    assert all(len(o.tag) <= MAX_TAG_LENGTH for o in Outcome)


def test_without_an_event_time_last_modified_dates_the_upload() -> None:
    # GIVEN an event with no eventTime, for files stored after the package was created
    h = Harness()
    h.both()
    h.run()
    later = PLATFORM_NOW + timedelta(hours=1)
    h.store.touch(FW_KEY, later)
    h.store.touch(SC_KEY, later)
    # WHEN processed THEN Last-Modified shows the package predates this upload
    assert h.run(event_time=None).outcome.value == "already_registered"
    # and a package created after the Last-Modified is this upload's own
    h.store.touch(FW_KEY, UPLOADED_AT)
    h.store.touch(SC_KEY, UPLOADED_AT)
    assert h.run(event_time=None).outcome.value == "created"


# One-pass staged copy, pinned to the ETag (issue 12 item 1) ------------------------------------

OTHER = bytes(reversed(FW))  # same length, other bytes


def test_staged_copy_reads_the_object_once_and_registers_the_bytes_it_hashed() -> None:
    # GIVEN a multipart firmware (its ETag proves nothing, so the bytes must be read)
    h = Harness()
    h.both(object_type="Multipart", crc64=True)
    # WHEN it is released in staged mode
    result = h.run()
    # THEN the object was read once, pinned to its ETag, and the digest is of what was posted
    assert result.outcome.value == "created"
    etag = h.store.head(BUCKET, FW_KEY).etag  # type: ignore[union-attr]
    assert [args for op, args in h.store.calls if op == "open_stream"] == [(BUCKET, FW_KEY, etag)]
    [ticket] = h.platform.tickets
    assert h.store.staged[ticket.key].data == FW
    assert h.message()["digest"] == {
        "sign_method": "MD5",
        "sign": FW_MD5,
        "size": len(FW),
        "source": "stream",
    }
    assert h.platform.created_params[0]["FirmwareSign"] == FW_MD5


@pytest.mark.parametrize("object_type", ["Normal", "Multipart"])
def test_firmware_overwritten_while_the_ticket_is_generated_is_never_registered(
    object_type: str,
) -> None:
    # GIVEN GenerateOTAUploadURL is slow, and meanwhile the firmware is overwritten with
    # other bytes of the same length
    h = Harness()
    h.both(object_type=object_type)
    h.platform.before_ticket = lambda: h.store.put(FW_KEY, OTHER, object_type=object_type)
    # WHEN the first upload's release goes on
    result = h.run()
    # THEN nothing is registered, and the outcome says the object changed underneath
    assert result.outcome.value == "failed"
    assert h.platform.count("create_firmware") == 0
    message = h.message()
    assert "was overwritten while it was being released" in message["summary"]
    assert [e["field"] for e in message["errors"]] == ["firmware"]
    assert h.store.count("stage_copy") == 1, "a changed object is not retried"


def test_bytes_that_disagree_with_the_etag_are_read_again_and_never_registered() -> None:
    # GIVEN OSS hands out other bytes under the ETag of the firmware (damage in transit)
    h = Harness(max_attempts=3)
    h.firmware(OTHER, etag=FW_MD5.upper())
    h.sidecar({"version": "2.0.0"})
    # WHEN released THEN every attempt is refused as an integrity error, nothing is created,
    # and FC gets the event back to retry
    with pytest.raises(RetriesExhausted) as caught:
        h.run()
    assert caught.value.code == "IntegrityError"
    assert h.store.count("stage_copy") == 3
    assert h.platform.count("create_firmware") == 0
    assert h.notifier.attempts == []


def test_declared_sign_is_compared_with_the_staged_bytes_before_create() -> None:
    h = Harness()
    h.firmware(object_type="Multipart")
    h.sidecar({"version": "2.0.0", "sign": hashlib.md5(OTHER).hexdigest()})  # noqa: S324
    assert h.run().outcome.value == "rejected"
    assert error_fields(h.message()) == ["sign"]
    assert h.platform.count("create_firmware") == 0


def test_direct_mode_refuses_an_object_replaced_after_it_was_hashed() -> None:
    # GIVEN direct mode, and the object is replaced while the name is being looked up
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    h.both()
    find = h.platform.find_firmware

    def replacing(*args: Any) -> Any:
        h.store.put(FW_KEY, OTHER)
        return find(*args)

    h.platform.find_firmware = replacing  # type: ignore[method-assign,assignment]
    # WHEN released THEN its URL is never registered
    assert h.run().outcome.value == "failed"
    assert h.platform.count("create_firmware") == 0
    assert h.store.count("object_url") == 0


# Upload tickets expire (issue 11 item 3) -------------------------------------------------------


def test_a_slow_failing_first_copy_is_retried_with_a_fresh_ticket() -> None:
    # GIVEN the first copy takes longer than the ticket's 60 s and then loses its connection
    h = Harness()
    h.both()
    attempts: list[int] = []

    def slow_then_reset(chunk: bytes) -> None:
        if not attempts:
            attempts.append(1)
            h.ports.clock.advance(70)
            raise transient("oss", "PostObject", "ConnectionResetError")

    h.store.during_copy = slow_then_reset
    # WHEN released THEN the retry posts with a new ticket (the old one's policy expired)
    assert h.run().outcome.value == "created"
    _first, second = h.platform.tickets
    assert list(h.store.staged) == [second.key]
    assert h.platform.created_params[0]["FirmwareUrl"] == second.firmware_url


def test_a_copy_that_outlasts_its_ticket_is_staged_again_with_a_fresh_one() -> None:
    # GIVEN the first attempt's ticket expires before its form is received whole
    h = Harness()
    h.both()
    calls: list[int] = []
    generate = h.platform.generate_upload_url

    def late_first_ticket(suffix: str, instance: str | None) -> Any:
        ticket = generate(suffix, instance)
        if not calls:
            calls.append(1)
            h.ports.clock.advance(61)  # e.g. a slow, large copy
        return ticket

    h.platform.generate_upload_url = late_first_ticket  # type: ignore[method-assign,assignment]
    # WHEN released THEN the refusal is retried with a new ticket, and the package created
    assert h.run().outcome.value == "created"
    _first, second = h.platform.tickets
    assert list(h.store.staged) == [second.key]


def test_a_failed_staging_attempt_keeps_its_tickets_request_id_in_the_notification() -> None:
    # GIVEN the first copy into its ticket fails and the second staging succeeds
    h = Harness()
    h.both()
    h.store.fail("stage_copy", transient("oss", "PostObject", "ConnectionResetError"))
    # WHEN released THEN both GenerateOTAUploadURL calls are accounted for, in order
    assert h.run().outcome.value == "created"
    assert h.message()["request_ids"]["iot"] == [
        "IOT-LIST-1",
        "IOT-UPLOAD-1",
        "IOT-UPLOAD-2",
        "IOT-CREATE-1",
    ]


def test_a_retry_after_a_long_back_off_uses_a_fresh_ticket() -> None:
    h = Harness()
    h.both()
    h.store.fail("stage_copy", transient("oss", "PostObject", "SlowDown", retry_after=61))
    assert h.run().outcome.value == "created"
    assert len(h.platform.tickets) == 2
    assert h.sleeps[0] >= 61


# Idempotency compares the whole package (issue 12 item 4) --------------------------------------


@pytest.mark.parametrize(
    ("registered", "field"),
    [
        ({"product_key": "a1other"}, "product_key"),
        ({"description": "an older build"}, "description"),
        ({"status": -1}, "need_to_verify"),
        ({"udi": '{"ota": 1}'}, "udi"),
        ({"module": "mcu"}, "module"),
        ({"type": 1, "src_version": "1.0.0"}, "type"),
        ({"dest_version": "1.9.0"}, "version"),
    ],
)
def test_an_existing_package_that_differs_in_any_field_is_a_conflict_naming_it(
    registered: dict[str, Any], field: str
) -> None:
    # GIVEN a package with our name, bytes and everything else equal but one field
    h = Harness()
    h.both({"version": "2.0.0", "product_key": "a1uctKe"})
    package = {
        "name": NAME,
        "dest_version": "2.0.0",
        "sign_method": "MD5",
        "sign": FW_MD5,
        "size": len(FW),
        "module": "default",
        "type": 0,
        "product_key": "a1uctKe",
        "status": 0,
        **registered,
    }
    h.platform.add(**package)
    # WHEN processed, whichever search finds it THEN it is a conflict naming that field
    assert h.run().outcome.value == "conflict"
    assert field in error_fields(h.message())
    assert h.platform.count("create_firmware") <= 1


def test_same_name_version_and_bytes_for_another_product_is_a_conflict() -> None:
    # GIVEN the package exists for product A; this release is for product B
    h = Harness()
    h.both({"version": "2.0.0", "product_key": "a1productB"})
    h.platform.add(
        name=NAME, dest_version="2.0.0", sign=FW_MD5, size=len(FW), product_key="a1productA"
    )
    # WHEN processed THEN the narrow search (product B) misses it, CreateOTAFirmware finds the
    # name taken, the wide search finds it, and the judgement names the product
    result = h.run()
    assert result.outcome.value == "conflict"
    assert error_fields(h.message()) == ["product_key"]


def test_an_identical_package_is_already_registered_with_every_field_compared() -> None:
    h = Harness()
    doc = {
        "version": "2.0.0",
        "product_key": "a1uctKe",
        "description": "新固件",
        "need_to_verify": False,
        "udi": '{"ota": 1}',
    }
    h.both(doc)
    h.platform.add(
        name=NAME,
        dest_version="2.0.0",
        sign=FW_MD5,
        size=len(FW),
        product_key="a1uctKe",
        description="新固件",
        status=-1,
        udi='{"ota": 1}',
        module="default",
        type=0,
    )
    assert h.run().outcome.value == "already_registered"


# Refusals are checked against the name (issue 11 item 6) ---------------------------------------


@pytest.mark.parametrize("code", ["iot.system.IllegalRequest", "iot.x.Unknown"])
def test_any_refused_create_looks_the_name_up_before_judging(code: str) -> None:
    # GIVEN a package of other content takes our name between our search and our create,
    # and the platform refuses the create with a code the adapter does not know as "taken"
    h = Harness()
    h.both()
    create = h.platform.create_firmware

    def taken(request: FirmwareRequest) -> CreatedFirmware:
        h.platform.add(name=NAME, dest_version="9.9.9", sign="0" * 32, size=1)
        h.platform.fail("create_firmware", permanent(code=code))
        return create(request)

    h.platform.create_firmware = taken  # type: ignore[method-assign]
    # WHEN processed THEN the pipeline finds the package and reports a conflict, not rejected
    assert h.run().outcome.value == "conflict"
    assert "version" in error_fields(h.message())


def test_a_refused_create_with_no_package_of_that_name_keeps_its_reason() -> None:
    h = Harness()
    h.both()
    refused = InvalidRequestError(
        "iot", "CreateOTAFirmware", "iot.system.IllegalRequest", "refused", status=400
    )
    h.platform.fail("create_firmware", refused)
    assert h.run().outcome.value == "rejected"
    assert h.platform.count("find_firmware") == 2  # the narrow search, then the wide one


# Sizes and keys refused before anything is spent (issue 12 items 8 and 9) ----------------------


def test_an_empty_firmware_is_rejected_before_anything_is_staged() -> None:
    h = Harness()
    h.firmware(b"")
    h.sidecar({"version": "2.0.0"})
    assert h.run().outcome.value == "rejected"
    assert error_fields(h.message()) == ["FirmwareSize"]
    assert h.platform.calls == []
    assert h.store.count("stage_copy") == h.store.count("open_stream") == 0


@pytest.mark.parametrize(
    "key", ["firmware/acme/../cam.bin", "firmware/./cam.bin", "firmware/acme/../../x/cam.bin"]
)
def test_direct_mode_refuses_keys_with_dot_segments(key: str) -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    h.firmware(key=key)
    h.sidecar({"version": "2.0.0", "name": "cam"}, key=key + ".ota.json")
    assert h.run(key).outcome.value == "rejected"
    assert error_fields(h.message()) == ["firmware_key"]
    assert h.store.count("object_url") == 0
    assert h.platform.count("create_firmware") == 0


def test_staged_mode_releases_keys_with_dot_segments() -> None:
    # The staged URL is the ticket's own key, so the source key never reaches a URL.
    h = Harness()
    key = "firmware/acme/../cam.bin"
    h.firmware(key=key)
    h.sidecar({"version": "2.0.0", "name": "cam"}, key=key + ".ota.json")
    assert h.run(key).outcome.value == "created"


# Missing bucket (issue 11 item 4) ---------------------------------------------------------------


def test_an_event_for_an_upload_that_was_overwritten_since_registers_nothing() -> None:
    # GIVEN an upload's event that arrives after a newer upload replaced its object
    h = Harness()
    h.both()
    old_etag = "9B2E61F04C7A3D58E1A06F2C4B8D7E35"  # not the stored bytes' MD5
    record = replace(object_created(FW_KEY), etag=old_etag)
    # WHEN that stale event is processed
    result = h.pipeline.process(record, Deadline(600))
    # THEN nothing is staged or registered for it, and the outcome says why, naming both
    # ETags; the newer upload is left to its own event
    assert result.outcome is Outcome.FAILED
    assert h.platform.count("create_firmware") == 0
    assert h.platform.count("generate_upload_url") == 0
    message = h.message()
    assert "overwritten before this event was processed" in message["summary"]
    [error] = message["errors"]
    assert error["field"] == "object" and old_etag in error["value"]
    stored = h.store.head(BUCKET, FW_KEY)
    assert stored is not None and stored.etag.upper() in error["value"]


def test_an_event_whose_etag_matches_the_object_is_released_in_any_spelling() -> None:
    # GIVEN the event's eTag in another spelling of the stored ETag (quotes, case)
    h = Harness()
    h.both()
    stored = h.store.head(BUCKET, FW_KEY)
    assert stored is not None
    record = replace(object_created(FW_KEY), etag=f'"{stored.etag.lower()}"')
    # WHEN processed THEN it is this upload: released as usual
    assert h.pipeline.process(record, Deadline(600)).outcome is Outcome.CREATED


def test_a_missing_bucket_is_not_reported_as_a_deleted_object() -> None:
    h = Harness()
    h.store.missing_buckets.add(BUCKET)
    result = h.run()
    assert result.outcome.value == "failed"
    summary = h.message()["summary"]
    assert f"bucket {BUCKET} does not exist (NoSuchBucket)" in summary
    assert "deleted" not in summary


def test_a_missing_object_is_still_reported_as_deleted() -> None:
    h = Harness()
    h.run()
    assert "no longer exists; it was deleted" in h.message()["summary"]


# Replays of old releases (issue 17 item 2) -----------------------------------------------------


def test_a_replay_of_a_release_registered_long_ago_is_already_registered() -> None:
    # GIVEN a release created (and announced) two days ago
    h = Harness()
    h.both()
    first = h.run()
    assert first.outcome.value == "created"
    # WHEN it is replayed: the event time is the objects' Last-Modified, before UtcCreate
    h.pipeline.clock = lambda: PLATFORM_NOW + timedelta(days=2)
    replay = h.run(event_time=UPLOADED_AT)
    # THEN no second "created" goes out: it is already registered, under another id
    assert replay.outcome.value == "already_registered"
    assert replay.message_id != first.message_id
    assert h.message()["firmware"]["id"] == "fw-0001"
    assert h.platform.count("create_firmware") == 1
    # and a second replay says the same thing under the same id
    assert h.run(event_time=UPLOADED_AT).message_id == replay.message_id


def test_a_crash_retry_inside_fcs_retry_window_still_publishes_created() -> None:
    # GIVEN the package was created, the publish was lost, and FC retries 23 hours later
    h = Harness()
    h.both()
    h.notifier.fail("publish", PermanentError("mns", "PublishMessage", "TopicNotExist", "no"))
    with pytest.raises(PermanentError):
        h.run()
    lost = json.loads(h.notifier.attempts[0][0])
    h.pipeline.clock = lambda: PLATFORM_NOW + timedelta(hours=23)
    retried = h.run()
    # THEN the retry reports "created" under the lost message's id
    assert (retried.outcome.value, retried.message_id) == ("created", lost["message_id"])


def test_the_retry_window_is_fcs_max_event_age_in_both_templates() -> None:
    import re
    from pathlib import Path

    from ota_release.pipeline import FC_MAX_EVENT_AGE

    root = Path(__file__).resolve().parents[2]
    template = (root / "template.yml").read_text(encoding="utf-8")
    s_yaml = (root / "s.yaml").read_text(encoding="utf-8")
    ages = re.findall(r"MaxAsyncEventAgeInSeconds:\s*(\d+)", template, flags=re.I)
    ages += re.findall(r"maxAsyncEventAgeInSeconds:\s*(\d+)", s_yaml)
    assert len(ages) >= 2
    assert {int(a) for a in ages} == {int(FC_MAX_EVENT_AGE.total_seconds())}


# Instance id (issue 17 item 3) -------------------------------------------------------------------


def test_a_sidecars_instance_id_reaches_every_iot_call() -> None:
    h = Harness(ReleaseConfig(iot_instance_id=None))
    h.both({"version": "2.0.0", "iot_instance_id": "iot-06z00sidecar"})
    assert h.run().outcome.value == "created"
    assert ("generate_upload_url", ("bin", "iot-06z00sidecar")) in h.platform.calls
    assert all(
        args[3] == "iot-06z00sidecar" for op, args in h.platform.calls if op == "find_firmware"
    )
    assert h.platform.created_params[0]["IotInstanceId"] == "iot-06z00sidecar"


def test_a_udi_on_this_release_but_not_on_the_package_is_a_conflict() -> None:
    h = Harness()
    h.both({"version": "2.0.0", "udi": '{"ota": 2}'})
    h.platform.add(name=NAME, dest_version="2.0.0", sign=FW_MD5, size=len(FW), udi="")
    assert h.run().outcome.value == "conflict"
    assert error_fields(h.message()) == ["udi"]


def test_a_refused_upload_ticket_is_reported_with_the_release_it_belongs_to() -> None:
    h = Harness()
    h.both()
    h.platform.fail(
        "generate_upload_url",
        permanent("iot", "GenerateOTAUploadURL", "iot.system.InstanceNotFound"),
    )
    assert h.run().outcome.value == "failed"
    message = h.message()
    assert message["errors"][0]["field"] == "GenerateOTAUploadURL"
    assert (message["firmware_key"], message["sidecar_key"]) == (FW_KEY, SC_KEY)
    assert message["spec"]["name"] == NAME
    assert h.platform.count("create_firmware") == 0


# Checkpoints (crash points are injected from outside, docs/reliability.md) ---------------------


def test_an_injected_checkpoint_is_called_at_each_named_point_in_order() -> None:
    # GIVEN a pipeline given a checkpoint that records where it was called
    h = Harness()
    h.both()
    reached: list[tuple[str, str]] = []
    h.pipeline.checkpoint = lambda point, key: reached.append((point, key))
    # WHEN a release is created
    h.run()
    # THEN every crash point was passed, in the order the release reaches them
    assert reached == [
        ("after_digest", FW_KEY),
        ("after_create", FW_KEY),
        ("before_notify", FW_KEY),
        ("during_notify", FW_KEY),
    ]


def test_a_checkpoint_that_ends_the_process_after_create_leaves_no_notification() -> None:
    # GIVEN a checkpoint that stops the invocation right after CreateOTAFirmware
    class Crash(BaseException):
        pass

    def crash_after_create(point: str, key: str) -> None:
        if point == "after_create":
            raise Crash

    h = Harness()
    h.both()
    h.pipeline.checkpoint = crash_after_create
    # WHEN processed THEN the package exists but nothing was published
    with pytest.raises(Crash):
        h.run()
    assert h.platform.count("create_firmware") == 1
    assert h.notifier.attempts == []
