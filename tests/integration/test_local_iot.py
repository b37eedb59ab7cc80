"""The local IoT Platform, driven over HTTP by the real alibabacloud-iot20180120 SDK."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from alibabacloud_iot20180120 import models as iot_models
from alibabacloud_iot20180120.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_util import models as util_models
from werkzeug.wrappers import Response

from localcloud.contracts import ObjectFacts
from localcloud.credentials import CredentialStore
from localcloud.iot import (
    STATUS_NO_VERIFY,
    STATUS_UNVERIFIED,
    STATUS_VERIFIED,
    IotCode,
    LocalIot,
)
from localcloud.server import LocalServer

pytestmark = pytest.mark.integration

AK, SK = "LTAI-iot-test", "iot-test-secret"
STS_AK, STS_SK, STS_TOKEN = "STS.iot-test", "sts-secret", "sts-token-value"
SCHEMES = ["acs3", "v2"]
PACKAGE_URL = "http://127.0.0.1:1/firmware/acme/cam-2.0.0.bin"
PACKAGE_MD5 = hashlib.md5(b"firmware bytes", usedforsecurity=False).hexdigest()


class DictObjects:
    """ObjectLookup fake: URLs mapped to the facts the local OSS would report."""

    def __init__(self) -> None:
        self.by_url: dict[str, ObjectFacts] = {}

    def lookup_url(self, url: str) -> ObjectFacts | None:
        return self.by_url.get(url)


class FrozenMonotonic:
    """A monotonic clock the test moves by hand, so QPS tests never depend on timing."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class SwappableApp:
    """One server per module, a fresh LocalIot per test: no server start/stop per test."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "no LocalIot installed for this test"
        return self.app(environ, start_response)


@dataclass
class IotEnv:
    iot: LocalIot
    port: int
    store: CredentialStore
    objects: DictObjects
    clock: FrozenMonotonic

    def client(
        self,
        scheme: str = "acs3",
        access_key_id: str = AK,
        secret: str = SK,
        token: str | None = None,
    ) -> Client:
        settings: dict[str, Any] = {
            "access_key_id": access_key_id,
            "access_key_secret": secret,
            "security_token": token,
            "endpoint": f"127.0.0.1:{self.port}",
            "protocol": "http",
            "region_id": "cn-shanghai",
        }
        if scheme == "v2":
            settings["signature_algorithm"] = "v2"
        return Client(open_api_models.Config(**settings))


@dataclass
class IotFactory:
    """Builds a LocalIot with the given options and routes the module's server to it."""

    front: SwappableApp
    port: int

    def __call__(self, **options: Any) -> IotEnv:
        store = CredentialStore()
        store.add(AK, SK)
        store.add(STS_AK, STS_SK, STS_TOKEN)
        objects = DictObjects()
        objects.by_url[PACKAGE_URL] = ObjectFacts("firmware", "acme/cam-2.0.0.bin", 14, PACKAGE_MD5)
        clock = FrozenMonotonic()
        options.setdefault("monotonic", clock)
        iot = LocalIot(store, objects, **options)
        self.front.app = iot
        return IotEnv(iot, self.port, store, objects, clock)


@pytest.fixture(scope="module")
def iot_server() -> Iterator[tuple[SwappableApp, LocalServer]]:
    front = SwappableApp()
    with LocalServer(front, name="iot-test") as server:
        yield front, server


@pytest.fixture
def make_iot(
    monkeypatch: pytest.MonkeyPatch, iot_server: tuple[SwappableApp, LocalServer]
) -> Iterator[IotFactory]:
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    front, server = iot_server
    yield IotFactory(front, server.port)
    front.app = None


@pytest.fixture
def env(make_iot: IotFactory) -> IotEnv:
    return make_iot()


def create_request(**overrides: Any) -> iot_models.CreateOTAFirmwareRequest:
    values: dict[str, Any] = {
        "firmware_name": "cam-2_0_0",
        "dest_version": "2.0.0",
        "firmware_url": PACKAGE_URL,
        "product_key": "a1Cam",
    }
    values.update(overrides)
    return iot_models.CreateOTAFirmwareRequest(**values)


