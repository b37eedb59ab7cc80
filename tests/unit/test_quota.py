"""The package quota in notifications (pipeline/quota.py), against the fakes."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Any

import pytest

from ota_release.errors import PermanentError
from ota_release.notification import Outcome, QuotaUsage
from ota_release.pipeline import ReleaseConfig
from ota_release.pipeline.quota import PackageCounter
from tests.unit.fakes import FakeOtaPlatform, permanent, transient
from tests.unit.test_release import FW, FW_MD5, NAME, Harness

WALL = datetime(2025, 11, 20, 4, 0, tzinfo=timezone.utc)


def seed(h: Harness, packages: int) -> None:
    """Fill the fake account with other releases' packages."""
    for n in range(packages):
        h.platform.add(name=f"other-{n}", dest_version="1.0.0", product_key="pkOther")


def released(packages_before: int, config: ReleaseConfig | None = None) -> dict[str, Any]:
    h = Harness(config)
    seed(h, packages_before)
    h.both()
    h.run()
    return h.message()


def test_a_release_that_leaves_449_of_500_reports_the_count_without_a_warning() -> None:
    message = released(448)

    assert message["outcome"] == "created"
    assert message["quota"]["packages"] == 449
    assert message["quota"]["limit"] == 500
    assert message["quota"]["warning"] is None and message["quota"]["error"] is None
    assert "quota" not in message["summary"] and "Warning" not in message["summary"]


def test_a_release_that_leaves_499_of_500_warns_in_the_notification_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ota_release.pipeline"):
        message = released(498)

    warning = message["quota"]["warning"]
    assert message["outcome"] == "created"
    assert message["quota"]["packages"] == 499
    assert "499 of 500" in warning and "ota-release prune --keep N" in warning
    assert message["summary"].endswith(f"Warning: {warning}.")
    assert any("499 of 500" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("packages", "warns"), [(449, False), (450, True), (451, True), (500, True), (520, True)]
)
def test_the_warning_starts_at_90_percent(packages: int, warns: bool) -> None:
    # 450 of 500 is exactly 90 %: from there on the notification warns
    usage = QuotaUsage(packages, 500)

    assert (usage.warning is not None) == warns
    assert usage.full == (packages >= 500)


def test_the_limit_is_a_setting() -> None:
    message = released(9, ReleaseConfig(package_limit=10))

    assert (message["quota"]["packages"], message["quota"]["limit"]) == (10, 10)
    assert "10 of 10" in message["quota"]["warning"]


def test_at_the_limit_the_refused_release_fails_saying_the_quota_is_full_and_how_to_free_it() -> (
    None
):
    # GIVEN an account holding 500 packages; the fake refuses with a code of its own
    # (no public source names IoT's), so only counting can tell
    message = released(500)

    assert message["outcome"] == "failed"
    summary = message["summary"]
    assert "the package quota is full (500 of 500 packages)" in summary
    assert "ota-release prune --keep N" in summary and "DeleteOTAFirmware" in summary
    fields = [e["field"] for e in message["errors"]]
    assert fields == ["quota", "CreateOTAFirmware"]
    assert "500 of 500" in message["errors"][0]["value"]
    assert message["quota"]["packages"] == 500


def test_a_refusal_below_the_limit_is_reported_as_it_is() -> None:
    h = Harness()
    seed(h, 3)
    h.both()
    h.platform.fail("create_firmware", permanent(code="iot.common.RamActionPermissionDeny"))

    h.run()

    message = h.message()
    assert message["outcome"] == "failed"
    assert "quota" not in message and "full" not in message["summary"]
    assert message["errors"][0]["rule"] == "iot.common.RamActionPermissionDeny"


def test_a_count_that_fails_leaves_the_release_registered_and_says_the_count_is_unknown() -> None:
    h = Harness()
    h.both()
    h.platform.fail("count_packages", transient("iot", "ListOTAFirmware", "Throttling.User"))

    h.run()

    message = h.message()
    assert message["outcome"] == "created"
    assert message["quota"]["packages"] is None
    assert message["quota"]["error"] == "ListOTAFirmware failed: Throttling.User"
    assert message["summary"].endswith(
        "Package count unknown (ListOTAFirmware failed: Throttling.User)."
    )


def test_already_registered_carries_the_count_too() -> None:
    h = Harness()
    seed(h, 2)
    h.platform.add(
        firmware_id="fw-old",
        name=NAME,
        dest_version="2.0.0",
        sign_method="MD5",
        sign=FW_MD5.upper(),
        size=len(FW),
        module="default",
        type=0,
    )
    h.both()

    h.run()

    message = h.message()
    assert message["outcome"] == "already_registered"
    assert message["quota"]["packages"] == 3


