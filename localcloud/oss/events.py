"""Object-created notifications in the native FC OSS trigger shape, delivered off-thread.

OSS does not make an upload wait for the functions it triggers, so neither does this: the
request thread only enqueues, a background thread calls the subscribers. ``drain`` lets a
test wait for delivery without sleeping.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone

from localcloud.contracts import OssEventSink
from localcloud.oss.storage import StoredObject
from ota_release.events import oss_trigger_record
from ota_release.timestamps import utc_millis_from_epoch

log = logging.getLogger(__name__)

# Event names OSS uses for object creation (FC trigger event list).
PUT_OBJECT = "ObjectCreated:PutObject"
POST_OBJECT = "ObjectCreated:PostObject"
COPY_OBJECT = "ObjectCreated:CopyObject"
COMPLETE_MULTIPART_UPLOAD = "ObjectCreated:CompleteMultipartUpload"


def event_time(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, as in ``2022-08-13T06:45:43.000Z``."""
    return utc_millis_from_epoch(ts)


def object_created_event(
    record: StoredObject,
    *,
    event_name: str,
    request_id: str,
    region: str,
    account_id: str,
    rule_id: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, object]:
    """The ``{"events": [record]}`` payload a native OSS trigger hands to a function.

    Written by the function's own builder (:func:`ota_release.events.oss_trigger_record`),
    so what the local OSS sends and what the function parses are one definition.
    """
    return {
        "events": [
            oss_trigger_record(
                bucket=record.bucket,
                key=record.key,
                size=record.size,
                etag=record.etag,
                event_time=datetime.fromtimestamp(record.last_modified, timezone.utc),
                region=region,
                account_id=account_id,
                request_id=request_id,
                rule_id=rule_id,
                event_name=event_name,
                source_ip=source_ip,
            )
        ]
    }


class EventDispatcher:
    """A queue with one worker thread that hands each event to every subscriber.

    A subscriber that raises is logged and skipped; the others, and the upload that
    caused the event, are unaffected. Each subscriber gets its own copy of the event.
    """

    def __init__(self, name: str = "local-oss-events") -> None:
        self._name = name
        self._subscribers: list[OssEventSink] = []
        self._queue: deque[dict[str, object] | None] = deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def subscribe(self, sink: OssEventSink) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        with self._cond:
            self._subscribers.append(sink)

        def unsubscribe() -> None:
            with self._cond:
                if sink in self._subscribers:
                    self._subscribers.remove(sink)

        return unsubscribe

    def publish(self, event: dict[str, object]) -> None:
        with self._cond:
            if self._closed or not self._subscribers:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.append(event)
            self._pending += 1
            self._cond.notify_all()

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every published event was delivered; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the worker thread."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.append(None)
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                event = self._queue.popleft()
                subscribers = list(self._subscribers)
            if event is None:
                return
            try:
                for sink in subscribers:
                    try:
                        sink(copy.deepcopy(event))
                    except Exception:
                        log.exception("OSS event subscriber %r failed", sink)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()
