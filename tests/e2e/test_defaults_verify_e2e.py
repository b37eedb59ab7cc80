"""Folder defaults and verification on creation, end to end on the local cloud.

oss2 uploads -> OSS trigger -> the function in FC -> IoT (CreateOTAFirmware,
ListOTAJobByFirmware, CreateOTAVerifyJob) -> the topic; asserted on what the topic
received and what IoT holds, through the real SDKs.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.iot import JOB_TYPE_VERIFY

pytestmark = pytest.mark.e2e

DEVICES = ["cam-lab-01", "cam-lab-02"]


def _bytes(seed: str, size: int = 100_000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // 32 + 1))[:size]


class Harness:
    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.bucket = cloud.sdk_bucket()
        #: key -> extra copies of its event to deliver (at-least-once delivery)
        self.copies: dict[str, int] = {}
        self._unsubscribe = cloud.oss.subscribe(self._duplicate)

    def close(self) -> None:
        self._unsubscribe()

    def _duplicate(self, event: Mapping[str, Any]) -> None:
        records = event.get("events") or []
        key = records[0]["oss"]["object"]["key"] if records else ""
        assert self.cloud.fc is not None
        for _ in range(self.copies.get(key, 0)):
            self.cloud.fc.on_oss_event(json.loads(json.dumps(event)))

    def folder(self) -> str:
        return f"{self.cloud.prefix}{uuid.uuid4().hex[:8]}/"

    def put(self, key: str, data: bytes) -> None:
        self.bucket.put_object(key, data)
        assert self.cloud.wait_idle(60), "the function did not finish in time"

    def messages(self, *keys: str) -> list[dict[str, Any]]:
        out = []
        for message in self.cloud.mns.messages(self.cloud.notify_topic):
            body = json.loads(message.body)
            if body["object"]["key"] in keys:
                out.append(body)
        return out

    def packages(self, name: str) -> list[Any]:
        return [p for p in self.cloud.iot.firmwares() if p.firmware_name == name]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with LocalCloud(flavour="fun") as cloud:
        h = Harness(cloud)
        yield h
        h.close()


def test_a_verify_job_is_created_once_under_duplicate_events(harness: Harness) -> None:
    # GIVEN a firmware, then its sidecar asking for verification, delivered four times at once
    folder = harness.folder()
    fw_key = folder + "cam-3.0.0.bin"
    name = f"e2e-verify-{folder[-9:-1]}"
    sidecar = {
        "version": "3.0.0",
        "name": name,
        "product_key": "a1Cam",
        "verify": {"devices": DEVICES, "timeout_minutes": 30},
    }
    harness.put(fw_key, _bytes(fw_key))
    harness.copies[fw_key + ".ota.json"] = 3
    harness.put(fw_key + ".ota.json", json.dumps(sidecar).encode())
    # THEN one package, with exactly one verification job on the sidecar's devices
    (package,) = harness.packages(name)
    jobs = harness.cloud.iot.backend.jobs_of(package.firmware_id)
    assert [(j.job_type, j.devices) for j in jobs] == [(JOB_TYPE_VERIFY, tuple(DEVICES))]
    # AND every 'created' names that job, under one message id
    created = [m for m in harness.messages(fw_key + ".ota.json") if m["outcome"] == "created"]
    assert len(created) == 4
    assert {m["verification"]["job_id"] for m in created} == {jobs[0].job_id}
    assert {m["message_id"] for m in created} == {created[0]["message_id"]}
    # one delivery started it; the three others found it
    statuses = sorted(m["verification"]["status"] for m in created)
    assert statuses == ["existing", "existing", "existing", "started"]


def test_defaults_apply_are_overridden_and_the_notification_shows_their_source(
    harness: Harness,
) -> None:
    # GIVEN defaults in a folder and in its subfolder, and a sidecar of its own
    top = harness.folder()
    sub = top + "cam/"
    harness.put(
        top + ".ota-defaults.json", json.dumps({"product_key": "a1Top", "module": "mcu"}).encode()
    )
    harness.put(sub + ".ota-defaults.yaml", b"module: camera\ndescription: from the folder\n")
    fw_key = sub + "cam-4.0.0.bin"
    name = f"e2e-dflt-{top[-9:-1]}"
    harness.put(fw_key, _bytes(fw_key))
    harness.put(
        fw_key + ".ota.json",
        json.dumps({"version": "4.0.0", "name": name, "description": "mine"}).encode(),
    )
    # THEN the package has the nearer folder's module, the top folder's product and the
    # sidecar's description
    (package,) = harness.packages(name)
    assert (package.product_key, package.module_name, package.firmware_desc) == (
        "a1Top",
        "camera",
        "mine",
    )
    # AND the notification says where each value came from
    (created,) = [m for m in harness.messages(fw_key + ".ota.json") if m["outcome"] == "created"]
    assert created["sources"] == {
        "description": fw_key + ".ota.json",
        "module": sub + ".ota-defaults.yaml",
        "name": fw_key + ".ota.json",
        "product_key": top + ".ota-defaults.json",
        "version": fw_key + ".ota.json",
    }
    # AND the valid defaults uploads published nothing
    assert harness.messages(top + ".ota-defaults.json", sub + ".ota-defaults.yaml") == []


def test_a_bad_defaults_file_is_rejected_naming_the_field_and_re_runs_nothing(
    harness: Harness,
) -> None:
    # GIVEN a release already registered in a folder
    folder = harness.folder()
    fw_key = folder + "lamp-1.0.0.bin"
    name = f"e2e-bad-{folder[-9:-1]}"
    harness.put(fw_key, _bytes(fw_key))
    harness.put(fw_key + ".ota.json", json.dumps({"version": "1.0.0", "name": name}).encode())
    assert len(harness.packages(name)) == 1
    before = len(harness.cloud.mns.messages(harness.cloud.notify_topic))
    assert harness.cloud.fc is not None
    invocations = len(harness.cloud.fc.invocations)
    # WHEN a defaults file with a key no default may give is uploaded there
    defaults_key = folder + ".ota-defaults.json"
    harness.put(defaults_key, json.dumps({"version": "2.0.0", "module": "lamp"}).encode())
    # THEN it is rejected naming the field, and that is the only new message
    after = harness.cloud.mns.messages(harness.cloud.notify_topic)[before:]
    assert [json.loads(m.body)["object"]["key"] for m in after] == [defaults_key]
    (rejected,) = harness.messages(defaults_key)
    assert rejected["outcome"] == "rejected"
    assert [e["field"] for e in rejected["errors"]] == ["version"]
    # AND nothing was re-run: one invocation (the defaults file's), the package untouched
    assert len(harness.cloud.fc.invocations) == invocations + 1
    assert len(harness.packages(name)) == 1
    # AND a release uploaded below it now is rejected naming the defaults file
    later = folder + "lamp-1.1.0.bin"
    harness.put(later, _bytes(later))
    harness.put(later + ".ota.json", json.dumps({"version": "1.1.0"}).encode())
    (refused,) = [m for m in harness.messages(later + ".ota.json") if m["outcome"] != "waiting"]
    assert refused["outcome"] == "rejected"
    assert f"version (in {defaults_key})" in [e["field"] for e in refused["errors"]]
