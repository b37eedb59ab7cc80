"""The local Function Compute: runs the function from template.yml in real instance processes.

:class:`LocalFunctionCompute` is the backend tests, the demo and the CLI use; it ties
together the parts that each reproduce one behaviour the pipeline depends on:

- **Triggers** (here): the native OSS trigger's bucket / event-name / Prefix / Suffix
  filter, read from template.yml (:mod:`localcloud.fc.template`). Events that do not match
  are dropped (and counted), as OSS would never have sent them.
- **Instances** (:mod:`localcloud.fc.pool`): on-demand instance cap, InstanceConcurrency,
  packing onto the busiest instance, a timed-out or crashed instance stopped and replaced.
- **Asynchronous invocation** (:mod:`localcloud.fc.invoker`): trigger events and
  ``x-fc-invocation-type: Async`` calls are queued and run by a dispatcher; failures are
  retried up to MaxAsyncRetryAttempts, then go to the OnFailure destination.
- **The FC API** (:mod:`localcloud.fc.api`): the FC 2.0 calls the aliyun-fc2 SDK makes
  and FC 3.0 InvokeFunction, served on a loopback port.
- **Instances are processes** (:mod:`localcloud.fc.launcher`): each instance is a
  long-lived child process speaking the custom-runtime HTTP protocol, started either from
  the code's ``bootstrap`` ("fun": custom runtime) or from :mod:`localcloud.fc.builtin`
  ("s": built-in python runtime, which runs the same ``runtime_server.py`` the custom
  runtime ships).
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
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localcloud.contracts import FaultHook
from localcloud.credentials import Credential, CredentialStore
from localcloud.fc.api import FcApiApp
from localcloud.fc.invoker import (
    AsyncInvoker,
    DestinationSink,
    Invocation,
    InvocationRecord,
    InvocationSource,
)
from localcloud.fc.launcher import Flavour, InstanceLauncher
from localcloud.fc.pool import InstancePool
from localcloud.fc.template import FunctionSpec
from localcloud.server import LocalServer

#: Names the interpreter instances run on when the constructor is not given one.
FUNCTION_PYTHON_ENV = "OTA_FUNCTION_PYTHON"

#: The executor is sized at start() for at least this many instances, so a cap raised
#: later by set_max_instances() still gets a worker per slot (up to this many instances).
EXECUTOR_MIN_INSTANCES = 8


class LocalFunctionCompute:
    """Runs one function from template.yml locally, fed by OSS events and the FC API.

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
        self.account_id = account_id
        self.region = region
        self.startup_timeout = startup_timeout
        self.faults = faults
        self._serve_api = serve_api
        self._api_port = api_port
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="localfc-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)

        self.invocations: list[InvocationRecord] = []
        self.dropped_events = 0

        self.launcher = InstanceLauncher(
            spec,
            code_dir=self.code_dir,
            flavour=flavour,
            python=self.python,
            env_overrides=self.env_overrides,
            extra_pythonpath=self.extra_pythonpath,
            region=region,
            account_id=account_id,
            startup_timeout=startup_timeout,
            log_dir=self.log_dir,
        )
        self.pool = InstancePool(
            self.launcher.start, max_instances=max_instances, concurrency=concurrency
        )
        self.invoker = AsyncInvoker(
            spec,
            self._attempt,
            function_arn=self.function_arn(),
            sink=destination_sink,
            base_delay=retry_base_delay,
            running=lambda: self._running,
        )
        # Guards the records above and the count of unfinished invocations (wait_idle).
        self._lock = threading.Condition()
        self._pending = 0
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self._api_server: LocalServer | None = None
        self.api_app: FcApiApp | None = None

    @property
    def role_credential(self) -> Credential | None:
        """The service role's temporary key instances get (minted by :meth:`start`)."""
        return self.launcher.credential

    @property
    def instance_pids(self) -> list[int]:
        """Every instance process ever started, for leak checks."""
        return self.launcher.instance_pids

    @property
    def max_instances(self) -> int:
        """The on-demand instance cap now in force (see :meth:`set_max_instances`)."""
        return self.pool.max_instances

    @property
    def instance_concurrency(self) -> int:
        """Invocations one instance serves at once (the template's InstanceConcurrency
        unless overridden)."""
        return self.pool.concurrency

    @property
    def destination_records(self) -> list[tuple[str, dict[str, Any]]]:
        return self.invoker.destination_records

    @property
    def destination_errors(self) -> list[tuple[str, str]]:
        return self.invoker.destination_errors

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalFunctionCompute:
        """Mint the function's credential, start the dispatcher and the FC API server."""
        if self._running:
            return self
        self.launcher.credential = self.credentials.add(
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
        self.pool.open()
        if self._serve_api:
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
        instances = self.pool.close()
        if self._api_server is not None:
            self._api_server.stop()
            self._api_server = None
        for inst in instances:  # unblocks workers waiting on a response
            inst.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for inst in self.pool.drain():
            inst.stop()
        with self._lock:
            self._pending = 0
            self._lock.notify_all()
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
        request = Invocation(payload, source, qualifier)
        with self._lock:
            if not self._running or self._executor is None:
                raise RuntimeError("local FC is not running")
            self._pending += 1
            self._executor.submit(self._run_async, request)
        return request.request_id

    def invoke_sync(self, payload: bytes, *, qualifier: str = "LATEST") -> InvocationRecord:
        """Run one synchronous invocation (no retries, as FC does for sync calls)."""
        request = Invocation(payload, "sync", qualifier)
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
        self.pool.set_max_instances(n)

    def instance_load(self) -> dict[int, int]:
        """In-flight invocations per pooled instance, by pid (for tests and the demo)."""
        return self.pool.load()

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

    def _run_async(self, request: Invocation) -> None:
        try:
            self.invoker.run(request)
        finally:
            self._done()

    def _attempt(self, request: Invocation, attempt: int) -> InvocationRecord:
        started = time.time()
        t0 = time.monotonic()
        outcome = self.pool.invoke(
            "/invoke",
            request.payload,
            lambda: self.launcher.headers(request.request_id, request.qualifier, "/invoke"),
            float(self.spec.timeout),
        )
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

    # ------------------------------------------------------------------ instances

    def handler(self) -> str:
        """The handler an instance runs: the function's, or with crash points its wrapper."""
        return self.launcher.handler()

    def instance_env(self) -> dict[str, str]:
        """The environment an instance process starts with (FC's, not the host's)."""
        return self.launcher.environment()

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
