"""HeadObject and small GetObject calls signed here, over ``http.client``.

Every invocation starts with these two reads: HEAD of the firmware file and GET of its
sidecar (at most 64 KiB). Half of all invocations end right after them ("waiting" for
the other half of a pair, or "rejected" sidecars), and importing oss2 with requests for
them costs ~110 ms of each such cold start, more than the reads themselves
(docs/benchmarks.md, "cold start"). So the two reads are made with the standard library,
signed with OSS's header signature (version 1, as ``oss2.Auth`` / ``oss2.StsAuth`` sign),
and oss2 stays for what needs it: streaming downloads and signed URLs.

The signing is checked against oss2's own signer in tests/unit, and every call here is
verified by the local OSS stand-in's signature check in tests/integration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote, urlsplit

from ota_release.adapters import CloudCredentials
from ota_release.errors import NotFoundError, PermanentError, PlatformError, TransientError
from ota_release.ports import ObjectInfo, ObjectTooLarge

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
SECURITY_TOKEN_HEADER = "x-oss-security-token"  # noqa: S105 - a header name


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


def string_to_sign(verb: str, date: str, bucket: str, key: str, oss_headers: dict[str, str]) -> str:
    """OSS header-signature (V1) string for a request without body or sub-resources."""
    canonical_headers = "".join(
        f"{name}:{oss_headers[name]}\n" for name in sorted(oss_headers, key=str.lower)
    )
    # Content-MD5 and Content-Type are empty for HEAD and GET.
    return f"{verb}\n\n\n{date}\n{canonical_headers}/{bucket}/{key}"


def authorization(credentials: CloudCredentials, text: str) -> str:
    digest = hmac.new(
        credentials.access_key_secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1
    ).digest()
    return f"OSS {credentials.access_key_id}:{base64.b64encode(digest).decode('ascii')}"


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
    truncated: bool


class OssReads:
    """Signed HEAD / GET of one object at a time, on one kept-alive connection.

    One instance belongs to one invocation's adapter (not shared between threads).
    """

    def __init__(
        self, credentials: CloudCredentials, endpoint: str, *, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OSS endpoint: expected http(s)://host, got {endpoint!r}")
        self._credentials = credentials
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc
        self._path_style = is_ip_host(endpoint)
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._conn_host = ""

    # ------------------------------------------------------------------ operations

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when there is no such object."""
        resp = self._call("HEAD", "HeadObject", bucket, key, limit=0)
        if resp.status == 404:
            return None
        self._raise_for(resp, "HeadObject")
        h = resp.headers
        crc = h.get("x-oss-hash-crc64ecma", "")
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(h.get("content-length", "0")),
            etag=h.get("etag", "").strip('"'),
            object_type=h.get("x-oss-object-type", "Normal"),
            last_modified=_http_date(h.get("last-modified")),
            crc64=int(crc) if crc.isdigit() else None,
            request_id=h.get("x-oss-request-id"),
        )

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        """The whole object; ObjectTooLarge when it is larger than ``limit`` bytes."""
        resp = self._call("GET", "GetObject", bucket, key, limit=limit + 1)
        self._raise_for(resp, "GetObject")
        if resp.truncated or len(resp.body) > limit:
            raise ObjectTooLarge(key, limit)
        return resp.body

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

    def _call(self, verb: str, operation: str, bucket: str, key: str, limit: int) -> _Response:
        host, path = self._target(bucket, key)
        date = formatdate(usegmt=True)
        oss_headers: dict[str, str] = {}
        if self._credentials.security_token:
            oss_headers[SECURITY_TOKEN_HEADER] = self._credentials.security_token
        headers = {
            "Host": host,
            "Date": date,
            "Accept-Encoding": "identity",
            **oss_headers,
            "Authorization": authorization(
                self._credentials, string_to_sign(verb, date, bucket, key, oss_headers)
            ),
        }
        try:
            return self._send(verb, host, path, headers, limit)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransientError("oss", operation, type(exc).__name__, str(exc)) from exc

    def _send(
        self, verb: str, host: str, path: str, headers: dict[str, str], limit: int
    ) -> _Response:
        conn = self._connection(host)
        conn.request(verb, path, headers=headers)
        resp = conn.getresponse()
        status = resp.status
        names = {k.lower(): v for k, v in resp.getheaders()}
        # Error bodies are small XML documents; read them whole.
        body = resp.read(limit) if status < 300 else resp.read(64 * 1024)
        truncated = not resp.isclosed()
        if truncated or resp.will_close:
            # Unread bytes (an object over the limit) or the server's choice: this
            # connection cannot carry another request.
            self.close()
        return _Response(status, resp.reason, names, body, truncated and status < 300)

    def _connection(self, host: str) -> http.client.HTTPConnection:
        """A kept-alive connection to ``host`` (``bucket.endpoint`` unless path-style)."""
        conn = self._conn
        if conn is not None and self._conn_host == host:
            return conn
        self.close()
        hostname, _, port = host.partition(":")
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(hostname, int(port) if port else None, timeout=self._timeout)
        self._conn, self._conn_host = conn, host
        return conn

    @staticmethod
    def _raise_for(resp: _Response, operation: str) -> None:
        if resp.status < 300:
            return
        code, message, request_id = xml_error(resp.body)
        raise classify_status(
            operation,
            resp.status,
            code or resp.headers.get("x-oss-ec", "") or f"HTTP{resp.status}",
            message or resp.reason,
            request_id or resp.headers.get("x-oss-request-id"),
        )


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
