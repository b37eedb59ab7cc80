"""The local FC's InvokeFunction / GetFunction / On-demand config API, driven by the real
aliyun-fc2 client."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fc2
import pytest
import requests
from werkzeug.wrappers import Response

from localcloud.credentials import CredentialStore
from localcloud.fc import LocalFunctionCompute
from localcloud.fc.template import load_function_spec
from localcloud.fc.testkit import process_group_gone, write_handler, write_template

pytestmark = pytest.mark.integration

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

AK, SECRET = "LTAI-fc-test", "fc-test-secret"

HANDLER = """
data = json.loads(event or b"{}")
time.sleep(data.get("sleep_s", 0))
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


# ---------------------------------------------------------------------- on-demand config

SERVICE, FUNCTION = "ota-release", "create-firmware"
RESOURCE = f"services/{SERVICE}.LATEST/functions/{FUNCTION}"


def put_raw(fc: LocalFunctionCompute, body: bytes) -> fc2.FcHttpResponse:
    """PutOnDemandConfig with any body, signed by fc2 itself (its method only sends JSON)."""
    c = client(fc)
    path = f"/2016-08-15/services/{SERVICE}.LATEST/functions/{FUNCTION}/on-demand-config"
    headers = c._build_common_headers("PUT", path, {})
    return c._do_request("PUT", path, headers, body=body)


def async_invoke(fc: LocalFunctionCompute, payload: dict[str, Any]) -> str:
    resp = client(fc).invoke_function(
        SERVICE,
        FUNCTION,
        payload=json.dumps(payload).encode(),
        headers={"x-fc-invocation-type": "Async"},
    )
    return str(resp.headers["X-Fc-Request-Id"])


def test_on_demand_config_put_then_get_round_trips(fc: LocalFunctionCompute) -> None:
    # GIVEN no cap was ever put: FC answers "not found", whatever the pool's own default
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).get_on_demand_config(SERVICE, "LATEST", FUNCTION)
    assert (err.value.status_code, err.value.err_code) == (404, "OnDemandConfigNotFound")

    # WHEN a cap is put
    put = client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, 3)

    # THEN both calls answer FC's shape, and the running stand-in uses the cap
    expected = {"resource": RESOURCE, "maximumInstanceCount": 3}
    assert put.data == expected
    assert client(fc).get_on_demand_config(SERVICE, "LATEST", FUNCTION).data == expected
    assert fc.max_instances == 3


def test_on_demand_config_is_kept_per_qualifier(fc: LocalFunctionCompute) -> None:
    client(fc).put_on_demand_config(SERVICE, "prod", FUNCTION, 2)

    got = client(fc).get_on_demand_config(SERVICE, "prod", FUNCTION).data
    assert got == {
        "resource": f"services/{SERVICE}.prod/functions/{FUNCTION}",
        "maximumInstanceCount": 2,
    }
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).get_on_demand_config(SERVICE, "LATEST", FUNCTION)
    assert err.value.err_code == "OnDemandConfigNotFound"


@pytest.mark.parametrize(
    ("value", "seen"),
    [(-1, "got -1"), ("2", 'got "2"'), (1.5, "got 1.5"), (True, "got true"), (None, "got null")],
)
def test_put_on_demand_config_refuses_a_bad_count_naming_field_rule_and_value(
    fc: LocalFunctionCompute, value: Any, seen: str
) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, value)

    assert (err.value.status_code, err.value.err_code) == (400, "InvalidArgument")
    message = json.loads(err.value.message)["ErrorMessage"]
    assert message == f"maximumInstanceCount: must be an integer of at least 0, {seen}"
    assert fc.max_instances == 4  # unchanged


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "request body: must be a JSON object"),
        (b"not json", "got not json"),
        (b"[3]", "got [3]"),
        (b'{"maximumInstances": 3}', "maximumInstanceCount: is required"),
    ],
)
def test_put_on_demand_config_refuses_a_body_that_is_not_the_config(
    fc: LocalFunctionCompute, body: bytes, expected: str
) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        put_raw(fc, body)

    assert (err.value.status_code, err.value.err_code) == (400, "InvalidArgument")
    assert expected in json.loads(err.value.message)["ErrorMessage"]
    assert fc.max_instances == 4


def test_on_demand_config_needs_a_valid_signature(fc: LocalFunctionCompute) -> None:
    url = f"{fc.api_url}/2016-08-15/services/{SERVICE}.LATEST/functions/{FUNCTION}/on-demand-config"
    unsigned = requests.put(url, json={"maximumInstanceCount": 1}, timeout=10)
    assert (unsigned.status_code, unsigned.json()["ErrorCode"]) == (401, "MissingRequiredHeader")
    assert requests.get(url, timeout=10).status_code == 401

    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc, secret="not-the-secret").put_on_demand_config(SERVICE, "LATEST", FUNCTION, 1)
    assert (err.value.status_code, err.value.err_code) == (403, "SignatureNotMatch")
    assert fc.max_instances == 4


def test_on_demand_config_of_an_unknown_function_is_not_found(fc: LocalFunctionCompute) -> None:
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        client(fc).put_on_demand_config(SERVICE, "LATEST", "no-such-function", 1)
    assert (err.value.status_code, err.value.err_code) == (404, "FunctionNotFound")
    assert fc.max_instances == 4


