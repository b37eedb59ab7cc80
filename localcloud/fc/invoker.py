"""Asynchronous invocation of the local Function Compute: retries and destinations.

A failed asynchronous invocation (function error, crash, timeout) is retried up to the
function's MaxAsyncRetryAttempts, then a destination record goes to the OnFailure MNS
topic; a success goes to OnSuccess when one is set. FC spaces its retries by seconds to
minutes; here the delay is ``base_delay * 2**n`` so tests stay fast. The destination
record follows FC's "result callback" document (:func:`destination_record`).

Synchronous invocations are never retried (as on FC); they use :class:`InvocationRecord`
too, so every attempt of every request is kept the same way.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from localcloud.fc.pool import UNHANDLED_ERROR, InvocationStatus
from localcloud.fc.template import FunctionSpec, mns_topic_from_arn

InvocationSource = Literal["trigger", "async", "sync"]


class DestinationSink(Protocol):
    """Publishes a message to an MNS topic (the local MNS ``publish`` method)."""

    def __call__(self, topic: str, body: str, tag: str | None) -> Any: ...


@dataclass
class Invocation:
    """One request to the function, as it waits, runs and is retried."""

    payload: bytes
    source: InvocationSource
    qualifier: str = "LATEST"
    request_id: str = field(default_factory=lambda: f"{uuid.uuid4()}")
    first_attempt_at: float = field(default_factory=time.time)


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


Attempt = Callable[[Invocation, int], InvocationRecord]


class AsyncInvoker:
    """Runs asynchronous invocations to their end: attempts, back-off, destinations."""

    def __init__(
        self,
        spec: FunctionSpec,
        attempt: Attempt,
        *,
        function_arn: str,
        sink: DestinationSink | Callable[..., Any] | None,
        base_delay: float,
        running: Callable[[], bool],
    ) -> None:
        self.spec = spec
        self._attempt = attempt
        self.function_arn = function_arn
        self.sink = sink
        self.base_delay = base_delay
        self._running = running
        self._lock = threading.Lock()
        #: Every destination record built, with the ARN it was meant for.
        self.destination_records: list[tuple[str, dict[str, Any]]] = []
        #: Deliveries the sink refused (e.g. TopicNotExist), dropped as FC drops them.
        self.destination_errors: list[tuple[str, str]] = []

    def run(self, request: Invocation) -> None:
        """Attempt ``request`` until it succeeds or its retries are used up."""
        attempts = 1 + max(0, self.spec.max_async_retry_attempts)
        record: InvocationRecord | None = None
        for attempt in range(1, attempts + 1):
            if not self._running():
                return
            record = self._attempt(request, attempt)
            if record.status == "succeeded":
                self.deliver(request, record, attempt, success=True)
                return
            if attempt < attempts:
                time.sleep(self.base_delay * (2 ** (attempt - 1)))
        if record is not None and self._running():
            self.deliver(request, record, attempts, success=False)

    def deliver(
        self, request: Invocation, record: InvocationRecord, attempts: int, *, success: bool
    ) -> None:
        """Send the destination record to OnSuccess or OnFailure, if the function has one."""
        arn = self.spec.on_success if success else self.spec.on_failure
        if not arn:
            return
        error = "" if success else (record.error_type or UNHANDLED_ERROR)
        body = destination_record(
            request_id=request.request_id,
            function_arn=self.function_arn,
            condition=error,
            attempts=attempts,
            request_payload=request.payload,
            status_code=200,
            function_error=error,
            response_payload=record.result,
            timestamp=request.first_attempt_at,
        )
        with self._lock:
            self.destination_records.append((arn, body))
        topic = mns_topic_from_arn(arn)
        if topic is None or self.sink is None:
            return  # only MNS topic destinations can be delivered locally
        try:
            self.sink(topic, json.dumps(body), None)
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
