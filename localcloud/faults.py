"""Seeded fault injection for the local cloud: service faults and crash points.

Two halves, because faults happen in two places:

- :class:`FaultPlan` is the ``faults`` hook every stand-in calls in its one dispatch path
  (``before(service, operation)``; services ``oss``, ``iot`` (operation = Action), ``mns``,
  ``fc``). Per service and operation it injects HTTP 500/503 in the service's own error
  shape, the service's throttling error (IoT ``Throttling.User`` 400, optionally with
  ``x-acs-retry-after``), added latency, dropped connections (the client sees a reset, not
  an answer), timeouts (latency, then a drop) and permission denials (403, permanent). It
  counts what it injected and logs the time of every call it saw, so tests can measure
  call rates from the server's side.
- :class:`CrashPoints` runs inside the function's instance processes. The release
  pipeline calls it at named points (``after_digest``, ``after_create``,
  ``before_notify``, ``during_notify``); it is configured only through environment
  variables (:data:`CRASH_ENV`, :data:`SEED_ENV`, :data:`LEDGER_ENV`) that
  ``LocalCloud(env_overrides=...)`` hands to the function, and it ends the process with
  ``os._exit`` so Function Compute's instance replacement and retry really run.

Reproducibility: every decision is a hash of the seed and the call's identity (service,
operation and the call's ordinal for that operation; point, object key and the number of
earlier crashes there for crash points), never a shared random stream. The same seed
gives the same decision for the n-th call of an operation; which request happens to be
the n-th depends on thread scheduling, which a concurrent run cannot fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from werkzeug.wrappers import Response

from localcloud.contracts import CRASH_ENV

FaultKind = Literal["error500", "error503", "throttle", "latency", "drop", "timeout", "deny"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "error500",
    "error503",
    "throttle",
    "latency",
    "drop",
    "timeout",
    "deny",
)
#: Kinds that answer (or kill) the call; ``latency`` only delays it.
_ANSWERING: frozenset[str] = frozenset(FAULT_KINDS) - {"latency"}

SEED_ENV = "OTA_FAULT_SEED"
LEDGER_ENV = "OTA_FAULT_LEDGER"
CRASH_EXIT_CODE = 70
CRASH_POINTS = ("after_digest", "after_create", "before_notify", "during_notify")


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by ``parts``: the same inputs, the same draw."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class FaultRule:
    """Inject ``kind`` into a share ``rate`` of one service's calls.

    ``operations`` limits the rule to those operation names (None = every operation).
    ``seconds`` is the delay of ``latency`` and ``timeout``. ``retry_after_ms`` makes an
    IoT throttling answer carry ``x-acs-retry-after``.
    """

    service: str
    kind: FaultKind
    rate: float
    operations: frozenset[str] | None = None
    seconds: float = 0.05
    retry_after_ms: int | None = None

    def applies(self, service: str, operation: str) -> bool:
        return self.service == service and (self.operations is None or operation in self.operations)


def rule(
    service: str,
    kind: FaultKind,
    rate: float,
    *operations: str,
    seconds: float = 0.05,
    retry_after_ms: int | None = None,
) -> FaultRule:
    """Shorthand: ``rule("iot", "throttle", 0.1, "CreateOTAFirmware")``."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate}")
    return FaultRule(
        service,
        kind,
        rate,
        frozenset(operations) if operations else None,
        seconds,
        retry_after_ms,
    )


@dataclass(frozen=True)
class CallRecord:
    """One call a stand-in received, as the fault hook saw it."""

    at: float  # time.monotonic()
    service: str
    operation: str
    fault: str | None


