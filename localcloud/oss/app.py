"""The OSS stand-in as a WSGI app: route, fault seam, authenticate, authorize, run.

Every request goes through :meth:`LocalOss.dispatch`, which first names the operation
(:mod:`localcloud.oss.routes`) and then asks the optional ``faults`` hook whether to answer
with an injected error instead; PostObject carries its own authentication in the form,
every other operation is checked here (:mod:`localcloud.oss.auth`) before its handler in
:mod:`localcloud.oss.responses` runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wrappers import Response

from localcloud.contracts import FaultHook, ObjectFacts, OssEventSink
from localcloud.credentials import CredentialStore, default_store
from localcloud.oss.auth import Authenticator, SignedRequest
from localcloud.oss.backend import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    DEFAULT_RULE_ID,
    OssBackend,
)
from localcloud.oss.errors import OssError, access_denied, new_request_id
from localcloud.oss.events import EventDispatcher
from localcloud.oss.request import Call, OssRequest
from localcloud.oss.routes import OPERATIONS, host_bucket, route
from localcloud.oss.storage import BucketInfo, ObjectStore, StoredObject

log = logging.getLogger(__name__)

_ANONYMOUS_READS = frozenset({"GetObject", "HeadObject", "GetObjectMeta"})
_ANONYMOUS_WRITES = frozenset({"PutObject", "PostObject"})


class LocalOss:
    """The OSS stand-in: a WSGI app; its state and Python API are ``backend``'s.

    ``notify`` (and later :meth:`subscribe`) receive ``{"events": [record]}`` for every
    object created, from a background thread; call :meth:`drain` to wait for delivery and
    :meth:`close` when done. ``clock`` is injectable so expiry and skew can be tested
    without waiting. The Python API (used by tests, the demo and the local FC) is the
    backend's, reachable here too: :meth:`create_bucket`, :meth:`put_object`, ...
    """

    def __init__(
        self,
        data_dir: Path | str,
        credentials: CredentialStore | None = None,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        rule_id: str = DEFAULT_RULE_ID,
        notify: OssEventSink | None = None,
        faults: FaultHook | None = None,
        min_part_size: int = 100 * 1024,
        max_skew_seconds: float = 15 * 60,
        clock: Callable[[], float] = time.time,
        base_url: str | None = None,
        allow_v1: bool = False,
    ) -> None:
        self.backend = OssBackend(
            data_dir,
            credentials if credentials is not None else default_store(),
            region=region,
            account_id=account_id,
            rule_id=rule_id,
            min_part_size=min_part_size,
            clock=clock,
            base_url=base_url,
            allow_v1=allow_v1,
        )
        self.faults = faults
        self.auth = Authenticator(
            self.backend.credentials,
            region,
            clock,
            max_skew_seconds,
            v1_allowed=lambda _req: self.backend.allow_v1,
        )
        if notify is not None:
            self.backend.subscribe(notify)

    # -- the backend's settings, readable and settable here -----------------------------

    @property
    def store(self) -> ObjectStore:
        return self.backend.store

    @property
    def events(self) -> EventDispatcher:
        return self.backend.events

    @property
    def credentials(self) -> CredentialStore:
        return self.backend.credentials

    @property
    def region(self) -> str:
        return self.backend.region

    @property
    def account_id(self) -> str:
        return self.backend.account_id

    @property
    def rule_id(self) -> str:
        return self.backend.rule_id

    @property
    def clock(self) -> Callable[[], float]:
        """What PostObject policies are checked against (signatures keep the initial clock)."""
        return self.backend.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.backend.clock = clock

    @property
    def base_url(self) -> str | None:
        return self.backend.base_url

    @base_url.setter
    def base_url(self, url: str | None) -> None:
        self.backend.base_url = url

    @property
    def allow_v1(self) -> bool:
        """Accept V1 signatures everywhere (legacy accounts and buckets); off by default."""
        return self.backend.allow_v1

    @allow_v1.setter
    def allow_v1(self, allowed: bool) -> None:
        self.backend.allow_v1 = allowed

    # -- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = OssRequest(environ, self.store.tmp_dir)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: OssRequest) -> Response:
        """Route, consult the fault hook, authenticate, run: the one path every request takes."""
        request_id = new_request_id()
        try:
            response = self._run(request, request_id)
        finally:
            request.cleanup()
        response.headers["x-oss-request-id"] = request_id
        response.headers.setdefault("Server", "AliyunOSS")
        return response

    def _run(self, request: OssRequest, request_id: str) -> Response:
        head = request.method == "HEAD"
        try:
            call = route(request, request_id, self.base_url)
            if self.faults is not None:
                injected = self.faults.before("oss", call.operation)
                if injected is not None:
                    injected.headers.setdefault("x-oss-request-id", request_id)
                    return injected
            if call.operation != "PostObject":
                call.caller = self.auth.authenticate(self._signed(call))
                self._authorize(call)
            return OPERATIONS[call.operation](self.backend, call)
        except OssError as exc:
            return exc.to_response(request_id, request.host, head=head)
        except (ClientDisconnected, RequestEntityTooLarge):
            return OssError(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the "
                "Content-Length HTTP header.",
            ).to_response(request_id, request.host)
        except Exception:
            log.exception("local OSS failed on %s %s", request.method, request.path)
            return OssError(
                500, "InternalError", "We encountered an internal error. Please try again."
            ).to_response(request_id, request.host, head=head)

    @staticmethod
    def _signed(call: Call) -> SignedRequest:
        headers = [(k.lower(), v) for k, v in call.request.headers.items()]
        # werkzeug hides an empty Content-Type, but it was on the wire and V4 signs it.
        environ = call.request.environ
        if environ.get("CONTENT_TYPE") == "" and "content-type" not in dict(headers):
            headers.append(("content-type", ""))
        return SignedRequest(call.request.method, call.bucket, call.key, call.params, headers)

    def _authorize(self, call: Call) -> None:
        """Anonymous callers get only what the bucket ACL grants (public-read/-write)."""
        if call.caller is not None:
            return
        if call.bucket is None:
            raise access_denied("AccessDenied: anonymous access to the service is not allowed.")
        info = self.store.require_bucket(call.bucket)
        if call.operation in _ANONYMOUS_READS and info.acl in ("public-read", "public-read-write"):
            return
        if call.operation in _ANONYMOUS_WRITES and info.acl == "public-read-write":
            return
        raise access_denied("You have no right to access this object because of bucket acl.")

    def host_bucket(self, host: str) -> str | None:
        """The bucket a Host header names (virtual-hosted style), or None for path style."""
        return host_bucket(host, self.base_url)

    # -- Python API (the backend's) -------------------------------------------------------

    def create_bucket(
        self, name: str, acl: str | None = None, *, v1_post_form: bool | None = None
    ) -> BucketInfo:
        """Create (or re-ACL) a bucket without HTTP; ``v1_post_form`` marks the IoT bucket."""
        return self.backend.create_bucket(name, acl, v1_post_form=v1_post_form)

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | BinaryIO,
        *,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        notify: bool = True,
    ) -> StoredObject:
        """Store an object directly (as a console upload would) and raise its PutObject event."""
        return self.backend.put_object(
            bucket, key, data, content_type=content_type, metadata=metadata, notify=notify
        )

    def head(self, bucket: str, key: str) -> StoredObject | None:
        return self.backend.head(bucket, key)

    def open_object(self, bucket: str, key: str) -> BinaryIO:
        """A read handle on the object's bytes; FileNotFoundError if there is no such object."""
        return self.backend.open_object(bucket, key)

    def read_object(self, bucket: str, key: str) -> bytes:
        return self.backend.read_object(bucket, key)

    def object_path(self, bucket: str, key: str) -> Path:
        """Where the current version of the object lives on disk (changes on overwrite)."""
        return self.backend.object_path(bucket, key)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return self.backend.list_keys(bucket, prefix)

    def delete_object(self, bucket: str, key: str) -> bool:
        return self.backend.delete_object(bucket, key)

    def url_for(self, bucket: str, key: str) -> str:
        """The path-style URL of an object on this server (needs ``base_url``)."""
        return self.backend.url_for(bucket, key)

    def lookup_url(self, url: str) -> ObjectFacts | None:
        """Resolve an object URL (path-style or virtual-host, signed or not) to its facts."""
        return self.backend.lookup_url(url)

    def subscribe(self, sink: OssEventSink) -> Callable[[], None]:
        """Receive object-created events from now on; returns an unsubscribe function."""
        return self.backend.subscribe(sink)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until queued events were delivered; False if ``timeout`` ran out first."""
        return self.backend.drain(timeout)

    def close(self) -> None:
        """Deliver pending events and stop the delivery thread."""
        self.backend.close()

    def __enter__(self) -> LocalOss:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
