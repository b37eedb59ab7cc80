"""HeadObject and small GetObject calls signed here, over ``http.client``.

Every invocation starts with these two reads: HEAD of the firmware file and GET of its
sidecar (at most 64 KiB). Half of all invocations end right after them ("waiting" for
the other half of a pair, or "rejected" sidecars), and importing oss2 with requests for
them costs ~110 ms of each such cold start, more than the reads themselves
(docs/benchmarks.md, "cold start"). So the two reads are made with the standard library,
signed with OSS's V4 header signature (``OSS4-HMAC-SHA256``, exactly as ``oss2.AuthV4`` /
``oss2.StsAuth(..., auth_version="v4")`` sign it), and oss2 stays for what needs it:
streaming downloads and signed URLs. V1 is not used anywhere: OSS refuses it for new
accounts and new buckets (Alibaba's "Guidelines for upgrading V1 signatures to V4").

The signing is checked against oss2's own V4 request in tests/integration/test_oss_reads.py,
and every call here is verified by the local OSS stand-in's signature check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlencode, urlsplit

from ota_release.adapters import CloudCredentials
from ota_release.errors import NotFoundError, PermanentError, PlatformError, TransientError
from ota_release.ports import KeyListing, ObjectInfo, ObjectTooLarge, SmallObject
from ota_release.settings import REGION_PATTERN

#: OSS error codes that are worth retrying whatever the HTTP status.
TRANSIENT_CODES = frozenset(
    {
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
        "Throttling",
        "TooManyRequests",
        "SlowDown",
        "RequestTimeTooSkewed",
    }
)
#: The two 404 codes OSS answers with; :class:`NotFoundError` ``.code`` tells them apart.
NO_SUCH_KEY = "NoSuchKey"
NO_SUCH_BUCKET = "NoSuchBucket"
SECURITY_TOKEN_HEADER = "x-oss-security-token"  # noqa: S105 - a header name
V4_ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
#: Headers V4 always signs besides every ``x-oss-*`` one (oss2: DEFAULT_SIGNED_HEADERS).
_V4_DEFAULT_SIGNED = frozenset({"content-type", "content-md5"})
_V4_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
REGION_ID = REGION_PATTERN


def check_region(region: str, name: str = "region") -> str:
    """``region`` if it is a region id V4 can sign for; ValueError naming ``name`` otherwise."""
    if not isinstance(region, str) or not REGION_ID.fullmatch(region):
        raise ValueError(
            f"{name}: must be an Alibaba Cloud region id such as cn-shanghai "
            f"(lower case, no 'oss-' prefix, no endpoint), got {region!r}"
        )
    if region.startswith("oss-"):
        raise ValueError(
            f"{name}: must be the region id, not the OSS endpoint prefix "
            f"(cn-shanghai, not oss-cn-shanghai), got {region!r}"
        )
    return region


def is_ip_host(endpoint: str) -> bool:
    """Whether OSS must be addressed path-style (``/bucket/key``), as for an IP endpoint."""
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def v4_uri_encode(text: str, keep_slash: bool) -> str:
    """V4's percent-encoding: every byte but ``A-Za-z0-9-_.~`` (and ``/`` when kept)."""
    return "".join(
        chr(b) if b in _V4_UNRESERVED or (keep_slash and b == 0x2F) else f"%{b:02X}"
        for b in text.encode("utf-8")
    )


def v4_scope(date: str, region: str) -> str:
    return f"{date}/{region}/oss/aliyun_v4_request"


