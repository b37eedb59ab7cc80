"""One handler per OSS operation: ``handler(backend, call) -> Response``.

Each reads what it needs from the routed :class:`~localcloud.oss.request.Call`, acts on
the :class:`~localcloud.oss.backend.OssBackend` and answers with OSS's headers and XML.
Errors are raised as :class:`~localcloud.oss.errors.OssError`; the app renders them.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from werkzeug.http import http_date
from werkzeug.wrappers import Response

from localcloud.oss.backend import OssBackend
from localcloud.oss.errors import OssError, access_denied, invalid_argument, v1_signature_refused
from localcloud.oss.events import (
    COMPLETE_MULTIPART_UPLOAD,
    COPY_OBJECT,
    POST_OBJECT,
    PUT_OBJECT,
)
from localcloud.oss.post import authorize_form
from localcloud.oss.protocol import (
    child,
    content_md5,
    head_response,
    iso8601,
    object_headers,
    owner,
    parse_xml,
    quoted,
    write_response,
    xml,
    xml_response,
)
from localcloud.oss.request import Call, forbid_overwrite, object_settings
from localcloud.oss.storage import BlobWriter, StoredObject, read_range, validate_object_key

RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}

# -- service and buckets -----------------------------------------------------------------


def list_buckets(backend: OssBackend, call: Call) -> Response:
    region = backend.region
    root = ET.Element("ListAllMyBucketsResult")
    owner(root, backend.account_id)
    buckets = child(root, "Buckets")
    for name in backend.store.bucket_names():
        info = backend.store.bucket(name)
        if info is None:
            continue
        node = child(buckets, "Bucket")
        child(node, "CreationDate", iso8601(info.created))
        child(node, "ExtranetEndpoint", f"oss-{region}.aliyuncs.com")
        child(node, "IntranetEndpoint", f"oss-{region}-internal.aliyuncs.com")
        child(node, "Location", f"oss-{region}")
        child(node, "Name", info.name)
        child(node, "Region", region)
        child(node, "StorageClass", "Standard")
    return xml_response(root)


def put_bucket(backend: OssBackend, call: Call) -> Response:
    call.request.stream.read()  # CreateBucketConfiguration: storage class is not modelled
    acl = call.header("x-oss-acl")
    if "acl" in call.request.args:
        backend.store.require_bucket(call.bucket_name())
    backend.store.create_bucket(call.bucket_name(), acl)
    response = Response(b"")
    response.headers["Location"] = f"/{call.bucket}"
    return response


def delete_bucket(backend: OssBackend, call: Call) -> Response:
    backend.store.delete_bucket(call.bucket_name())
    return Response(b"", status=204)


# -- listing ------------------------------------------------------------------------------


def _max_keys(call: Call) -> int:
    raw = call.request.args.get("max-keys", "100")
    if not raw.isdigit() or int(raw) > 1000:
        raise invalid_argument("Argument max-keys must be an integer between 0 and 1000.")
    return int(raw)


def _page(
    backend: OssBackend, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[StoredObject], list[str], bool, str]:
    """One page of a listing: objects, common prefixes, truncated?, last entry."""
    objects: list[StoredObject] = []
    prefixes: list[str] = []
    last = ""
    truncated = False
    for record in backend.store.list_objects(bucket):
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
    call: Call, root: ET.Element, records: list[StoredObject], account_id: str | None
) -> None:
    """One ``<Contents>`` per object; with ``<Owner>`` when ``account_id`` is given."""
    for record in records:
        node = child(root, "Contents")
        child(node, "Key", call.encode(record.key))
        child(node, "LastModified", iso8601(record.last_modified))
        child(node, "ETag", quoted(record.etag))
        child(node, "Type", record.object_type)
        child(node, "Size", record.size)
        child(node, "StorageClass", "Standard")
        if account_id is not None:
            owner(node, account_id)


def _common_prefixes(call: Call, root: ET.Element, prefixes: list[str]) -> None:
    for common in prefixes:
        child(child(root, "CommonPrefixes"), "Prefix", call.encode(common))


def list_objects(backend: OssBackend, call: Call) -> Response:
    args = call.request.args
    bucket = call.bucket_name()
    backend.store.require_bucket(bucket)
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    marker, max_keys = args.get("marker", ""), _max_keys(call)
    records, prefixes, truncated, last = _page(backend, bucket, prefix, delimiter, marker, max_keys)
    root = ET.Element("ListBucketResult")
    child(root, "Name", bucket)
    child(root, "Prefix", call.encode(prefix))
    child(root, "Marker", call.encode(marker))
    child(root, "MaxKeys", max_keys)
    child(root, "Delimiter", call.encode(delimiter))
    if call.url_encoded:
        child(root, "EncodingType", "url")
    child(root, "IsTruncated", "true" if truncated else "false")
    if truncated:
        child(root, "NextMarker", call.encode(last))
    _contents(call, root, records, backend.account_id)
    _common_prefixes(call, root, prefixes)
    return xml_response(root)


def _start_after(call: Call) -> str:
    """Where a V2 listing resumes: the continuation token's key, else ``start-after``."""
    token = call.request.args.get("continuation-token", "")
    if not token:
        return call.request.args.get("start-after", "")
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise invalid_argument(
            "The continuation token provided is incorrect.", "continuation-token", token
        ) from exc


