"""Upload through oss2 -> OSS trigger -> the function in FC -> IoT -> the topic, end to end.

Every outcome of the pipeline, asserted on what the topic received and what
ListOTAFirmware returns, with the real SDKs over HTTP against localcloud.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import oss2
import pytest
from alibabacloud_iot20180120 import models as iot_models
from alibabacloud_iot20180120.client import Client as IotClient
from alibabacloud_tea_openapi import models as openapi

from localcloud.cloud import REGION, LocalCloud
from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

pytestmark = pytest.mark.e2e


class Harness:
    """A running LocalCloud plus the client-side SDKs a release engineer would use."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.bucket = cloud.sdk_bucket()
        self.iot = IotClient(
            openapi.Config(
                access_key_id=DEFAULT_ACCESS_KEY_ID,
                access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
                endpoint=cloud.endpoints.iot,
                protocol="http",
                region_id=REGION,
            )
        )

    def key(self, name: str) -> str:
        return f"{self.cloud.prefix}{uuid.uuid4().hex[:8]}/{name}"

    def put(self, key: str, data: bytes) -> None:
        self.bucket.put_object(key, data)
        assert self.cloud.wait_idle(60), "the function did not finish in time"

    def messages(self, *keys: str) -> list[dict[str, Any]]:
        out = []
        for message in self.cloud.mns.messages(self.cloud.notify_topic):
            body = json.loads(message.body)
            if body["object"]["key"] in keys:
                body["_tag"] = message.tag
                out.append(body)
        return out

    def firmware_named(self, name: str) -> list[Any]:
        # The account-wide 10 QPS limit is shared with the function under test, so a
        # throttled listing is simply asked again.
        for _ in range(50):
            try:
                body = self.iot.list_otafirmware(
                    iot_models.ListOTAFirmwareRequest(current_page=1, page_size=100)
                ).body
                break
            except Exception as exc:
                if not str(getattr(exc, "code", "")).startswith("Throttling"):
                    raise
                time.sleep(0.1)
        else:
            raise AssertionError("ListOTAFirmware stayed throttled")
        items = body.firmware_info.simple_firmware_info if body.firmware_info else []
        return [f for f in items or [] if f.firmware_name == name]