@pytest.mark.parametrize("outcome", ["waiting", "rejected"])
def test_outcomes_that_register_nothing_do_not_count(outcome: str) -> None:
    h = Harness()
    h.firmware()
    if outcome == "rejected":
        h.sidecar({"version": "not a version!"})

    h.run()

    message = h.message()
    assert message["outcome"] == outcome
    assert "quota" not in message
    assert h.platform.count("count_packages") == 0


def test_the_count_changes_nothing_in_the_message_id() -> None:
    # GIVEN the same release published twice (a crash-retry), the account meanwhile fuller
    h = Harness()
    h.both()
    first = h.run()
    seed(h, 460)
    h.notifier.messages.clear()

    again = h.run()

    assert again.outcome == first.outcome == Outcome.CREATED
    assert h.message()["quota"]["warning"] is not None
    assert again.message_id == first.message_id


# The counter ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_young_count_is_reused_and_this_processs_creations_are_added() -> None:
    platform = FakeOtaPlatform()
    for n in range(5):
        platform.add(name=f"p{n}", dest_version="1")
    clock = Clock()
    counter = PackageCounter(10.0, monotonic=clock, wall=lambda: WALL)

    first = counter.usage(platform, None, 500)
    counter.created(None)
    clock.now += 9.9
    reused = counter.usage(platform, None, 500)
    clock.now += 0.1
    asked_again = counter.usage(platform, None, 500)

    assert (first.packages, reused.packages, asked_again.packages) == (5, 6, 5)
    assert reused.counted_at == first.counted_at == "2025-11-20T04:00:00.000Z"
    assert platform.count("count_packages") == 2


def test_counts_are_kept_per_instance_and_fresh_asks_anyway() -> None:
    platform = FakeOtaPlatform()
    counter = PackageCounter(60.0, monotonic=Clock())

    counter.usage(platform, "iot-a", 500)
    counter.usage(platform, "iot-b", 500)
    counter.usage(platform, "iot-a", 500)
    counter.usage(platform, "iot-a", 500, fresh=True)

    assert [c for c in platform.calls if c[0] == "count_packages"] == [
        ("count_packages", ("iot-a",)),
        ("count_packages", ("iot-b",)),
        ("count_packages", ("iot-a",)),
    ]


def test_max_age_zero_asks_every_time_and_a_failure_is_not_cached() -> None:
    platform = FakeOtaPlatform()
    counter = PackageCounter(0.0, monotonic=Clock())
    platform.fail("count_packages", transient("iot", "ListOTAFirmware"))

    unknown = counter.usage(platform, None, 500)
    known = counter.usage(platform, None, 500)
    again = counter.usage(platform, None, 500)

    assert (unknown.packages, known.packages, again.packages) == (None, 0, 0)
    assert platform.count("count_packages") == 3


class SlowCount(FakeOtaPlatform):
    """count_packages waits until released, so callers pile up behind the first."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.asked = 0

    def count_packages(self, iot_instance_id: str | None) -> int:
        self.asked += 1
        self.release.wait(5)
        return super().count_packages(iot_instance_id)


def test_callers_arriving_together_wait_for_one_count() -> None:
    platform = SlowCount()
    counter = PackageCounter(10.0)
    results: list[int | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(counter.usage(platform, None, 500).packages))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    platform.release.set()
    for t in threads:
        t.join(10)

    assert results == [0] * 8
    assert platform.count("count_packages") == 1


def test_a_permanent_refusal_of_another_action_never_counts() -> None:
    h = Harness()
    h.both()
    h.platform.fail("generate_upload_url", PermanentError("iot", "GenerateOTAUploadURL", "X", "no"))

    h.run()

    assert h.message()["outcome"] == "failed"
    assert h.platform.count("count_packages") == 0


def test_while_one_caller_renews_an_old_count_the_others_take_the_old_one() -> None:
    platform = SlowCount()
    platform.release.set()
    clock = Clock()
    counter = PackageCounter(10.0, monotonic=clock, wall=lambda: WALL)
    counter.usage(platform, None, 500)  # counted: 0 packages
    platform.add(name="new", dest_version="1")
    platform.release.clear()
    clock.now += 11  # the count is old now
    renewing = threading.Thread(target=lambda: counter.usage(platform, None, 500))
    renewing.start()
    while platform.asked < 2:  # the renewal is under way, and blocked
        threading.Event().wait(0.001)

    old = counter.usage(platform, None, 500)

    platform.release.set()
    renewing.join(10)
    assert (old.packages, old.counted_at) == (0, "2025-11-20T04:00:00.000Z")
    assert counter.usage(platform, None, 500).packages == 1
    assert platform.count("count_packages") == 2