def list_objects_v2(backend: OssBackend, call: Call) -> Response:
    args = call.request.args
    bucket = call.bucket_name()
    backend.store.require_bucket(bucket)
    prefix, delimiter = args.get("prefix", ""), args.get("delimiter", "")
    start_after, token = args.get("start-after", ""), args.get("continuation-token", "")
    max_keys = _max_keys(call)
    after = _start_after(call)
    records, prefixes, truncated, last = _page(backend, bucket, prefix, delimiter, after, max_keys)
    root = ET.Element("ListBucketResult")
    child(root, "Name", bucket)
    child(root, "Prefix", call.encode(prefix))
    if token:
        child(root, "ContinuationToken", token)
    if start_after:
        child(root, "StartAfter", call.encode(start_after))
    child(root, "MaxKeys", max_keys)
    child(root, "Delimiter", call.encode(delimiter))
    if call.url_encoded:
        child(root, "EncodingType", "url")
    child(root, "IsTruncated", "true" if truncated else "false")
    if truncated:
        next_token = base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")
        child(root, "NextContinuationToken", call.encode(next_token))
    child(root, "KeyCount", len(records) + len(prefixes))
    fetch_owner = args.get("fetch-owner", "false").lower() == "true"
    _contents(call, root, records, backend.account_id if fetch_owner else None)
    _common_prefixes(call, root, prefixes)
    return xml_response(root)


def delete_multiple_objects(backend: OssBackend, call: Call) -> Response:
    bucket = call.bucket_name()
    backend.store.require_bucket(bucket)
    root = parse_xml(call.small_body())
    quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
    result = ET.Element("DeleteResult")
    if call.url_encoded:
        child(result, "EncodingType", "url")
    for node in root.findall("Object"):
        key = node.findtext("Key") or ""
        backend.store.delete(bucket, key)
        if not quiet:
            child(child(result, "Deleted"), "Key", call.encode(key))
    return xml_response(result)


# -- objects ------------------------------------------------------------------------------


def put_object(backend: OssBackend, call: Call) -> Response:
    bucket = call.bucket_name()
    backend.store.require_bucket(bucket)
    content_type, meta, kept = object_settings(call.request.headers.items())
    writer = call.read_body()
    record = backend.store.commit(
        bucket,
        call.key,
        writer,
        content_type=content_type or "application/octet-stream",
        user_meta=meta,
        headers=kept,
        forbid_overwrite=call.forbid_overwrite(),
    )
    backend.emit(record, PUT_OBJECT, call.request_id)
    return write_response(record)


def copy_object(backend: OssBackend, call: Call) -> Response:
    bucket = call.bucket_name()
    backend.store.require_bucket(bucket)
    source = unquote(call.header("x-oss-copy-source") or "").split("?", 1)[0]
    src_bucket, _, src_key = source.lstrip("/").partition("/")
    if not src_bucket or not src_key:
        raise invalid_argument("Copy Source must mention the source bucket and key.")
    src, handle = backend.store.open(src_bucket, src_key)
    writer = call.request.new_writer()
    with handle:
        writer.copy_from(handle)
    directive = (call.header("x-oss-metadata-directive") or "COPY").upper()
    if directive == "REPLACE":
        content_type, meta, kept = object_settings(call.request.headers.items())
        content_type = content_type or "application/octet-stream"
    else:
        content_type, meta, kept = src.content_type, src.user_meta, src.headers
    record = backend.store.commit(
        bucket,
        call.key,
        writer,
        content_type=content_type,
        user_meta=meta,
        headers=kept,
        object_type=src.object_type,
        etag=src.etag,
        forbid_overwrite=call.forbid_overwrite(),
    )
    backend.emit(record, COPY_OBJECT, call.request_id)
    root = ET.Element("CopyObjectResult")
    child(root, "ETag", quoted(record.etag))
    child(root, "LastModified", iso8601(record.last_modified))
    response = xml_response(root)
    response.headers["ETag"] = quoted(record.etag)
    response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
    return response


