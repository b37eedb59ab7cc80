"""Hostile staging, end to end: what a package serves is what was hashed, whatever happens.

Through the local cloud with the deployed function: a firmware overwritten while its
release is in flight, an upload ticket that expires under a slow first copy, an empty
firmware, a replay of a release registered days ago, and direct-mode keys with dot
segments. The races are made deterministic with a seam in the services' fault hook that
acts *while* the named call is in flight (inside the service, before it answers).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from werkzeug.wrappers import Response

from localcloud.cloud import LocalCloud
from localcloud.faults import FaultPlan, rule
from ota_release.events import oss_trigger_record
from ota_release.timestamps import utc_millis

pytestmark = pytest.mark.reliability


class DuringCall:
    """A fault hook that runs an action once, while the next matching call is in flight.

    ``arm("iot", "GenerateOTAUploadURL", action)``: when that call reaches the service,
    ``action()`` runs before the service answers; its return value (a Response, or None to
    let the call through) answers the call. Every other call passes untouched.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[tuple[str, str], Callable[[], Response | None]] = {}
        self.fired: list[tuple[str, str]] = []

    def arm(self, service: str, operation: str, action: Callable[[], Response | None]) -> None:
        with self._lock:
            self._armed[(service, operation)] = action

    def before(self, service: str, operation: str) -> Response | None:
        with self._lock:
            action = self._armed.pop((service, operation), None)
            if action is not None:
                self.fired.append((service, operation))
        return action() if action is not None else None


class Staging:
    def __init__(self, cloud: LocalCloud, hook: DuringCall) -> None:
        self.cloud = cloud
        self.hook = hook

    def key(self, name: str) -> str:
        return f"{self.cloud.prefix}hostile/{uuid.uuid4().hex[:8]}/{name}"

    def put(self, key: str, data: bytes, *, wait: bool = True) -> None:
        self.cloud.oss.put_object(self.cloud.bucket, key, data)
        if wait:
            assert self.cloud.wait_idle(90), "the function did not finish in time"

    def notes(self, *keys: str) -> list[dict[str, Any]]:
        bodies = [json.loads(m.body) for m in self.cloud.mns.messages(self.cloud.notify_topic)]
        return [b for b in bodies if b["object"]["key"] in keys]

    def packages(self, name: str) -> list[Any]:
        return [f for f in self.cloud.iot.firmwares() if f.firmware_name == name]

    def served_md5(self, package: Any) -> str | None:
        facts = self.cloud.oss.lookup_url(package.firmware_url)
        return facts.md5_hex if facts else None


@pytest.fixture(scope="module")
def staging() -> Iterator[Staging]:
    hook = DuringCall()
    with LocalCloud(flavour="fun", faults=hook) as cloud:
        yield Staging(cloud, hook)


