"""Permanent faults end in one clear notification, with no retry in or out of the function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import FaultPlan, rule
from scripts import soak

pytestmark = pytest.mark.reliability


class Refusals:
    """One LocalCloud whose fault rules each test sets, and the readings the tests need."""

    def __init__(self, cloud: LocalCloud, plan: FaultPlan) -> None:
        self.cloud = cloud
        self.plan = plan
        self.work = soak.Workload(cloud, seed=4)

    def upload(self, name: str, **sidecar: Any) -> soak.Release:
        fw_key = f"firmware/permanent/{name}/dev.bin"
        body = json.dumps({"version": "1.0.0", "name": name, **sidecar}).encode()
        release = soak.Release(
            name, fw_key, soak.content(name, 3_000), fw_key + ".ota.json", body, True
        )
        self.work.put(release.firmware_key, release.firmware, "release", name)
        assert self.cloud.wait_idle(60)
        self.work.put(release.sidecar_key, release.sidecar, "release", name)
        assert self.cloud.wait_idle(60)
        return release

    def notes_for(self, key: str) -> list[dict[str, Any]]:
        bodies = [json.loads(m.body) for m in self.cloud.mns.messages(self.cloud.notify_topic)]
        return [b for b in bodies if b["object"]["key"] == key]


@pytest.fixture(scope="module")
def refusals() -> Iterator[Refusals]:
    plan = FaultPlan(seed=4)
    with LocalCloud(flavour="fun", faults=plan) as cloud:
        r = Refusals(cloud, plan)
        yield r
        r.work.close()


def _assert_one_failed_notification(refusals: Refusals, key: str, code: str) -> None:
    (note,) = refusals.notes_for(key)
    assert note["outcome"] == "failed"
    assert note["errors"][0]["rule"] == code
    assert refusals.cloud.mns.messages(refusals.cloud.failure_topic or "") == []
    assert refusals.cloud.fc is not None
    assert all(i.attempt == 1 for i in refusals.cloud.fc.invocations), "FC retried"


def test_quota_reached_is_failed_once_without_retries(refusals: Refusals) -> None:
    iot = refusals.cloud.iot
    before = iot.calls["CreateOTAFirmware"]
    iot.package_quota = len(iot.firmwares())
    try:
        release = refusals.upload("perm-quota")
    finally:
        iot.package_quota = 500
    _assert_one_failed_notification(refusals, release.sidecar_key, "iot.ota.FirmwareCountExceed")
    assert iot.calls["CreateOTAFirmware"] == before + 1


def test_permission_denied_by_iot_is_failed_once_without_retries(refusals: Refusals) -> None:
    refusals.plan.rules = [rule("iot", "deny", 1.0, "ListOTAFirmware")]
    before = refusals.cloud.iot.calls["ListOTAFirmware"]
    try:
        release = refusals.upload("perm-denied-iot")
    finally:
        refusals.plan.rules = []
    _assert_one_failed_notification(refusals, release.sidecar_key, "Forbidden.RAM")
    assert refusals.cloud.iot.calls["ListOTAFirmware"] == before + 1


def test_access_denied_on_the_sidecar_is_failed_once_without_retries(refusals: Refusals) -> None:
    refusals.plan.rules = [rule("oss", "deny", 1.0, "GetObject")]
    try:
        release = refusals.upload("perm-denied-oss")
    finally:
        refusals.plan.rules = []
    _assert_one_failed_notification(refusals, release.sidecar_key, "AccessDenied")


def test_unknown_iot_instance_is_failed_once_without_retries(refusals: Refusals) -> None:
    release = refusals.upload("perm-instance", iot_instance_id="iot-0000missing")
    _assert_one_failed_notification(refusals, release.sidecar_key, "iot.system.InstanceNotFound")


def test_object_deleted_before_processing_is_failed_once(refusals: Refusals) -> None:
    # GIVEN an event for an object that no longer exists when the function runs
    cloud = refusals.cloud
    key = "firmware/permanent/gone/dev.bin"
    cloud.oss.put_object(cloud.bucket, key, b"short-lived")
    assert cloud.wait_idle(60)
    event_notes = refusals.notes_for(key)
    cloud.oss.delete_object(cloud.bucket, key)
    assert cloud.fc is not None
    # WHEN its event is delivered again (as a late FC retry or a replay would)
    cloud.fc.on_oss_event({"events": [_record_of(event_notes[0])]})
    assert cloud.wait_idle(60)
    notes = refusals.notes_for(key)
    # THEN the replayed event ends in one "failed" naming the missing object
    assert [n["outcome"] for n in notes] == ["waiting", "failed"]
    assert "no longer exists" in notes[1]["summary"]
    assert all(i.attempt == 1 for i in cloud.fc.invocations)


def _record_of(note: dict[str, Any]) -> dict[str, Any]:
    """A native OSS trigger record for the object a notification was about."""
    obj = note["object"]
    return {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": note["event"]["time"],
        "eventVersion": "1.0",
        "region": "cn-shanghai",
        "oss": {
            "bucket": {"name": obj["bucket"], "arn": f"acs:oss:cn-shanghai:1:{obj['bucket']}"},
            "object": {"key": obj["key"], "size": obj["size"], "eTag": obj["etag"]},
        },
    }