def _precondition(call: Call, record: StoredObject) -> Response | None:
    """If-Match / If-None-Match, as oss2's resumable download uses them."""
    etag = quoted(record.etag)
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


def _byte_range(call: Call, record: StoredObject) -> tuple[int, int, str | None]:
    """Start, length and Content-Range of what to send; the whole object if no usable range.

    An unsatisfiable range is ignored (200, the whole object), as OSS does, unless the
    caller asked for ``x-oss-range-behavior: standard`` (416 InvalidRange).
    """
    byte_range = call.request.range
    if byte_range is None or len(byte_range.ranges) != 1:
        return 0, record.size, None
    bounds = byte_range.range_for_length(record.size)
    if bounds is not None:
        start, stop = bounds
        return start, stop - start, f"bytes {start}-{stop - 1}/{record.size}"
    if (call.header("x-oss-range-behavior") or "").lower() == "standard":
        raise OssError(
            416,
            "InvalidRange",
            "The requested range cannot be satisfied.",
            RangeRequested=call.header("Range"),
            ActualObjectSize=record.size,
        )
    return 0, record.size, None


def get_object(backend: OssBackend, call: Call) -> Response:
    """GetObject and HeadObject (the same headers, HEAD without the body)."""
    record, handle = backend.store.open(call.bucket_name(), call.key)
    try:
        not_modified = _precondition(call, record)
        if not_modified is not None:
            handle.close()
            return not_modified
        start, length, content_range = _byte_range(call, record)
    except BaseException:
        handle.close()
        raise
    headers = object_headers(record)
    headers["Content-Type"] = record.content_type
    for param, header in RESPONSE_OVERRIDES.items():
        if param in call.request.args:
            headers[header] = call.request.args[param]
    status = 200
    if content_range is not None:
        headers["Content-Range"] = content_range
        status = 206
    headers["Content-Length"] = str(length)
    if call.request.method == "HEAD":
        handle.close()
        return head_response(status, headers)
    return Response(
        read_range(handle, start, length),
        status=status,
        headers=headers,
        direct_passthrough=True,
    )


def get_object_meta(backend: OssBackend, call: Call) -> Response:
    record = backend.store.require(call.bucket_name(), call.key)
    headers = {
        "ETag": quoted(record.etag),
        "Last-Modified": http_date(record.last_modified),
        "Content-Length": str(record.size),
        "x-oss-hash-crc64ecma": str(record.crc64),
    }
    return head_response(200, headers)


def delete_object(backend: OssBackend, call: Call) -> Response:
    backend.store.delete(call.bucket_name(), call.key)
    return Response(b"", status=204)


def _form_upload(call: Call) -> tuple[BlobWriter, str]:
    """The form's finished file part and the key it goes to (``${filename}`` filled in)."""
    fields = {k.lower(): v for k, v in call.request.form.items()}
    upload = call.request.files.get("file")
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
    return writer, key


def _post_response(call: Call, record: StoredObject, status: str) -> Response:
    """``success_action_status``: 201 with a PostResponse body, 200, or 204 (the default)."""
    if status == "201":
        root = ET.Element("PostResponse")
        child(root, "Bucket", record.bucket)
        child(root, "Location", call.object_location(record.bucket, record.key))
        child(root, "Key", record.key)
        child(root, "ETag", quoted(record.etag))
        response = Response(xml(root), status=201, content_type="application/xml")
        response.headers["ETag"] = quoted(record.etag)
        response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
        return response
    return write_response(record, 200 if status == "200" else 204)


def post_object(backend: OssBackend, call: Call) -> Response:
    """PostObject: the form's signature and policy are its authentication."""
    bucket = call.bucket_name()
    info = backend.store.require_bucket(bucket)
    request = call.request
    fields = {k.lower(): v for k, v in request.form.items()}
    if fields.get("ossaccesskeyid") and not (backend.allow_v1 or info.v1_post_form):
        raise v1_signature_refused("PostObject form with OSSAccessKeyId/Signature")
    authorization = authorize_form(fields, backend.credentials, backend.clock, backend.region)
    if authorization.credential is None and info.acl != "public-read-write":
        raise access_denied("You have no right to access this object because of bucket acl.")
    writer, key = _form_upload(call)
    if authorization.policy is not None:
        checked = dict(fields, bucket=bucket, key=key)
        authorization.policy.check(backend.clock(), checked, writer.size)
    content_type, meta, kept = object_settings(
        (k, v) for k, v in request.form.items() if k.lower() != "content-type"
    )
    upload = request.files["file"]
    content_type = fields.get("content-type") or upload.mimetype or "application/octet-stream"
    record = backend.store.commit(
        bucket,
        key,
        writer,
        content_type=content_type,
        user_meta=meta,
        headers=kept,
        forbid_overwrite=forbid_overwrite(fields.get("x-oss-forbid-overwrite")),
    )
    backend.emit(record, POST_OBJECT, call.request_id)
    return _post_response(call, record, fields.get("success_action_status", "204"))