class FaultPlan:
    """The seeded ``faults`` hook for every local service (see the module docstring).

    Rules are tried in order for each call; ``latency`` rules add their delay and let the
    next rules decide; the first answering rule that fires decides the call. ``active``
    switches injection off (calls are still logged), e.g. while a test reads results.
    """

    def __init__(self, rules: Iterable[FaultRule] = (), *, seed: int = 0) -> None:
        self.rules = list(rules)
        self.seed = seed
        self.active = True
        self._lock = threading.Lock()
        self._ordinals: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self.calls: list[CallRecord] = []

    def before(self, service: str, operation: str) -> Response | None:
        """The seam: None lets the call through; a Response answers it instead."""
        with self._lock:
            n = self._ordinals[(service, operation)]
            self._ordinals[(service, operation)] += 1
            active = self.active
        answer: Response | None = None
        fired: list[FaultRule] = []
        if active:
            for index, candidate in enumerate(self.rules):
                if not candidate.applies(service, operation):
                    continue
                if _unit(self.seed, service, operation, n, index) >= candidate.rate:
                    continue
                fired.append(candidate)
                if candidate.kind in _ANSWERING:
                    break
        with self._lock:
            for f in fired:
                self.injected[(service, f.kind)] += 1
            self.calls.append(
                CallRecord(
                    time.monotonic(),
                    service,
                    operation,
                    fired[-1].kind if fired else None,
                )
            )
        for f in fired:
            if f.kind in ("latency", "timeout"):
                time.sleep(f.seconds)
            if f.kind in _ANSWERING:
                answer = _answer(f, service, operation)
        return answer

    # Figures -------------------------------------------------------------------------

    def injected_by_kind(self) -> dict[str, int]:
        """``{"iot.throttle": 12, ...}``: what was injected, for reports."""
        with self._lock:
            return {f"{s}.{k}": n for (s, k), n in sorted(self.injected.items())}

    def call_times(self, service: str, operation: str | None = None) -> list[float]:
        """Monotonic times of the calls a service received (one operation, or all)."""
        with self._lock:
            return [
                c.at
                for c in self.calls
                if c.service == service and (operation is None or c.operation == operation)
            ]


def calls_per_second(times: list[float]) -> list[int]:
    """Calls in each whole second from the first call to the last (for rate checks)."""
    if not times:
        return []
    start = min(times)
    buckets = [0] * (int(max(times) - start) + 1)
    for t in times:
        buckets[int(t - start)] += 1
    return buckets


# Answers in each service's own shape ---------------------------------------------------


class DroppedConnection(Response):
    """Not an answer: the server resets the connection before sending a byte.

    The WSGI server hands the socket over as ``werkzeug.socket``; with SO_LINGER 0 the
    kernel resets the connection, so the client sees what a crashed or overloaded
    front end causes (connection reset / remote end closed without response).
    """

    def __call__(self, environ: Any, start_response: Any) -> Any:
        sock = environ.get("werkzeug.socket")
        if isinstance(sock, socket.socket):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
                # Discard what the server already buffered of the request body, or it would
                # be parsed as the next request on this (dead) connection.
                stream = environ.get("wsgi.input")
                while stream is not None and stream.read(65536):
                    pass
            except (OSError, ValueError):
                pass  # the client already went away: nothing left to drop
        # The server treats a ConnectionError as the client's disconnect and stays quiet.
        raise ConnectionResetError("fault injection: connection dropped")


_ERROR_TEXT = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again."),
}


def _answer(f: FaultRule, service: str, operation: str) -> Response:
    if f.kind in ("drop", "timeout"):
        return DroppedConnection()
    request_id = uuid.uuid4().hex.upper()[:24]
    if f.kind == "throttle":
        return _throttled(service, operation, request_id, f.retry_after_ms)
    if f.kind == "deny":  # a permanent fault: the caller's role lacks the permission
        code = "Forbidden.RAM" if service == "iot" else "AccessDenied"
        return _error(service, operation, request_id, 403, code, "The caller has no permission.")
    status = 500 if f.kind == "error500" else 503
    code, message = _ERROR_TEXT[status]
    return _error(service, operation, request_id, status, code, message)


def _throttled(
    service: str, operation: str, request_id: str, retry_after_ms: int | None
) -> Response:
    if service == "iot":
        response = _error(
            service,
            operation,
            request_id,
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        )
        if retry_after_ms is not None:
            response.headers["x-acs-retry-after"] = str(retry_after_ms)
        return response
    if service == "fc":
        return _error(service, operation, request_id, 429, "ResourceThrottled", "Throttled.")
    # OSS and MNS have no documented throttling code we rely on: a 503 is what a client
    # must treat as "slow down" there (OSS's exact code is unconfirmed).
    return _error(
        service, operation, request_id, 503, "SlowDown", "Please reduce your request rate."
    )


