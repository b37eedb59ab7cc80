"""The local IoT Platform's CreateOTAVerifyJob through the real SDK, and the adapter's call."""

from __future__ import annotations

import pytest
from alibabacloud_iot20180120 import models as iot_models

from localcloud.iot import JOB_TYPE_VERIFY, STATUS_VERIFYING, IotCode
from ota_release.adapters import CloudCredentials
from ota_release.adapters.iot import IotOtaPlatform
from ota_release.errors import PermanentError
from tests.integration import test_local_iot as base
from tests.integration.test_local_iot import AK, SK, IotEnv, IotFactory, create_request

pytestmark = pytest.mark.integration

iot_server = base.iot_server
make_iot = base.make_iot
env = base.env


def new_package(env: IotEnv, **overrides: object) -> str:
    created = env.client().create_otafirmware(create_request(**overrides))
    assert created.body.success, created.body.error_message
    return str(created.body.data.firmware_id)


def verify_request(firmware_id: str, **overrides: object) -> iot_models.CreateOTAVerifyJobRequest:
    values: dict[str, object] = {
        "firmware_id": firmware_id,
        "product_key": "a1Cam",
        "target_device_name": ["cam-lab-01"],
    }
    values.update(overrides)
    return iot_models.CreateOTAVerifyJobRequest(**values)


def adapter(env: IotEnv) -> IotOtaPlatform:
    return IotOtaPlatform(
        CloudCredentials(AK, SK), f"127.0.0.1:{env.port}", "cn-shanghai", protocol="http"
    )


def test_timeout_in_minutes_may_be_left_out(env: IotEnv) -> None:
    firmware_id = new_package(env)
    response = env.client().create_otaverify_job(verify_request(firmware_id))
    assert response.body.success is True, response.body.error_message
    assert response.body.data.job_id


def test_a_device_name_outside_register_device_s_rule_is_refused_naming_it(env: IotEnv) -> None:
    firmware_id = new_package(env)
    response = env.client().create_otaverify_job(
        verify_request(firmware_id, target_device_name=["cam lab/1", "ok-device"])
    )
    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    assert "TargetDeviceName[0]" in response.body.error_message
    assert "'cam lab/1'" in response.body.error_message
    assert env.iot.backend.jobs_of(firmware_id) == []


def test_a_verify_job_names_the_release_s_instance(make_iot: IotFactory) -> None:
    env = make_iot(iot_instance_id="iot-cn-local")
    firmware_id = new_package(env, iot_instance_id="iot-cn-local")
    wrong = env.client().create_otaverify_job(
        verify_request(firmware_id, iot_instance_id="iot-cn-other")
    )
    assert (wrong.body.success, wrong.body.code) == (False, IotCode.INSTANCE_NOT_FOUND)


def test_the_adapter_starts_a_job_the_listing_shows_on_the_named_devices(
    make_iot: IotFactory,
) -> None:
    env = make_iot(auto_verify=False)
    firmware_id = new_package(env)
    platform = adapter(env)
    job_id, request_id = platform.create_verify_job(
        firmware_id, "a1Cam", ("cam-lab-01", "cam-lab-02"), 30, None
    )
    assert request_id
    [job] = platform.list_jobs(firmware_id, None)
    assert (job.job_id, job.job_type, job.is_upgrade) == (job_id, JOB_TYPE_VERIFY, False)
    [stored] = env.iot.backend.jobs_of(firmware_id)
    assert stored.devices == ("cam-lab-01", "cam-lab-02")
    assert env.iot.firmwares()[0].status == STATUS_VERIFYING


def test_the_adapter_reports_a_second_verification_as_a_permanent_refusal(
    make_iot: IotFactory,
) -> None:
    env = make_iot(auto_verify=False)
    firmware_id = new_package(env)
    platform = adapter(env)
    platform.create_verify_job(firmware_id, "a1Cam", ("cam-lab-01",), None, None)
    with pytest.raises(PermanentError) as refused:
        platform.create_verify_job(firmware_id, "a1Cam", ("cam-lab-01",), None, None)
    assert refused.value.code == IotCode.VERIFY_NOT_ALLOWED
    assert len(env.iot.backend.jobs_of(firmware_id)) == 1
