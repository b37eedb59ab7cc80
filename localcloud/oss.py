"""A local OSS that the real oss2 SDK (and Alibaba's other SDKs) can talk to over HTTP.

``LocalOss`` is a WSGI application: serve it with ``localcloud.server.LocalServer`` and
point ``oss2.Bucket`` at ``http://127.0.0.1:<port>`` with ``region=`` (V4). It behaves
like a bucket created today: the bucket comes from the Host header first
(virtual-hosted style, ``Host: <bucket>.oss-<region>.aliyuncs.com`` or
``<bucket>.127.0.0.1:<port>``, path ``/<key>``) and from the path otherwise (IP endpoints,
``/<bucket>/<key>``); V4 signatures (header and presigned URL) and STS tokens are checked,
and V1 is refused with OSS's 403 (EC 0002-00000080) unless the server was started with
``allow_v1=True`` (``localcloud up --allow-v1``). The one legacy exception is a bucket
created with ``v1_post_form=True``, which accepts the V1 PostObject form that
GenerateOTAUploadURL hands out for the IoT platform's upload bucket. It keeps objects on
disk, answers with OSS's headers and XML errors, and raises the native FC OSS trigger
event for every object it creates. docs/fidelity.md lists each behaviour with its source.

Every request goes through :meth:`LocalOss.dispatch`, which first names the operation and
then asks the optional ``faults`` hook whether to answer with an injected error instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from localcloud.contracts import FaultHook, ObjectFacts, OssEventSink
from localcloud.credentials import Credential, CredentialStore, default_store
from localcloud.oss_auth import SUBRESOURCES, Authenticator, SignedRequest
from localcloud.oss_errors import (
    OssError,
    access_denied,
    invalid_argument,
    invalid_digest,
    new_request_id,
    v1_signature_refused,
)
from localcloud.oss_events import (
    COMPLETE_MULTIPART_UPLOAD,
    COPY_OBJECT,
    POST_OBJECT,
    PUT_OBJECT,
    EventDispatcher,
    event_time,
    object_created_event,
)
from localcloud.oss_form import OssFormDataParser
from localcloud.oss_post import authorize_form
from localcloud.oss_storage import (
    BlobWriter,
    BucketInfo,
    ObjectStore,
    StoredObject,
    read_range,
    validate_object_key,
)

log = logging.getLogger(__name__)

DEFAULT_REGION = "cn-hangzhou"
DEFAULT_ACCOUNT_ID = "1234567890123456"
DEFAULT_RULE_ID = hashlib.sha1(b"localcloud-oss-trigger").hexdigest()
MAX_USER_META_BYTES = 8 * 1024
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
# Headers kept with an object and returned on GET/HEAD, like Content-Type is.
_STORED_HEADERS = (
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Cache-Control",
    "Expires",
)
# Sub-resources the routes below understand; any other one is answered NotImplemented
# rather than silently treated as a plain GET/PUT of the object.
_HANDLED_SUBRESOURCES = frozenset(
    {
        "uploads", "uploadId", "partNumber", "objectMeta", "delete", "continuation-token",
        "security-token", "acl", "response-content-type", "response-content-language",
        "response-expires", "response-cache-control", "response-content-disposition",
        "response-content-encoding",
    }
)  # fmt: skip
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
_ANONYMOUS_READS = frozenset({"GetObject", "HeadObject", "GetObjectMeta"})
#: OSS's public endpoints: ``oss-<region>.aliyuncs.com``, ``oss-<region>-internal...``.
_OSS_ENDPOINT_HOST = re.compile(r"oss-[a-z0-9-]+\.aliyuncs\.com")


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_ANONYMOUS_WRITES = frozenset({"PutObject", "PostObject"})


def _iso8601(ts: float) -> str:
    """OSS XML times are whole seconds written as ``.000Z``; oss2's parser insists on it."""
    return event_time(int(ts))


def _quoted(etag: str) -> str:
    return f'"{etag}"'


def _xml(root: ET.Element) -> bytes:
    return _XML_DECLARATION + ET.tostring(root, encoding="utf-8")


