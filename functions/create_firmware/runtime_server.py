"""Function Compute custom-runtime server that runs ``index.handler`` on our own Python.

Why it exists: Funcraft (``fun``) only knows the ``python3`` (3.6) and ``custom`` runtimes,
and our code needs Python >= 3.10. In a custom runtime FC starts ``bootstrap``, which
execs this file on a Python 3.10; it serves FC's custom-runtime HTTP protocol and calls
the very same ``handler(event, context)`` the built-in ``python3.10`` runtime would.

Protocol (FC "custom runtime specification"):

- listen on ``0.0.0.0:$FC_SERVER_PORT`` (CAPort, default 9000);
- ``POST /invoke``: body = event bytes, ``x-fc-*`` headers = request id, temporary
  credentials and function/service metadata; reply with the handler's result;
- ``POST /initialize``: once per instance when an initializer is configured;
- success: HTTP 200 and ``x-fc-status: 200``; function error: HTTP 404 and
  ``x-fc-status: 404`` with ``{"errorMessage", "errorType", "stackTrace"}``, the same
  JSON the built-in Python runtime returns for an unhandled exception;
- ``FC Invoke Start RequestId: <id>`` / ``FC Invoke End RequestId: <id>`` on stdout so the
  FC console attributes log lines to invocations.

Dependency-free on purpose (stdlib only, Python >= 3.10): it ships in the code package and
must start even when the layer is missing, so it can report that as a function error.
Secrets (access key secret, security token) are never logged.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_PORT = 9000
DEFAULT_HOST = "0.0.0.0"  # noqa: S104 - FC can only reach the runtime on all interfaces
DEFAULT_HANDLER = "index.handler"
HANDLER_ENV = "OTA_RUNTIME_HANDLER"
INITIALIZER_ENV = "OTA_RUNTIME_INITIALIZER"
STATUS_OK = 200
#: What FC's custom-runtime spec prescribes for a failed invocation (status and header).
STATUS_FUNCTION_ERROR = 404
CREDENTIAL_ENV = {
    "access_key_id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "access_key_secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "security_token": "ALIBABA_CLOUD_SECURITY_TOKEN",
}

Handler = Callable[[bytes, Any], Any]
Initializer = Callable[[Any], Any]


@dataclass(frozen=True)
class Credentials:
    """Temporary STS credentials of the service role, as FC passes them per request."""

    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    security_token: str = field(default="", repr=False)

    # Old FC Python runtimes exposed camelCase names too; some SDK samples still use them.
    @property
    def accessKeyId(self) -> str:
        return self.access_key_id

    @property
    def accessKeySecret(self) -> str:
        return self.access_key_secret

    @property
    def securityToken(self) -> str:
        return self.security_token


@dataclass(frozen=True)
class FunctionMeta:
    """``context.function`` of the built-in Python runtime."""

    name: str = ""
    handler: str = ""
    memory: int = 0
    timeout: int = 0
    initializer: str = ""
    initialization_timeout: int = 0


@dataclass(frozen=True)
class ServiceMeta:
    """``context.service`` of the built-in Python runtime."""

    name: str = ""
    log_project: str = ""
    log_store: str = ""
    qualifier: str = ""
    version_id: str = ""


@dataclass(frozen=True)
class FCContext:
    """The ``context`` argument, with the attributes of FC's python3.10 runtime."""

    request_id: str
    credentials: Credentials
    function: FunctionMeta
    service: ServiceMeta
    region: str
    account_id: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> FCContext:
        """Build the context from the ``x-fc-*`` request headers (names are case-insensitive)."""
        h = {k.lower(): v for k, v in headers.items()}

        def text(name: str) -> str:
            return h.get(name, "")

        def number(name: str) -> int:
            try:
                return int(h.get(name, "0") or 0)
            except ValueError:
                return 0

        return cls(
            request_id=text("x-fc-request-id"),
            credentials=Credentials(
                access_key_id=text("x-fc-access-key-id"),
                access_key_secret=text("x-fc-access-key-secret"),
                security_token=text("x-fc-security-token"),
            ),
            function=FunctionMeta(
                name=text("x-fc-function-name"),
                handler=text("x-fc-function-handler"),
                memory=number("x-fc-function-memory"),
                timeout=number("x-fc-function-timeout"),
                initializer=text("x-fc-function-initializer"),
                initialization_timeout=number("x-fc-initialization-timeout"),
            ),
            service=ServiceMeta(
                name=text("x-fc-service-name"),
                log_project=text("x-fc-service-logproject"),
                log_store=text("x-fc-service-logstore"),
                qualifier=text("x-fc-qualifier"),
                version_id=text("x-fc-version-id"),
            ),
            region=text("x-fc-region"),
            account_id=text("x-fc-account-id"),
        )