def test_fault_seam_sees_the_on_demand_operations(
    fc: LocalFunctionCompute, faults: SwitchableFaults
) -> None:
    faults.response = Response(
        json.dumps({"ErrorCode": "ResourceThrottled", "ErrorMessage": "injected"}),
        status=429,
        content_type="application/json",
    )
    with pytest.raises(fc2.fc_exceptions.FcError) as put_err:
        client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, 1)
    with pytest.raises(fc2.fc_exceptions.FcError) as get_err:
        client(fc).get_on_demand_config(SERVICE, "LATEST", FUNCTION)

    assert put_err.value.err_code == get_err.value.err_code == "ResourceThrottled"
    assert faults.calls == [("fc", "PutOnDemandConfig"), ("fc", "GetOnDemandConfig")]
    assert fc.max_instances == 4


def test_a_cap_of_one_runs_overlapping_invocations_on_one_instance(
    fc: LocalFunctionCompute,
) -> None:
    # GIVEN one invocation per instance (the test template's concurrency) and a cap of 1
    assert fc.instance_concurrency == 1 and fc.max_instances == 4
    client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, 1)

    # WHEN several slow invocations arrive together (each would get its own instance
    # under the default cap of 4)
    ids = {async_invoke(fc, {"sleep_s": 0.2, "n": n}) for n in range(3)}

    # THEN they queue for the one instance instead of starting more
    assert fc.wait_idle(60), fc.logs()
    assert {r.request_id for r in fc.invocations} == ids
    assert all(r.status == "succeeded" for r in fc.invocations)
    assert len(fc.instance_pids) == 1
    assert {r.instance_pid for r in fc.invocations} == set(fc.instance_pids)


def test_a_cap_of_zero_holds_invocations_until_it_is_raised(fc: LocalFunctionCompute) -> None:
    client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, 0)
    request_id = async_invoke(fc, {"n": 1})

    # No instance may start, so the invocation cannot have run (nor failed) meanwhile.
    assert not fc.wait_idle(0.5)
    assert (fc.instance_pids, fc.invocations) == ([], [])

    client(fc).put_on_demand_config(SERVICE, "LATEST", FUNCTION, 1)

    assert fc.wait_idle(60), fc.logs()
    (record,) = fc.invocations
    assert (record.request_id, record.status) == (request_id, "succeeded")


def test_set_max_instances_refuses_what_is_not_a_count(fc: LocalFunctionCompute) -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(
            ValueError, match=rf"max_instances: must be an integer of at least 0, got {bad!r}"
        ):
            fc.set_max_instances(bad)  # type: ignore[arg-type]
    assert fc.max_instances == 4


# ---------------------------------------------------------------------- the route table


def signed_request(fc: LocalFunctionCompute, method: str, path: str) -> fc2.fc_exceptions.FcError:
    """A request fc2 signs for any method and path; the error the stand-in answers with."""
    c = client(fc)
    headers = c._build_common_headers(method, path, {})
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        c._do_request(method, path, headers)
    return err.value


FUNCTION_PATH = f"/2016-08-15/services/{SERVICE}/functions/{FUNCTION}"


@pytest.mark.parametrize(
    ("method", "sub", "operation", "message"),
    [
        ("GET", "/invocations", "InvokeFunction", "InvokeFunction needs POST"),
        (
            "DELETE",
            "/on-demand-config",
            "GetOnDemandConfig",
            "on-demand-config takes PUT or GET, not DELETE",
        ),
        ("POST", "", "GetFunction", "GetFunction needs GET, not POST"),
    ],
)
def test_a_method_a_path_does_not_take_is_refused_naming_the_allowed_ones(
    fc: LocalFunctionCompute,
    faults: SwitchableFaults,
    method: str,
    sub: str,
    operation: str,
    message: str,
) -> None:
    err = signed_request(fc, method, FUNCTION_PATH + sub)

    assert (err.status_code, err.err_code) == (405, "MethodNotAllowed")
    assert message in str(err)
    # the fault seam sees the path's operation, whatever the method
    assert faults.calls == [("fc", operation)]
    assert fc.invocations == []


def test_a_path_no_route_takes_is_not_supported(
    fc: LocalFunctionCompute, faults: SwitchableFaults
) -> None:
    err = signed_request(fc, "GET", FUNCTION_PATH + "/triggers")

    assert (err.status_code, err.err_code) == (404, "PathNotSupported")
    assert f"GET {FUNCTION_PATH}/triggers" in str(err)
    assert faults.calls == [("fc", "GetFunction")]


def test_a_refused_method_is_still_checked_for_its_signature_first(
    fc: LocalFunctionCompute,
) -> None:
    c = client(fc, secret="wrong-secret")
    headers = c._build_common_headers("GET", FUNCTION_PATH + "/invocations", {})
    with pytest.raises(fc2.fc_exceptions.FcError) as err:
        c._do_request("GET", FUNCTION_PATH + "/invocations", headers)
    assert (err.value.status_code, err.value.err_code) == (403, "SignatureNotMatch")