def _sidecar(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _bytes(seed: str, size: int = 200_000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // 32 + 1))[:size]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with LocalCloud(flavour="fun") as cloud:
        yield Harness(cloud)


def test_sidecar_then_firmware_registers_once_and_notifies_waiting_then_created(
    harness: Harness,
) -> None:
    # GIVEN a sidecar uploaded before its firmware
    fw_key = harness.key("cam-2.0.0.bin")
    data = _bytes("cam")
    harness.put(fw_key + ".ota.json", _sidecar(version="2.0.0", name="e2e-cam-a", size=len(data)))
    # WHEN the firmware follows
    harness.put(fw_key, data)
    # THEN the topic heard "waiting" for the sidecar and "created" for the firmware
    messages = harness.messages(fw_key, fw_key + ".ota.json")
    assert [m["outcome"] for m in messages] == ["waiting", "created"]
    assert [m["_tag"] for m in messages] == ["waiting", "created"]
    created = messages[1]
    assert created["firmware"]["url_mode"] == "staged"
    # Staged: the digest is of the bytes as they were copied (and they matched the ETag).
    assert created["digest"] == {
        "sign_method": "MD5",
        "sign": hashlib.md5(data).hexdigest(),  # noqa: S324 - the API's MD5 sign
        "size": len(data),
        "source": "stream",
    }
    # AND IoT Platform holds exactly one package with the measured size and MD5
    (package,) = harness.firmware_named("e2e-cam-a")
    assert package.firmware_id == created["firmware"]["id"]
    assert package.firmware_size == len(data)
    assert package.firmware_sign == hashlib.md5(data).hexdigest()  # noqa: S324
    assert package.dest_version == "2.0.0"
    # AND every call's request id is reported: ListOTAFirmware, GenerateOTAUploadURL and
    # CreateOTAFirmware; two HEADs, the sidecar's GetObject, one defaults listing per
    # folder from the watched prefix down (two here), the copy's GetObject and PostObject
    assert len(created["request_ids"]["iot"]) == 3
    assert len(created["request_ids"]["oss"]) == 7


def test_firmware_then_yaml_sidecar_with_sha256_and_differential_type(harness: Harness) -> None:
    fw_key = harness.key("lamp-1.4.0.bin")
    data = _bytes("lamp", 123_457)
    harness.put(fw_key, data)
    harness.put(
        fw_key + ".ota.yaml",
        b'version: "1.4.0"\nname: e2e-lamp\ntype: diff\nsrc_version: "1.3.0"\n'
        b"sign_method: sha-256\nneed_to_verify: false\n",
    )
    messages = harness.messages(fw_key, fw_key + ".ota.yaml")
    assert [m["outcome"] for m in messages] == ["waiting", "created"]
    assert messages[1]["digest"]["source"] == "stream"
    (package,) = harness.firmware_named("e2e-lamp")
    assert package.sign_method == "SHA256"
    assert package.firmware_sign == hashlib.sha256(data).hexdigest()
    assert package.type == 1
    assert package.src_version == "1.3.0"
    # NeedToVerify false: QueryOTAFirmware reports -1; ListOTAFirmware documents only 0-3.
    assert package.status is None
    queried = harness.iot.query_otafirmware(
        iot_models.QueryOTAFirmwareRequest(firmware_id=package.firmware_id)
    )
    assert queried.body.firmware_info.status == -1


def test_broken_sidecar_is_rejected_with_every_problem_and_registers_nothing(
    harness: Harness,
) -> None:
    fw_key = harness.key("door-3.0.0.bin")
    harness.put(fw_key, _bytes("door"))
    harness.put(
        fw_key + ".ota.json",
        _sidecar(version="3.0.0", name="e2e door!", type="diff", verison="x", size=1),
    )
    (rejected,) = harness.messages(fw_key + ".ota.json")
    assert rejected["outcome"] == "rejected"
    fields = sorted(e["field"] for e in rejected["errors"])
    assert fields == ["name", "src_version", "verison"]
    assert harness.firmware_named("e2e door!") == []


def test_declared_digest_mismatch_is_rejected_showing_both_values(harness: Harness) -> None:
    fw_key = harness.key("gate-1.0.0.bin")
    data = _bytes("gate")
    harness.put(fw_key, data)
    harness.put(fw_key + ".ota.json", _sidecar(version="1.0.0", name="e2e-gate", sign="0" * 32))
    (rejected,) = harness.messages(fw_key + ".ota.json")
    assert rejected["outcome"] == "rejected"
    (error,) = rejected["errors"]
    assert error["field"] == "sign"
    assert "0" * 32 in error["value"]
    assert hashlib.md5(data).hexdigest() in error["value"]  # noqa: S324
    assert harness.firmware_named("e2e-gate") == []


def test_identical_reupload_is_already_registered_and_different_content_is_a_conflict(
    harness: Harness,
) -> None:
    fw_key = harness.key("hub-5.0.0.bin")
    data = _bytes("hub")
    harness.put(fw_key, data)
    harness.put(fw_key + ".ota.json", _sidecar(version="5.0.0", name="e2e-hub"))
    # WHEN the same sidecar is uploaded again
    harness.put(fw_key + ".ota.json", _sidecar(version="5.0.0", name="e2e-hub"))
    # AND the firmware is replaced by different bytes under the same release name
    harness.put(fw_key, _bytes("hub-tampered"))
    outcomes = [m["outcome"] for m in harness.messages(fw_key, fw_key + ".ota.json")]
    assert outcomes == ["waiting", "created", "already_registered", "conflict"]
    assert harness.messages(fw_key + ".ota.json")[-1]["_tag"] == "already_reg"
    # THEN the original package is untouched and there is still only one
    (package,) = harness.firmware_named("e2e-hub")
    assert package.firmware_sign == hashlib.md5(data).hexdigest()  # noqa: S324


def test_quota_reached_is_a_failed_outcome_without_retries(harness: Harness) -> None:
    iot = harness.cloud.iot
    saved = iot.package_quota
    iot.package_quota = len(iot.firmwares())
    try:
        fw_key = harness.key("full-1.0.0.bin")
        harness.put(fw_key, _bytes("full"))
        harness.put(fw_key + ".ota.json", _sidecar(version="1.0.0", name="e2e-full"))
    finally:
        iot.package_quota = saved
    (failed,) = harness.messages(fw_key + ".ota.json")
    assert failed["outcome"] == "failed"
    assert failed["errors"][0]["field"] == "CreateOTAFirmware"
    assert harness.firmware_named("e2e-full") == []


def test_multipart_upload_is_streamed_not_taken_from_its_etag(harness: Harness) -> None:
    fw_key = harness.key("big-9.0.0.bin")
    data = _bytes("big", 700_000)
    harness.put(fw_key + ".ota.json", _sidecar(version="9.0.0", name="e2e-big"))
    upload_id = harness.bucket.init_multipart_upload(fw_key).upload_id
    parts = []
    for number, start in enumerate(range(0, len(data), 300_000), 1):
        result = harness.bucket.upload_part(
            fw_key, upload_id, number, data[start : start + 300_000]
        )
        parts.append(oss2.models.PartInfo(number, result.etag))
    harness.bucket.complete_multipart_upload(fw_key, upload_id, parts)
    assert harness.cloud.wait_idle(60)
    created = harness.messages(fw_key)[-1]
    assert created["outcome"] == "created"
    assert created["digest"]["source"] == "stream"
    (package,) = harness.firmware_named("e2e-big")
    assert package.firmware_sign == hashlib.md5(data).hexdigest()  # noqa: S324


def test_unicode_key_with_spaces_and_plus_is_processed(harness: Harness) -> None:
    fw_key = harness.key("相机 固件+v2 100%.bin")
    harness.put(fw_key, _bytes("unicode"))
    harness.put(fw_key + ".ota.json", _sidecar(version="2.0.0"))
    created = harness.messages(fw_key + ".ota.json")[-1]
    assert created["outcome"] == "created"
    assert created["firmware_key"] == fw_key
    # the derived name keeps the Chinese characters and replaces what the API forbids
    assert created["spec"]["name"] == "相机_固件_v2_100_-2_0_0"


def test_direct_mode_registers_the_uploaded_objects_own_url() -> None:
    with LocalCloud(flavour="s", env_overrides={"OTA_FIRMWARE_URL_MODE": "direct"}) as cloud:
        harness = Harness(cloud)
        fw_key = harness.key("cam-7.0.0.bin")
        harness.put(fw_key, _bytes("direct"))
        harness.put(fw_key + ".ota.json", _sidecar(version="7.0.0", name="e2e-direct"))
        created = harness.messages(fw_key + ".ota.json")[-1]
        assert created["outcome"] == "created"
        assert created["firmware"]["url_mode"] == "direct"
        (record,) = [f for f in cloud.iot.firmwares() if f.firmware_name == "e2e-direct"]
        assert record.firmware_url is not None
        assert record.firmware_url.startswith(f"{cloud.endpoints.oss}/{cloud.bucket}/")
        # nothing was staged in IoT's bucket
        assert cloud.oss.list_keys(cloud.iot.ota_bucket) == []
