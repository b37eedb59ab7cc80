"""The custom-runtime server speaks FC's /invoke and /initialize protocol around a handler."""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.fc_headers import FC_HEADERS


def post(url: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None):
    """POST and return (status, headers, body) whatever the status code."""
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url + path, data=body, method="POST", headers=headers or FC_HEADERS
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_invoke_passes_event_bytes_and_returns_handler_result(runtime_server_module, serve):
    # GIVEN a handler that echoes what it received
    seen: list[bytes] = []

    def handler(event: bytes, context: Any) -> str:
        seen.append(event)
        return json.dumps({"outcome": "registered", "bytes": len(event)})

    running = serve(runtime_server_module.FunctionRuntime(handler, out=io.StringIO()))
    event = b'{"events": [{"eventName": "ObjectCreated:PutObject"}]}'

    # WHEN FC posts the event to /invoke
    status, headers, body = post(running.url, "/invoke", event)

    # THEN the raw bytes reach the handler and its string comes back with x-fc-status 200
    assert seen == [event]
    assert status == 200
    assert headers["x-fc-status"] == "200"
    assert json.loads(body) == {"outcome": "registered", "bytes": len(event)}


def test_context_has_the_python310_runtime_attributes_from_fc_headers(runtime_server_module, serve):
    contexts: list[Any] = []
    runtime = runtime_server_module.FunctionRuntime(
        lambda event, context: contexts.append(context), out=io.StringIO()
    )
    running = serve(runtime)

    post(running.url, "/invoke", b"{}")

    (ctx,) = contexts
    assert ctx.request_id == "req-0001"
    assert ctx.credentials.access_key_id == "STS.dummy-key-id"
    assert ctx.credentials.access_key_secret == "dummy-secret-value-9f8e7d"
    assert ctx.credentials.security_token == "dummy-token-CAIS-1a2b3c"
    assert (ctx.function.name, ctx.function.handler) == ("create-firmware", "index.handler")
    assert (ctx.function.memory, ctx.function.timeout) == (512, 600)
    assert ctx.function.initializer == "index.initializer"
    assert (ctx.service.name, ctx.service.log_project, ctx.service.log_store) == (
        "ota-release",
        "ota-release-logs",
        "function-logs",
    )
    assert (ctx.service.qualifier, ctx.service.version_id) == ("LATEST", "3")
    assert (ctx.region, ctx.account_id) == ("cn-shanghai", "123456789012")


def test_invoke_exports_request_credentials_to_alibaba_cloud_environment(
    runtime_server_module, serve
):
    seen_env: dict[str, str | None] = {}

    def handler(event: bytes, context: Any) -> None:
        for name in (
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            "ALIBABA_CLOUD_SECURITY_TOKEN",
        ):
            seen_env[name] = os.environ.get(name)

    running = serve(runtime_server_module.FunctionRuntime(handler, out=io.StringIO()))
    status, _, body = post(running.url, "/invoke", b"{}")

    assert status == 200 and body == b""
    assert seen_env == {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.dummy-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "dummy-secret-value-9f8e7d",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "dummy-token-CAIS-1a2b3c",
    }


def test_handler_exception_is_reported_with_fc_error_protocol(runtime_server_module, serve):
    def handler(event: bytes, context: Any) -> str:
        raise ValueError("sidecar missing DestVersion")

    running = serve(runtime_server_module.FunctionRuntime(handler, out=io.StringIO()))
    status, headers, body = post(running.url, "/invoke", b"{}")

    assert status == 404
    assert headers["x-fc-status"] == "404"
    error = json.loads(body)
    assert error["errorMessage"] == "sidecar missing DestVersion"
    assert error["errorType"] == "ValueError"
    assert [frame[2] for frame in error["stackTrace"]] == ["in handler"]


def test_error_logs_never_contain_the_secret_or_token(runtime_server_module, serve, capfd):
    out = io.StringIO()

    def handler(event: bytes, context: Any) -> str:
        raise RuntimeError("IoT said no")

    running = serve(runtime_server_module.FunctionRuntime(handler, out=out))
    post(running.url, "/invoke", b"{}")
    post(running.url, "/initialize")

    logged = out.getvalue() + "".join(capfd.readouterr())
    assert "FC Invoke Start RequestId: req-0001" in logged
    assert "FC Invoke End RequestId: req-0001" in logged
    assert "IoT said no" in logged
    assert FC_HEADERS["x-fc-access-key-secret"] not in logged
    assert FC_HEADERS["x-fc-security-token"] not in logged


def test_initialize_runs_the_configured_initializer_once_per_call(runtime_server_module, serve):
    calls: list[str] = []
    runtime = runtime_server_module.FunctionRuntime(
        lambda event, context: "ok",
        initializer=lambda context: calls.append(context.request_id),
        out=io.StringIO(),
    )
    running = serve(runtime)

    status, headers, _ = post(running.url, "/initialize")

    assert (status, headers["x-fc-status"]) == (200, "200")
    assert calls == ["req-0001"]


def test_handler_spec_is_imported_lazily_and_warmed_by_initialize(
    runtime_server_module, serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a stand-in index module on the path, like index.py in /code
    module_dir = tmp_path / "code"
    module_dir.mkdir()
    (module_dir / "standin_index.py").write_text(
        "IMPORTS = []\nIMPORTS.append('loaded')\n"
        "def handler(event, context):\n    return {'echo': event.decode(), 'n': len(IMPORTS)}\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    running = serve(
        runtime_server_module.FunctionRuntime("standin_index.handler", out=io.StringIO())
    )

    # WHEN FC initializes then invokes twice
    init_status, _, _ = post(running.url, "/initialize")
    first = post(running.url, "/invoke", b"a")
    second = post(running.url, "/invoke", b"b")

    # THEN the module is imported once and dict results are JSON
    assert init_status == 200
    assert json.loads(first[2]) == {"echo": "a", "n": 1}
    assert json.loads(second[2]) == {"echo": "b", "n": 1}


def test_missing_handler_module_is_a_function_error_not_a_crash(runtime_server_module, serve):
    running = serve(
        runtime_server_module.FunctionRuntime("no_such_module_xyz.handler", out=io.StringIO())
    )

    status, headers, body = post(running.url, "/invoke", b"{}")
    again = post(running.url, "/invoke", b"{}")

    assert (status, headers["x-fc-status"]) == (404, "404")
    assert json.loads(body)["errorType"] == "ModuleNotFoundError"
    assert again[0] == 404  # the server is still up and answers the next request


def test_unsupported_path_is_reported_as_error(runtime_server_module, serve):
    running = serve(runtime_server_module.FunctionRuntime(lambda e, c: "x", out=io.StringIO()))

    status, headers, body = post(running.url, "/http-invoke", b"{}")

    assert (status, headers["x-fc-status"]) == (404, "404")
    assert json.loads(body)["errorType"] == "NotImplementedError"


def test_control_path_header_selects_the_operation(runtime_server_module, serve):
    running = serve(runtime_server_module.FunctionRuntime(lambda e, c: "done", out=io.StringIO()))

    status, _, body = post(running.url, "/", b"{}", {**FC_HEADERS, "x-fc-control-path": "/invoke"})

    assert (status, body) == (200, b"done")


@pytest.mark.parametrize(
    ("result", "expected"),
    [(None, b""), (b"\x00raw", b"\x00raw"), ("héllo", "héllo".encode()), ([1, 2], b"[1, 2]")],
)
def test_results_are_encoded_like_the_builtin_runtime(
    runtime_server_module: ModuleType, result: object, expected: bytes
):
    assert runtime_server_module.encode_result(result) == expected
