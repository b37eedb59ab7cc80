"""The local IoT Platform's jobs: ListOTAJobByFirmware over HTTP, and the adapter's list_jobs."""

from __future__ import annotations

import pytest
from alibabacloud_iot20180120 import models as iot_models
from alibabacloud_tea_openapi.exceptions import ClientException

from localcloud.iot import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_IN_PROGRESS,
    JOB_PLANNED,
    JOB_TYPE_UPGRADE,
    JOB_TYPE_VERIFY,
    IotCode,
)
from ota_release.adapters import CloudCredentials
from ota_release.adapters.iot import IotOtaPlatform
from ota_release.errors import NotFoundError
from tests.integration import test_local_iot as base
from tests.integration.test_local_iot import AK, SK, IotEnv, IotFactory, create_request

pytestmark = pytest.mark.integration

# The local IoT fixtures of test_local_iot.py (one server per module, a LocalIot per test).
iot_server = base.iot_server
make_iot = base.make_iot
env = base.env


def new_package(env: IotEnv, name: str = "cam-2_0_0") -> str:
    created = env.client().create_otafirmware(create_request(firmware_name=name))
    assert created.body.success, created.body.error_message
    return str(created.body.data.firmware_id)


def list_jobs(env: IotEnv, firmware_id: str, page: int = 1, size: int = 200) -> object:
    return env.client().list_otajob_by_firmware(
        iot_models.ListOTAJobByFirmwareRequest(
            firmware_id=firmware_id, current_page=page, page_size=size
        )
    )


def adapter(env: IotEnv) -> IotOtaPlatform:
    return IotOtaPlatform(
        CloudCredentials(AK, SK), f"127.0.0.1:{env.port}", "cn-shanghai", protocol="http"
    )


def test_a_package_without_jobs_lists_none(env: IotEnv) -> None:
    firmware_id = new_package(env)

    body = list_jobs(env, firmware_id).body  # type: ignore[attr-defined]

    assert body.success is True
    assert (body.total, body.current_page, body.page_size) == (0, 1, 200)
    assert body.data.simple_otajob_info == []


def test_upgrade_jobs_are_listed_newest_first_with_their_fields(env: IotEnv) -> None:
    firmware_id = new_package(env)
    first = env.iot.add_upgrade_job(firmware_id, status=JOB_COMPLETED, devices=("cam-1",))
    second = env.iot.add_upgrade_job(firmware_id, status=JOB_PLANNED, target_selection="ALL")

    body = list_jobs(env, firmware_id).body  # type: ignore[attr-defined]

    listed = body.data.simple_otajob_info
    assert [j.job_id for j in listed] == [second.job_id, first.job_id]
    assert [j.job_status for j in listed] == [JOB_PLANNED, JOB_COMPLETED]
    assert {j.job_type for j in listed} == {JOB_TYPE_UPGRADE}
    assert (listed[0].target_selection, listed[1].target_selection) == ("ALL", "SPECIFIC")
    assert (listed[0].firmware_id, listed[0].product_key) == (firmware_id, "a1Cam")
    assert listed[0].utc_create.endswith("Z") and listed[0].utc_start_time is None
    assert listed[1].utc_end_time is not None
    assert body.total == 2


def test_jobs_page_at_most_200_and_report_total_and_page_count(env: IotEnv) -> None:
    firmware_id = new_package(env)
    for _ in range(5):
        env.iot.add_upgrade_job(firmware_id)

    second = list_jobs(env, firmware_id, page=2, size=2).body  # type: ignore[attr-defined]
    too_big = list_jobs(env, firmware_id, size=201).body  # type: ignore[attr-defined]

    assert (second.total, second.page_count, len(second.data.simple_otajob_info)) == (5, 3, 2)
    assert (too_big.success, too_big.code) == (False, IotCode.INVALID_PAGE_PARAMS)
    assert "PageSize" in too_big.error_message


def test_listing_without_the_required_parameters_names_each(env: IotEnv) -> None:
    response = env.client().list_otajob_by_firmware(iot_models.ListOTAJobByFirmwareRequest())

    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    for name in ("FirmwareId", "CurrentPage", "PageSize"):
        assert name in response.body.error_message


def test_jobs_of_an_unknown_package_are_not_found(env: IotEnv) -> None:
    body = list_jobs(env, "no-such-package").body  # type: ignore[attr-defined]

    assert (body.success, body.code) == (False, IotCode.FIRMWARE_NOT_FOUND)


def test_a_verify_job_is_recorded_completed_with_auto_verify(env: IotEnv) -> None:
    firmware_id = new_package(env)
    created = env.client().create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=firmware_id,
            product_key="a1Cam",
            target_device_name=["cam-001", "cam-002"],
            timeout_in_minutes=60,
        )
    )

    (job,) = list_jobs(env, firmware_id).body.data.simple_otajob_info  # type: ignore[attr-defined]

    assert job.job_id == created.body.data.job_id
    assert (job.job_type, job.job_status) == (JOB_TYPE_VERIFY, JOB_COMPLETED)
    assert env.iot.backend.jobs.job(job.job_id).devices == ("cam-001", "cam-002")