# Signatures and credentials ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_firmware_is_registered_with_either_signature_scheme(env: IotEnv, scheme: str) -> None:
    # GIVEN a package file in OSS and a client signing with the scheme under test
    client = env.client(scheme)

    # WHEN it creates the package without declaring sign or size
    created = client.create_otafirmware(create_request(firmware_desc="首个 build ~*'(a+b)/c"))

    # THEN the package exists, with MD5 and size taken from the object
    assert created.body.success is True
    firmware_id = created.body.data.firmware_id
    assert len(firmware_id) == 26
    assert created.body.data.utc_create.endswith("Z")
    info = client.query_otafirmware(
        iot_models.QueryOTAFirmwareRequest(firmware_id=firmware_id)
    ).body.firmware_info
    assert (info.firmware_sign, info.firmware_size) == (PACKAGE_MD5, 14)
    assert (info.sign_method, info.status, info.firmware_url) == (
        "MD5",
        STATUS_UNVERIFIED,
        PACKAGE_URL,
    )
    assert info.firmware_desc == "首个 build ~*'(a+b)/c"
    assert [f.firmware_name for f in env.iot.firmwares()] == ["cam-2_0_0"]


def test_every_response_names_its_request_id_in_body_and_header(env: IotEnv) -> None:
    response = env.client().create_otafirmware(create_request())

    assert response.body.request_id == response.headers["x-acs-request-id"]
    assert response.body.request_id == response.body.request_id.upper()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sts_key_with_its_token_is_accepted(env: IotEnv, scheme: str) -> None:
    client = env.client(scheme, STS_AK, STS_SK, STS_TOKEN)

    response = client.create_otafirmware(create_request())

    assert response.body.success is True