def v4_signing_key(secret: str, date: str, region: str) -> bytes:
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def v4_authorization(
    credentials: CloudCredentials,
    region: str,
    verb: str,
    bucket: str,
    key: str,
    headers: dict[str, str],
    now: datetime,
    query: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers that sign a request without a body: ``headers`` plus the V4 set.

    Adds ``x-oss-date``, ``x-oss-content-sha256`` (UNSIGNED-PAYLOAD), the STS token when
    there is one, and ``Authorization``. Signed are every ``x-oss-*`` header plus
    Content-Type / Content-MD5 when present; the canonical URI is ``/bucket/key`` whatever
    the addressing style, as OSS defines it.
    """
    date_time = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    signed = dict(headers)
    if credentials.security_token:
        signed[SECURITY_TOKEN_HEADER] = credentials.security_token
    signed["x-oss-date"] = date_time
    signed["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    canonical_headers = sorted(
        (name.lower(), value)
        for name, value in signed.items()
        if name.lower().startswith("x-oss-") or name.lower() in _V4_DEFAULT_SIGNED
    )
    canonical = (
        f"{verb}\n{v4_uri_encode(f'/{bucket}/{key}', True)}\n{canonical_query(query)}\n".encode()
        + b"".join(f"{n}:{v}\n".encode() for n, v in canonical_headers)
        + f"\n\n{UNSIGNED_PAYLOAD}".encode()
    )
    scope = v4_scope(date_time[:8], region)
    to_sign = f"{V4_ALGORITHM}\n{date_time}\n{scope}\n{hashlib.sha256(canonical).hexdigest()}"
    signature = hmac.new(
        v4_signing_key(credentials.access_key_secret, date_time[:8], region),
        to_sign.encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()
    signed["Authorization"] = (
        f"{V4_ALGORITHM} Credential={credentials.access_key_id}/{scope}, Signature={signature}"
    )
    return signed


def canonical_query(query: Mapping[str, str] | None) -> str:
    """V4's canonical query string: each name and value encoded, sorted by name, a name
    with an empty value written alone."""
    encoded = sorted(
        (v4_uri_encode(k, False), v4_uri_encode(v, False)) for k, v in (query or {}).items()
    )
    return "&".join(f"{k}={v}" if v else k for k, v in encoded)


def classify_status(
    operation: str,
    status: int,
    code: str,
    message: str,
    request_id: str | None,
) -> PlatformError:
    """An OSS error response as the ports' error classes (shared with the oss2 path)."""
    if status == 404 and code in ("NoSuchKey", "NoSuchBucket"):
        return NotFoundError("oss", operation, code, message, request_id=request_id, status=status)
    if status < 0 or status >= 500 or status == 429 or code in TRANSIENT_CODES:
        return TransientError(
            "oss", operation, code or "RequestError", message, request_id=request_id, status=status
        )
    return PermanentError("oss", operation, code, message, request_id=request_id, status=status)


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    too_large: bool


class OssReads:
    """V4-signed HEAD / GET of one object at a time, on one kept-alive connection.

    One instance belongs to one invocation's adapter (not shared between threads).
    ``region`` is the bucket's region id (the V4 credential scope); ``clock`` gives the
    signing time (tests pin it).
    """

    def __init__(
        self,
        credentials: CloudCredentials,
        endpoint: str,
        *,
        region: str,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OSS endpoint: expected http(s)://host, got {endpoint!r}")
        self._credentials = credentials
        self._region = check_region(region)
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path_style = is_ip_host(endpoint)
        self._timeout = timeout
        self._clock = clock
        self._conn: http.client.HTTPConnection | None = None
        self._conn_host = ""

    # ------------------------------------------------------------------ operations

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when there is no such object.

        A missing *bucket* is not a missing object: it raises :class:`NotFoundError`
        with ``code == "NoSuchBucket"``.
        """
        resp = self._call("HEAD", "HeadObject", bucket, key, limit=0)
        if resp.status == 404 and self._error_code(resp) in (NO_SUCH_KEY, None):
            return None
        self._raise_for(resp, "HeadObject")
        h = resp.headers
        crc = h.get("x-oss-hash-crc64ecma", "")
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=self._content_length(resp, "HeadObject"),
            etag=h.get("etag", "").strip('"'),
            object_type=h.get("x-oss-object-type", "Normal"),
            last_modified=_http_date(h.get("last-modified")),
            crc64=int(crc) if crc.isdigit() else None,
            request_id=h.get("x-oss-request-id"),
        )

    def read(self, bucket: str, key: str, limit: int) -> SmallObject:
        """The whole object and the request id; ObjectTooLarge when over ``limit`` bytes.

        Only the number of bytes received decides "larger": a body that ends by closing
        the connection (no Content-Length, legal HTTP/1.1) is read to its end.
        """
        resp = self._call("GET", "GetObject", bucket, key, limit=limit)
        self._raise_for(resp, "GetObject")
        if resp.too_large:
            raise ObjectTooLarge(key, limit)
        return SmallObject(resp.body, resp.headers.get("x-oss-request-id"))

    def list_keys(self, bucket: str, prefix: str, max_keys: int) -> KeyListing:
        """ListObjectsV2: the first ``max_keys`` objects whose keys start with ``prefix``.

        Keys come URL-encoded (``encoding-type=url``), so any key survives the XML.
        """
        query = {
            "encoding-type": "url",
            "list-type": "2",
            "max-keys": str(max_keys),
            "prefix": prefix,
        }
        resp = self._call("GET", "ListObjects", bucket, "", limit=1024 * 1024, query=query)
        self._raise_for(resp, "ListObjects")
        return _listed_keys(resp.body, resp.headers.get("x-oss-request-id"))

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str | None:
        """PutObject a small body (replacing the object); the request id OSS answered."""
        resp = self._call(
            "PUT", "PutObject", bucket, key, limit=0, body=body, content_type=content_type
        )
        self._raise_for(resp, "PutObject")
        return resp.headers.get("x-oss-request-id")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ wire

    def _target(self, bucket: str, key: str) -> tuple[str, str]:
        path = quote(key, safe="")
        if self._path_style:
            return self._netloc, f"/{bucket}/{path}"
        return f"{bucket}.{self._netloc}", f"/{path}"

    def _call(
        self,
        verb: str,
        operation: str,
        bucket: str,
        key: str,
        limit: int,
        body: bytes | None = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> _Response:
        host, path = self._target(bucket, key)
        if query:
            path += "?" + urlencode(query, quote_via=quote, safe="")
        now = datetime.fromtimestamp(self._clock(), timezone.utc)
        headers = {"Host": host, "Accept-Encoding": "identity"}
        if body is not None:
            headers["Content-Length"] = str(len(body))
            headers["Content-Type"] = content_type or "application/octet-stream"
        headers = v4_authorization(
            self._credentials, self._region, verb, bucket, key, headers, now, query
        )
        try:
            return self._send(verb, operation, host, path, headers, limit, body)
        except PlatformError:
            self.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransientError("oss", operation, type(exc).__name__, str(exc)) from exc

    def _send(
        self,
        verb: str,
        operation: str,
        host: str,
        path: str,
        headers: dict[str, str],
        limit: int,
        body: bytes | None = None,
    ) -> _Response:
        conn = self._connection(host)
        conn.request(verb, path, body=body, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        names = {k.lower(): v for k, v in resp.getheaders()}
        declared = names.get("content-length")
        if declared is not None and not declared.strip().isdigit():
            raise TransientError(
                "oss",
                operation,
                "InvalidResponse",
                f"Content-Length must be a non-negative integer, got {declared!r}",
                request_id=names.get("x-oss-request-id"),
                status=status,
            )
        # Error bodies are small XML documents; read them whole (up to 64 KiB).
        cap = limit if status < 300 else 64 * 1024
        body, too_large = self._read_body(resp, operation, cap, verb == "HEAD")
        if too_large or not resp.isclosed() or resp.will_close:
            # Unread bytes (an object over the limit) or a body that ended with the
            # connection: this connection cannot carry another request.
            self.close()
        return _Response(status, resp.reason, names, body, too_large and status < 300)

    @staticmethod
    def _read_body(
        resp: http.client.HTTPResponse, operation: str, cap: int, head: bool
    ) -> tuple[bytes, bool]:
        """Up to ``cap`` bytes, and whether more were on their way (by byte count only)."""
        if head:
            resp.read()  # marks the bodiless response done, so the connection is reusable
            return b"", False
        chunks: list[bytes] = []
        got = 0
        while got <= cap:
            chunk = resp.read(cap + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > cap:
            return b"".join(chunks)[:cap], True
        # End of body. With a Content-Length, http.client counts down what is still due;
        # anything left means the connection died early, and the body is not whole.
        if resp.length:
            raise TransientError(
                "oss",
                operation,
                "IncompleteBody",
                f"the connection closed after {got} bytes, {resp.length} more were announced",
            )
        return b"".join(chunks), False

    def _connection(self, host: str) -> http.client.HTTPConnection:
        """A kept-alive connection to ``host`` (``bucket.endpoint`` unless path-style)."""
        conn = self._conn
        if conn is not None and self._conn_host == host:
            return conn
        self.close()
        address = urlsplit(f"//{host}")
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(address.hostname or host, address.port, timeout=self._timeout)
        self._conn, self._conn_host = conn, host
        return conn

    @staticmethod
    def _content_length(resp: _Response, operation: str) -> int:
        value = resp.headers.get("content-length")
        if value is None:
            raise TransientError(
                "oss",
                operation,
                "InvalidResponse",
                "the response has no Content-Length, so the object's size is unknown",
                request_id=resp.headers.get("x-oss-request-id"),
                status=resp.status,
            )
        return int(value)  # digits only: checked in _send

    @staticmethod
    def _error_code(resp: _Response) -> str | None:
        """The OSS error code: from the XML body, or for HEAD from ``x-oss-err``."""
        code, _, _ = xml_error(resp.body) if resp.body else (None, None, None)
        if code is None and resp.headers.get("x-oss-err"):
            try:
                code, _, _ = xml_error(base64.b64decode(resp.headers["x-oss-err"]))
            except ValueError:
                code = None
        return code

    @classmethod
    def _raise_for(cls, resp: _Response, operation: str) -> None:
        if resp.status < 300:
            return
        body = resp.body
        if not body and resp.headers.get("x-oss-err"):
            try:
                body = base64.b64decode(resp.headers["x-oss-err"])
            except ValueError:
                body = b""
        code, message, request_id = xml_error(body)
        raise classify_status(
            operation,
            resp.status,
            code or resp.headers.get("x-oss-ec", "") or f"HTTP{resp.status}",
            message or resp.reason,
            request_id or resp.headers.get("x-oss-request-id"),
        )


def _listed_keys(body: bytes, request_id: str | None) -> KeyListing:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)  # noqa: S314 - a response from the OSS endpoint
    except ET.ParseError as exc:
        raise TransientError(
            "oss", "ListObjects", "InvalidResponse", f"not a listing: {exc}", request_id=request_id
        ) from exc
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    etags = {}
    for item in root.iter(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        etags[unquote(key) if encoded else key] = (item.findtext(f"{ns}ETag") or "").strip('"')
    truncated = (root.findtext(f"{ns}IsTruncated") or "").lower() == "true"
    return KeyListing(etags, truncated, request_id)


def xml_error(body: bytes | str) -> tuple[str | None, str | None, str | None]:
    """Code, Message and RequestId of an OSS XML error body (Nones when it is not one)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)  # noqa: S314 - a response from the OSS endpoint
    except ET.ParseError:
        return None, None, None
    return root.findtext("Code"), root.findtext("Message"), root.findtext("RequestId")


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
