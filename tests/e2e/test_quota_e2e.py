"""The package quota end to end: the local IoT filled to 450, 499 and 500 packages.

The function runs in the local FC against the local IoT (500 packages per instance); the
account is filled through the backend (``seed_packages``), then one release is uploaded
and its notification read from the topic. "Filled to 450" and "to 499" are the counts the
notification reports, the release's own package included (449 and 498 seeded); "to 500"
is the account the release finds full. 450 of 500 is exactly 90 %, where the warning
starts (docs/notifications.md, "Package quota"). ``OTA_PACKAGE_COUNT_MAX_AGE=0`` makes every
release ask IoT, because the test changes the account behind the function's back between
cases (the reuse of a young count is unit-tested in tests/unit/test_quota.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(flavour="fun", env_overrides={"OTA_PACKAGE_COUNT_MAX_AGE": "0"}) as cloud:
        yield cloud


def release_into(cloud: LocalCloud, held: int) -> dict[str, Any]:
    """Fill the account to ``held`` packages, release one firmware, return its outcome."""
    cloud.iot.reset()
    cloud.iot.seed_packages(held, product_key="pkOld")
    bucket = cloud.sdk_bucket()
    key = f"{cloud.prefix}{uuid.uuid4().hex[:8]}/cam-9.9.9.bin"
    bucket.put_object(key, b"firmware " * 1000)
    bucket.put_object(key + ".ota.json", json.dumps({"version": "9.9.9"}).encode())
    assert cloud.wait_idle(60), "the function did not finish in time"
    (message,) = [
        json.loads(m.body)
        for m in cloud.mns.messages(cloud.notify_topic)
        if json.loads(m.body)["object"]["key"] == key + ".ota.json"
    ]
    return message


def test_a_release_that_fills_the_account_to_450_reports_the_count_and_starts_warning(
    cloud: LocalCloud,
) -> None:
    message = release_into(cloud, 449)

    assert message["outcome"] == "created"
    assert (message["quota"]["packages"], message["quota"]["limit"]) == (450, 500)
    assert "450 of 500" in message["quota"]["warning"]
    assert "Warning: the package quota is almost full: 450 of 500" in message["summary"]
    assert len(cloud.iot.firmwares()) == 450


def test_a_release_below_90_percent_reports_the_count_without_a_warning(
    cloud: LocalCloud,
) -> None:
    message = release_into(cloud, 448)

    assert message["outcome"] == "created"
    assert message["quota"]["packages"] == 449
    assert message["quota"]["warning"] is None
    assert "Warning" not in message["summary"]


def test_a_release_that_fills_the_account_to_499_warns(cloud: LocalCloud) -> None:
    message = release_into(cloud, 498)

    assert message["outcome"] == "created"
    assert message["quota"]["packages"] == 499
    assert "499 of 500" in message["quota"]["warning"]
    assert "Warning: the package quota is almost full: 499 of 500" in message["summary"]


def test_a_release_into_a_full_account_fails_saying_the_quota_is_full_and_how_to_free_it(
    cloud: LocalCloud,
) -> None:
    message = release_into(cloud, 500)

    assert message["outcome"] == "failed"
    assert "the package quota is full (500 of 500 packages)" in message["summary"]
    assert "ota-release prune --keep N" in message["summary"]
    assert [e["field"] for e in message["errors"]] == ["quota", "CreateOTAFirmware"]
    assert message["quota"]["packages"] == 500
    assert len(cloud.iot.firmwares()) == 500
