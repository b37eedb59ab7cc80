"""The instance pool of the local Function Compute: processes, slots, packing, crashes.

An instance is a long-lived child process speaking FC's custom-runtime HTTP protocol on a
free loopback port (:class:`Instance`). The pool (:class:`InstancePool`) decides which
instance serves an invocation, the way FC schedules on-demand instances:

- each instance serves up to ``InstanceConcurrency`` invocations at the same time; a
  request goes to a running instance with a free slot, preferring the busiest such
  instance so load packs onto few instances;
- a new instance starts only when every instance is full (or about to be, counting the
  slots of instances still starting), and never beyond the on-demand cap
  (``max_instances``); lowering the cap stops no running instance, 0 lets none start;
- an invocation that times out or loses its instance's connection stops that instance, so
  the other invocations it was serving fail with it (:meth:`InstancePool.invoke`).

How an instance process is started (argv, environment, initializer) is the caller's: the
pool is given a ``start_instance`` callable.
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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

LOOPBACK = "127.0.0.1"
#: Error type FC reports (``x-fc-error-type``) for a function that raised or timed out.
UNHANDLED_ERROR = "UnhandledInvocationError"

InvocationStatus = Literal["succeeded", "failed", "timeout", "crashed"]


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


def failed_reply(status: int, headers: Mapping[str, str]) -> bool:
    """Whether a runtime's reply reports a function error.

    FC's runtimes answer 404 with ``x-fc-status: 404``; a plain 404 or a 5xx is read as a
    failure too (a runtime that cannot serve the request did not run the function).
    """
    return headers.get("x-fc-status") == "404" or status == 404 or status >= 500


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Instance:
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
        self.port = free_port()
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


class InstancePool:
    """The live instances of one function and how many invocations each is serving."""

    def __init__(
        self,
        start_instance: Callable[[], Instance],
        *,
        max_instances: int,
        concurrency: int,
    ) -> None:
        self._start_instance = start_instance
        #: The on-demand instance cap (FC's PutOnDemandConfig ``maximumInstanceCount``).
        self.max_instances = max_instances
        #: Invocations one instance serves at the same time (InstanceConcurrency).
        self.concurrency = concurrency
        self._lock = threading.Condition()
        # Every live instance that may take invocations, mapped to how many it is serving
        # now. An instance leaves it (once, by retire) before it is stopped, so a stopped
        # instance is never handed out.
        self._in_flight: dict[Instance, int] = {}
        self._starting = 0  # instances being started (outside the lock)
        # Requests waiting for a slot of an instance that is still starting: counted so
        # that each starting instance's spare slots are promised only once.
        self._awaiting_start = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> list[Instance]:
        """Hand out no more slots; wake every waiter. Returns the pooled instances."""
        with self._lock:
            self._open = False
            self._lock.notify_all()
            return list(self._in_flight)

    def drain(self) -> list[Instance]:
        """Empty the pool (after close and once no invocation runs); returns what it held."""
        with self._lock:
            instances = list(self._in_flight)
            self._in_flight.clear()
            self._lock.notify_all()
        return instances

    def instances(self) -> list[Instance]:
        with self._lock:
            return list(self._in_flight)

    def load(self) -> dict[int, int]:
        """In-flight invocations per pooled instance, by pid."""
        with self._lock:
            return {inst.pid: count for inst, count in self._in_flight.items()}

    def set_max_instances(self, n: int) -> None:
        """Change the cap; waiters re-check against it (see LocalFunctionCompute)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"max_instances: must be an integer of at least 0, got {n!r}")
        with self._lock:
            self.max_instances = n
            self._lock.notify_all()

    def invoke(
        self,
        path: str,
        payload: bytes,
        headers: Callable[[], Mapping[str, str]],
        timeout: float,
    ) -> InvokeOutcome:
        """Run one invocation on a slot of an instance; a timeout or crash retires it."""
        try:
            inst = self.acquire()
        except InstanceStartError as exc:
            return InvokeOutcome("crashed", b"", "InstanceStartError", str(exc))
        healthy = True
        try:
            try:
                status, reply_headers, body = inst.post(path, payload, headers(), timeout)
            except TimeoutError:
                healthy = False
                # FC kills the instance, and with it any other invocation it was serving.
                self.retire(inst)
                msg = f"Function timed out after {timeout:g} seconds"
                return InvokeOutcome(
                    "timeout", error_json(msg, "FunctionTimeout"), UNHANDLED_ERROR, msg, inst.pid
                )
            except (OSError, http.client.HTTPException) as exc:
                healthy = False
                self.retire(inst)
                msg = f"Process exited unexpectedly before completing request ({exc})"
                return InvokeOutcome(
                    "crashed", error_json(msg, "ProcessExited"), UNHANDLED_ERROR, msg, inst.pid
                )
            if failed_reply(status, reply_headers):
                return InvokeOutcome("failed", body, UNHANDLED_ERROR, error_message(body), inst.pid)
            return InvokeOutcome("succeeded", body, None, None, inst.pid)
        finally:
            self.release(inst, healthy and inst.alive())

    def acquire(self) -> Instance:
        """A slot on an instance: a free one if any, else a new instance, else wait."""
        with self._lock:
            while True:
                if not self._open:
                    raise InstanceStartError("local FC is stopping")
                inst = self._free_instance()
                if inst is not None:
                    self._in_flight[inst] += 1
                    return inst
                # Every starting instance will bring concurrency - 1 slots besides its
                # starter's: wait for one of those rather than start another instance.
                spare = self._starting * (self.concurrency - 1) - self._awaiting_start
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
            pooled = self._open
            if pooled:
                self._in_flight[started] = 1  # the starter takes the first slot
            self._lock.notify_all()
        if not pooled:
            # close() ran while it was starting, so the stopper could not see it: stop it.
            started.stop(grace=0.5)
            raise InstanceStartError("local FC is stopping")
        return started

    def _free_instance(self) -> Instance | None:
        """The pooled instance with the most invocations that still has a free slot.

        Packing requests onto the busiest instance (as FC does) leaves the others idle, so
        they are the ones FC could reclaim. Called with the lock held.
        """
        best: Instance | None = None
        for inst, count in self._in_flight.items():
            if count < self.concurrency and (best is None or count > self._in_flight[best]):
                best = inst
        return best

    def release(self, inst: Instance, healthy: bool) -> None:
        """Give back the slot ``inst`` served; an unhealthy instance leaves the pool."""
        with self._lock:
            if healthy and self._open and inst in self._in_flight:
                assert self._in_flight[inst] > 0, "released more slots than were acquired"
                self._in_flight[inst] -= 1
                self._lock.notify_all()
                return
        self.retire(inst)

    def retire(self, inst: Instance) -> None:
        """Take ``inst`` out of the pool, then stop it.

        Safe to call from every invocation that was running on it: only the first removes
        it (its slot counts go with it), and stopping an instance twice does nothing more.
        Leaving the pool first means no new invocation is sent to a dying instance.
        """
        with self._lock:
            if self._in_flight.pop(inst, None) is not None:
                self._lock.notify_all()  # its place under max_instances is free again
        inst.stop(grace=0.5)


def error_json(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode("utf-8")


def error_message(body: bytes) -> str:
    """The ``errorMessage`` of a runtime's error reply (or the start of the body)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return body.decode("utf-8", errors="replace")[:500]
    if isinstance(data, dict) and "errorMessage" in data:
        return str(data["errorMessage"])
    return json.dumps(data)[:500]
