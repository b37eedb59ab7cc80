"""Hostile intake, through the local cloud: long keys, other buckets and prefixes, floods of
records, names that look like sidecars, and message ids a de-duplicating subscriber trusts.

Each case is one thing a hostile or careless uploader did (issue 12, items 5, 6, 7, 10);
each must end in one clear outcome or a logged skip, never in a storm of notifications,
a run into the function's timeout, or a package that should not exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from ota_release.events import MAX_EVENT_BYTES, MAX_RECORDS_PER_EVENT
from ota_release.sidecar import MAX_SIDECAR_BYTES

pytestmark = pytest.mark.reliability

BUCKET = "firmware-bucket"
PREFIX = "firmware/"
OTHER_BUCKET = "other-bucket"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    env = {"OTA_BUCKETS": BUCKET, "OTA_PREFIX": PREFIX}
    with LocalCloud(flavour="fun", max_instances=1, env_overrides=env) as c:
        assert (c.bucket, c.prefix) == (BUCKET, PREFIX)
        c.oss.create_bucket(OTHER_BUCKET)
        yield c


def _put(cloud: LocalCloud, key: str, data: bytes, bucket: str = BUCKET) -> None:
    cloud.oss.put_object(bucket, key, data)
    assert cloud.wait_idle(120)


def _sidecar(name: str, **extra: Any) -> bytes:
    return json.dumps({"version": "1.0.0", "name": name, **extra}).encode()


def _notes(cloud: LocalCloud, **match: str) -> list[dict[str, Any]]:
    """Notifications whose body fields (``key=`` means ``object.key``) equal ``match``."""
    found = []
    for message in cloud.mns.messages(cloud.notify_topic):
        body = json.loads(message.body)
        fields = {**body, "key": body["object"]["key"], "bucket": body["object"]["bucket"]}
        if all(fields.get(k) == v for k, v in match.items()):
            found.append(body)
    return found


def _record(key: str, bucket: str = BUCKET, **object_fields: Any) -> dict[str, Any]:
    """A compact native OSS record (no optional fields), as a hostile caller would send."""
    return {
        "eventName": "ObjectCreated:PutObject",
        "oss": {"bucket": {"name": bucket}, "object": {"key": key, **object_fields}},
    }


def _payload(records: list[dict[str, Any]]) -> bytes:
    return json.dumps({"events": records}, separators=(",", ":")).encode()


def _packages(cloud: LocalCloud, prefix: str) -> list[str]:
    return [p.firmware_name for p in cloud.iot.firmwares() if p.firmware_name.startswith(prefix)]


# --------------------------------------------------------------------------- long keys


def _key_of_bytes(total: int, stem: str) -> str:
    return stem + "k" * (total - len(stem.encode()))


def test_a_1015_byte_firmware_key_with_a_yml_sidecar_is_released(cloud: LocalCloud) -> None:
    # GIVEN a firmware key whose .ota.json/.ota.yaml names would be over 1023 bytes
    fw = _key_of_bytes(1015, PREFIX + "hostile/long/")
    _put(cloud, fw, b"long-key firmware")
    # WHEN its one possible sidecar, key + ".ota.yml" (1023 bytes), arrives
    _put(cloud, fw + ".ota.yml", b"version: 1.0.0\nname: hostile-long\n")
    # THEN no HEAD of an impossible name failed either half: waiting, then created
    assert [n["outcome"] for n in _notes(cloud, key=fw)] == ["waiting"]
    assert [n["outcome"] for n in _notes(cloud, key=fw + ".ota.yml")] == ["created"]
    assert _notes(cloud, key=fw)[0]["summary"].endswith("to complete the release")
    assert fw + ".ota.json" not in _notes(cloud, key=fw)[0]["summary"]
    assert _packages(cloud, "hostile-long") == ["hostile-long"]


def test_a_firmware_key_too_long_for_any_sidecar_is_rejected_naming_the_limit(
    cloud: LocalCloud,
) -> None:
    fw = _key_of_bytes(1016, PREFIX + "hostile/longer/")
    _put(cloud, fw, b"firmware that can never have a sidecar")
    (note,) = _notes(cloud, key=fw)
    assert note["outcome"] == "rejected"
    (error,) = note["errors"]
    assert error["field"] == "key" and error["value"] == "1016 bytes"
    assert "at most 1015 bytes" in error["rule"] and "1023-byte key limit" in error["rule"]


def test_a_delivered_key_longer_than_oss_allows_is_skipped_not_failed(cloud: LocalCloud) -> None:
    assert cloud.fc is not None
    key = _key_of_bytes(1100, PREFIX + "hostile/forged/")
    before = len(cloud.mns.messages(cloud.notify_topic))
    record = cloud.fc.invoke_sync(_payload([_record(key)]))
    assert record.status == "succeeded"
    assert record.result_json()["skipped"] == [{"key": key, "event": "ObjectCreated:PutObject"}]
    assert len(cloud.mns.messages(cloud.notify_topic)) == before


# -------------------------------------------------------------------------- boundaries


def test_an_event_for_another_bucket_is_skipped_and_logged_not_registered(
    cloud: LocalCloud,
) -> None:
    # GIVEN a complete release in a bucket the function is not configured for
    assert cloud.fc is not None
    fw = PREFIX + "hostile/elsewhere/cam.bin"
    cloud.oss.put_object(OTHER_BUCKET, fw, b"someone else's firmware")
    cloud.oss.put_object(OTHER_BUCKET, fw + ".ota.json", _sidecar("hostile-elsewhere"))
    assert cloud.wait_idle(60)
    # WHEN the function is invoked with its events (the RAM policy is the only other guard)
    record = cloud.fc.invoke_sync(
        _payload([_record(fw, OTHER_BUCKET), _record(fw + ".ota.json", OTHER_BUCKET)])
    )
    # THEN both are skipped: nothing registered, nothing published, the reason logged
    assert record.status == "succeeded"
    assert record.result_json()["results"] == []
    assert _packages(cloud, "hostile-elsewhere") == []
    assert _notes(cloud, bucket=OTHER_BUCKET) == []
    assert f"bucket '{OTHER_BUCKET}' is not one this function handles" in cloud.fc.logs()


def test_a_key_outside_the_watched_prefix_is_skipped(cloud: LocalCloud) -> None:
    assert cloud.fc is not None
    fw = "private/hostile/cam.bin"
    cloud.oss.put_object(BUCKET, fw, b"not for release")
    cloud.oss.put_object(BUCKET, fw + ".ota.json", _sidecar("hostile-private"))
    assert cloud.wait_idle(60)
    record = cloud.fc.invoke_sync(_payload([_record(fw + ".ota.json")]))
    assert record.status == "succeeded" and record.result_json()["results"] == []
    assert _packages(cloud, "hostile-private") == []
    assert _notes(cloud, key=fw + ".ota.json") == []


# ------------------------------------------------------------------- records per event


def test_thousands_of_copies_of_one_upload_are_processed_once(cloud: LocalCloud) -> None:
    # GIVEN a registered release
    assert cloud.fc is not None
    fw = PREFIX + "d.bin"
    _put(cloud, fw, b"duplicated firmware")
    _put(cloud, fw + ".ota.json", _sidecar("hostile-dup"))
    before = len(_notes(cloud, key=fw + ".ota.json"))
    # WHEN one event repeats its sidecar's record as often as 1 MiB of JSON allows
    one = _record(fw + ".ota.json")
    copies = min(9_532, (MAX_EVENT_BYTES - 16) // (len(_payload([one])) - 12))
    assert copies > 8_000
    record = cloud.fc.invoke_sync(_payload([one] * copies))
    # THEN it is processed once: one result, one more notification, no timeout
    assert record.status == "succeeded", record.error_message
    summary = record.result_json()
    assert [r["outcome"] for r in summary["results"]] == ["created"]
    assert summary["duplicates"] == copies - 1
    assert len(_notes(cloud, key=fw + ".ota.json")) == before + 1
    assert _packages(cloud, "hostile-dup") == ["hostile-dup"]


def test_an_event_with_too_many_records_goes_to_on_failure_without_a_notification_storm(
    cloud: LocalCloud,
) -> None:
    # GIVEN an asynchronous event naming 300 distinct (missing) objects: within FC's
    # 128 KB async payload, and small enough for its OnFailure record to fit MNS's 64 KB
    assert cloud.fc is not None and cloud.failure_topic is not None
    keys = [f"{PREFIX}hostile/flood/{i}.bin" for i in range(300)]
    before = len(cloud.mns.messages(cloud.notify_topic))
    failures_before = len(cloud.mns.messages(cloud.failure_topic))
    # WHEN it is delivered
    request_id = cloud.fc.invoke_async(_payload([_record(k) for k in keys]))
    assert cloud.wait_idle(120)
    # THEN not one outcome was published for it, and the event is on the OnFailure topic
    assert len(cloud.mns.messages(cloud.notify_topic)) == before
    assert len(cloud.mns.messages(cloud.failure_topic)) == failures_before + 1
    attempts = [i for i in cloud.fc.invocations if i.request_id == request_id]
    assert attempts and all(i.status == "failed" for i in attempts)
    assert f"at most {MAX_RECORDS_PER_EVENT} are processed" in str(attempts[-1].error_message)


# ------------------------------------------------------------------------ naming edges


def test_an_upper_case_sidecar_suffix_is_rejected_naming_the_case_rule(cloud: LocalCloud) -> None:
    key = PREFIX + "hostile/case/cam.bin.OTA.JSON"
    _put(cloud, key, _sidecar("hostile-case"))
    (note,) = _notes(cloud, key=key)
    assert note["outcome"] == "rejected"
    assert "case-sensitive" in note["errors"][0]["rule"]
    assert "'.ota.json'" in note["errors"][0]["rule"]


def test_a_file_named_like_a_sidecar_is_a_sidecar_and_never_a_firmware(
    cloud: LocalCloud,
) -> None:
    # GIVEN firmware bytes uploaded under a sidecar's name: it waits for its firmware
    fw_like = PREFIX + "hostile/named/x.ota.json"
    _put(cloud, fw_like, b"\x7fELF firmware bytes")
    (first,) = _notes(cloud, key=fw_like)
    assert first["outcome"] == "waiting" and first["firmware_key"] is None
    assert "its firmware " + PREFIX + "hostile/named/x" in first["summary"]
    # WHEN a "sidecar" for that name arrives
    _put(cloud, fw_like + ".ota.json", _sidecar("hostile-named"))
    # THEN it is rejected: x.ota.json is never registered as a firmware file
    (second,) = _notes(cloud, key=fw_like + ".ota.json")
    assert second["outcome"] == "rejected"
    assert "must not be named like a sidecar" in second["errors"][0]["rule"]
    assert _packages(cloud, "hostile-named") == []


def test_two_different_rejections_of_one_release_get_two_message_ids(cloud: LocalCloud) -> None:
    # GIVEN a firmware file, then a sidecar too large to read
    fw = PREFIX + "hostile/ids/cam.bin"
    _put(cloud, fw, b"firmware")
    _put(
        cloud, fw + ".ota.json", b'{"version": "1.0.0", "pad": "' + b"x" * MAX_SIDECAR_BYTES + b'"}'
    )
    # WHEN a second sidecar makes the release ambiguous
    _put(cloud, fw + ".ota.yaml", b"version: 1.0.0\n")
    too_large = _notes(cloud, key=fw + ".ota.json")
    ambiguous = _notes(cloud, key=fw + ".ota.yaml")
    assert [n["outcome"] for n in too_large + ambiguous] == ["rejected", "rejected"]
    assert "too large" in too_large[0]["summary"]
    assert "more than one sidecar" in ambiguous[0]["summary"]
    # THEN a subscriber de-duplicating by message_id sees both
    assert too_large[0]["message_id"] != ambiguous[0]["message_id"]
    # AND both halves reporting one release still share one id
    ok = PREFIX + "hostile/ids/ok.bin"
    _put(cloud, ok, b"firmware ok")
    _put(cloud, ok + ".ota.json", _sidecar("hostile-ids"))
    assert cloud.fc is not None
    cloud.fc.on_oss_event({"events": [_record(ok, size=11)]})  # the firmware's event again
    assert cloud.wait_idle(60)
    created = [n for n in _notes(cloud, outcome="created") if n["firmware_key"] == ok]
    assert len(created) == 2 and len({n["message_id"] for n in created}) == 1
