"""Which OSS operation a request names: the bucket from the Host header first, then the path.

:func:`address` finds the bucket and key (virtual-hosted style when the Host names a bucket,
else path style on IP and ``localhost`` endpoints; path style on OSS's own domain is
refused); :func:`route` then takes the first row of :data:`ROUTES` that matches the
resource (service, bucket or object), the method and the row's condition. Adding an
operation is one handler in :mod:`localcloud.oss.responses`, one row here and one entry in
:data:`OPERATIONS`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

import localcloud.oss.responses as responses
from localcloud.oss.auth import SUBRESOURCES
from localcloud.oss.backend import OssBackend
from localcloud.oss.errors import OssError
from localcloud.oss.request import Call, OssRequest
from localcloud.oss.storage import validate_object_key

Handler = Callable[[OssBackend, Call], Response]
Condition = Callable[[Request], bool]

#: OSS's public endpoints: ``oss-<region>.aliyuncs.com``, ``oss-<region>-internal...``.
OSS_ENDPOINT_HOST = re.compile(r"oss-[a-z0-9-]+\.aliyuncs\.com")

# Sub-resources the routes below understand; any other one is answered NotImplemented
# rather than silently treated as a plain GET/PUT of the object.
HANDLED_SUBRESOURCES = frozenset(
    {
        "uploads", "uploadId", "partNumber", "objectMeta", "delete", "continuation-token",
        "security-token", "acl", "response-content-type", "response-content-language",
        "response-expires", "response-cache-control", "response-content-disposition",
        "response-content-encoding",
    }
)  # fmt: skip


def _always(_request: Request) -> bool:
    return True


def _has(*names: str) -> Condition:
    def condition(request: Request) -> bool:
        return all(name in request.args for name in names)

    return condition


def _list_type_2(request: Request) -> bool:
    return request.args.get("list-type") == "2"


def _form(request: Request) -> bool:
    return request.mimetype == "multipart/form-data"


def _copy_source(request: Request) -> bool:
    return bool(request.headers.get("x-oss-copy-source"))


@dataclass(frozen=True)
class Route:
    """``resource`` is "service" (no bucket), "bucket" (no key) or "object"."""

    resource: str
    method: str
    operation: str
    when: Condition = _always


#: First match wins, so a row with a condition comes before the plain row of its method.
ROUTES: tuple[Route, ...] = (
    Route("service", "GET", "ListBuckets"),
    Route("bucket", "PUT", "PutBucket"),
    Route("bucket", "DELETE", "DeleteBucket"),
    Route("bucket", "GET", "ListObjectsV2", _list_type_2),
    Route("bucket", "GET", "ListObjects"),
    Route("bucket", "POST", "DeleteMultipleObjects", _has("delete")),
    Route("bucket", "POST", "PostObject", _form),
    Route("object", "PUT", "UploadPart", _has("uploadId", "partNumber")),
    Route("object", "PUT", "CopyObject", _copy_source),
    Route("object", "PUT", "PutObject"),
    Route("object", "GET", "ListParts", _has("uploadId")),
    Route("object", "GET", "GetObject"),
    Route("object", "HEAD", "GetObjectMeta", _has("objectMeta")),
    Route("object", "HEAD", "HeadObject"),
    Route("object", "DELETE", "AbortMultipartUpload", _has("uploadId")),
    Route("object", "DELETE", "DeleteObject"),
    Route("object", "POST", "InitiateMultipartUpload", _has("uploads")),
    Route("object", "POST", "CompleteMultipartUpload", _has("uploadId")),
)

OPERATIONS: Mapping[str, Handler] = {
    "ListBuckets": responses.list_buckets,
    "PutBucket": responses.put_bucket,
    "DeleteBucket": responses.delete_bucket,
    "ListObjectsV2": responses.list_objects_v2,
    "ListObjects": responses.list_objects,
    "DeleteMultipleObjects": responses.delete_multiple_objects,
    "PostObject": responses.post_object,
    "UploadPart": responses.upload_part,
    "CopyObject": responses.copy_object,
    "PutObject": responses.put_object,
    "ListParts": responses.list_parts,
    "GetObject": responses.get_object,
    "GetObjectMeta": responses.get_object_meta,
    "HeadObject": responses.get_object,
    "AbortMultipartUpload": responses.abort_multipart_upload,
    "DeleteObject": responses.delete_object,
    "InitiateMultipartUpload": responses.initiate_multipart_upload,
    "CompleteMultipartUpload": responses.complete_multipart_upload,
}


def _is_ip_or_localhost(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_bucket(host: str, base_url: str | None) -> str | None:
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
    own = urlsplit(base_url).hostname if base_url else None
    if _is_ip_or_localhost(rest) or OSS_ENDPOINT_HOST.fullmatch(rest) or rest == own:
        return bucket
    return None


def _is_oss_domain(host: str) -> bool:
    try:
        hostname = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    return bool(hostname and OSS_ENDPOINT_HOST.fullmatch(hostname))


def address(request: Request, base_url: str | None) -> tuple[str | None, str, bool]:
    """Bucket (None for the service), key ("" for a bucket) and whether Host named the bucket."""
    path = request.path
    virtual = host_bucket(request.host, base_url)
    if virtual is not None:
        return virtual, path[1:] if path.startswith("/") else path, True
    bucket_part, _, key = path.lstrip("/").partition("/")
    bucket = bucket_part or None
    if bucket is not None and _is_oss_domain(request.host):
        # Path style on OSS's own domain is refused for new users (see docs/fidelity.md);
        # only IP endpoints take the bucket from the path.
        raise OssError(
            403,
            "SecondLevelDomainForbidden",
            "Please use virtual hosted style to access.",
            BucketName=bucket,
        )
    return bucket, key, False


def route(request: OssRequest, request_id: str, base_url: str | None) -> Call:
    """The routed call; 400 NotImplemented for an unknown sub-resource, 405 for no route."""
    bucket, key, virtual = address(request, base_url)
    unknown = sorted(k for k in request.args if k in SUBRESOURCES and k not in HANDLED_SUBRESOURCES)
    if unknown:
        raise OssError(
            400,
            "NotImplemented",
            f"The local OSS does not implement the sub-resource {unknown[0]!r}.",
        )
    resource = "service" if bucket is None else "object" if key else "bucket"
    if resource == "object":
        validate_object_key(key)
    for row in ROUTES:
        if row.resource == resource and row.method == request.method and row.when(request):
            return Call(request, row.operation, bucket, key, request_id, virtual)
    raise OssError(
        405,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource.",
        Method=request.method,
        ResourceType="Bucket" if not key else "Object",
    )
