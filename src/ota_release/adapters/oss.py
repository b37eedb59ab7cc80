"""ObjectStore on OSS: small reads signed here (oss_reads), the rest through oss2.

oss2 (with requests) is imported on first use only, so an invocation that ends after the
HEAD and sidecar GET ("waiting", "rejected") never loads it.

Every OSS request the project signs is signed with V4 (``OSS4-HMAC-SHA256``, region in
the credential scope): OSS refuses V1 for new accounts (since 2025-03-01) and new buckets
(since 2025-09-01), per Alibaba's "Guidelines for upgrading V1 signatures to V4
signatures". :func:`oss_auth` / :func:`oss_bucket` are the one place oss2's signer is
chosen; the function and the CLI both build their buckets with them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

from ota_release.adapters import CloudCredentials
from ota_release.adapters.oss_reads import (
    OssReads,
    check_region,
    classify_status,
    is_ip_host,
    xml_error,
)
from ota_release.digest import prefetched
from ota_release.errors import PermanentError, PlatformError, TransientError
from ota_release.ports import (
    KeyListing,
    ObjectInfo,
    ObjectStream,
    SmallObject,
    StagedCopy,
    UploadTicket,
)

POST_CHUNK = 1024 * 1024

#: Packages oss2 imports at module level only for client-side encryption (CryptoBucket,
#: RSA/KMS key providers), which this adapter never uses: pycryptodome, the KMS SDK and
#: the core SDK it drags in (with ``cryptography``). Deferring them takes ~85 ms off every
#: cold start that touches OSS (docs/benchmarks.md, "cold start").
DEFERRED_BY_OSS2 = ("Crypto", "aliyunsdkcore", "aliyunsdkkms", "cryptography")
_oss2_lock = threading.Lock()
_oss2_module: ModuleType | None = None
_PYTHON_LOADERS = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)


class _DeferredImports(importlib.abc.MetaPathFinder):
    """Makes the named top-level packages load lazily (``importlib.util.LazyLoader``).

    A lazily loaded module is an empty shell until an attribute is first read; then it
    executes exactly as an eager import would have. oss2 only binds these modules' names
    at import time and uses them inside functions, so the shells stay empty unless the
    encryption code is called. Only pure-Python source modules are deferred: extension
    modules cannot be, and are returned as the ordinary finders found them.
    """

    def __init__(self, roots: Sequence[str]) -> None:
        self._roots = frozenset(roots)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self._roots:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            if isinstance(spec.loader, _PYTHON_LOADERS):
                spec.loader = importlib.util.LazyLoader(spec.loader)
            return spec
        return None


def _oss2() -> Any:
    """Import oss2 (once), with its client-side-encryption dependencies deferred."""
    global _oss2_module
    if _oss2_module is not None:
        return _oss2_module
    with _oss2_lock:
        # Not sys.modules: with InstanceConcurrency > 1 another invocation may be halfway
        # through this import, and sys.modules already holds the half-initialised module.
        if _oss2_module is None:
            finder = _DeferredImports(DEFERRED_BY_OSS2)
            sys.meta_path.insert(0, finder)
            try:
                import oss2
            finally:
                sys.meta_path.remove(finder)
            _oss2_module = oss2
        return _oss2_module


def oss_auth(credentials: CloudCredentials) -> Any:
    """The oss2 signer for ``credentials``: V4, with the STS token when there is one.

    oss2 signs V4 only for a Bucket/Service that is given ``region=`` (see
    :func:`oss_bucket`); V1 (``oss2.Auth``, ``StsAuth`` without ``auth_version``) is never
    used.
    """
    oss2 = _oss2()
    c = credentials
    if c.security_token:
        return oss2.StsAuth(
            c.access_key_id,
            c.access_key_secret,
            c.security_token,
            auth_version=oss2.AUTH_VERSION_4,
        )
    return oss2.AuthV4(c.access_key_id, c.access_key_secret)


def oss_bucket(
    credentials: CloudCredentials,
    endpoint: str,
    bucket: str,
    *,
    region: str,
    connect_timeout: float = 10.0,
    enable_crc: bool = False,
) -> Any:
    """An ``oss2.Bucket`` that signs every request and URL with V4 for ``region``.

    ValueError naming the region when it is not a region id (``cn-shanghai``).
    """
    oss2 = _oss2()
    return oss2.Bucket(
        oss_auth(credentials),
        endpoint,
        bucket,
        region=check_region(region),
        connect_timeout=connect_timeout,
        enable_crc=enable_crc,
    )


def classify_oss_error(exc: Exception, operation: str) -> PlatformError:
    """Map an oss2/requests exception onto transient/permanent."""
    oss2 = _oss2()

    if isinstance(exc, oss2.exceptions.OssError):
        # oss2 reports network failures as RequestError with a negative status.
        return classify_status(
            operation,
            int(getattr(exc, "status", 0) or 0),
            str(getattr(exc, "code", "") or type(exc).__name__),
            str(getattr(exc, "message", "") or exc),
            getattr(exc, "request_id", None) or None,
        )
    return TransientError("oss", operation, type(exc).__name__, str(exc))


class _Body:
    """An oss2 GetObject result exposed as an ObjectStream."""

    def __init__(self, result: Any) -> None:
        self._result = result
        self.request_id: str | None = getattr(result, "request_id", None) or None

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._result.read(size if size >= 0 else None)
        except Exception as exc:
            raise classify_oss_error(exc, "GetObject") from exc
        return data

    def close(self) -> None:
        # Closing a connection that already died may fail; there is nothing left to do.
        with contextlib.suppress(Exception):
            self._result.resp.response.close()


class _MultipartForm:
    """A PostObject form body streamed from chunks of a known total length.

    ``requests`` sends a Content-Length (not chunked encoding) for an iterable that
    has ``__len__``, which is what OSS PostObject expects. ``observe`` sees each chunk of
    the file before it is sent.
    """

    def __init__(
        self,
        fields: dict[str, str],
        filename: str,
        chunks: Iterator[bytes],
        size: int,
        observe: Callable[[bytes], None] | None = None,
    ):
        self.boundary = "ota-release-" + uuid.uuid4().hex
        head = b""
        for name, value in fields.items():
            head += (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n"
            ).encode()
        safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{safe_name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._chunks = chunks
        self._size = size
        self._observe = observe
        self.failure: BaseException | None = None

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield self._head
            sent = 0
            for chunk in self._chunks:
                sent += len(chunk)
                if sent > self._size:
                    break
                if self._observe is not None:
                    self._observe(chunk)
                yield chunk
            if sent != self._size:
                raise TransientError(
                    "oss",
                    "PostObject",
                    "IntegrityError",
                    f"source gave {'more than ' if sent > self._size else ''}{sent} bytes, "
                    f"expected {self._size}",
                )
            yield self._tail
        except BaseException as exc:
            # requests may wrap what the body raises: keep the cause for the caller.
            self.failure = exc
            raise


class OssObjectStore:
    """Reads the watched bucket; writes only outcome objects (under OTA_RESULTS_PREFIX)
    and to the staged upload host IoT hands out."""

    def __init__(
        self,
        credentials: CloudCredentials,
        endpoint: str,
        public_endpoint: str,
        *,
        region: str,
        connect_timeout: float = 10.0,
    ) -> None:
        self._credentials = credentials
        self._region = check_region(region)
        self._endpoint = endpoint
        self._public_endpoint = public_endpoint
        self._connect_timeout = connect_timeout
        self._buckets: dict[tuple[str, str], Any] = {}
        self._small: OssReads | None = None

    def _bucket(self, name: str, endpoint: str | None = None) -> Any:
        endpoint = endpoint or self._endpoint
        cached = self._buckets.get((endpoint, name))
        if cached is not None:
            return cached
        bucket = oss_bucket(
            self._credentials,
            endpoint,
            name,
            region=self._region,
            connect_timeout=self._connect_timeout,
            # We verify integrity ourselves (size + CRC-64 with crcmod's C extension)
            # so oss2's pure-Python fallback never runs on the hot path.
            enable_crc=False,
        )
        self._buckets[(endpoint, name)] = bucket
        return bucket

    def _reads(self) -> OssReads:
        if self._small is None:
            self._small = OssReads(
                self._credentials,
                self._endpoint,
                region=self._region,
                timeout=self._connect_timeout,
            )
        return self._small

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        return self._reads().head(bucket, key)

    def read_small(self, bucket: str, key: str, limit: int) -> SmallObject:
        return self._reads().read(bucket, key, limit)

    def list_keys(self, bucket: str, prefix: str, limit: int) -> KeyListing:
        return self._reads().list_keys(bucket, prefix, limit)

    def put_outcome(self, bucket: str, key: str, body: bytes) -> str | None:
        """PutObject of an outcome document, hand-signed like the small reads: a
        ``waiting`` or ``rejected`` invocation still never imports oss2."""
        return self._reads().put(bucket, key, body, "application/json")

    def open_stream(self, bucket: str, key: str, if_match: str | None = None) -> ObjectStream:
        headers = {"If-Match": f'"{if_match}"'} if if_match else None
        try:
            result = self._bucket(bucket).get_object(key, headers=headers)
        except Exception as exc:
            raise classify_oss_error(exc, "GetObject") from exc
        return _Body(result)

    def object_url(self, bucket: str, key: str, ttl: int) -> str:
        if ttl > 0:
            url: str = self._bucket(bucket, self._public_endpoint).sign_url(
                "GET", key, ttl, slash_safe=True
            )
            return url
        parts = urlsplit(self._public_endpoint)
        path = quote(key, safe="/")
        if is_ip_host(self._public_endpoint):
            return f"{parts.scheme}://{parts.netloc}/{bucket}/{path}"
        return f"{parts.scheme}://{bucket}.{parts.netloc}/{path}"

    def stage_copy(
        self,
        source: ObjectInfo,
        ticket: UploadTicket,
        filename: str,
        observe: Callable[[bytes], None],
    ) -> StagedCopy:
        body = self.open_stream(source.bucket, source.key, if_match=source.etag)
        try:
            chunks = prefetched(body, POST_CHUNK)
            try:
                posted = self._post(
                    ticket,
                    _MultipartForm(_form_fields(ticket), filename, chunks, source.size, observe),
                )
            finally:
                chunks.close()
        finally:
            body.close()
        return StagedCopy(body.request_id, posted)

    def _post(self, ticket: UploadTicket, form: _MultipartForm) -> str | None:
        """PostObject the form; the request id OSS answered with."""
        import requests

        try:
            response = requests.post(
                ticket.host,
                data=form,
                headers={"Content-Type": form.content_type},
                timeout=(self._connect_timeout, 120),
            )
        except PlatformError:
            raise
        except Exception as exc:
            if isinstance(form.failure, PlatformError):
                raise form.failure from exc
            raise TransientError("oss", "PostObject", type(exc).__name__, str(exc)) from exc
        if response.status_code >= 300:
            raise _post_error(response)
        request_id: str | None = response.headers.get("x-oss-request-id")
        return request_id


def _form_fields(ticket: UploadTicket) -> dict[str, str]:
    return {
        "key": ticket.key,
        "OSSAccessKeyId": ticket.access_key_id,
        "policy": ticket.policy,
        "Signature": ticket.signature,
        "success_action_status": "200",
    }


#: OSS's refusal of a form whose policy expired before the whole request arrived (EC
#: 0006-00000213: "the deadline by which the server must receive the complete request").
POLICY_EXPIRED = "Policy expired"


def _post_error(response: Any) -> PlatformError:
    """PostObject's refusal as the ports' error.

    An expired policy is transient: every staging attempt asks for a fresh upload ticket,
    so a retry sends an unexpired one (a slow copy, a long pause before the post).
    """
    code, message, request_id = xml_error(response.text)
    status = response.status_code
    expired = status == 403 and POLICY_EXPIRED in (message or "")
    transient = status >= 500 or status == 429 or expired
    error_cls = TransientError if transient else PermanentError
    return error_cls(
        "oss",
        "PostObject",
        "PolicyExpired" if expired else code or f"HTTP{status}",
        message or response.reason,
        request_id=request_id or response.headers.get("x-oss-request-id"),
        status=status,
    )
