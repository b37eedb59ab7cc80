"""Clients we did not write: Alibaba's official Node.js SDKs against the local cloud.

ali-oss, @alicloud/pop-core and @alicloud/mns (pinned in package.json) run the checks in
``checks.js`` against the local OSS, IoT Platform and MNS on 127.0.0.1. The same checks
are then run against a server that accepts everything, and each must fail there: a check
that cannot fail proves nothing about the stand-ins.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, default_store
from localcloud.iot import LocalIot
from localcloud.mns import LocalMns
from localcloud.oss import LocalOss
from localcloud.server import LocalServer
from tests.conformance.accept_all import AcceptAllServer
from tests.conformance.node_clients import CheckResult, NodeSetupError, ensure_installed, run_check

pytestmark = pytest.mark.integration

REGION = "cn-shanghai"
ACCOUNT_ID = "1234567890123456"
BUCKET = "conformance-bucket"
TOPIC = "conformance-topic"
PACKAGE_KEY = "packages/cam-2.0.0.bin"
PACKAGE = b"firmware bytes for the conformance suite"

# (check, addressing style): every check the suite runs, each in every style it has.
CHECKS: list[tuple[str, str | None]] = [
    *[
        (check, style)
        for check in (
            "oss-put",
            "oss-get",
            "oss-head",
            "oss-presigned-url",
            "oss-list",
            "oss-wrong-secret",
        )
        for style in ("virtual", "path")
    ],
    ("iot-refused-parameter", None),
    ("iot-multi-files", None),
    ("iot-verify-too-many-devices", None),
    ("iot-wrong-secret", None),
    ("mns-publish", None),
    ("mns-wrong-secret", None),
]
CHECK_IDS = [f"{check}-{style}" if style else check for check, style in CHECKS]


@pytest.fixture(scope="module")
def node() -> str:
    try:
        return ensure_installed()
    except NodeSetupError as error:
        pytest.fail(str(error), pytrace=False)


@dataclass
class Cloud:
    oss: LocalOss
    iot: LocalIot
    mns: LocalMns
    target: dict[str, Any]


def _target(
    oss_port: int, iot_url: str, mns_url: str, firmware_url: str, firmware_id: str = "none"
) -> dict[str, Any]:
    return {
        "accessKeyId": DEFAULT_ACCESS_KEY_ID,
        "accessKeySecret": DEFAULT_ACCESS_KEY_SECRET,
        "oss": {"port": oss_port, "region": REGION, "bucket": BUCKET},
        "iot": {"endpoint": iot_url, "firmwareUrl": firmware_url, "firmwareId": firmware_id},
        "mns": {"endpoint": mns_url, "accountId": ACCOUNT_ID, "topic": TOPIC},
    }


@pytest.fixture(scope="module")
def cloud() -> Iterator[Cloud]:
    data_dir = Path(tempfile.mkdtemp(prefix="conformance-"))
    store = default_store()
    oss = LocalOss(data_dir, store, region=REGION, account_id=ACCOUNT_ID)
    iot = LocalIot(store, oss)
    mns = LocalMns(store)
    try:
        with (
            LocalServer(oss, name="conformance-oss") as oss_server,
            LocalServer(iot, name="conformance-iot") as iot_server,
            LocalServer(mns, name="conformance-mns") as mns_server,
        ):
            oss.base_url = oss_server.url
            iot.oss_base_url = oss_server.url
            oss.create_bucket(BUCKET)
            oss.put_object(BUCKET, PACKAGE_KEY, PACKAGE)
            mns.create_topic(TOPIC)
            firmware_url = oss.url_for(BUCKET, PACKAGE_KEY)
            (verifiable,) = iot.seed_packages(1, product_key="a1Conformance", name_prefix="cf")
            yield Cloud(
                oss,
                iot,
                mns,
                _target(
                    oss_server.port,
                    iot_server.url,
                    mns_server.url,
                    firmware_url,
                    verifiable.firmware_id,
                ),
            )
    finally:
        oss.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _confirm_side_effects(cloud: Cloud, result: CheckResult) -> None:
    """What the stand-in itself holds after a passing check: the client's view is not enough."""
    seen = result.seen or {}
    if result.check == "oss-list":
        for key in seen["keys"]:
            assert cloud.oss.head(BUCKET, key) is not None, f"{key} is not in bucket {BUCKET}"
    elif result.check in ("oss-put", "oss-get", "oss-head", "oss-presigned-url"):
        stored = cloud.oss.head(BUCKET, seen["key"])
        assert stored is not None, f"{seen['key']} is not in bucket {BUCKET}"
        if result.check == "oss-put":
            assert _md5(cloud.oss.read_object(BUCKET, seen["key"])).upper() == seen["md5"]
    elif result.check == "oss-wrong-secret":
        assert cloud.oss.head(BUCKET, seen["key"]) is None, "a forged PutObject stored the object"
    elif result.check == "iot-refused-parameter":
        names = [p.firmware_name for p in cloud.iot.firmwares()]
        assert seen["name"] not in names, "a refused CreateOTAFirmware registered a package"
    elif result.check == "iot-multi-files":
        (package,) = [p for p in cloud.iot.firmwares() if p.firmware_id == seen["firmwareId"]]
        assert [f.name for f in package.multi_files or ()] == ["app.bin", "boot.img"]
    elif result.check == "iot-verify-too-many-devices":
        firmware_id = cloud.target["iot"]["firmwareId"]
        assert cloud.iot.backend.jobs_of(firmware_id) == [], "a refused verification job exists"
    elif result.check == "mns-publish":
        received = {m.message_id: m for m in cloud.mns.messages(TOPIC)}
        message = received.get(seen["messageId"])
        assert message is not None, f"message {seen['messageId']} is not in topic {TOPIC}"
        assert (message.body, message.tag) == (seen["body"], seen["tag"])
    elif result.check == "mns-wrong-secret":
        assert all(m.body != "forged" for m in cloud.mns.messages(TOPIC))


@pytest.mark.parametrize(("check", "style"), CHECKS, ids=CHECK_IDS)
def test_official_client_check_passes_against_the_local_cloud(
    node: str, cloud: Cloud, check: str, style: str | None
) -> None:
    result = run_check(node, check, style, cloud.target)

    assert (result.exit_code, result.ok, result.verdict) == (0, True, "passed"), result.describe()
    assert (result.check, result.style) == (check, style)
    _confirm_side_effects(cloud, result)


@pytest.mark.parametrize(("check", "style"), CHECKS, ids=CHECK_IDS)
def test_the_same_check_fails_against_a_server_that_accepts_everything(
    node: str, check: str, style: str | None
) -> None:
    # GIVEN one server that answers 200 with a plausible body to any request
    with AcceptAllServer() as accept_all:
        url = accept_all.url
        target = _target(accept_all.port, url, url, f"{url}/{BUCKET}/{PACKAGE_KEY}")

        # WHEN the check runs against it
        result = run_check(node, check, style, target)
        requests = accept_all.requests()

    # THEN the check talked to the server and its own judgement (not a crash) rejected it
    assert requests, f"{check} never reached the accept-all server\n{result.describe()}"
    assert (result.check, result.style) == (check, style), result.describe()
    assert (result.exit_code, result.ok, result.verdict) == (1, False, "failed"), result.describe()
    assert result.reason, result.describe()
