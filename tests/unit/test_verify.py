"""The verify step after ``created``: one verification job per package, whatever the delivery."""

from __future__ import annotations

from typing import Any

import pytest

from ota_release.errors import PermanentError, RetriesExhausted
from ota_release.notification import Outcome
from ota_release.pipeline import ReleaseConfig
from ota_release.ports import OtaJob
from tests.unit.fakes import VERIFY_JOB_TYPE, permanent, transient
from tests.unit.test_release import SC_KEY, Harness

DEVICES = ["cam-lab-01", "cam-lab-02"]
VERIFY_SIDECAR: dict[str, Any] = {
    "version": "2.0.0",
    "product_key": "a1Cam",
    "verify": {"devices": DEVICES, "timeout_minutes": 30},
}


def test_a_created_package_gets_its_verification_job_with_the_sidecar_s_devices() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    assert h.run().outcome is Outcome.CREATED
    [package] = h.platform.firmware
    assert h.platform.verify_jobs == [(package.firmware_id, "a1Cam", tuple(DEVICES), 30)]
    message = h.message()
    [job] = h.platform.jobs[package.firmware_id]
    assert message["verification"] == {
        "job_id": job.job_id,
        "status": "started",
        "devices": DEVICES,
        "timeout_minutes": 30,
    }
    # the lookup came first, and the verify call's request id is accounted for
    assert h.platform.count("list_jobs") == 1
    assert "IOT-VERIFY-1" in message["request_ids"]["iot"]


def test_duplicate_events_start_one_job_and_share_the_message_id() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    first = h.run()
    second = h.run()  # the same event again: the package is this upload's own attempt
    third = h.run(SC_KEY)  # the other half's event
    assert [r.outcome for r in (first, second, third)] == [Outcome.CREATED] * 3
    assert len(h.platform.verify_jobs) == 1
    assert h.platform.count("create_verify_job") == 1
    statuses = [h.message(i)["verification"]["status"] for i in range(3)]
    assert statuses == ["started", "existing", "existing"]
    assert first.message_id == second.message_id == third.message_id


def test_a_transient_failure_that_outlives_the_budget_is_retried_by_fc_and_starts_one_job() -> None:
    h = Harness(max_attempts=2)
    h.both(VERIFY_SIDECAR)
    h.platform.fail("create_verify_job", *[transient("iot", "CreateOTAVerifyJob")] * 2)
    with pytest.raises(RetriesExhausted):
        h.run()
    assert h.notifier.attempts == []  # no message for an unfinished attempt
    assert len(h.platform.firmware) == 1  # the package exists
    retried = h.run()  # FC's retry finds the package as its own attempt
    assert retried.outcome is Outcome.CREATED
    assert h.platform.count("create_firmware") == 1
    assert len(h.platform.verify_jobs) == 1
    assert h.message()["verification"]["status"] == "started"


def test_a_transient_failure_within_the_budget_is_retried_in_the_invocation() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    h.platform.fail("create_verify_job", transient("iot", "CreateOTAVerifyJob", "Throttling"))
    assert h.run().outcome is Outcome.CREATED
    assert len(h.platform.verify_jobs) == 1 and len(h.sleeps) == 1


def test_a_refused_verification_leaves_the_package_created_and_says_why() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    h.platform.fail(
        "create_verify_job", permanent(operation="CreateOTAVerifyJob", code="iot.x.DeviceNotFound")
    )
    assert h.run().outcome is Outcome.CREATED
    assert len(h.platform.firmware) == 1 and h.platform.verify_jobs == []
    message = h.message()
    assert message["outcome"] == "created" and message["errors"] == []
    assert message["verification"] == {
        "job_id": None,
        "status": "refused",
        "devices": DEVICES,
        "timeout_minutes": 30,
        "error": {
            "field": "CreateOTAVerifyJob",
            "rule": "iot.x.DeviceNotFound",
            "value": "refused",
        },
    }
    assert "REQ-P" in message["request_ids"]["iot"]


def test_a_refusal_because_the_other_half_started_the_job_meanwhile_is_existing() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    real = h.platform.create_verify_job

    def raced(
        firmware_id: str,
        product_key: str,
        devices: tuple[str, ...],
        timeout_minutes: int | None,
        iot_instance_id: str | None,
    ) -> tuple[str, str | None]:
        real(firmware_id, product_key, devices, timeout_minutes, iot_instance_id)  # the twin wins
        raise PermanentError(
            "iot", "CreateOTAVerifyJob", "iot.ota.FirmwareVerifyNotAllowed", "verifying"
        )

    h.platform.create_verify_job = raced  # type: ignore[method-assign]
    assert h.run().outcome is Outcome.CREATED
    assert len(h.platform.verify_jobs) == 1
    verification = h.message()["verification"]
    assert verification["status"] == "existing" and verification["job_id"] is not None