def _child(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


class _OssRequest(Request):
    """A werkzeug request whose form-file parts stream into hashing temp files.

    Forms are parsed by ``oss_form`` (large reads, no copies of the file part), which
    hands file parts to ``_get_file_stream`` as werkzeug's own parser would.
    """

    form_data_parser_class = OssFormDataParser

    def __init__(self, environ: dict[str, Any], spool_dir: Path) -> None:
        super().__init__(environ)
        self.spool_dir = spool_dir
        self.spools: list[BlobWriter] = []

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        writer = BlobWriter(self.spool_dir)
        self.spools.append(writer)
        return writer  # type: ignore[return-value]  # duck-typed file the parser writes to

    def new_writer(self) -> BlobWriter:
        writer = BlobWriter(self.spool_dir)
        self.spools.append(writer)
        return writer

    def cleanup(self) -> None:
        for writer in self.spools:
            writer.discard()


@dataclass
class _Call:
    """One routed request: what the handlers need besides the werkzeug request."""

    request: _OssRequest
    operation: str
    bucket: str | None
    key: str
    request_id: str
    handler: Callable[[_Call], Response]
    caller: Credential | None = None
    virtual_host: bool = False  # the bucket came from the Host header

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.args.items())

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def url_encoded(self) -> bool:
        return self.request.args.get("encoding-type") == "url"

    def bucket_name(self) -> str:
        assert self.bucket is not None
        return self.bucket

    def object_location(self, bucket: str, key: str) -> str:
        """The object's URL in the addressing style this request used."""
        if self.virtual_host:
            return f"{self.request.host_url}{quote(key, safe='/')}"
        return f"{self.request.host_url}{bucket}/{quote(key, safe='/')}"