# -- multipart ----------------------------------------------------------------------------


def initiate_multipart_upload(backend: OssBackend, call: Call) -> Response:
    content_type, meta, kept = object_settings(call.request.headers.items())
    upload = backend.store.initiate_upload(
        call.bucket_name(),
        call.key,
        content_type=content_type or "application/octet-stream",
        user_meta=meta,
        headers=kept,
    )
    root = ET.Element("InitiateMultipartUploadResult")
    child(root, "Bucket", upload.bucket)
    child(root, "Key", call.encode(upload.key))
    child(root, "UploadId", upload.upload_id)
    if call.url_encoded:
        child(root, "EncodingType", "url")
    return xml_response(root)


def upload_part(backend: OssBackend, call: Call) -> Response:
    args = call.request.args
    upload = backend.store.upload(call.bucket_name(), call.key, args["uploadId"])
    raw_number = args["partNumber"]
    if not raw_number.isdigit() or not 1 <= int(raw_number) <= 10000:
        raise invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive.",
            "partNumber",
            raw_number,
        )
    writer = call.read_body()
    part = backend.store.put_part(upload, int(raw_number), writer)
    response = Response(b"")
    response.headers["ETag"] = quoted(part.etag)
    response.headers["x-oss-hash-crc64ecma"] = str(part.crc64)
    response.headers["Content-MD5"] = content_md5(part.md5_hex)
    return response


def list_parts(backend: OssBackend, call: Call) -> Response:
    args = call.request.args
    upload = backend.store.upload(call.bucket_name(), call.key, args["uploadId"])
    marker = int(args.get("part-number-marker", "0") or 0)
    max_parts = int(args.get("max-parts", "1000") or 1000)
    parts = [p for p in backend.store.list_parts(upload) if p.part_number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    root = ET.Element("ListPartsResult")
    child(root, "Bucket", upload.bucket)
    child(root, "Key", call.encode(upload.key))
    child(root, "UploadId", upload.upload_id)
    child(root, "PartNumberMarker", marker)
    child(root, "NextPartNumberMarker", page[-1].part_number if page else marker)
    child(root, "MaxParts", max_parts)
    child(root, "IsTruncated", "true" if truncated else "false")
    for part in page:
        node = child(root, "Part")
        child(node, "PartNumber", part.part_number)
        child(node, "LastModified", iso8601(part.last_modified))
        child(node, "ETag", quoted(part.etag))
        child(node, "HashCrc64ecma", part.crc64)
        child(node, "Size", part.size)
    return xml_response(root)


def _requested_parts(call: Call) -> list[tuple[int, str]] | None:
    """The parts a CompleteMultipartUpload body lists; None for ``x-oss-complete-all``."""
    body = call.small_body()
    if not body.strip() and (call.header("x-oss-complete-all") or "").lower() == "yes":
        return None
    requested = []
    for node in parse_xml(body).findall("Part"):
        number = (node.findtext("PartNumber") or "").strip()
        if not number.isdigit():
            raise invalid_argument("PartNumber must be an integer.", "PartNumber", number)
        requested.append((int(number), (node.findtext("ETag") or "").strip()))
    return requested


def complete_multipart_upload(backend: OssBackend, call: Call) -> Response:
    upload = backend.store.upload(call.bucket_name(), call.key, call.request.args["uploadId"])
    requested = _requested_parts(call)
    record = backend.store.complete_upload(
        upload, requested, forbid_overwrite=call.forbid_overwrite()
    )
    backend.emit(record, COMPLETE_MULTIPART_UPLOAD, call.request_id)
    root = ET.Element("CompleteMultipartUploadResult")
    if call.url_encoded:
        child(root, "EncodingType", "url")
    child(root, "Location", call.object_location(record.bucket, record.key))
    child(root, "Bucket", record.bucket)
    child(root, "Key", call.encode(record.key))
    child(root, "ETag", quoted(record.etag))
    response = xml_response(root)
    response.headers["ETag"] = quoted(record.etag)
    response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
    return response


def abort_multipart_upload(backend: OssBackend, call: Call) -> Response:
    upload = backend.store.upload(call.bucket_name(), call.key, call.request.args["uploadId"])
    backend.store.abort_upload(upload)
    return Response(b"", status=204)