@pytest.mark.parametrize("scheme", SCHEMES)
def test_wrong_secret_is_refused_as_signature_mismatch(env: IotEnv, scheme: str) -> None:
    client = env.client(scheme, secret="not-the-secret")

    with pytest.raises(ClientException) as caught:
        client.create_otafirmware(create_request())

    assert (caught.value.status_code, caught.value.code) == (400, "SignatureDoesNotMatch")
    assert "string to sign" in caught.value.message
    assert env.iot.firmwares() == []
    assert env.iot.calls["CreateOTAFirmware"] == 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unknown_access_key_is_refused_as_not_found(env: IotEnv, scheme: str) -> None:
    client = env.client(scheme, access_key_id="LTAI-nobody")

    with pytest.raises(ClientException) as caught:
        client.list_otafirmware(iot_models.ListOTAFirmwareRequest(current_page=1, page_size=10))

    assert (caught.value.status_code, caught.value.code) == (404, "InvalidAccessKeyId.NotFound")
    assert caught.value.data["HostId"]
    assert caught.value.data["Recommend"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("token", ["someone-elses-token", None])
def test_sts_key_with_wrong_or_missing_token_is_refused(
    env: IotEnv, scheme: str, token: str | None
) -> None:
    client = env.client(scheme, STS_AK, STS_SK, token)

    with pytest.raises(ClientException) as caught:
        client.create_otafirmware(create_request())

    assert caught.value.code == "InvalidSecurityToken.MismatchWithAccessKey"
    assert env.iot.firmwares() == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_request_from_a_clock_skewed_beyond_15_minutes_is_refused(
    make_iot: IotFactory, scheme: str
) -> None:
    # GIVEN a server whose clock runs 16 minutes ahead of the client's
    env = make_iot(now=lambda: datetime.now(timezone.utc) + timedelta(minutes=16))

    with pytest.raises(ClientException) as caught:
        env.client(scheme).create_otafirmware(create_request())

    assert (caught.value.status_code, caught.value.code) == (400, "InvalidTimeStamp.Expired")


def test_replayed_request_is_refused_as_reused_nonce(make_iot: IotFactory) -> None:
    # GIVEN a request the SDK signed and the server accepted, captured on the way in
    env = make_iot()
    captured: list[tuple[str, str, dict[str, str]]] = []

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        query = environ.get("QUERY_STRING", "")
        captured.append((environ["REQUEST_METHOD"], "/?" + query if query else "/", headers))
        return env.iot(environ, start_response)

    make_iot.front.app = recording
    first = env.client().list_otafirmware(iot_models.ListOTAFirmwareRequest(current_page=1))
    method, target, headers = captured[0]

    # WHEN the same request is sent again, byte for byte
    connection = http.client.HTTPConnection("127.0.0.1", env.port, timeout=10)
    try:
        connection.request(method, target, body=b"", headers=headers)
        replay = connection.getresponse()
        payload = json.loads(replay.read())
    finally:
        connection.close()

    # THEN the gateway refuses the reused nonce
    assert first.body.success is True
    assert (replay.status, payload["Code"]) == (400, "SignatureNonceUsed")


# Throttling ------------------------------------------------------------------------------------


def test_calls_beyond_the_qps_limit_in_one_second_are_throttled(env: IotEnv) -> None:
    # GIVEN the default limit of 10 calls per second and a clock that does not move
    client = env.client()
    for index in range(10):
        assert client.create_otafirmware(create_request(firmware_name=f"fw{index}")).body.success

    # WHEN the 11th call arrives in the same second
    with pytest.raises(ClientException) as caught:
        client.create_otafirmware(create_request(firmware_name="fw10"))

    # THEN it is refused by the gateway, not registered, and the window reopens a second later
    assert not isinstance(caught.value, ThrottlingException)
    assert (caught.value.status_code, caught.value.code) == (400, "Throttling.User")
    assert len(env.iot.firmwares()) == 10
    env.clock.value += 1.0
    assert client.create_otafirmware(create_request(firmware_name="fw10")).body.success
    assert env.iot.calls["CreateOTAFirmware"] == 12


def test_throttling_with_retry_after_header_raises_throttling_exception(
    make_iot: IotFactory,
) -> None:
    env = make_iot(qps=1, retry_after_header=True, throttle_status=429)
    client = env.client()
    request = iot_models.ListOTAFirmwareRequest(current_page=1, page_size=10)
    client.list_otafirmware(request)

    with pytest.raises(ThrottlingException) as caught:
        client.list_otafirmware(request)

    assert (caught.value.status_code, caught.value.code) == (429, "Throttling.User")
    assert caught.value.retry_after == 1000


def test_query_is_throttled_at_twice_the_rate_of_the_other_actions(env: IotEnv) -> None:
    # GIVEN one package and a clock that does not move
    client = env.client()
    firmware_id = client.create_otafirmware(create_request()).body.data.firmware_id
    query = iot_models.QueryOTAFirmwareRequest(firmware_id=firmware_id)

    # WHEN QueryOTAFirmware (documented at 20 QPS) is called 20 times in one second
    answers = [client.query_otafirmware(query).body.success for _ in range(20)]

    # THEN all 20 pass and the 21st is throttled
    assert answers == [True] * 20
    with pytest.raises(ClientException) as caught:
        client.query_otafirmware(query)
    assert caught.value.code == "Throttling.User"


def test_limit_applies_per_action(make_iot: IotFactory) -> None:
    env = make_iot(qps=1)
    client = env.client()

    client.create_otafirmware(create_request())
    listed = client.list_otafirmware(iot_models.ListOTAFirmwareRequest(current_page=1))

    assert listed.body.total == 1


# CreateOTAFirmware business rules ---------------------------------------------------------


def test_invalid_parameters_are_reported_together_naming_each_field(env: IotEnv) -> None:
    response = env.client().create_otafirmware(
        create_request(firmware_name="-starts-with-dash", dest_version="v" * 65, type=1)
    )

    assert (response.status_code, response.body.success) == (200, False)
    assert response.body.code == IotCode.ILLEGAL_REQUEST
    for field_name in ("FirmwareName", "DestVersion", "SrcVersion"):
        assert field_name in response.body.error_message
    assert env.iot.firmwares() == []


def test_duplicate_firmware_name_is_refused(env: IotEnv) -> None:
    client = env.client()
    client.create_otafirmware(create_request())

    again = client.create_otafirmware(create_request(dest_version="2.0.1"))

    assert (again.body.success, again.body.code) == (False, IotCode.FIRMWARE_NAME_EXISTED)
    assert "cam-2_0_0" in again.body.error_message
    assert len(env.iot.firmwares()) == 1


def test_package_quota_reached_is_refused(make_iot: IotFactory) -> None:
    env = make_iot(package_quota=2)
    client = env.client()
    for name in ("one", "two"):
        assert client.create_otafirmware(create_request(firmware_name=name)).body.success

    third = client.create_otafirmware(create_request(firmware_name="three"))

    assert (third.body.success, third.body.code) == (False, IotCode.FIRMWARE_COUNT_EXCEED)
    assert [f.firmware_name for f in env.iot.firmwares()] == ["one", "two"]


def test_url_naming_no_stored_object_is_refused(env: IotEnv) -> None:
    missing = "http://127.0.0.1:1/firmware/acme/missing.bin"

    response = env.client().create_otafirmware(create_request(firmware_url=missing))

    assert (response.body.success, response.body.code) == (False, IotCode.FIRMWARE_URL_INVALID)
    assert "FirmwareUrl" in response.body.error_message


def test_declared_sign_and_size_are_kept_and_no_verify_package_has_status_minus_one(
    env: IotEnv,
) -> None:
    sha256 = hashlib.sha256(b"firmware bytes").hexdigest()
    client = env.client("v2")

    created = client.create_otafirmware(
        create_request(
            sign_method="SHA256",
            firmware_sign=sha256,
            firmware_size=14,
            need_to_verify=False,
            udi='{"channel":"beta"}',
            module_name="camera",
        )
    )

    record = env.iot.firmwares()[0]
    assert created.body.data.firmware_id == record.firmware_id
    assert (record.sign_method, record.firmware_sign, record.firmware_size) == (
        "SHA256",
        sha256,
        14,
    )
    assert (record.status, record.udi, record.module_name) == (
        STATUS_NO_VERIFY,
        '{"channel":"beta"}',
        "camera",
    )


def test_request_naming_another_instance_is_refused(make_iot: IotFactory) -> None:
    env = make_iot(iot_instance_id="iot-cn-local")
    client = env.client()

    wrong = client.create_otafirmware(create_request(iot_instance_id="iot-cn-other"))
    right = client.create_otafirmware(create_request(iot_instance_id="iot-cn-local"))

    assert (wrong.body.success, wrong.body.code) == (False, IotCode.INSTANCE_NOT_FOUND)
    assert right.body.success is True


# GenerateOTAUploadURL ---------------------------------------------------------------------


def test_upload_url_carries_a_post_policy_for_the_ota_bucket(make_iot: IotFactory) -> None:
    # GIVEN a local OSS at a known address
    env = make_iot(oss_base_url="http://127.0.0.1:9999")

    # WHEN an upload is prepared for a .tar.gz file
    data = (
        env.client()
        .generate_otaupload_url(iot_models.GenerateOTAUploadURLRequest(file_suffix="tar.gz"))
        .body.data
    )

    # THEN the policy pins bucket, key and size, and is signed by the registered OSS key
    policy = json.loads(base64.b64decode(data.policy))
    assert data.host == "http://127.0.0.1:9999/iotx-ota"
    assert data.key.startswith("ota/") and data.key.endswith(".tar.gz")
    assert data.firmware_url == f"{data.host}/{data.key}"
    assert policy["conditions"] == [
        ["content-length-range", 0, 1000 * 1024 * 1024],
        {"bucket": "iotx-ota"},
        ["eq", "$key", data.key],
    ]
    created = datetime.strptime(data.utc_create, "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert expires == created.replace(microsecond=0) + timedelta(seconds=60)
    oss_key = env.store.get(data.ossaccess_key_id)
    assert oss_key is not None and oss_key == env.iot.oss_credential
    expected = hmac.new(oss_key.access_key_secret.encode(), data.policy.encode(), "sha1")
    assert data.signature == base64.b64encode(expected.digest()).decode()
    assert data.object_storage == "OSS"


def test_upload_url_keys_are_unique_and_default_to_bin(env: IotEnv) -> None:
    client = env.client()
    request = iot_models.GenerateOTAUploadURLRequest()

    keys = {client.generate_otaupload_url(request).body.data.key for _ in range(3)}

    assert len(keys) == 3
    assert all(key.endswith(".bin") for key in keys)


def test_upload_url_for_an_unknown_suffix_is_refused(env: IotEnv) -> None:
    response = env.client().generate_otaupload_url(
        iot_models.GenerateOTAUploadURLRequest(file_suffix="exe")
    )

    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    assert "FileSuffix" in response.body.error_message


# List, query, delete, verify --------------------------------------------------------------


def test_list_pages_newest_first_and_filters(env: IotEnv) -> None:
    client = env.client()
    for index in range(5):
        client.create_otafirmware(
            create_request(
                firmware_name=f"fw{index}",
                dest_version="1.0" if index % 2 else "2.0",
                product_key="pkA" if index < 3 else "pkB",
            )
        )

    page2 = client.list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=2, page_size=2)
    ).body
    by_version = client.list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=1, page_size=10, dest_version="1.0")
    ).body
    by_product = client.list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=1, page_size=10, product_key="pkB")
    ).body

    assert (page2.total, page2.page_count, page2.current_page, page2.page_size) == (5, 3, 2, 2)
    assert [f.firmware_name for f in page2.firmware_info.simple_firmware_info] == ["fw2", "fw1"]
    assert {f.firmware_name for f in by_version.firmware_info.simple_firmware_info} == {
        "fw1",
        "fw3",
    }
    assert by_product.total == 2
    first = by_product.firmware_info.simple_firmware_info[0]
    assert (first.firmware_sign, first.firmware_size, first.status) == (PACKAGE_MD5, 14, 0)


