"""The local FC's InvokeFunction / GetFunction API, driven by the real aliyun-fc2 client."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fc2
import pytest
from werkzeug.wrappers import Response

from localcloud.credentials import CredentialStore
from localcloud.fc import LocalFunctionCompute
from localcloud.fc_template import load_function_spec
from localcloud.fc_testkit import process_group_gone, write_handler, write_template

pytestmark = pytest.mark.integration

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

AK, SECRET = "LTAI-fc-test", "fc-test-secret"

HANDLER = """
data = json.loads(event or b"{}")
if data.get("fail"):
    raise ValueError("asked to fail")
return json.dumps({"echo": data, "request_id": context.request_id})
"""


class SwitchableFaults:
    """A fault seam double: answers every call with a canned response while armed."""

    def __init__(self) -> None:
        self.response: Response | None = None
        self.calls: list[tuple[str, str]] = []

    def before(self, service: str, operation: str) -> Response | None:
        self.calls.append((service, operation))
        return self.response


@pytest.fixture
def faults() -> SwitchableFaults:
    return SwitchableFaults()


@pytest.fixture
def fc(tmp_path: Path, faults: SwitchableFaults) -> Iterator[LocalFunctionCompute]:
    code_dir = tmp_path / "functions" / "create_firmware"
    write_handler(code_dir, HANDLER)
    store = CredentialStore()
    store.add(AK, SECRET)
    stand_in = LocalFunctionCompute(
        load_function_spec(write_template(tmp_path, retries=0)),
        code_dir=code_dir,
        flavour="s",
        credentials=store,
        faults=faults,
    ).start()
    yield stand_in
    stand_in.stop()
    assert all(process_group_gone(pid) for pid in stand_in.instance_pids)


@pytest.fixture(autouse=True)
def _quiet_fc2_error_logging(caplog: pytest.LogCaptureFixture) -> None:
    # fc2 logs request headers (with the Authorization header) at ERROR on every 4xx.
    caplog.set_level(logging.CRITICAL)


def client(fc: LocalFunctionCompute, secret: str = SECRET, **kwargs: Any) -> fc2.Client:
    return fc2.Client(endpoint=fc.api_url, accessKeyID=AK, accessKeySecret=secret, **kwargs)


def test_sync_invoke_returns_the_handler_result(fc: LocalFunctionCompute) -> None:
    resp = client(fc).invoke_function("ota-release", "create-firmware", payload=b'{"n": 1}')
    out = json.loads(resp.data)
    assert out["echo"] == {"n": 1}
    assert resp.headers["X-Fc-Request-Id"] == out["request_id"]
    assert [r.source for r in fc.invocations] == ["sync"]


def test_sync_invoke_with_qualifier_and_sts_credentials(fc: LocalFunctionCompute) -> None:
    # The function's own minted STS key is accepted, with its security token.
    cred = fc.role_credential
    assert cred is not None
    sts_client = fc2.Client(
        endpoint=fc.api_url,
        accessKeyID=cred.access_key_id,
        accessKeySecret=cred.access_key_secret,
        securityToken=cred.security_token,
    )
    resp = sts_client.invoke_function(
        "ota-release", "create-firmware", payload=b"{}", qualifier="LATEST"
    )
    assert json.loads(resp.data)["echo"] == {}


def test_function_error_is_reported_the_way_fc2_raises_it(fc: LocalFunctionCompute) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).invoke_function("ota-release", "create-firmware", payload=b'{"fail": true}')
    assert err.value.status_code == 200
    body = json.loads(err.value.message)
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "asked to fail")


def test_async_invoke_is_accepted_then_run(fc: LocalFunctionCompute) -> None:
    resp = client(fc).invoke_function(
        "ota-release",
        "create-firmware",
        payload=b'{"n": 2}',
        headers={"x-fc-invocation-type": "Async"},
    )
    request_id = resp.headers["X-Fc-Request-Id"]
    assert fc.wait_idle(30)
    (record,) = fc.invocations
    assert (record.request_id, record.source, record.status) == (request_id, "async", "succeeded")
    assert record.result_json()["echo"] == {"n": 2}


def test_wrong_secret_is_rejected_with_signature_error(fc: LocalFunctionCompute) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc, secret="not-the-secret").invoke_function(
            "ota-release", "create-firmware", payload=b"{}"
        )
    assert (err.value.status_code, err.value.err_code) == (403, "SignatureNotMatch")
    assert fc.invocations == []


def test_sts_key_without_its_token_is_rejected(fc: LocalFunctionCompute) -> None:
    cred = fc.role_credential
    assert cred is not None
    no_token = fc2.Client(
        endpoint=fc.api_url, accessKeyID=cred.access_key_id, accessKeySecret=cred.access_key_secret
    )
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        no_token.invoke_function("ota-release", "create-firmware", payload=b"{}")
    assert err.value.status_code == 403


def test_unknown_function_and_service_are_not_found(fc: LocalFunctionCompute) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).invoke_function("ota-release", "no-such-function", payload=b"{}")
    assert (err.value.status_code, err.value.err_code) == (404, "FunctionNotFound")
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).invoke_function("no-such-service", "create-firmware", payload=b"{}")
    assert (err.value.status_code, err.value.err_code) == (404, "ServiceNotFound")


def test_get_function_describes_the_template_function(fc: LocalFunctionCompute) -> None:
    data = client(fc).get_function("ota-release", "create-firmware").data
    assert (data["functionName"], data["handler"], data["timeout"]) == (
        "create-firmware",
        "index.handler",
        10,
    )


def test_fault_seam_can_answer_instead_of_the_function(
    fc: LocalFunctionCompute, faults: SwitchableFaults
) -> None:
    faults.response = Response(
        json.dumps({"ErrorCode": "ResourceThrottled", "ErrorMessage": "injected"}),
        status=429,
        content_type="application/json",
    )
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).invoke_function("ota-release", "create-firmware", payload=b"{}")
    assert (err.value.status_code, err.value.err_code) == (429, "ResourceThrottled")
    assert faults.calls == [("fc", "InvokeFunction")]
    assert fc.invocations == []