def test_an_upgrade_batch_on_the_package_is_not_taken_for_its_verification() -> None:
    h = Harness()
    h.both(VERIFY_SIDECAR)
    real = h.platform.list_jobs
    calls: list[str] = []

    def with_an_upgrade(firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]:
        if not calls:
            h.platform.add_job(firmware_id)  # an upgrade batch, somebody else's
        calls.append(firmware_id)
        return real(firmware_id, iot_instance_id)

    h.platform.list_jobs = with_an_upgrade  # type: ignore[method-assign]
    assert h.run().outcome is Outcome.CREATED
    assert h.message()["verification"]["status"] == "started"
    kinds = [j.job_type for j in h.platform.jobs[h.platform.firmware[0].firmware_id]]
    assert kinds == ["UPGRADE_FIRMWARE", VERIFY_JOB_TYPE]


def test_without_a_verify_block_no_job_is_looked_up_or_started() -> None:
    h = Harness()
    h.both({"version": "2.0.0", "product_key": "a1Cam"})
    assert h.run().outcome is Outcome.CREATED
    assert h.platform.count("list_jobs") == 0 and h.platform.count("create_verify_job") == 0
    assert "verification" not in h.message()


def test_an_already_registered_release_starts_no_verification() -> None:
    h = Harness()
    h.platform.add(
        name="cam-2_0_0",
        dest_version="2.0.0",
        product_key="a1Cam",
        sign=None,
        status=0,
    )
    h.both(VERIFY_SIDECAR)
    result = h.run()
    assert result.outcome is Outcome.ALREADY_REGISTERED
    assert h.platform.count("create_verify_job") == 0


def test_the_verify_call_carries_the_release_s_instance_id() -> None:
    h = Harness(ReleaseConfig(iot_instance_id="iot-cn-test"))
    h.both(VERIFY_SIDECAR)
    assert h.run().outcome is Outcome.CREATED
    [(_name, args)] = [c for c in h.platform.calls if c[0] == "create_verify_job"]
    assert args[-1] == "iot-cn-test"


def test_a_refused_verification_is_a_different_fact_from_a_started_one() -> None:
    started, refused = Harness(), Harness()
    for h in (started, refused):
        h.both(VERIFY_SIDECAR)
    refused.platform.fail("create_verify_job", permanent(operation="CreateOTAVerifyJob"))
    ids = [h.run().message_id for h in (started, refused)]
    assert ids[0] != ids[1]


# The rules (rules.check_create_verify_job, shared by the sidecar check and the local IoT) ------


@pytest.mark.parametrize(
    ("devices", "timeout", "fields"),
    [
        (["abcd"], 1, []),
        (["a" * 32, "dev@site.1:x_y-z"], 1440, []),
        ([f"device-{i:02d}" for i in range(10)], None, []),
        ([f"device-{i:02d}" for i in range(11)], None, ["TargetDeviceName"]),
        ([], None, ["TargetDeviceName"]),
        (["abc"], None, ["TargetDeviceName[0]"]),
        (["ok-device", "a" * 33], None, ["TargetDeviceName[1]"]),
        (["dev ice"], None, ["TargetDeviceName[0]"]),
        (["设备名称名称"], None, ["TargetDeviceName[0]"]),
        (["ok-device"], 0, ["TimeoutInMinutes"]),
        (["ok-device"], 1441, ["TimeoutInMinutes"]),
        (["ok-device"], "30", []),  # as it arrives in a query string
        (["ok-device"], True, ["TimeoutInMinutes"]),
    ],
)
def test_verify_job_rules_take_the_api_s_limits(
    devices: list[Any], timeout: Any, fields: list[str]
) -> None:
    from ota_release.rules import check_create_verify_job

    params = {"ProductKey": "a1Cam", "TargetDeviceName": devices, "TimeoutInMinutes": timeout}
    assert [v.field for v in check_create_verify_job(params)] == fields


def test_a_verify_job_needs_a_product_key() -> None:
    from ota_release.rules import check_create_verify_job

    [violation] = check_create_verify_job({"TargetDeviceName": ["ok-device"]})
    assert violation.field == "ProductKey" and "required" in violation.rule
