"""An instance of FC's built-in Python runtime, as one local process.

The local FC starts this file as the instance process for functions that use a built-in
runtime (``python3.9``/``python3.10``, the Serverless Devs flavour). It serves the same
HTTP contract as a custom-runtime ``bootstrap`` (``POST /initialize``, ``POST /invoke``
with ``x-fc-*`` headers) and calls ``handler(event: bytes, context)`` the way FC's
python3.10 runtime does, so the handler under test never knows which flavour ran it.
Requests are served on threads, so one instance runs several invocations at once when the
function's InstanceConcurrency allows it (the local FC decides how many it sends).

Run as ``python localcloud/fc_builtin.py --code-dir DIR --handler index.handler`` (or
``python -m localcloud.fc.builtin``). It imports nothing from ``localcloud`` on purpose:
the function's import path must hold only its code dir and its layer, as on FC.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import threading
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

# Started by file path, Python puts this folder (localcloud/) first on sys.path, where
# localcloud/mns.py would shadow the MNS SDK's `mns` package for the function.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class FunctionMeta:
    name: str
    handler: str
    memory: int
    timeout: int
    initializer: str
    initialization_timeout: int


@dataclass(frozen=True)
class ServiceMeta:
    name: str
    log_project: str
    log_store: str
    qualifier: str
    version_id: str


@dataclass(frozen=True)
class FCContext:
    """The ``context`` argument of FC's python3.9/3.10 runtime (attribute names match)."""

    request_id: str
    credentials: Credentials
    function: FunctionMeta
    service: ServiceMeta
    region: str
    account_id: str


def _int_header(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def context_from_headers(headers: Any) -> FCContext:
    """Build the handler context from the ``x-fc-*`` request headers."""

    def h(name: str) -> str:
        return str(headers.get(name) or "")

    return FCContext(
        request_id=h("x-fc-request-id"),
        credentials=Credentials(
            h("x-fc-access-key-id"), h("x-fc-access-key-secret"), h("x-fc-security-token")
        ),
        function=FunctionMeta(
            name=h("x-fc-function-name"),
            handler=h("x-fc-function-handler"),
            memory=_int_header(headers.get("x-fc-function-memory")),
            timeout=_int_header(headers.get("x-fc-function-timeout")),
            initializer=h("x-fc-function-initializer"),
            initialization_timeout=_int_header(headers.get("x-fc-initialization-timeout")),
        ),
        service=ServiceMeta(
            name=h("x-fc-service-name"),
            log_project=h("x-fc-service-logproject"),
            log_store=h("x-fc-service-logstore"),
            qualifier=h("x-fc-qualifier"),
            version_id=h("x-fc-version-id"),
        ),
        region=h("x-fc-region"),
        account_id=h("x-fc-account-id"),
    )


class _Runtime:
    """Imports the handler module on first use, like FC's cold start does."""

    def __init__(self, code_dir: str, handler: str, initializer: str | None) -> None:
        self.code_dir = code_dir
        self.handler = handler
        self.initializer = initializer
        self._modules: dict[str, ModuleType] = {}
        # Concurrent first invocations must not race to import and cache the module.
        self._lock = threading.Lock()
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)

    def resolve(self, spec: str) -> Any:
        module_name, _, attr = spec.rpartition(".")
        if not module_name:
            raise ValueError(f"handler {spec!r} must look like 'module.function'")
        with self._lock:
            if module_name not in self._modules:
                self._modules[module_name] = importlib.import_module(module_name)
            module = self._modules[module_name]
        return getattr(module, attr)


_print_lock = threading.Lock()


def _log(line: str) -> None:
    """Print one whole line at a time.

    print() writes the text and the newline separately, so the lines of invocations running
    at once could otherwise interleave in the instance log.
    """
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _encode_result(result: Any) -> bytes:
    if result is None:
        return b""
    if isinstance(result, bytes):
        return result
    if isinstance(result, str):
        return result.encode("utf-8")
    return json.dumps(result).encode("utf-8")


def _error_body(exc: BaseException) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc),
        }
    ).encode("utf-8")


def make_handler_class(runtime: _Runtime) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # FC's own log lines are printed around each invocation instead

        def _reply(self, status: int, fc_status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-fc-status", str(fc_status))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            context = context_from_headers(self.headers)
            rid = context.request_id
            if self.path.startswith("/initialize"):
                spec = runtime.initializer or context.function.initializer
                _log(f"FC Initialize Start RequestId: {rid}")
                try:
                    if spec:
                        runtime.resolve(spec)(context)
                except Exception as exc:
                    _log(f"FC Initialize End RequestId: {rid}, Error: Unhandled")
                    self._reply(404, 404, _error_body(exc))
                    return
                _log(f"FC Initialize End RequestId: {rid}")
                self._reply(200, 200, b"")
                return
            if not self.path.startswith("/invoke"):
                self._reply(404, 404, b'{"errorMessage":"unknown path"}')
                return
            _log(f"FC Invoke Start RequestId: {rid}")
            try:
                result = runtime.resolve(runtime.handler)(body, context)
                payload = _encode_result(result)
            except Exception as exc:
                traceback.print_exc()
                _log(f"FC Invoke End RequestId: {rid}, Error: Unhandled")
                self._reply(200, 404, _error_body(exc))
                return
            _log(f"FC Invoke End RequestId: {rid}")
            self._reply(200, 200, payload)

    return InvokeHandler


class _InstanceServer(ThreadingHTTPServer):
    """One thread per request, so invocations on this instance run concurrently."""

    # The local FC stops an instance by killing it; threads still serving an invocation
    # must not keep the process alive (nor be waited for) once serve_forever() ends.
    daemon_threads = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--initializer", default=None)
    parser.add_argument("--host", default=os.environ.get("FC_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FC_SERVER_PORT", "9000")))
    args = parser.parse_args(argv)
    os.chdir(args.code_dir)
    runtime = _Runtime(str(Path(args.code_dir).resolve()), args.handler, args.initializer)
    server = _InstanceServer((args.host, args.port), make_handler_class(runtime))
    # Which interpreter runs the function, for the instance log (FC's python3.10 runtime
    # runs CPython 3.10; the local FC may be given any).
    _log(
        f"fc_builtin: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})"
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