def _bytes(seed: str, size: int = 300_000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // 32 + 1))[:size]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the API's MD5 sign


def test_firmware_overwritten_while_the_ticket_is_issued_is_never_registered(
    staging: Staging,
) -> None:
    # GIVEN firmware A is stored, and its sidecar is about to complete the release
    fw_key = staging.key("race.bin")
    first, second = _bytes("A"), _bytes("B")
    assert len(first) == len(second)
    staging.put(fw_key, first)
    # AND while GenerateOTAUploadURL is in flight, A is overwritten by B (same length)
    staging.hook.arm(
        "iot",
        "GenerateOTAUploadURL",
        lambda: (staging.cloud.oss.put_object(staging.cloud.bucket, fw_key, second), None)[1],
    )
    # WHEN the sidecar arrives and both releases run
    staging.put(fw_key + ".ota.json", json.dumps({"version": "1.0.0", "name": "race"}).encode())
    assert ("iot", "GenerateOTAUploadURL") in staging.hook.fired
    # THEN A's release says the firmware changed underneath and registered nothing
    notes = staging.notes(fw_key, fw_key + ".ota.json")
    failed = [n for n in notes if n["outcome"] == "failed"]
    assert len(failed) == 1
    assert "overwritten while it was being released" in failed[0]["summary"]
    assert failed[0]["errors"][0]["field"] == "firmware"
    # AND B's own event registered B: the package serves exactly the bytes it records
    (package,) = staging.packages("race")
    assert package.firmware_sign == _md5(second)
    assert staging.served_md5(package) == _md5(second)
    assert [n["outcome"] for n in notes].count("created") == 1


def test_a_first_copy_that_outlives_its_ticket_is_retried_with_a_new_ticket(
    staging: Staging,
) -> None:
    # GIVEN the first PostObject of the release takes two minutes and then fails (the
    # services' clocks jump 120 s, so its ticket's 60 s policy is over)
    cloud = staging.cloud
    real_oss_clock, real_iot_now = cloud.oss.clock, cloud.iot.now
    failing = FaultPlan([rule("oss", "error503", 1.0, "PostObject")])

    def slow_and_failing() -> Response | None:
        cloud.oss.clock = lambda: real_oss_clock() + 120
        cloud.iot.now = lambda: real_iot_now() + timedelta(seconds=120)
        return failing.before("oss", "PostObject")

    fw_key = staging.key("slow.bin")
    data = _bytes("slow")
    before = cloud.iot.calls["GenerateOTAUploadURL"]
    try:
        staging.put(fw_key, data)
        staging.hook.arm("oss", "PostObject", slow_and_failing)
        staging.put(fw_key + ".ota.json", json.dumps({"version": "1.0.0", "name": "slow"}).encode())
    finally:
        cloud.oss.clock, cloud.iot.now = real_oss_clock, real_iot_now
    # THEN the retry asked for a fresh ticket and the release ends "created"
    assert ("oss", "PostObject") in staging.hook.fired
    outcomes = [n["outcome"] for n in staging.notes(fw_key, fw_key + ".ota.json")]
    assert outcomes == ["waiting", "created"]
    assert cloud.iot.calls["GenerateOTAUploadURL"] - before == 2
    (package,) = staging.packages("slow")
    assert staging.served_md5(package) == package.firmware_sign == _md5(data)


def test_an_empty_firmware_is_rejected_before_an_upload_ticket_is_spent(
    staging: Staging,
) -> None:
    fw_key = staging.key("empty.bin")
    before = staging.cloud.iot.calls["GenerateOTAUploadURL"]
    staging.put(fw_key + ".ota.json", json.dumps({"version": "1.0.0", "name": "empty"}).encode())
    staging.put(fw_key, b"")
    (note,) = [n for n in staging.notes(fw_key) if n["outcome"] != "waiting"]
    assert note["outcome"] == "rejected"
    assert [e["field"] for e in note["errors"]] == ["FirmwareSize"]
    assert staging.cloud.iot.calls["GenerateOTAUploadURL"] == before
    assert staging.packages("empty") == []


def _replay_event(cloud: LocalCloud, key: str, event_time: datetime) -> bytes:
    """A replayed OSS record: the event time is the object's (old) Last-Modified."""
    stored = cloud.oss.head(cloud.bucket, key)
    assert stored is not None
    record = oss_trigger_record(
        bucket=cloud.bucket,
        key=key,
        size=stored.size,
        etag=stored.etag,
        event_time=event_time.replace(microsecond=0),
        region="cn-shanghai",
        account_id=cloud.oss.account_id,
        request_id=uuid.uuid4().hex.upper()[:24],
        rule_id="replay",
    )
    return json.dumps({"events": [record]}).encode()


def test_a_replay_of_a_release_registered_days_ago_publishes_no_second_created(
    staging: Staging,
) -> None:
    # GIVEN a release registered (and announced) two days ago
    cloud = staging.cloud
    fw_key = staging.key("old.bin")
    sc_key = fw_key + ".ota.json"
    staging.put(fw_key, _bytes("old"))
    staging.put(sc_key, json.dumps({"version": "1.0.0", "name": "old"}).encode())
    notes = staging.notes(fw_key, sc_key)
    assert [n["outcome"] for n in notes] == ["waiting", "created"]
    created = notes[1]
    (package,) = staging.packages("old")
    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    # the package's UtcCreate as it would be two days later
    cloud.iot.backend.update_package(
        package.firmware_id, utc_create=utc_millis(two_days_ago.replace(microsecond=0))
    )
    # WHEN the sidecar's event is replayed with its Last-Modified (before UtcCreate)
    uploaded = datetime.now(timezone.utc) - timedelta(days=3)
    assert cloud.fc is not None
    cloud.fc.invoke_async(_replay_event(cloud, sc_key, uploaded))
    assert cloud.wait_idle(90)
    # THEN the replay says "already registered", under an id of its own
    replayed = staging.notes(sc_key)[-1]
    assert replayed["outcome"] == "already_registered"
    assert replayed["message_id"] != created["message_id"]
    assert replayed["firmware"]["id"] == created["firmware"]["id"]
    assert len(staging.packages("old")) == 1


def test_direct_mode_refuses_a_key_with_dot_segments() -> None:
    with LocalCloud(flavour="fun", env_overrides={"OTA_FIRMWARE_URL_MODE": "direct"}) as cloud:
        fw_key = f"{cloud.prefix}a/../dots.bin"
        cloud.oss.put_object(cloud.bucket, fw_key, _bytes("dots"))
        cloud.oss.put_object(
            cloud.bucket, fw_key + ".ota.json", json.dumps({"version": "1.0.0"}).encode()
        )
        deadline = time.monotonic() + 90
        while not cloud.wait_idle(5) and time.monotonic() < deadline:
            pass
        bodies = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
        final = [b for b in bodies if b["outcome"] != "waiting"]
        # Both halves may see the pair complete: one fact, one message id.
        assert {b["outcome"] for b in final} == {"rejected"}
        assert len({b["message_id"] for b in final}) == 1
        assert final[0]["errors"][0]["field"] == "firmware_key"
        assert cloud.iot.firmwares() == []


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"udi": '{"v": 1}'}, {"udi": '{"v": 2}'}, "udi"),
        ({"description": "one"}, {"description": "two"}, "description"),
        ({"need_to_verify": True}, {"need_to_verify": False}, "need_to_verify"),
    ],
)
def test_the_same_bytes_with_another_package_field_are_a_conflict(
    staging: Staging, first: dict[str, Any], second: dict[str, Any], field: str
) -> None:
    # GIVEN a release registered with one value of a package field
    name = f"field-{uuid.uuid4().hex[:6]}"
    data = _bytes(name)
    fw_key = staging.key("f.bin")
    staging.put(fw_key, data)
    staging.put(
        fw_key + ".ota.json", json.dumps({"version": "1.0.0", "name": name, **first}).encode()
    )
    # WHEN the same bytes are released again under the same name with another value
    again = staging.key("f.bin")
    staging.put(again, data)
    staging.put(
        again + ".ota.json", json.dumps({"version": "1.0.0", "name": name, **second}).encode()
    )
    # THEN it is a conflict naming that field, and the original package is untouched
    (note,) = [n for n in staging.notes(again + ".ota.json") if n["outcome"] != "waiting"]
    assert note["outcome"] == "conflict"
    assert [e["field"] for e in note["errors"]] == [field]
    assert len(staging.packages(name)) == 1