class LocalOss:
    """The OSS stand-in: a WSGI app plus Python accessors for tests and the demo.

    ``notify`` (and later :meth:`subscribe`) receive ``{"events": [record]}`` for every
    object created, from a background thread; call :meth:`drain` to wait for delivery and
    :meth:`close` when done. ``clock`` is injectable so expiry and skew can be tested
    without waiting.
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
        self.store = ObjectStore(data_dir, min_part_size=min_part_size)
        self.credentials = credentials if credentials is not None else default_store()
        self.region = region
        self.account_id = account_id
        self.rule_id = rule_id
        self.faults = faults
        self.clock = clock
        self.base_url = base_url
        #: Accept V1 signatures everywhere, as OSS still does for buckets of accounts
        #: created before 2025-03-01 / buckets created before 2025-09-01. Off by default.
        self.allow_v1 = allow_v1
        self.auth = Authenticator(
            self.credentials,
            region,
            clock,
            max_skew_seconds,
            v1_allowed=lambda _req: self.allow_v1,
        )
        self.events = EventDispatcher()
        if notify is not None:
            self.events.subscribe(notify)

    # -- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = _OssRequest(environ, self.store.tmp_dir)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: _OssRequest) -> Response:
        """Route, consult the fault hook, authenticate, run: the one path every request takes."""
        request_id = new_request_id()
        try:
            try:
                call = self._route(request, request_id)
                if self.faults is not None:
                    injected = self.faults.before("oss", call.operation)
                    if injected is not None:
                        injected.headers.setdefault("x-oss-request-id", request_id)
                        return injected
                if call.operation != "PostObject":
                    call.caller = self.auth.authenticate(self._signed(call))
                    self._authorize(call)
                response = call.handler(call)
            except OssError as exc:
                response = exc.to_response(request_id, request.host, head=request.method == "HEAD")
            except (ClientDisconnected, RequestEntityTooLarge):
                response = OssError(
                    400,
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the "
                    "Content-Length HTTP header.",
                ).to_response(request_id, request.host)
            except Exception:
                log.exception("local OSS failed on %s %s", request.method, request.path)
                response = OssError(
                    500, "InternalError", "We encountered an internal error. Please try again."
                ).to_response(request_id, request.host, head=request.method == "HEAD")
        finally:
            request.cleanup()
        response.headers["x-oss-request-id"] = request_id
        response.headers.setdefault("Server", "AliyunOSS")
        return response

    def _signed(self, call: _Call) -> SignedRequest:
        headers = [(k.lower(), v) for k, v in call.request.headers.items()]
        # werkzeug hides an empty Content-Type, but it was on the wire and V4 signs it.
        environ = call.request.environ
        if environ.get("CONTENT_TYPE") == "" and "content-type" not in dict(headers):
            headers.append(("content-type", ""))
        return SignedRequest(call.request.method, call.bucket, call.key, call.params, headers)

    def _authorize(self, call: _Call) -> None:
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
        """The bucket a Host header names (virtual-hosted style), or None for path style.

        ``<bucket>.oss-<region>[-internal].aliyuncs.com`` (what every official SDK sends,
        Alibaba's Node SDK even when it connects to an IP), ``<bucket>.<IP or localhost>``
        and ``<bucket>.<base_url's host>`` name a bucket; an IP, ``localhost`` or any other
        name means the bucket is the first path segment.
        """
        try:
            hostname = urlsplit(f"//{host}").hostname
        except ValueError:
            return None
        if not hostname or _is_ip_or_localhost(hostname):
            return None
        bucket, _, rest = hostname.partition(".")
        if not bucket or not rest:
            return None
        own = urlsplit(self.base_url).hostname if self.base_url else None
        if _is_ip_or_localhost(rest) or _OSS_ENDPOINT_HOST.fullmatch(rest) or rest == own:
            return bucket
        return None

    @staticmethod
    def _is_oss_domain(host: str) -> bool:
        try:
            hostname = urlsplit(f"//{host}").hostname
        except ValueError:
            return False
        return bool(hostname and _OSS_ENDPOINT_HOST.fullmatch(hostname))

    def _route(self, request: _OssRequest, request_id: str) -> _Call:
        path = request.path
        virtual = self.host_bucket(request.host)
        if virtual is not None:
            bucket: str | None = virtual
            key = path[1:] if path.startswith("/") else path
        else:
            bucket_part, _, key = path.lstrip("/").partition("/")
            bucket = bucket_part or None
            if bucket is not None and self._is_oss_domain(request.host):
                # Path style on OSS's own domain is refused for new users (see
                # docs/fidelity.md); only IP endpoints take the bucket from the path.
                raise OssError(
                    403,
                    "SecondLevelDomainForbidden",
                    "Please use virtual hosted style to access.",
                    BucketName=bucket,
                )
        method = request.method
        args = request.args

        def call(operation: str, handler: Callable[[_Call], Response]) -> _Call:
            routed = _Call(request, operation, bucket, key, request_id, handler)
            routed.virtual_host = virtual is not None
            return routed

        unknown = sorted(k for k in args if k in SUBRESOURCES and k not in _HANDLED_SUBRESOURCES)
        if unknown:
            raise OssError(
                400,
                "NotImplemented",
                f"The local OSS does not implement the sub-resource {unknown[0]!r}.",
            )
        if bucket is None:
            if method == "GET":
                return call("ListBuckets", self._list_buckets)
        elif not key:
            if method == "PUT":
                return call("PutBucket", self._put_bucket)
            if method == "DELETE":
                return call("DeleteBucket", self._delete_bucket)
            if method == "GET" and args.get("list-type") == "2":
                return call("ListObjectsV2", self._list_objects_v2)
            if method == "GET":
                return call("ListObjects", self._list_objects)
            if method == "POST" and "delete" in args:
                return call("DeleteMultipleObjects", self._delete_multiple)
            if method == "POST" and request.mimetype == "multipart/form-data":
                return call("PostObject", self._post_object)
        else:
            validate_object_key(key)
            if method == "PUT" and "uploadId" in args and "partNumber" in args:
                return call("UploadPart", self._upload_part)
            if method == "PUT" and request.headers.get("x-oss-copy-source"):
                return call("CopyObject", self._copy_object)
            if method == "PUT":
                return call("PutObject", self._put_object)
            if method == "GET" and "uploadId" in args:
                return call("ListParts", self._list_parts)
            if method == "GET":
                return call("GetObject", self._get_object)
            if method == "HEAD" and "objectMeta" in args:
                return call("GetObjectMeta", self._get_object_meta)
            if method == "HEAD":
                return call("HeadObject", self._get_object)
            if method == "DELETE" and "uploadId" in args:
                return call("AbortMultipartUpload", self._abort_upload)
            if method == "DELETE":
                return call("DeleteObject", self._delete_object)
            if method == "POST" and "uploads" in args:
                return call("InitiateMultipartUpload", self._initiate_upload)
            if method == "POST" and "uploadId" in args:
                return call("CompleteMultipartUpload", self._complete_upload)
        raise OssError(
            405,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            Method=method,
            ResourceType="Bucket" if not key else "Object",
        )

    # -- shared pieces ------------------------------------------------------------------

    def _emit(self, record: StoredObject, event_name: str, request_id: str) -> None:
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

    @staticmethod
    def _object_settings(
        headers: Iterable[tuple[str, str]],
    ) -> tuple[str | None, dict[str, str], dict[str, str]]:
        """Content-Type, x-oss-meta-* (lower-cased names) and the other kept headers."""
        content_type: str | None = None
        meta: dict[str, str] = {}
        kept: dict[str, str] = {}
        stored = {h.lower(): h for h in _STORED_HEADERS}
        for name, value in headers:
            lower = name.lower()
            if lower == "content-type":
                content_type = value
            elif lower.startswith("x-oss-meta-"):
                meta[lower[len("x-oss-meta-") :]] = value
            elif lower in stored:
                kept[stored[lower]] = value
        size = sum(len(k) + len(v) for k, v in meta.items())
        if size > MAX_USER_META_BYTES:
            raise invalid_argument(
                "Your metadata headers exceed the maximum allowed metadata size.",
                "x-oss-meta-*",
                str(size),
            )
        return content_type, meta, kept

    @staticmethod
    def _check_content_md5(call: _Call, writer: BlobWriter) -> None:
        declared = call.header("Content-MD5")
        if declared is None:
            return
        try:
            expected = base64.b64decode(declared, validate=True)
        except (binascii.Error, ValueError):
            expected = b""
        if expected != writer.md5_digest:
            raise invalid_digest(declared, base64.b64encode(writer.md5_digest).decode())

    @staticmethod
    def _forbid_overwrite(value: str | None) -> bool:
        return (value or "").strip().lower() == "true"

    def _read_body(self, call: _Call) -> BlobWriter:
        writer = call.request.new_writer()
        writer.copy_from(call.request.stream)
        writer.finish()
        self._check_content_md5(call, writer)
        return writer

    def _small_body(self, call: _Call, limit: int = 4 * 1024 * 1024) -> bytes:
        data = call.request.stream.read(limit + 1)
        if len(data) > limit:
            raise OssError(400, "EntityTooLarge", "Your request body is too large.")
        declared = call.header("Content-MD5")
        if declared is not None and base64.b64encode(hashlib.md5(data).digest()).decode() != (
            declared
        ):
            raise invalid_digest(declared, base64.b64encode(hashlib.md5(data).digest()).decode())
        return data

    @staticmethod
    def _parse_xml(data: bytes) -> ET.Element:
        try:
            # Bodies come from local tests and the demo; expat in 3.11 also bounds entity
            # expansion, so the stdlib parser is acceptable here.
            return ET.fromstring(data)  # noqa: S314
        except ET.ParseError as exc:
            raise OssError(
                400,
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema.",
            ) from exc

    def _encode(self, call: _Call, text: str) -> str:
        return quote(text, safe="/") if call.url_encoded else text

    def _object_headers(self, record: StoredObject) -> dict[str, str]:
        headers = {
            "ETag": _quoted(record.etag),
            "Last-Modified": http_date(record.last_modified),
            "x-oss-object-type": record.object_type,
            "x-oss-hash-crc64ecma": str(record.crc64),
            "x-oss-storage-class": "Standard",
            "Accept-Ranges": "bytes",
        }
        if record.object_type == "Normal":
            headers["Content-MD5"] = base64.b64encode(bytes.fromhex(record.md5_hex)).decode()
        headers.update(record.headers)
        for name, value in record.user_meta.items():
            headers[f"x-oss-meta-{name}"] = value
        return headers

    def _write_response(self, record: StoredObject, status: int = 200) -> Response:
        response = Response(b"", status=status)
        response.headers["ETag"] = _quoted(record.etag)
        response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
        if record.object_type == "Normal":
            response.headers["Content-MD5"] = base64.b64encode(
                bytes.fromhex(record.md5_hex)
            ).decode()
        return response

    # -- service and buckets ------------------------------------------------------------

    def _owner(self, parent: ET.Element) -> None:
        owner = _child(parent, "Owner")
        _child(owner, "ID", self.account_id)
        _child(owner, "DisplayName", self.account_id)

    def _list_buckets(self, call: _Call) -> Response:
        root = ET.Element("ListAllMyBucketsResult")
        self._owner(root)
        buckets = _child(root, "Buckets")
        for name in self.store.bucket_names():
            info = self.store.bucket(name)
            if info is None:
                continue
            node = _child(buckets, "Bucket")
            _child(node, "CreationDate", _iso8601(info.created))
            _child(node, "ExtranetEndpoint", f"oss-{self.region}.aliyuncs.com")
            _child(node, "IntranetEndpoint", f"oss-{self.region}-internal.aliyuncs.com")
            _child(node, "Location", f"oss-{self.region}")
            _child(node, "Name", info.name)
            _child(node, "Region", self.region)
            _child(node, "StorageClass", "Standard")
        return Response(_xml(root), content_type="application/xml")

    def _put_bucket(self, call: _Call) -> Response:
        call.request.stream.read()  # CreateBucketConfiguration: storage class is not modelled
        acl = call.header("x-oss-acl")
        if "acl" in call.request.args:
            self.store.require_bucket(call.bucket_name())
        self.store.create_bucket(call.bucket_name(), acl)
        response = Response(b"")
        response.headers["Location"] = f"/{call.bucket}"
        return response

    def _delete_bucket(self, call: _Call) -> Response:
        self.store.delete_bucket(call.bucket_name())
        return Response(b"", status=204)

    # -- listing ------------------------------------------------------------------------

    @staticmethod
    def _max_keys(call: _Call) -> int:
        raw = call.request.args.get("max-keys", "100")
        if not raw.isdigit() or int(raw) > 1000:
            raise invalid_argument("Argument max-keys must be an integer between 0 and 1000.")
        return int(raw)

    def _page(
        self, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
    ) -> tuple[list[StoredObject], list[str], bool, str]:
        """One page of a listing: objects, common prefixes, truncated?, last entry."""
        objects: list[StoredObject] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        for record in self.store.list_objects(bucket):
            key = record.key
            if not key.startswith(prefix) or key <= after:
                continue
            common: str | None = None
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if (prefixes and prefixes[-1] == common) or common <= after:
                        continue
            if len(objects) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                objects.append(record)
                last = key
        return objects, prefixes, truncated, last

    def _contents(
        self, call: _Call, root: ET.Element, records: list[StoredObject], owner: bool
    ) -> None:
        for record in records:
            node = _child(root, "Contents")
            _child(node, "Key", self._encode(call, record.key))
            _child(node, "LastModified", _iso8601(record.last_modified))
            _child(node, "ETag", _quoted(record.etag))
            _child(node, "Type", record.object_type)
            _child(node, "Size", record.size)
            _child(node, "StorageClass", "Standard")
            if owner:
                self._owner(node)

    def _list_objects(self, call: _Call) -> Response:
        args = call.request.args
        bucket = call.bucket_name()
        self.store.require_bucket(bucket)
        prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
        marker, max_keys = args.get("marker", ""), self._max_keys(call)
        records, prefixes, truncated, last = self._page(bucket, prefix, delimiter, marker, max_keys)
        root = ET.Element("ListBucketResult")
        _child(root, "Name", bucket)
        _child(root, "Prefix", self._encode(call, prefix))
        _child(root, "Marker", self._encode(call, marker))
        _child(root, "MaxKeys", max_keys)
        _child(root, "Delimiter", self._encode(call, delimiter))
        if call.url_encoded:
            _child(root, "EncodingType", "url")
        _child(root, "IsTruncated", "true" if truncated else "false")
        if truncated:
            _child(root, "NextMarker", self._encode(call, last))
        self._contents(call, root, records, owner=True)
        for common in prefixes:
            _child(_child(root, "CommonPrefixes"), "Prefix", self._encode(call, common))
        return Response(_xml(root), content_type="application/xml")

    def _list_objects_v2(self, call: _Call) -> Response:
        args = call.request.args
        bucket = call.bucket_name()
        self.store.require_bucket(bucket)
        prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
        start_after, token = args.get("start-after", ""), args.get("continuation-token", "")
        max_keys = self._max_keys(call)
        after = start_after
        if token:
            try:
                after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
            except (binascii.Error, ValueError) as exc:
                raise invalid_argument(
                    "The continuation token provided is incorrect.", "continuation-token", token
                ) from exc
        records, prefixes, truncated, last = self._page(bucket, prefix, delimiter, after, max_keys)
        root = ET.Element("ListBucketResult")
        _child(root, "Name", bucket)
        _child(root, "Prefix", self._encode(call, prefix))
        if token:
            _child(root, "ContinuationToken", token)
        if start_after:
            _child(root, "StartAfter", self._encode(call, start_after))
        _child(root, "MaxKeys", max_keys)
        _child(root, "Delimiter", self._encode(call, delimiter))
        if call.url_encoded:
            _child(root, "EncodingType", "url")
        _child(root, "IsTruncated", "true" if truncated else "false")
        if truncated:
            next_token = base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")
            _child(root, "NextContinuationToken", self._encode(call, next_token))
        _child(root, "KeyCount", len(records) + len(prefixes))
        owner = args.get("fetch-owner", "false").lower() == "true"
        self._contents(call, root, records, owner=owner)
        for common in prefixes:
            _child(_child(root, "CommonPrefixes"), "Prefix", self._encode(call, common))
        return Response(_xml(root), content_type="application/xml")

    def _delete_multiple(self, call: _Call) -> Response:
        bucket = call.bucket_name()
        self.store.require_bucket(bucket)
        root = self._parse_xml(self._small_body(call))
        quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
        result = ET.Element("DeleteResult")
        if call.url_encoded:
            _child(result, "EncodingType", "url")
        for node in root.findall("Object"):
            key = node.findtext("Key") or ""
            self.store.delete(bucket, key)
            if not quiet:
                _child(_child(result, "Deleted"), "Key", self._encode(call, key))
        return Response(_xml(result), content_type="application/xml")

    # -- objects ------------------------------------------------------------------------

    def _put_object(self, call: _Call) -> Response:
        bucket = call.bucket_name()
        self.store.require_bucket(bucket)
        content_type, meta, kept = self._object_settings(call.request.headers.items())
        writer = self._read_body(call)
        record = self.store.commit(
            bucket,
            call.key,
            writer,
            content_type=content_type or "application/octet-stream",
            user_meta=meta,
            headers=kept,
            forbid_overwrite=self._forbid_overwrite(call.header("x-oss-forbid-overwrite")),
        )
        self._emit(record, PUT_OBJECT, call.request_id)
        return self._write_response(record)

    def _copy_object(self, call: _Call) -> Response:
        bucket = call.bucket_name()
        self.store.require_bucket(bucket)
        source = unquote(call.header("x-oss-copy-source") or "").split("?", 1)[0]
        src_bucket, _, src_key = source.lstrip("/").partition("/")
        if not src_bucket or not src_key:
            raise invalid_argument("Copy Source must mention the source bucket and key.")
        src, handle = self.store.open(src_bucket, src_key)
        writer = call.request.new_writer()
        with handle:
            writer.copy_from(handle)
        directive = (call.header("x-oss-metadata-directive") or "COPY").upper()
        if directive == "REPLACE":
            content_type, meta, kept = self._object_settings(call.request.headers.items())
            content_type = content_type or "application/octet-stream"
        else:
            content_type, meta, kept = src.content_type, src.user_meta, src.headers
        record = self.store.commit(
            bucket,
            call.key,
            writer,
            content_type=content_type,
            user_meta=meta,
            headers=kept,
            object_type=src.object_type,
            etag=src.etag,
            forbid_overwrite=self._forbid_overwrite(call.header("x-oss-forbid-overwrite")),
        )
        self._emit(record, COPY_OBJECT, call.request_id)
        root = ET.Element("CopyObjectResult")
        _child(root, "ETag", _quoted(record.etag))
        _child(root, "LastModified", _iso8601(record.last_modified))
        response = Response(_xml(root), content_type="application/xml")
        response.headers["ETag"] = _quoted(record.etag)
        response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
        return response

    def _precondition(self, call: _Call, record: StoredObject) -> Response | None:
        """If-Match / If-None-Match, as oss2's resumable download uses them."""
        etag = _quoted(record.etag)
        if_match = call.header("If-Match")
        if if_match is not None and if_match.strip() not in (etag, "*"):
            raise OssError(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold.",
                Condition="If-Match",
            )
        if_none_match = call.header("If-None-Match")
        if if_none_match is not None and if_none_match.strip() in (etag, "*"):
            return Response(status=304, headers={"ETag": etag})
        return None

    def _get_object(self, call: _Call) -> Response:
        record, handle = self.store.open(call.bucket_name(), call.key)
        try:
            not_modified = self._precondition(call, record)
        except BaseException:
            handle.close()
            raise
        if not_modified is not None:
            handle.close()
            return not_modified
        headers = self._object_headers(record)
        headers["Content-Type"] = record.content_type
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in call.request.args:
                headers[header] = call.request.args[param]
        start, length, status = 0, record.size, 200
        byte_range = call.request.range
        if byte_range is not None and len(byte_range.ranges) == 1:
            bounds = byte_range.range_for_length(record.size)
            if bounds is not None:
                start, stop = bounds
                length, status = stop - start, 206
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{record.size}"
            elif (call.header("x-oss-range-behavior") or "").lower() == "standard":
                handle.close()
                raise OssError(
                    416,
                    "InvalidRange",
                    "The requested range cannot be satisfied.",
                    RangeRequested=call.header("Range"),
                    ActualObjectSize=record.size,
                )
        headers["Content-Length"] = str(length)
        if call.request.method == "HEAD":
            handle.close()
            return self._head_response(status, headers)
        return Response(
            read_range(handle, start, length),
            status=status,
            headers=headers,
            direct_passthrough=True,
        )

    def _get_object_meta(self, call: _Call) -> Response:
        record = self.store.require(call.bucket_name(), call.key)
        headers = {
            "ETag": _quoted(record.etag),
            "Last-Modified": http_date(record.last_modified),
            "Content-Length": str(record.size),
            "x-oss-hash-crc64ecma": str(record.crc64),
        }
        return self._head_response(200, headers)

    @staticmethod
    def _head_response(status: int, headers: dict[str, str]) -> Response:
        """A bodiless response that still reports the object's length, as HEAD must."""
        response = Response(status=status)
        response.headers.update(headers)
        return response

    def _delete_object(self, call: _Call) -> Response:
        self.store.delete(call.bucket_name(), call.key)
        return Response(b"", status=204)

    def _post_object(self, call: _Call) -> Response:
        bucket = call.bucket_name()
        info = self.store.require_bucket(bucket)
        request = call.request
        fields = {k.lower(): v for k, v in request.form.items()}
        if fields.get("ossaccesskeyid") and not (self.allow_v1 or info.v1_post_form):
            raise v1_signature_refused("PostObject form with OSSAccessKeyId/Signature")
        authorization = authorize_form(fields, self.credentials, self.clock, self.region)
        if authorization.credential is None and info.acl != "public-read-write":
            raise access_denied("You have no right to access this object because of bucket acl.")
        upload = request.files.get("file")
        if upload is None or not isinstance(upload.stream, BlobWriter):
            raise invalid_argument("The form must contain a 'file' field.", "file")
        writer = upload.stream
        writer.finish()
        key = fields.get("key", "")
        if "${filename}" in key:
            key = key.replace("${filename}", upload.filename or "")
        if not key:
            raise invalid_argument("The form must contain a 'key' field.", "key")
        validate_object_key(key)
        if authorization.policy is not None:
            checked = dict(fields, bucket=bucket, key=key)
            authorization.policy.check(self.clock(), checked, writer.size)
        content_type, meta, kept = self._object_settings(
            (k, v) for k, v in request.form.items() if k.lower() != "content-type"
        )
        content_type = fields.get("content-type") or upload.mimetype or "application/octet-stream"
        record = self.store.commit(
            bucket,
            key,
            writer,
            content_type=content_type,
            user_meta=meta,
            headers=kept,
            forbid_overwrite=self._forbid_overwrite(fields.get("x-oss-forbid-overwrite")),
        )
        self._emit(record, POST_OBJECT, call.request_id)
        status = fields.get("success_action_status", "204")
        if status == "201":
            root = ET.Element("PostResponse")
            _child(root, "Bucket", bucket)
            _child(root, "Location", call.object_location(bucket, key))
            _child(root, "Key", key)
            _child(root, "ETag", _quoted(record.etag))
            response = Response(_xml(root), status=201, content_type="application/xml")
            response.headers["ETag"] = _quoted(record.etag)
            response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
            return response
        return self._write_response(record, 200 if status == "200" else 204)

    # -- multipart ----------------------------------------------------------------------

    def _initiate_upload(self, call: _Call) -> Response:
        content_type, meta, kept = self._object_settings(call.request.headers.items())
        upload = self.store.initiate_upload(
            call.bucket_name(),
            call.key,
            content_type=content_type or "application/octet-stream",
            user_meta=meta,
            headers=kept,
        )
        root = ET.Element("InitiateMultipartUploadResult")
        _child(root, "Bucket", upload.bucket)
        _child(root, "Key", self._encode(call, upload.key))
        _child(root, "UploadId", upload.upload_id)
        if call.url_encoded:
            _child(root, "EncodingType", "url")
        return Response(_xml(root), content_type="application/xml")

    def _upload_part(self, call: _Call) -> Response:
        args = call.request.args
        upload = self.store.upload(call.bucket_name(), call.key, args["uploadId"])
        raw_number = args["partNumber"]
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= 10000:
            raise invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive.",
                "partNumber",
                raw_number,
            )
        writer = self._read_body(call)
        part = self.store.put_part(upload, int(raw_number), writer)
        response = Response(b"")
        response.headers["ETag"] = _quoted(part.etag)
        response.headers["x-oss-hash-crc64ecma"] = str(part.crc64)
        response.headers["Content-MD5"] = base64.b64encode(bytes.fromhex(part.md5_hex)).decode()
        return response

    def _list_parts(self, call: _Call) -> Response:
        args = call.request.args
        upload = self.store.upload(call.bucket_name(), call.key, args["uploadId"])
        marker = int(args.get("part-number-marker", "0") or 0)
        max_parts = int(args.get("max-parts", "1000") or 1000)
        parts = [p for p in self.store.list_parts(upload) if p.part_number > marker]
        page, truncated = parts[:max_parts], len(parts) > max_parts
        root = ET.Element("ListPartsResult")
        _child(root, "Bucket", upload.bucket)
        _child(root, "Key", self._encode(call, upload.key))
        _child(root, "UploadId", upload.upload_id)
        _child(root, "PartNumberMarker", marker)
        _child(root, "NextPartNumberMarker", page[-1].part_number if page else marker)
        _child(root, "MaxParts", max_parts)
        _child(root, "IsTruncated", "true" if truncated else "false")
        for part in page:
            node = _child(root, "Part")
            _child(node, "PartNumber", part.part_number)
            _child(node, "LastModified", _iso8601(part.last_modified))
            _child(node, "ETag", _quoted(part.etag))
            _child(node, "HashCrc64ecma", part.crc64)
            _child(node, "Size", part.size)
        return Response(_xml(root), content_type="application/xml")

    def _complete_upload(self, call: _Call) -> Response:
        upload = self.store.upload(call.bucket_name(), call.key, call.request.args["uploadId"])
        body = self._small_body(call)
        requested: list[tuple[int, str]] | None
        if not body.strip() and (call.header("x-oss-complete-all") or "").lower() == "yes":
            requested = None
        else:
            root = self._parse_xml(body)
            requested = []
            for node in root.findall("Part"):
                number = (node.findtext("PartNumber") or "").strip()
                if not number.isdigit():
                    raise invalid_argument("PartNumber must be an integer.", "PartNumber", number)
                requested.append((int(number), (node.findtext("ETag") or "").strip()))
        record = self.store.complete_upload(
            upload,
            requested,
            forbid_overwrite=self._forbid_overwrite(call.header("x-oss-forbid-overwrite")),
        )
        self._emit(record, COMPLETE_MULTIPART_UPLOAD, call.request_id)
        root = ET.Element("CompleteMultipartUploadResult")
        if call.url_encoded:
            _child(root, "EncodingType", "url")
        _child(root, "Location", call.object_location(record.bucket, record.key))
        _child(root, "Bucket", record.bucket)
        _child(root, "Key", self._encode(call, record.key))
        _child(root, "ETag", _quoted(record.etag))
        response = Response(_xml(root), content_type="application/xml")
        response.headers["ETag"] = _quoted(record.etag)
        response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
        return response

    def _abort_upload(self, call: _Call) -> Response:
        upload = self.store.upload(call.bucket_name(), call.key, call.request.args["uploadId"])
        self.store.abort_upload(upload)
        return Response(b"", status=204)

    # -- Python accessors for tests and the demo ----------------------------------------

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
            self._emit(record, PUT_OBJECT, new_request_id())
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

    # -- notifications and lifecycle ----------------------------------------------------

    def subscribe(self, sink: OssEventSink) -> Callable[[], None]:
        """Receive object-created events from now on; returns an unsubscribe function."""
        return self.events.subscribe(sink)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until queued events were delivered; False if ``timeout`` ran out first."""
        return self.events.drain(timeout)

    def close(self) -> None:
        """Deliver pending events and stop the delivery thread."""
        self.events.close()

    def __enter__(self) -> LocalOss:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