def test_a_verify_job_stays_in_progress_until_the_verification_completes(
    make_iot: IotFactory,
) -> None:
    env = make_iot(auto_verify=False)
    firmware_id = new_package(env)
    env.client().create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=firmware_id,
            product_key="a1Cam",
            target_device_name=["cam-001"],
            timeout_in_minutes=5,
        )
    )
    running = list_jobs(env, firmware_id).body.data.simple_otajob_info  # type: ignore[attr-defined]

    env.iot.complete_verification(firmware_id)

    done = list_jobs(env, firmware_id).body.data.simple_otajob_info  # type: ignore[attr-defined]
    assert [j.job_status for j in running] == [JOB_IN_PROGRESS]
    assert [j.job_status for j in done] == [JOB_COMPLETED]


def test_deleting_a_package_forgets_its_jobs(env: IotEnv) -> None:
    firmware_id = new_package(env)
    job = env.iot.add_upgrade_job(firmware_id)

    env.client().delete_otafirmware(iot_models.DeleteOTAFirmwareRequest(firmware_id=firmware_id))

    assert env.iot.backend.jobs.for_firmware(firmware_id) == []
    with pytest.raises(KeyError):
        env.iot.backend.jobs.job(job.job_id)


def test_a_job_for_an_unknown_package_or_with_an_unknown_status_is_refused(env: IotEnv) -> None:
    firmware_id = new_package(env)

    with pytest.raises(Exception, match="FirmwareId"):
        env.iot.add_upgrade_job("no-such-package")
    with pytest.raises(ValueError, match="status: must be one of"):
        env.iot.add_upgrade_job(firmware_id, status="RUNNING")


def test_the_adapter_reads_every_page_of_jobs(env: IotEnv) -> None:
    firmware_id = new_package(env)
    made = [env.iot.add_upgrade_job(firmware_id) for _ in range(203)]
    env.iot.backend.set_job_status(made[0].job_id, JOB_CANCELED)

    jobs = adapter(env).list_jobs(firmware_id, None)

    assert [j.job_id for j in jobs] == [m.job_id for m in reversed(made)]
    assert env.iot.calls["ListOTAJobByFirmware"] == 2
    assert [j.in_use for j in jobs].count(False) == 1
    assert jobs[-1].finished and jobs[-1].job_status == JOB_CANCELED
    assert all(j.is_upgrade for j in jobs)


def test_the_adapter_reports_an_unknown_package_as_not_found(env: IotEnv) -> None:
    with pytest.raises(NotFoundError) as caught:
        adapter(env).list_jobs("no-such-package", None)

    assert caught.value.code == IotCode.FIRMWARE_NOT_FOUND


def test_job_listing_has_its_own_qps_window(make_iot: IotFactory) -> None:
    env = make_iot(qps=1)
    firmware_id = new_package(env)
    list_jobs(env, firmware_id)

    with pytest.raises(ClientException) as caught:
        list_jobs(env, firmware_id)
    other = env.client().list_otafirmware(iot_models.ListOTAFirmwareRequest(current_page=1))
    env.clock.value += 1.0
    later = list_jobs(env, firmware_id).body  # type: ignore[attr-defined]

    assert caught.value.code == "Throttling.User"
    assert other.body.success is True and later.success is True


# Quota and counting ---------------------------------------------------------------------------


def test_seeded_packages_count_in_list_total_and_fill_the_quota(make_iot: IotFactory) -> None:
    env = make_iot(package_quota=5)
    seeded = env.iot.seed_packages(4, product_key="pkA")

    counted = adapter(env).count_packages(None)
    created = env.client().create_otafirmware(create_request(firmware_name="fifth"))
    refused = env.client().create_otafirmware(create_request(firmware_name="sixth"))
    listed = env.client().list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=1, page_size=1)
    )

    assert counted == 4
    assert created.body.success is True
    assert (refused.body.success, refused.body.code) == (False, IotCode.FIRMWARE_COUNT_EXCEED)
    assert (listed.body.total, len(listed.body.firmware_info.simple_firmware_info)) == (5, 1)
    assert [p.utc_create for p in seeded] == sorted(p.utc_create for p in seeded)
    assert len({p.firmware_id for p in seeded}) == 4


def test_deleting_a_package_frees_a_place_in_the_quota(make_iot: IotFactory) -> None:
    env = make_iot(package_quota=3)
    oldest = env.iot.seed_packages(3)[0]
    platform = adapter(env)

    request_id = platform.delete_firmware(oldest.firmware_id, None)

    assert request_id
    assert platform.count_packages(None) == 2
    assert env.client().create_otafirmware(create_request()).body.success is True
    with pytest.raises(NotFoundError):
        platform.delete_firmware(oldest.firmware_id, None)