def test_a_late_event_for_an_overwritten_upload_registers_nothing_and_says_so(
    staging: Staging,
) -> None:
    # GIVEN a sidecar, and a firmware uploaded twice with different bytes, where the first
    # upload's event arrives only after the second upload replaced the object (OSS
    # delivers events asynchronously)
    cloud = staging.cloud
    name = f"late-{uuid.uuid4().hex[:6]}"
    fw_key = staging.key("f.bin")
    cloud.oss.put_object(
        cloud.bucket,
        fw_key + ".ota.json",
        json.dumps({"version": "1.0.0", "name": name}).encode(),
        notify=False,
    )
    first = cloud.oss.put_object(cloud.bucket, fw_key, _bytes(name + "-a"), notify=False)
    staging.put(fw_key, _bytes(name + "-b"))  # the second upload and its own event
    # WHEN the first upload's event is delivered late
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "oss": {
            "bucket": {"name": cloud.bucket},
            "object": {"key": fw_key, "size": first.size, "eTag": first.etag},
        },
    }
    assert cloud.fc is not None
    cloud.fc.on_oss_event({"events": [record]})
    assert cloud.wait_idle(90)
    # THEN the second upload is registered once, with its own bytes, and the late event
    # reports that its upload was overwritten: a message of its own, not a copy of the
    # second upload's `created` under the first upload's ETag
    (package,) = staging.packages(name)
    assert staging.served_md5(package) == _md5(_bytes(name + "-b"))
    notes = staging.notes(fw_key)
    late = [n for n in notes if n["object"]["etag"].upper() == first.etag.upper()]
    assert [n["outcome"] for n in late] == ["failed"]
    assert "overwritten before this event was processed" in late[0]["summary"]
    created = [n for n in notes if n["outcome"] == "created"]
    assert created and all(n["object"]["etag"] != first.etag for n in created)