def _error(
    service: str, operation: str, request_id: str, status: int, code: str, message: str
) -> Response:
    if service == "oss":
        from localcloud.oss.errors import OssError

        return OssError(status, code, message).to_response(
            request_id, "oss-cn-shanghai.aliyuncs.com", head=operation == "HeadObject"
        )
    if service == "iot":
        from localcloud.iot import HOST_ID

        body = {
            "RequestId": request_id,
            "HostId": HOST_ID,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Iot",
        }
        return Response(
            json.dumps(body),
            status=status,
            content_type="application/json;charset=utf-8",
            headers={"x-acs-request-id": request_id},
        )
    if service == "mns":
        from localcloud.mns.errors import MnsError, error_response

        return error_response(MnsError(status, code, message), request_id)
    if service == "fc":
        from localcloud.fc.errors import fc_error

        return fc_error(status, code, message)
    return Response(message, status=status)


# Crash points inside the function --------------------------------------------------------


@dataclass
class CrashPoints:
    """Test-only crash points in the function: ``point -> rate``, seeded, with a ledger.

    The ledger (a file shared by all instance processes) records every crash; it is how a
    decision can change between FC's retries of the same event (the draw includes the
    number of earlier crashes at that point for that key) and how a test counts crashes
    that no process survived to report. ``max_per_key`` caps crashes per point and key so
    a run with crash points can still finish every event.
    """

    rates: dict[str, float]
    seed: int = 0
    ledger: Path | None = None
    max_per_key: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CrashPoints | None:
        """``OTA_FAULT_CRASH_AT=after_digest:0.3,after_create:0.3[,max=2]``; None if unset."""
        spec = (env.get(CRASH_ENV) or "").strip()
        if not spec:
            return None
        rates: dict[str, float] = {}
        cap: int | None = None
        for item in filter(None, (i.strip() for i in spec.split(","))):
            if item.startswith("max="):
                cap = int(item[len("max=") :])
                continue
            name, _, value = item.partition(":")
            if name not in CRASH_POINTS:
                raise ValueError(f"{CRASH_ENV}: unknown crash point {name!r}; use {CRASH_POINTS}")
            rates[name] = float(value or "1")
        ledger = env.get(LEDGER_ENV)
        return cls(rates, int(env.get(SEED_ENV) or 0), Path(ledger) if ledger else None, cap)

    def crashes_so_far(self, point: str, key: str) -> int:
        if self.ledger is None or not self.ledger.exists():
            return 0
        entry = [point, key]
        return sum(1 for e in read_ledger(self.ledger) if e[:2] == entry)

    def reach(self, point: str, key: str) -> None:
        """Die here if the seeded draw says so (after writing the ledger line)."""
        rate = self.rates.get(point)
        if not rate:
            return
        with self._lock:
            earlier = self.crashes_so_far(point, key)
            if self.max_per_key is not None and earlier >= self.max_per_key:
                return
            if _unit(self.seed, point, key, earlier) >= rate:
                return
            if self.ledger is not None:
                line = json.dumps([point, key, os.getpid()], ensure_ascii=False) + "\n"
                # O_APPEND keeps concurrent instances' lines whole.
                fd = os.open(self.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode("utf-8"))
                finally:
                    os.close(fd)
        sys.stderr.write(f"fault injection: crash at {point} for {key!r}\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(CRASH_EXIT_CODE)


def read_ledger(path: Path) -> list[list[Any]]:
    """Every crash recorded so far: ``[point, key, pid]`` entries, oldest first."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def crash_env(
    rates: Mapping[str, float], *, seed: int, ledger: Path, max_per_key: int | None = None
) -> dict[str, str]:
    """The ``env_overrides`` that switch crash points on in the function's instances."""
    spec = ",".join(f"{point}:{rate}" for point, rate in rates.items())
    if max_per_key is not None:
        spec += f",max={max_per_key}"
    return {CRASH_ENV: spec, SEED_ENV: str(seed), LEDGER_ENV: str(ledger)}