def export_credentials(credentials: Credentials, environ: dict[str, str] | None = None) -> None:
    """Expose the request's credentials as ALIBABA_CLOUD_* for code that reads the environment.

    FC rotates the STS credentials, so they are refreshed on every request. An empty
    header leaves the variable alone rather than blanking a working value.
    """
    env = os.environ if environ is None else environ
    for attr, name in CREDENTIAL_ENV.items():
        value = getattr(credentials, attr)
        if value:
            env[name] = value


def load_callable(spec: str) -> Callable[..., Any]:
    """Resolve ``module.attr`` (FC handler syntax) or ``module:attr`` to a callable."""
    module_name, sep, attr = spec.replace(":", ".").rpartition(".")
    if not sep or not module_name or not attr:
        raise ValueError(f"handler must look like 'module.function', got {spec!r}")
    target = getattr(importlib.import_module(module_name), attr)
    if not callable(target):
        raise TypeError(f"{spec!r} is not callable")
    return target


def error_body(exc: BaseException) -> bytes:
    """The error JSON of FC's Python runtime: message, type and a list of stack frames.

    As FC's "Error handling" page for the Python runtime shows it: each frame is
    ``["File \"<path>\"", "line <n>", "in <function>", "<source line>"]``, and only the
    function's own frames are listed (this runtime's are left out).
    """
    own = Path(__file__).resolve()
    frames = [
        [f'File "{frame.filename}"', f"line {frame.lineno}", f"in {frame.name}", frame.line or ""]
        for frame in traceback.extract_tb(exc.__traceback__)
        if Path(frame.filename).resolve() != own
    ]
    payload = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": frames}
    return json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")


def encode_result(result: Any) -> bytes:
    """Turn a handler's return value into the response body, as the built-in runtime does."""
    if result is None:
        return b""
    if isinstance(result, bytes | bytearray):
        return bytes(result)
    if isinstance(result, str):
        return result.encode("utf-8")
    return json.dumps(result, ensure_ascii=False, default=str).encode("utf-8")


_write_lock = threading.Lock()


def _write_line(line: str, out: Any) -> None:
    """Write one whole line at a time.

    print() writes the text and the newline separately, so the lines of invocations running
    at once on one instance (InstanceConcurrency) could otherwise interleave in the log.
    """
    with _write_lock:
        out.write(line + "\n")
        out.flush()


class FunctionRuntime:
    """Loads the handler once and runs invocations; independent of HTTP so tests reach it."""

    def __init__(
        self,
        handler: Handler | str = DEFAULT_HANDLER,
        initializer: Initializer | str | None = None,
        out: Any = None,
    ) -> None:
        self._handler_spec = handler
        self._initializer_spec = initializer
        self._handler: Handler | None = handler if callable(handler) else None
        self._lock = threading.Lock()
        self._out = out

    def _log(self, line: str) -> None:
        _write_line(line, self._out or sys.stdout)

    def handler(self) -> Handler:
        """Import the handler on first use, so an import error becomes a function error."""
        with self._lock:
            if self._handler is None:
                assert isinstance(self._handler_spec, str)
                self._handler = load_callable(self._handler_spec)
            return self._handler

    def initialize(self, context: FCContext) -> bytes:
        """Run the configured initializer, or just import the handler to warm the instance."""
        self._log(f"FC Initialize Start RequestId: {context.request_id}")
        try:
            export_credentials(context.credentials)
            spec = self._initializer_spec
            if spec is not None:
                init = spec if callable(spec) else load_callable(spec)
                init(context)
            else:
                self.handler()
        finally:
            self._log(f"FC Initialize End RequestId: {context.request_id}")
        return b""

    def invoke(self, event: bytes, context: FCContext) -> bytes:
        """Call the handler with the raw event bytes; exceptions propagate to the caller."""
        self._log(f"FC Invoke Start RequestId: {context.request_id}")
        try:
            export_credentials(context.credentials)
            return encode_result(self.handler()(event, context))
        finally:
            self._log(f"FC Invoke End RequestId: {context.request_id}")


