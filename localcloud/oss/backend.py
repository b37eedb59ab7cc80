"""The local OSS account: its buckets and objects on disk, its event stream, its Python API.

:class:`OssBackend` is what the handlers in :mod:`localcloud.oss.responses` act on and
what tests, the demo and the local FC use directly (:meth:`~OssBackend.create_bucket`,
:meth:`~OssBackend.put_object`, :meth:`~OssBackend.read_object`, :meth:`~OssBackend.subscribe`,
...). Storage itself (blobs, records, multipart) is :mod:`localcloud.oss.storage`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

from localcloud.contracts import ObjectFacts, OssEventSink
from localcloud.credentials import CredentialStore
from localcloud.oss.errors import OssError, new_request_id
from localcloud.oss.events import PUT_OBJECT, EventDispatcher, object_created_event
from localcloud.oss.storage import BucketInfo, ObjectStore, StoredObject, validate_object_key

DEFAULT_REGION = "cn-hangzhou"
DEFAULT_ACCOUNT_ID = "1234567890123456"
DEFAULT_RULE_ID = hashlib.sha1(b"localcloud-oss-trigger").hexdigest()


class OssBackend:
    """Buckets, objects and object-created events of one account in one region.

    ``clock`` is what PostObject policies are checked against; ``allow_v1`` accepts V1
    signatures everywhere, as OSS still does for buckets of accounts created before
    2025-03-01 / buckets created before 2025-09-01 (off by default).
    """

    def __init__(
        self,
        data_dir: Path | str,
        credentials: CredentialStore,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        rule_id: str = DEFAULT_RULE_ID,
        min_part_size: int = 100 * 1024,
        clock: Callable[[], float] = time.time,
        base_url: str | None = None,
        allow_v1: bool = False,
    ) -> None:
        self.store = ObjectStore(data_dir, min_part_size=min_part_size)
        self.credentials = credentials
        self.region = region
        self.account_id = account_id
        self.rule_id = rule_id
        self.clock = clock
        self.base_url = base_url
        self.allow_v1 = allow_v1
        self.events = EventDispatcher()

    def emit(self, record: StoredObject, event_name: str, request_id: str) -> None:
        """Raise the native FC OSS trigger event for an object just created."""
        self.events.publish(
            object_created_event(
                record,
                event_name=event_name,
                request_id=request_id,
                region=self.region,
                account_id=self.account_id,
                rule_id=self.rule_id,
            )
        )

    # -- Python API for tests and the demo ----------------------------------------------

    def create_bucket(
        self, name: str, acl: str | None = None, *, v1_post_form: bool | None = None
    ) -> BucketInfo:
        """Create (or re-ACL) a bucket without going through HTTP.

        ``v1_post_form=True`` makes it a legacy bucket for the V1 PostObject form only
        (the IoT platform's upload bucket); every other V1 request is still refused.
        """
        return self.store.create_bucket(name, acl, v1_post_form=v1_post_form)

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
        validate_object_key(key)
        self.store.require_bucket(bucket)
        writer = self.store.new_writer()
        try:
            if isinstance(data, bytes):
                writer.write(data)
            else:
                writer.copy_from(data)
        except BaseException:
            writer.discard()
            raise
        record = self.store.commit(
            bucket,
            key,
            writer,
            content_type=content_type,
            user_meta={k.lower(): v for k, v in (metadata or {}).items()},
        )
        if notify:
            self.emit(record, PUT_OBJECT, new_request_id())
        return record

    def head(self, bucket: str, key: str) -> StoredObject | None:
        return self.store.get(bucket, key)

    def open_object(self, bucket: str, key: str) -> BinaryIO:
        """A read handle on the object's bytes; FileNotFoundError if there is no such object."""
        try:
            _, handle = self.store.open(bucket, key)
        except OssError as exc:
            raise FileNotFoundError(f"oss://{bucket}/{key}: {exc.code}") from exc
        return handle

    def read_object(self, bucket: str, key: str) -> bytes:
        with self.open_object(bucket, key) as handle:
            return handle.read()

    def object_path(self, bucket: str, key: str) -> Path:
        """Where the current version of the object lives on disk (changes on overwrite)."""
        record = self.store.get(bucket, key)
        if record is None:
            raise FileNotFoundError(f"oss://{bucket}/{key}")
        return self.store.blob_path(record)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return [r.key for r in self.store.list_objects(bucket) if r.key.startswith(prefix)]

    def delete_object(self, bucket: str, key: str) -> bool:
        return self.store.delete(bucket, key)

    def url_for(self, bucket: str, key: str) -> str:
        """The path-style URL of an object on this server (needs ``base_url``)."""
        if self.base_url is None:
            raise RuntimeError("set LocalOss.base_url to the server URL first")
        return f"{self.base_url.rstrip('/')}/{bucket}/{quote(key, safe='')}"

    def lookup_url(self, url: str) -> ObjectFacts | None:
        """Resolve an object URL (path-style or virtual-host, signed or not) to its facts.

        Path-style URLs must point at ``base_url`` when it is set, else at a loopback
        host. Virtual-host URLs (``bucket.<host>``) resolve when the bucket exists here.
        Size and MD5 come from the record written at upload time; nothing is re-read.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        path = unquote(parts.path)
        base_host: str | None = None
        base_port: int | None = None
        if self.base_url is not None:
            base = urlsplit(self.base_url)
            base_host, base_port = (base.hostname or "").lower(), base.port
        loopback = ("127.0.0.1", "localhost", "::1")
        same_server = (
            (host, parts.port) == (base_host, base_port)
            if base_host is not None
            else host in loopback
        )
        if same_server:
            bucket, _, key = path.lstrip("/").partition("/")
        else:
            bucket, _, rest = host.partition(".")
            known_rest = rest in loopback or rest == base_host or rest.endswith(".aliyuncs.com")
            if not known_rest or self.store.bucket(bucket) is None:
                return None
            key = path.lstrip("/")
        if not bucket or not key:
            return None
        record = self.store.get(bucket, key)
        if record is None:
            return None
        return ObjectFacts(bucket=bucket, key=key, size=record.size, md5_hex=record.md5_hex)

    # -- notifications ------------------------------------------------------------------

    def subscribe(self, sink: OssEventSink) -> Callable[[], None]:
        """Receive object-created events from now on; returns an unsubscribe function."""
        return self.events.subscribe(sink)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until queued events were delivered; False if ``timeout`` ran out first."""
        return self.events.drain(timeout)

    def close(self) -> None:
        """Deliver pending events and stop the delivery thread."""
        self.events.close()