def test_list_reports_only_the_documented_status_values(env: IotEnv) -> None:
    # GIVEN a package that needs verification (status 0) and one that does not (status -1)
    client = env.client()
    client.create_otafirmware(create_request(firmware_name="checked"))
    unchecked = client.create_otafirmware(
        create_request(firmware_name="unchecked", need_to_verify=False)
    ).body.data.firmware_id

    # WHEN both are listed and the second is queried
    listed = client.list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=1, page_size=10)
    ).body.firmware_info.simple_firmware_info
    queried = client.query_otafirmware(
        iot_models.QueryOTAFirmwareRequest(firmware_id=unchecked)
    ).body.firmware_info

    # THEN the list shows only ListOTAFirmware's documented values (0-3): the package that
    # needs no verification has no Status there; QueryOTAFirmware reports its -1
    statuses = {f.firmware_name: f.status for f in listed}
    assert statuses == {"checked": STATUS_UNVERIFIED, "unchecked": None}
    assert queried.status == STATUS_NO_VERIFY


def test_page_size_over_100_is_refused(env: IotEnv) -> None:
    response = env.client().list_otafirmware(
        iot_models.ListOTAFirmwareRequest(current_page=1, page_size=101)
    )

    assert (response.body.success, response.body.code) == (False, IotCode.INVALID_PAGE_PARAMS)
    assert "PageSize" in response.body.error_message