class _RequestHandler(BaseHTTPRequestHandler):
    server: RuntimeHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # Access lines would be noise in the FC log; invocations log Start/End instead.
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("x-fc-status", str(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self._read_body()
        path = self.headers.get("x-fc-control-path") or self.path.split("?", 1)[0]
        context = FCContext.from_headers(dict(self.headers.items()))
        runtime = self.server.runtime
        try:
            if path == "/invoke":
                result = runtime.invoke(body, context)
            elif path == "/initialize":
                result = runtime.initialize(context)
            else:
                raise NotImplementedError(
                    f"this runtime serves /invoke and /initialize, not {path}"
                )
        except Exception as exc:
            # Log the traceback (never the credentials) and report the FC error protocol.
            _write_line(
                f"{context.request_id} [ERROR] {type(exc).__name__}: {exc}\n"
                + "".join(traceback.format_tb(exc.__traceback__)).rstrip("\n"),
                sys.stderr,
            )
            self._reply(STATUS_FUNCTION_ERROR, error_body(exc), "application/json")
            return
        self._reply(STATUS_OK, result, "application/octet-stream")

    def do_GET(self) -> None:
        # Not part of the protocol; lets an operator or a health check see the server is up.
        self._reply(STATUS_OK, b"ok", "text/plain")


class RuntimeHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one :class:`FunctionRuntime`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], runtime: FunctionRuntime) -> None:
        super().__init__(address, _RequestHandler)
        self.runtime = runtime
        self.host = address[0]


def make_server(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, runtime: FunctionRuntime | None = None
) -> RuntimeHTTPServer:
    """Bind (port 0 picks a free one) without serving yet; call ``serve_forever``."""
    return RuntimeHTTPServer((host, port), runtime or FunctionRuntime())


def _interpreter() -> str:
    """Which Python serves the function (FC's is CPython 3.10); logged once at start."""
    return f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"


def main(environ: Mapping[str, str] | None = None) -> int:
    """Entry point used by ``bootstrap``: settings come from the environment."""
    env = os.environ if environ is None else environ
    if sys.version_info < (3, 10):  # noqa: UP036 - bootstrap may find an old python3
        print(
            f"runtime_server: needs Python >= 3.10, got {sys.version.split()[0]}", file=sys.stderr
        )
        return 1
    code_dir = str(Path(__file__).resolve().parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    runtime = FunctionRuntime(
        handler=env.get(HANDLER_ENV) or DEFAULT_HANDLER,
        initializer=env.get(INITIALIZER_ENV) or None,
    )
    host = env.get("OTA_RUNTIME_HOST") or DEFAULT_HOST
    port = int(env.get("FC_SERVER_PORT") or env.get("OTA_RUNTIME_PORT") or DEFAULT_PORT)
    return serve(make_server(host, port, runtime))


def serve(server: RuntimeHTTPServer) -> int:
    """Serve until SIGTERM or SIGINT; used by ``main`` and by the local FC's built-in runtime."""

    def stop(signum: int, frame: Any) -> None:
        # FC sends SIGTERM before recycling an instance; shut down from another thread
        # because shutdown() waits for serve_forever() running in this one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"runtime_server: listening on {server.host}:{server.server_port}", flush=True)
    print(f"runtime_server: {_interpreter()}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
