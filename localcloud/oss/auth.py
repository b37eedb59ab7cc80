"""Request authentication for the local OSS: V4 signatures in headers or URLs (V1 if allowed).

The string-to-sign is rebuilt from what arrived on the wire (decoded path, decoded query,
raw header bytes), the same way OSS does, so a client that signs a different string than
the one it sends fails here just as it would in the cloud. The V4 canonical URI is
``/bucket/key`` whether the bucket came from the Host header (virtual-hosted style) or
from the path (path style), as OSS defines it.

V1 (``Authorization: OSS ...``, ``?OSSAccessKeyId=&Signature=``) is refused with OSS's
403 (EC 0002-00000080), as for a bucket created after 2025-09-01, unless the caller's
``v1_allowed`` says the bucket is a legacy one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from localcloud.credentials import Credential, CredentialStore
from localcloud.oss.errors import (
    OssError,
    access_denied,
    invalid_access_key_id,
    invalid_argument,
    invalid_security_token,
    signature_does_not_match,
    v1_signature_refused,
)

# Query parameters that name a sub-resource and so take part in the V1 canonical resource.
# Any other parameter (prefix, marker, max-keys ...) is left out of the V1 signature.
SUBRESOURCES = frozenset(
    {
        # objects, uploads and their variants
        "acl", "uploads", "uploadId", "partNumber", "append", "position", "symlink",
        "tagging", "objectMeta", "objectInfo", "restore", "delete", "versionId", "versions",
        "sequential", "continuation-token", "callback", "callback-var", "security-token",
        "x-oss-process", "x-oss-async-process", "x-oss-traffic-limit", "x-oss-request-payer",
        "x-oss-write-get-object-response",
        # response header overrides on GetObject
        "response-content-type", "response-content-language", "response-expires",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        # bucket configuration
        "location", "logging", "website", "referer", "cors", "lifecycle", "stat", "bucketInfo",
        "policy", "encryption", "versioning", "requestPayment", "qos", "qosInfo", "worm",
        "wormId", "wormExtend", "replication", "replicationLocation", "replicationProgress",
        "inventory", "inventoryId", "transferAcceleration", "cname", "metaQuery", "asyncFetch",
        "group", "link", "live", "comp", "status", "vod", "startTime", "endTime", "style",
        "styleName", "regionList", "resourceGroup", "httpsConfig", "bucketArchiveDirectRead",
        "redundancyTransition", "x-oss-target-redundancy-type",
        "x-oss-redundancy-transition-taskid", "accessPoint", "accessPointPolicy",
        "publicAccessBlock", "x-oss-access-point-name", "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-ac-forward-allow",
        "requesterQosInfo", "qosRequester", "resourcePoolInfo", "resourcePool",
        "resourcePoolBuckets",
    }
)  # fmt: skip

V4_ALGORITHM = "OSS4-HMAC-SHA256"
_V4_ALWAYS_SIGNED = ("content-type", "content-md5")
_V4_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_V4_FIELD = re.compile(r"\s*(Credential|Signature|AdditionalHeaders)=([^,]*)")


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request a signature covers, as the server received them.

    ``bucket`` None is a service-level request (``/``); ``key`` "" a bucket-level one.
    ``headers`` keep the raw values (as latin-1 decoded by WSGI) under lower-case names.
    """

    method: str
    bucket: str | None
    key: str
    params: Mapping[str, str]
    headers: Sequence[tuple[str, str]]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def _raw(value: str) -> bytes:
    """Header bytes as they were on the wire (WSGI hands them over latin-1 decoded)."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def v4_uri_encode(text: str, keep_slash: bool) -> str:
    out = []
    for b in text.encode("utf-8"):
        if b in _V4_UNRESERVED or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _parse_http_date(value: str) -> float | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _parse_v4_date(value: str) -> float | None:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _http_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


#: The longest validity a V4 presigned URL may ask for (7 days, OSS error page 0002-00000232).
V4_URL_MAX_EXPIRES = 604800


class Authenticator:
    """Checks OSS request signatures against a :class:`CredentialStore`."""

    def __init__(
        self,
        credentials: CredentialStore,
        region: str,
        clock: Callable[[], float],
        max_skew_seconds: float = 15 * 60,
        v1_allowed: Callable[[SignedRequest], bool] = lambda _req: False,
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.clock = clock
        self.max_skew_seconds = max_skew_seconds
        self.v1_allowed = v1_allowed

    def authenticate(self, req: SignedRequest) -> Credential | None:
        """The credential that signed ``req``, None for an anonymous request, or OssError."""
        authorization = req.header("authorization")
        if authorization:
            if authorization.startswith(V4_ALGORITHM + " "):
                return self._v4_header(req, authorization)
            if authorization.startswith("OSS "):
                if not self.v1_allowed(req):
                    raise v1_signature_refused("Authorization: OSS")
                return self._v1_header(req, authorization)
            raise invalid_argument(
                "Authorization header is invalid or not supported by the local OSS "
                "(supported: OSS and OSS4-HMAC-SHA256).",
                "Authorization",
                authorization.split(" ", 1)[0],
            )
        if "Signature" in req.params and "OSSAccessKeyId" in req.params:
            if not self.v1_allowed(req):
                raise v1_signature_refused("OSSAccessKeyId/Signature in the URL")
            return self._v1_query(req)
        if req.params.get("x-oss-signature-version") == V4_ALGORITHM:
            return self._v4_query(req)
        if "x-oss-signature-version" in req.params:
            raise invalid_argument(
                "Signature version in the URL is not supported by the local OSS.",
                "x-oss-signature-version",
                req.params["x-oss-signature-version"],
            )
        return None

    # -- helpers ------------------------------------------------------------------------

    def _credential(self, access_key_id: str, token: str | None) -> Credential:
        cred = self.credentials.get(access_key_id)
        if cred is None:
            raise invalid_access_key_id(access_key_id)
        # An STS key is only valid together with its token; a long-term key takes none.
        if cred.security_token != token:
            raise invalid_security_token(access_key_id, token)
        return cred

    def _check_skew(self, request_time: float, raw: str) -> None:
        now = self.clock()
        if abs(now - request_time) > self.max_skew_seconds:
            raise OssError(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=raw,
                ServerTime=_http_date(now),
                MaxAllowedSkewMilliseconds=int(self.max_skew_seconds * 1000),
            )

    def _check_expiry(self, expires_at: float, raw: str) -> None:
        now = self.clock()
        if now > expires_at:
            raise OssError(
                403,
                "AccessDenied",
                "Request has expired.",
                Expires=raw,
                ServerTime=_http_date(now),
            )

    # -- V1 -----------------------------------------------------------------------------

    def _v1_canonical(self, req: SignedRequest, date: str) -> bytes:
        oss_headers: dict[str, list[str]] = {}
        for name, value in req.headers:
            if name.startswith("x-oss-"):
                oss_headers.setdefault(name, []).append(value.strip())
        headers_part = b"".join(
            name.encode("ascii") + b":" + _raw(",".join(values)) + b"\n"
            for name, values in sorted(oss_headers.items())
        )
        resource = "/" if req.bucket is None else f"/{req.bucket}/{req.key}"
        sub = sorted((k, v) for k, v in req.params.items() if k in SUBRESOURCES)
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        return b"\n".join(
            [
                req.method.encode("ascii"),
                _raw(req.header("content-md5") or ""),
                _raw(req.header("content-type") or ""),
                _raw(date),
                headers_part + resource.encode("utf-8"),
            ]
        )

    def _v1_verify(
        self, req: SignedRequest, cred: Credential, date: str, provided: str
    ) -> Credential:
        to_sign = self._v1_canonical(req, date)
        digest = hmac.new(cred.access_key_secret.encode("utf-8"), to_sign, hashlib.sha1).digest()
        expected = base64.b64encode(digest).decode("ascii")
        if not hmac.compare_digest(expected, provided):
            raise signature_does_not_match(
                cred.access_key_id, to_sign.decode("utf-8", "replace"), provided
            )
        return cred

    def _v1_header(self, req: SignedRequest, authorization: str) -> Credential:
        access_key_id, sep, provided = authorization[4:].strip().partition(":")
        if not sep or not access_key_id or not provided:
            raise invalid_argument("Authorization header is invalid.", "Authorization")
        cred = self._credential(access_key_id, req.header("x-oss-security-token"))
        date = req.header("x-oss-date") or req.header("date")
        if not date:
            raise access_denied("Missing Date header.")
        request_time = _parse_http_date(date)
        if request_time is None:
            raise access_denied(f"Invalid Date header: {date!r}.")
        self._check_skew(request_time, date)
        return self._v1_verify(req, cred, date, provided)

    def _v1_query(self, req: SignedRequest) -> Credential:
        access_key_id = req.params["OSSAccessKeyId"]
        cred = self._credential(access_key_id, req.params.get("security-token"))
        expires = req.params.get("Expires", "")
        if not expires.isdigit():
            raise access_denied("Invalid Expires parameter in the signed URL.")
        self._check_expiry(float(expires), expires)
        return self._v1_verify(req, cred, expires, req.params["Signature"])

    # -- V4 -----------------------------------------------------------------------------

    def _v4_scope(self, credential: str) -> tuple[str, str, str]:
        """Split ``AK/date/region/oss/aliyun_v4_request`` and check the region and product."""
        pieces = credential.split("/")
        if len(pieces) != 5 or pieces[3] != "oss" or pieces[4] != "aliyun_v4_request":
            raise invalid_argument(
                "Invalid credential in the V4 signature.", "Credential", credential
            )
        access_key_id, date, region = pieces[0], pieces[1], pieces[2]
        if region != self.region:
            raise signature_does_not_match(
                access_key_id,
                f"(signing region {region!r} differs from this OSS region {self.region!r})",
                "",
            )
        return access_key_id, date, region

    def _v4_verify(
        self,
        req: SignedRequest,
        cred: Credential,
        *,
        date_time: str,
        scope_date: str,
        additional: list[str],
        provided: str,
        exclude_param: str | None,
    ) -> Credential:
        if date_time[:8] != scope_date:
            raise signature_does_not_match(
                cred.access_key_id, "(credential scope date differs from x-oss-date)", provided
            )
        uri = "/" if req.bucket is None else f"/{req.bucket}/{req.key}"
        encoded = sorted(
            (v4_uri_encode(k, False), v4_uri_encode(v, False))
            for k, v in req.params.items()
            if k != exclude_param
        )
        query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
        signed = set(additional)
        headers = sorted(
            (name, value)
            for name, value in req.headers
            if name.startswith("x-oss-") or name in _V4_ALWAYS_SIGNED or name in signed
        )
        canonical_headers = b"".join(n.encode("ascii") + b":" + _raw(v) + b"\n" for n, v in headers)
        payload_hash = req.header("x-oss-content-sha256") or "UNSIGNED-PAYLOAD"
        canonical = (
            f"{req.method}\n{v4_uri_encode(uri, True)}\n{query}\n".encode()
            + canonical_headers
            + f"\n{';'.join(sorted(additional))}\n{payload_hash}".encode()
        )
        scope = f"{scope_date}/{self.region}/oss/aliyun_v4_request"
        to_sign = f"{V4_ALGORITHM}\n{date_time}\n{scope}\n{hashlib.sha256(canonical).hexdigest()}"
        key = ("aliyun_v4" + cred.access_key_secret).encode("utf-8")
        for part in (scope_date, self.region, "oss", "aliyun_v4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, provided):
            raise signature_does_not_match(
                cred.access_key_id, to_sign, provided, canonical.decode("utf-8", "replace")
            )
        return cred

    def _v4_header(self, req: SignedRequest, authorization: str) -> Credential:
        fields = dict(_V4_FIELD.findall(authorization[len(V4_ALGORITHM) + 1 :]))
        if "Credential" not in fields or "Signature" not in fields:
            raise invalid_argument("Authorization header is invalid.", "Authorization")
        access_key_id, scope_date, _ = self._v4_scope(fields["Credential"].strip())
        cred = self._credential(access_key_id, req.header("x-oss-security-token"))
        date_time = req.header("x-oss-date") or ""
        request_time = _parse_v4_date(date_time)
        if request_time is None:
            raise access_denied("Missing or invalid x-oss-date header for V4 signature.")
        self._check_skew(request_time, date_time)
        additional = [h for h in fields.get("AdditionalHeaders", "").strip().split(";") if h]
        return self._v4_verify(
            req,
            cred,
            date_time=date_time,
            scope_date=scope_date,
            additional=additional,
            provided=fields["Signature"].strip(),
            exclude_param=None,
        )

    def _v4_query(self, req: SignedRequest) -> Credential:
        access_key_id, scope_date, _ = self._v4_scope(req.params.get("x-oss-credential", ""))
        cred = self._credential(access_key_id, req.params.get("x-oss-security-token"))
        date_time = req.params.get("x-oss-date", "")
        request_time = _parse_v4_date(date_time)
        expires = req.params.get("x-oss-expires", "")
        if request_time is None or not expires.isdigit():
            raise access_denied("Invalid x-oss-date or x-oss-expires in the signed URL.")
        if not 1 <= int(expires) <= V4_URL_MAX_EXPIRES:
            # OSS error page 0002-00000232: x-oss-expires must be 1 to 604800 seconds.
            raise OssError(
                403,
                "AccessDenied",
                f"x-oss-expires must be between 1 and {V4_URL_MAX_EXPIRES} seconds.",
                ec="0002-00000232",
            )
        self._check_expiry(request_time + int(expires), expires)
        additional = [h for h in req.params.get("x-oss-additional-headers", "").split(";") if h]
        return self._v4_verify(
            req,
            cred,
            date_time=date_time,
            scope_date=scope_date,
            additional=additional,
            provided=req.params.get("x-oss-signature", ""),
            exclude_param="x-oss-signature",
        )