def test_unknown_firmware_is_not_found_for_query_and_delete(env: IotEnv) -> None:
    client = env.client()

    queried = client.query_otafirmware(iot_models.QueryOTAFirmwareRequest(firmware_id="nope"))
    deleted = client.delete_otafirmware(iot_models.DeleteOTAFirmwareRequest(firmware_id="nope"))

    assert (queried.body.success, queried.body.code) == (False, IotCode.FIRMWARE_NOT_FOUND)
    assert (deleted.body.success, deleted.body.code) == (False, IotCode.FIRMWARE_NOT_FOUND)


def test_deleted_firmware_is_gone_and_its_name_reusable(env: IotEnv) -> None:
    client = env.client()
    firmware_id = client.create_otafirmware(create_request()).body.data.firmware_id

    deleted = client.delete_otafirmware(
        iot_models.DeleteOTAFirmwareRequest(firmware_id=firmware_id)
    )

    assert deleted.body.success is True
    assert env.iot.firmwares() == []
    assert client.create_otafirmware(create_request()).body.success is True


def test_verify_job_marks_the_package_verified(env: IotEnv) -> None:
    client = env.client()
    firmware_id = client.create_otafirmware(create_request()).body.data.firmware_id

    job = client.create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=firmware_id,
            product_key="a1Cam",
            target_device_name=["cam-001", "cam-002"],
            timeout_in_minutes=60,
        )
    )

    assert job.body.success is True and job.body.data.job_id
    assert env.iot.firmwares()[0].status == STATUS_VERIFIED


