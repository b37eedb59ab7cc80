"""MNS topics as a WSGI app: route, authenticate, count, fault seam, run the operation."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.contracts import FaultHook
from localcloud.credentials import CredentialStore
from localcloud.mns.auth import authenticate
from localcloud.mns.backend import MAX_MESSAGE_SIZE, MnsBackend, ReceivedMessage, utcnow
from localcloud.mns.errors import MnsError, error_response
from localcloud.mns.responses import read_messages
from localcloud.mns.routes import OPERATIONS, READ_PATH, route


class LocalMns:
    """MNS topics as a WSGI app; the topics and their Python API are ``backend``.

    The Python API (used by tests, the demo and the local FC) is the backend's, reachable
    here too: :meth:`create_topic`, :meth:`publish`, :meth:`messages`, :meth:`wait_for`, ...
    """

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        faults: FaultHook | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.credentials = credentials
        self.faults = faults
        self.backend = MnsBackend(now=now)
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    # Python API ------------------------------------------------------------------------------

    @property
    def now(self) -> Callable[[], datetime]:
        return self.backend.now

    @now.setter
    def now(self, clock: Callable[[], datetime]) -> None:
        self.backend.now = clock

    @property
    def calls(self) -> Counter[str]:
        """Authenticated calls per operation (PublishMessage, CreateTopic, ...)."""
        with self._calls_lock:
            return Counter(self._calls)

    def create_topic(self, name: str, *, maximum_message_size: int = MAX_MESSAGE_SIZE) -> None:
        """Create a topic (no-op if it exists), as the demo and tests set up the account."""
        self.backend.create_topic(name, maximum_message_size=maximum_message_size)

    def delete_topic(self, name: str) -> None:
        self.backend.delete_topic(name)

    def topics(self) -> list[str]:
        return self.backend.topics()

    def publish(self, topic: str, body: str, tag: str | None = None) -> ReceivedMessage:
        """Deliver a message without HTTP (the local FC's destination path); same limits."""
        return self.backend.publish(topic, body, tag)

    def messages(self, topic: str) -> list[ReceivedMessage]:
        """What the topic received, oldest first."""
        return self.backend.messages(topic)

    def wait_for(self, topic: str, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until the topic holds at least ``count`` messages; raise TimeoutError if not."""
        return self.backend.wait_for(topic, count, timeout)

    def reset(self) -> None:
        """Empty every topic and the call counts; topics themselves stay."""
        self.backend.reset()
        with self._calls_lock:
            self._calls.clear()

    # WSGI ------------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The one dispatch path: route, authenticate, count, fault seam, run."""
        request_id = uuid.uuid4().hex.upper()[:24]
        try:
            read = READ_PATH.match(request.path)
            if read and request.method == "GET":
                return read_messages(self.backend, read.group(1))
            operation, topic = route(request)
            authenticate(request, self.credentials, self.backend.now())
            with self._calls_lock:
                self._calls[operation] += 1
            if self.faults is not None:
                injected = self.faults.before("mns", operation)
                if injected is not None:
                    return injected
            return OPERATIONS[operation](self.backend, topic, request, request_id)
        except MnsError as error:
            return error_response(error, request_id)
