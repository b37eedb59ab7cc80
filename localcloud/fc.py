"""Local Function Compute: runs the function from template.yml in real instance processes.

What it reproduces, because the pipeline's behaviour depends on it:

- **Triggers**: the native OSS trigger's bucket / event-name / Prefix / Suffix filter, read
  from template.yml. Events that do not match are dropped (and counted), as OSS would
  never have sent them.
- **Asynchronous invocation**: trigger events and ``x-fc-invocation-type: Async`` calls
  are queued and run by a dispatcher, on up to ``max_instances`` instances at once.
- **Instance cap**: ``max_instances`` is the function's on-demand instance cap, which
  :meth:`LocalFunctionCompute.set_max_instances` (the FC API's PutOnDemandConfig) changes
  at run time. As on FC, lowering it stops no running instance; it only keeps new ones
  from starting while the pool is at or above the cap, and 0 lets no instance start.
- **Instance concurrency**: each instance serves up to ``InstanceConcurrency`` invocations
  at the same time (FC's default is 1). As on FC, a request goes to a running instance
  with a free slot, preferring the busiest such instance so load packs onto few
  instances; a new instance starts only when every instance is full (or about to be,
  counting the slots of instances still starting). When one invocation times out or
  crashes its instance, the instance is stopped, so the other invocations it was serving
  fail with it and are retried like any failed asynchronous invocation.
- **Retries and OnFailure**: a failed invocation (function error, crash, timeout) is
  retried up to MaxAsyncRetryAttempts, then a destination record goes to the OnFailure
  MNS topic. FC spaces its retries by seconds to minutes; here the delay is
  ``retry_base_delay * 2**n`` so tests stay fast. The destination record follows FC's
  "result callback" document: ``timestamp`` in epoch milliseconds, ``requestContext``
  {requestId, functionArn, condition, approximateInvokeCount}, ``requestPayload`` (a
  string), ``responseContext``, ``responsePayload``; ``functionArn`` in the FC 3.0 form
  for the "s" flavour and the FC 2.0 form for "fun" (see :meth:`function_arn`).
- **Instances are processes**: each instance is a long-lived child process speaking the
  custom-runtime HTTP protocol on a free loopback port, started either from the code's
  ``bootstrap`` ("fun": custom runtime) or from :mod:`localcloud.fc_builtin` ("s":
  built-in python runtime). An instance that exceeds the function Timeout is killed and
  replaced, as FC does.
- **The runtime's Python**: instances run on ``python`` / ``$OTA_FUNCTION_PYTHON`` when
  given (FC runs the function on CPython 3.10; ``make test`` runs the function's suites
  a second time with a 3.10 venv holding the layer's pinned packages), else on the
  interpreter running the stand-in.
- **Credentials**: the stand-in mints an STS-like key, registers it with the shared
  :class:`CredentialStore`, and hands it to instances in headers and environment, like
  FC passes the service role's temporary credentials.

Not reproduced: MaxAsyncEventAgeInSeconds (events never age out locally), layers (their
packages are already importable from the venv), VPC/NAS, provisioned instances, and
instance freezing between invocations.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from localcloud.contracts import FaultHook
from localcloud.credentials import Credential, CredentialStore
from localcloud.faults import CRASH_ENV
from localcloud.fc_template import FunctionSpec, mns_topic_from_arn

Flavour = Literal["fun", "s"]
InvocationStatus = Literal["succeeded", "failed", "timeout", "crashed"]
InvocationSource = Literal["trigger", "async", "sync"]

BUILTIN_RUNTIME = Path(__file__).with_name("fc_builtin.py")
#: Names the interpreter instances run on when the constructor is not given one.
FUNCTION_PYTHON_ENV = "OTA_FUNCTION_PYTHON"
LOOPBACK = "127.0.0.1"
#: Error type FC reports (``x-fc-error-type``) for a function that raised or timed out.
UNHANDLED_ERROR = "UnhandledInvocationError"

#: The executor is sized at start() for at least this many instances, so a cap raised
#: later by set_max_instances() still gets a worker per slot (up to this many instances).
EXECUTOR_MIN_INSTANCES = 8

#: Run instead of the function's handler when crash points are configured (test only).
CRASH_HANDLER = "localcloud.crash_handler.handler"

# Only these host variables reach an instance: the function must see FC's environment,
# not the developer's (which may hold real cloud keys).
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class DestinationSink(Protocol):
    """Publishes a message to an MNS topic (the local MNS ``publish`` method)."""

    def __call__(self, topic: str, body: str, tag: str | None) -> Any: ...


class InstanceStartError(RuntimeError):
    """The instance process exited or never opened its port."""


@dataclass(frozen=True)
class InvokeOutcome:
    """What one attempt on one instance produced."""

    status: InvocationStatus
    body: bytes
    error_type: str | None = None
    error_message: str | None = None
    instance_pid: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class InvocationRecord:
    """One attempt of one request, kept for tests and the demo."""

    request_id: str
    attempt: int  # 1-based
    source: InvocationSource
    status: InvocationStatus
    result: bytes
    error_type: str | None
    error_message: str | None
    duration: float
    instance_pid: int | None
    started_at: float  # time.time()

    def result_json(self) -> Any:
        """The result body decoded as JSON (handlers here return JSON summaries)."""
        return json.loads(self.result.decode("utf-8"))


@dataclass
class _Request:
    request_id: str
    payload: bytes
    source: InvocationSource
    qualifier: str = "LATEST"
    first_attempt_at: float = field(default_factory=time.time)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class _Instance:
    """One function instance: a child process serving the custom-runtime protocol."""

    _ids = itertools.count(1)

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        startup_timeout: float,
    ) -> None:
        self.instance_id = f"local-{next(self._ids)}-{secrets.token_hex(3)}"
        self.port = _free_port()
        full_env = dict(env)
        full_env["FC_SERVER_PORT"] = str(self.port)
        full_env["FC_INSTANCE_ID"] = self.instance_id
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._log: IO[bytes] = log_path.open("ab")
        # A new session makes the instance a process group, so stop() also reaches
        # anything a bootstrap script started.
        try:
            self.process = subprocess.Popen(  # noqa: S603 - argv built from our own config
                list(argv),
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            raise InstanceStartError(f"cannot start {argv[0]}: {exc}") from exc
        try:
            self._wait_for_port(startup_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process still runs, without reaping it.

        The exit status is left for :meth:`stop` to collect: until then the pid (and so the
        process group id) cannot be reused, which keeps the group kill in stop() safe.
        """
        if self._stopped:
            return False
        try:
            status = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return status is None

    def _wait_for_port(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise InstanceStartError("instance process exited before serving its port")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((LOOPBACK, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        raise InstanceStartError(f"instance did not open port {self.port} in {timeout:g} s")

    def post(
        self, path: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a fresh connection; raises on timeout or a dropped connection."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request("POST", path, body=body, headers={**headers, "Connection": "close"})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def stop(self, grace: float = 3.0) -> None:
        """Terminate the instance's process group, kill it if it lingers, reap the leader."""
        with self._stop_lock:
            if self._stopped:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            # The leader is not reaped yet, so its pgid is still ours: SIGKILL reaches it
            # if it ignored SIGTERM and anything a bootstrap script left in the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
            self._stopped = True
            self._log.close()


class LocalFunctionCompute:
    """Runs one function from template.yml locally, fed by OSS events and the FC 2.0 API.

    Typical use::

        fc = LocalFunctionCompute(spec, code_dir=..., flavour="fun", credentials=store,
                                  destination_sink=mns.publish)
        fc.start(); oss.subscribe(fc.on_oss_event); ...; fc.wait_idle(30); fc.stop()
    """

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        code_dir: Path,
        flavour: Flavour = "fun",
        credentials: CredentialStore,
        env_overrides: Mapping[str, str] | None = None,
        extra_pythonpath: Sequence[Path] = (),
        destination_sink: DestinationSink | Callable[..., Any] | None = None,
        max_instances: int = 4,
        instance_concurrency: int | None = None,
        retry_base_delay: float = 0.05,
        account_id: str = "1234567890",
        region: str = "cn-shanghai",
        startup_timeout: float = 30.0,
        log_dir: Path | None = None,
        faults: FaultHook | None = None,
        serve_api: bool = True,
        api_port: int = 0,
        python: str | None = None,
    ) -> None:
        if flavour not in ("fun", "s"):
            raise ValueError(f"flavour must be 'fun' or 's', not {flavour!r}")
        if max_instances < 1:
            raise ValueError("max_instances must be at least 1")
        if instance_concurrency is None:
            concurrency, source = spec.instance_concurrency, "the template's InstanceConcurrency"
        else:
            concurrency, source = instance_concurrency, "instance_concurrency"
        if concurrency < 1:
            raise ValueError(f"{source} must be at least 1, not {concurrency}")
        self.spec = spec
        #: The interpreter instances run the function on: ``python``, else
        #: ``$OTA_FUNCTION_PYTHON`` (``make test`` points it at a CPython 3.10 venv holding
        #: the layer's pins, as FC runs the function), else this process's own.
        self.python = python or os.environ.get(FUNCTION_PYTHON_ENV) or sys.executable
        self.code_dir = Path(code_dir).resolve()
        self.flavour: Flavour = flavour
        self.credentials = credentials
        self.env_overrides = dict(env_overrides or {})
        self.extra_pythonpath = [Path(p).resolve() for p in extra_pythonpath]
        self.destination_sink = destination_sink
        self.max_instances = max_instances
        #: Invocations one instance serves at the same time (the template's
        #: InstanceConcurrency unless overridden).
        self.instance_concurrency = concurrency
        self.retry_base_delay = retry_base_delay
        self.account_id = account_id
        self.region = region
        self.startup_timeout = startup_timeout
        self.faults = faults
        self._serve_api = serve_api
        self._api_port = api_port
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="localfc-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)

        self.role_credential: Credential | None = None
        self.invocations: list[InvocationRecord] = []
        self.destination_records: list[tuple[str, dict[str, Any]]] = []
        self.destination_errors: list[tuple[str, str]] = []
        self.dropped_events = 0
        self.instance_pids: list[int] = []  # every instance ever started, for leak checks

        self._lock = threading.Condition()
        # The instance pool: every live instance that may take invocations, mapped to how
        # many it is serving now. An instance leaves it (once, by _retire) before it is
        # stopped, so a stopped instance is never handed out.
        self._in_flight: dict[_Instance, int] = {}
        self._starting = 0  # instances being started (outside the lock)
        # Requests waiting for a slot of an instance that is still starting: counted so
        # that each starting instance's spare slots are promised only once.
        self._awaiting_start = 0
        self._pending = 0
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self._api_server: Any = None
        self.api_app: Any = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalFunctionCompute:
        """Mint the function's credential, start the dispatcher and the FC API server."""
        if self._running:
            return self
        self.role_credential = self.credentials.add(
            "STS.local" + secrets.token_hex(8),
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(48),
        )
        # A worker is held for the whole life of an async invocation, back-off sleeps
        # included: allow one per instance slot plus as many again sleeping before a retry
        # (and never fewer than before concurrency existed). The instance pool, not the
        # executor, is what bounds concurrency; threads are only created when needed.
        # Sized for at least EXECUTOR_MIN_INSTANCES instances so that set_max_instances()
        # can raise the cap later; above that size, async invocations beyond the workers
        # wait in the executor's queue (slower, never lost or deadlocked).
        sized_for = max(self.max_instances, EXECUTOR_MIN_INSTANCES)
        slots = sized_for * self.instance_concurrency
        self._executor = ThreadPoolExecutor(
            max_workers=max(4 * sized_for, 2 * slots), thread_name_prefix="localfc"
        )
        self._running = True
        if self._serve_api:
            from localcloud.fc_api import FcApiApp
            from localcloud.server import LocalServer

            self.api_app = FcApiApp(self)
            self._api_server = LocalServer(self.api_app, port=self._api_port, name="fc").start()
        return self

    def stop(self) -> None:
        """Stop the API, drop queued work, and stop every instance process."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            self._lock.notify_all()
        if self._api_server is not None:
            self._api_server.stop()
            self._api_server = None
        with self._lock:
            instances = list(self._in_flight)
        for inst in instances:  # unblocks workers waiting on a response
            inst.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        with self._lock:
            instances = list(self._in_flight)
            self._in_flight.clear()
            self._pending = 0
            self._lock.notify_all()
        for inst in instances:
            inst.stop()
        if self.role_credential is not None:
            self.credentials.remove(self.role_credential.access_key_id)
        if self._own_log_dir:
            for log in self.log_dir.glob("*.log"):
                log.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.log_dir.rmdir()

    def __enter__(self) -> LocalFunctionCompute:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """Endpoint for ``fc2.Client(endpoint=...)``."""
        if self._api_server is None:
            raise RuntimeError("the FC API is not being served (start() first)")
        return str(self._api_server.url)

    def logs(self) -> str:
        """Everything the instances printed so far (handy in a failing test's message)."""
        parts = []
        for log in sorted(self.log_dir.glob("instance-*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(encoding='utf-8', errors='replace')}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ event sources

    def on_oss_event(self, event: Mapping[str, Any]) -> None:
        """OssEventSink: queue one invocation per record that a trigger of the function matches."""
        records = event.get("events")
        if not isinstance(records, list):
            with self._lock:
                self.dropped_events += 1
            return
        for record in records:
            if isinstance(record, Mapping) and any(t.matches(record) for t in self.spec.triggers):
                payload = json.dumps({"events": [record]}).encode("utf-8")
                try:
                    self.invoke_async(payload, source="trigger")
                    continue
                except RuntimeError:
                    pass  # stopped: the upload must still succeed, the event is lost
            with self._lock:
                self.dropped_events += 1

    def invoke_async(
        self, payload: bytes, *, source: InvocationSource = "async", qualifier: str = "LATEST"
    ) -> str:
        """Queue an asynchronous invocation; returns its request id at once."""
        request = _Request(f"{uuid.uuid4()}", payload, source, qualifier)
        with self._lock:
            if not self._running or self._executor is None:
                raise RuntimeError("local FC is not running")
            self._pending += 1
            self._executor.submit(self._run_async, request)
        return request.request_id

    def invoke_sync(self, payload: bytes, *, qualifier: str = "LATEST") -> InvocationRecord:
        """Run one synchronous invocation (no retries, as FC does for sync calls)."""
        request = _Request(f"{uuid.uuid4()}", payload, "sync", qualifier)
        with self._lock:
            self._pending += 1
        try:
            return self._attempt(request, 1)
        finally:
            self._done()

    def set_max_instances(self, n: int) -> None:
        """Change the instance cap while running (FC's PutOnDemandConfig maximumInstanceCount).

        Lowering the cap stops no instance: pooled instances keep serving their free slots,
        and no new instance starts until the pool is below the cap again. The stand-in never
        reclaims idle instances (FC does, after a few minutes), so a pool already above a
        lowered cap stays that size unless instances crash or time out. With 0 no instance
        may start: invocations that find no free slot wait (blocked, not polling) until the
        cap is raised or the stand-in stops.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"max_instances: must be an integer of at least 0, got {n!r}")
        with self._lock:
            self.max_instances = n
            self._lock.notify_all()  # waiters in _acquire re-check against the new cap

    def instance_load(self) -> dict[int, int]:
        """In-flight invocations per pooled instance, by pid (for tests and the demo)."""
        with self._lock:
            return {inst.pid: count for inst, count in self._in_flight.items()}

    def wait_idle(self, timeout: float) -> bool:
        """Block until no invocation is queued, running or waiting to retry."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    # ------------------------------------------------------------------ dispatch

    def _done(self) -> None:
        with self._lock:
            self._pending = max(0, self._pending - 1)
            self._lock.notify_all()

    def _run_async(self, request: _Request) -> None:
        try:
            attempts = 1 + max(0, self.spec.max_async_retry_attempts)
            record: InvocationRecord | None = None
            for attempt in range(1, attempts + 1):
                if not self._running:
                    return
                record = self._attempt(request, attempt)
                if record.status == "succeeded":
                    self._deliver(request, record, attempt, success=True)
                    return
                if attempt < attempts:
                    time.sleep(self.retry_base_delay * (2 ** (attempt - 1)))
            if record is not None and self._running:
                self._deliver(request, record, attempts, success=False)
        finally:
            self._done()

    def _attempt(self, request: _Request, attempt: int) -> InvocationRecord:
        started = time.time()
        t0 = time.monotonic()
        outcome = self._invoke_once(request)
        record = InvocationRecord(
            request_id=request.request_id,
            attempt=attempt,
            source=request.source,
            status=outcome.status,
            result=outcome.body,
            error_type=outcome.error_type,
            error_message=outcome.error_message,
            duration=time.monotonic() - t0,
            instance_pid=outcome.instance_pid,
            started_at=started,
        )
        with self._lock:
            self.invocations.append(record)
        return record

    def _invoke_once(self, request: _Request) -> InvokeOutcome:
        """The one place an invocation reaches an instance (the seam for fault injection)."""
        try:
            inst = self._acquire()
        except InstanceStartError as exc:
            return InvokeOutcome("crashed", b"", "InstanceStartError", str(exc))
        healthy = True
        try:
            timeout = float(self.spec.timeout)
            try:
                status, headers, body = inst.post(
                    "/invoke", request.payload, self._headers(request, "/invoke"), timeout
                )
            except TimeoutError:
                healthy = False
                # FC kills the instance, and with it any other invocation it was serving.
                self._retire(inst)
                msg = f"Function timed out after {self.spec.timeout} seconds"
                return InvokeOutcome(
                    "timeout", _error_json(msg, "FunctionTimeout"), UNHANDLED_ERROR, msg, inst.pid
                )
            except (OSError, http.client.HTTPException) as exc:
                healthy = False
                self._retire(inst)
                msg = f"Process exited unexpectedly before completing request ({exc})"
                return InvokeOutcome(
                    "crashed", _error_json(msg, "ProcessExited"), UNHANDLED_ERROR, msg, inst.pid
                )
            if headers.get("x-fc-status") == "404" or status == 404 or status >= 500:
                return InvokeOutcome(
                    "failed", body, UNHANDLED_ERROR, _error_message(body), inst.pid
                )
            return InvokeOutcome("succeeded", body, None, None, inst.pid)
        finally:
            self._release(inst, healthy and inst.alive())

    def _acquire(self) -> _Instance:
        """A slot on an instance: a free one if any, else a new instance, else wait."""
        with self._lock:
            while True:
                if not self._running:
                    raise InstanceStartError("local FC is stopping")
                inst = self._free_instance()
                if inst is not None:
                    self._in_flight[inst] += 1
                    return inst
                # Every starting instance will bring concurrency - 1 slots besides its
                # starter's: wait for one of those rather than start another instance.
                spare = self._starting * (self.instance_concurrency - 1) - self._awaiting_start
                if spare > 0:
                    self._awaiting_start += 1
                    try:
                        self._lock.wait()
                    finally:
                        self._awaiting_start -= 1
                    continue
                if len(self._in_flight) + self._starting < self.max_instances:
                    self._starting += 1
                    break
                self._lock.wait()
        # Starting takes a while (a process, maybe an initializer): not under the lock.
        try:
            started = self._start_instance()
        except BaseException:
            with self._lock:
                self._starting -= 1
                self._lock.notify_all()  # waiters counting on its slots must look again
            raise
        with self._lock:
            self._starting -= 1
            pooled = self._running
            if pooled:
                self._in_flight[started] = 1  # the starter takes the first slot
            self._lock.notify_all()
        if not pooled:
            # stop() ran while it was starting, so stop() could not see it: stop it here.
            started.stop(grace=0.5)
            raise InstanceStartError("local FC is stopping")
        return started

    def _free_instance(self) -> _Instance | None:
        """The pooled instance with the most invocations that still has a free slot.

        Packing requests onto the busiest instance (as FC does) leaves the others idle, so
        they are the ones FC could reclaim. Called with the lock held.
        """
        best: _Instance | None = None
        for inst, count in self._in_flight.items():
            if count < self.instance_concurrency and (
                best is None or count > self._in_flight[best]
            ):
                best = inst
        return best

    def _release(self, inst: _Instance, healthy: bool) -> None:
        """Give back the slot ``inst`` served; an unhealthy instance leaves the pool."""
        with self._lock:
            if healthy and self._running and inst in self._in_flight:
                assert self._in_flight[inst] > 0, "released more slots than were acquired"
                self._in_flight[inst] -= 1
                self._lock.notify_all()
                return
        self._retire(inst)

    def _retire(self, inst: _Instance) -> None:
        """Take ``inst`` out of the pool, then stop it.

        Safe to call from every invocation that was running on it: only the first removes
        it (its slot counts go with it), and stopping an instance twice does nothing more.
        Leaving the pool first means no new invocation is sent to a dying instance.
        """
        with self._lock:
            if self._in_flight.pop(inst, None) is not None:
                self._lock.notify_all()  # its place under max_instances is free again
        inst.stop(grace=0.5)

    # ------------------------------------------------------------------ instances

    def handler(self) -> str:
        """The handler an instance runs: the function's, or with crash points its wrapper."""
        if {**self.spec.env, **self.env_overrides}.get(CRASH_ENV):
            return CRASH_HANDLER
        return self.spec.handler

    def instance_env(self) -> dict[str, str]:
        """The environment an instance process starts with (FC's, not the host's)."""
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
        env.update(self.spec.env)
        env.update(self.env_overrides)
        cred = self.role_credential
        assert cred is not None, "start() mints the credential"
        env.update(
            {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": cred.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cred.access_key_secret,
                "ALIBABA_CLOUD_SECURITY_TOKEN": cred.security_token or "",
                "FC_FUNCTION_NAME": self.spec.name,
                "FC_SERVICE_NAME": self.spec.service,
                "FC_FUNCTION_HANDLER": self.spec.handler,
                "FC_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
                "FC_FUNC_CODE_PATH": str(self.code_dir),
                "FC_REGION": self.region,
                "FC_ACCOUNT_ID": self.account_id,
                "FC_QUALIFIER": "LATEST",
                "FC_RUNTIME": self.spec.runtime,
                # Not FC variables: ask the runtimes to bind loopback instead of 0.0.0.0
                # (FC_SERVER_HOST for the stand-in's own runtimes, OTA_RUNTIME_HOST for
                # the project's runtime_server.py).
                "FC_SERVER_HOST": LOOPBACK,
                "OTA_RUNTIME_HOST": LOOPBACK,
                "OTA_RUNTIME_PYTHON": self.python,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(
                    [str(self.code_dir), *(str(p) for p in self.extra_pythonpath)]
                ),
            }
        )
        if self.handler() != self.spec.handler:
            # The project's custom runtime (runtime_server.py) runs this handler instead.
            env["OTA_RUNTIME_HANDLER"] = self.handler()
        return env

    def _argv(self) -> list[str]:
        if self.flavour == "s":
            argv = [
                self.python,
                str(BUILTIN_RUNTIME),
                "--code-dir",
                str(self.code_dir),
                "--handler",
                self.handler(),
            ]
            if self.spec.initializer:
                argv += ["--initializer", self.spec.initializer]
            return argv
        bootstrap = self.code_dir / "bootstrap"
        if not bootstrap.is_file():
            raise InstanceStartError(f"custom runtime needs {bootstrap}")
        if os.access(bootstrap, os.X_OK):
            return [str(bootstrap)]
        return ["/bin/sh", str(bootstrap)]

    def _start_instance(self) -> _Instance:
        argv = self._argv()
        log = self.log_dir / f"instance-{len(self.instance_pids) + 1}.log"
        inst = _Instance(argv, self.instance_env(), self.code_dir, log, self.startup_timeout)
        with self._lock:
            self.instance_pids.append(inst.pid)
        if self.spec.initializer:
            request = _Request(f"{uuid.uuid4()}", b"", "sync")
            try:
                status, headers, body = inst.post(
                    "/initialize",
                    b"",
                    self._headers(request, "/initialize"),
                    float(self.spec.initialization_timeout or 3),
                )
            except (OSError, http.client.HTTPException) as exc:
                inst.stop(grace=0.5)
                raise InstanceStartError(f"initializer failed: {exc}") from exc
            if headers.get("x-fc-status") == "404" or status == 404 or status >= 500:
                inst.stop(grace=0.5)
                raise InstanceStartError(f"initializer failed: {_error_message(body)}")
        return inst

    def _headers(self, request: _Request, control_path: str) -> dict[str, str]:
        cred = self.role_credential
        assert cred is not None
        return {
            "Content-Type": "application/octet-stream",
            "x-fc-request-id": request.request_id,
            "x-fc-access-key-id": cred.access_key_id,
            "x-fc-access-key-secret": cred.access_key_secret,
            "x-fc-security-token": cred.security_token or "",
            "x-fc-function-name": self.spec.name,
            "x-fc-function-handler": self.spec.handler,
            "x-fc-function-memory": str(self.spec.memory),
            "x-fc-function-timeout": str(self.spec.timeout),
            "x-fc-function-initializer": self.spec.initializer or "",
            "x-fc-initialization-timeout": str(self.spec.initialization_timeout or 0),
            "x-fc-service-name": self.spec.service,
            "x-fc-service-logproject": self.spec.log_project,
            "x-fc-service-logstore": self.spec.log_store,
            "x-fc-region": self.region,
            "x-fc-account-id": self.account_id,
            "x-fc-qualifier": request.qualifier,
            "x-fc-version-id": "",
            "x-fc-control-path": control_path,
        }

    # ------------------------------------------------------------------ destinations

    def function_arn(self) -> str:
        """The ``functionArn`` FC writes into a destination record for this function.

        FC's "result callback" document gives one form per generation: FC 3.0 (what
        s.yaml deploys) ``acs:fc:{region}:{account}:functions/{name}``, FC 2.0 (what
        template.yml deploys) ``acs:fc:::services/{service}/functions/{function}``.
        """
        if self.flavour == "s":
            return f"acs:fc:{self.region}:{self.account_id}:functions/{self.spec.name}"
        return f"acs:fc:::services/{self.spec.service}/functions/{self.spec.name}"

    def _deliver(
        self, request: _Request, record: InvocationRecord, attempts: int, *, success: bool
    ) -> None:
        arn = self.spec.on_success if success else self.spec.on_failure
        if not arn:
            return
        body = destination_record(
            request_id=request.request_id,
            function_arn=self.function_arn(),
            condition="" if success else (record.error_type or UNHANDLED_ERROR),
            attempts=attempts,
            request_payload=request.payload,
            status_code=200,
            function_error="" if success else (record.error_type or UNHANDLED_ERROR),
            response_payload=record.result,
            timestamp=request.first_attempt_at,
        )
        with self._lock:
            self.destination_records.append((arn, body))
        topic = mns_topic_from_arn(arn)
        if topic is None or self.destination_sink is None:
            return  # only MNS topic destinations can be delivered locally
        try:
            self.destination_sink(topic, json.dumps(body), None)
        except Exception as exc:  # e.g. TopicNotExist: FC drops the record, so do we
            with self._lock:
                self.destination_errors.append((arn, repr(exc)))


def destination_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    attempts: int,
    request_payload: bytes,
    status_code: int,
    function_error: str,
    response_payload: bytes,
    timestamp: float,
) -> dict[str, Any]:
    """The message FC sends to an async-invocation destination (its "result callback" doc).

    ``timestamp`` is epoch milliseconds (an integer), the payloads are strings.
    """
    return {
        "timestamp": int(timestamp * 1000),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request_payload.decode("utf-8", errors="replace"),
        "responseContext": {"statusCode": status_code, "functionError": function_error},
        "responsePayload": response_payload.decode("utf-8", errors="replace"),
    }


def _error_json(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode("utf-8")


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return body.decode("utf-8", errors="replace")[:500]
    if isinstance(data, dict) and "errorMessage" in data:
        return str(data["errorMessage"])
    return json.dumps(data)[:500]