def test_verify_job_without_auto_verify_stays_verifying_until_completed(
    make_iot: IotFactory,
) -> None:
    env = make_iot(auto_verify=False)
    client = env.client()
    firmware_id = client.create_otafirmware(create_request()).body.data.firmware_id
    client.create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=firmware_id,
            product_key="a1Cam",
            target_device_name=["cam-001"],
            timeout_in_minutes=1,
        )
    )
    verifying = client.query_otafirmware(
        iot_models.QueryOTAFirmwareRequest(firmware_id=firmware_id)
    )

    env.iot.complete_verification(firmware_id, ok=False)

    assert verifying.body.firmware_info.status == 2
    assert env.iot.firmwares()[0].status == 3


def test_verify_job_limits_are_enforced(env: IotEnv) -> None:
    client = env.client()
    firmware_id = client.create_otafirmware(create_request()).body.data.firmware_id

    response = client.create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=firmware_id,
            product_key="a1Cam",
            target_device_name=[f"cam-{n}" for n in range(11)],
            timeout_in_minutes=1441,
        )
    )

    assert (response.body.success, response.body.code) == (False, IotCode.ILLEGAL_REQUEST)
    assert "TargetDeviceName" in response.body.error_message
    assert "TimeoutInMinutes" in response.body.error_message
    assert env.iot.firmwares()[0].status == STATUS_UNVERIFIED


def test_package_that_needs_no_verification_cannot_be_verified(env: IotEnv) -> None:
    client = env.client()
    created = client.create_otafirmware(create_request(need_to_verify=False))

    response = client.create_otaverify_job(
        iot_models.CreateOTAVerifyJobRequest(
            firmware_id=created.body.data.firmware_id,
            product_key="a1Cam",
            target_device_name=["cam-001"],
            timeout_in_minutes=5,
        )
    )

    assert (response.body.success, response.body.code) == (False, IotCode.VERIFY_NOT_ALLOWED)


# Gateway behaviour, seams and accessors --------------------------------------------------


def test_unknown_action_is_refused_by_the_gateway(env: IotEnv) -> None:
    client = env.client()
    params = open_api_models.Params(
        action="CreateOTAFirmwareTwice",
        version="2018-01-20",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    with pytest.raises(ClientException) as caught:
        client.call_api(
            params, open_api_models.OpenApiRequest(query={}), util_models.RuntimeOptions()
        )

    assert (caught.value.status_code, caught.value.code) == (404, "InvalidAction.NotFound")


class FailFirstCreate:
    """A fault hook answering the first CreateOTAFirmware with a server error."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def before(self, service: str, operation: str) -> Response | None:
        self.seen.append((service, operation))
        if operation == "CreateOTAFirmware" and len(self.seen) == 1:
            body = {"RequestId": "FAULT", "Code": "iot.system.SystemException", "Message": "x"}
            return Response(json.dumps(body), status=503, content_type="application/json")
        return None


def test_fault_hook_can_answer_instead_of_the_service(make_iot: IotFactory) -> None:
    hook = FailFirstCreate()
    env = make_iot(faults=hook)
    client = env.client()

    with pytest.raises(ServerException) as caught:
        client.create_otafirmware(create_request())
    retried = client.create_otafirmware(create_request())

    assert caught.value.code == "iot.system.SystemException"
    assert retried.body.success is True
    assert hook.seen == [("iot", "CreateOTAFirmware"), ("iot", "CreateOTAFirmware")]
    assert len(env.iot.firmwares()) == 1


def test_reset_forgets_packages_and_counts(env: IotEnv) -> None:
    env.client().create_otafirmware(create_request())

    env.iot.reset()

    assert env.iot.firmwares() == []
    assert env.iot.calls == {}
