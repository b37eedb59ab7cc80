"""OSS's wire pieces every handler shares: the XML envelope, quoted ETags, times, headers."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from werkzeug.http import http_date
from werkzeug.wrappers import Response

from localcloud.oss.errors import OssError
from localcloud.oss.events import event_time
from localcloud.oss.storage import StoredObject

_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def iso8601(ts: float) -> str:
    """OSS XML times are whole seconds written as ``.000Z``; oss2's parser insists on it."""
    return event_time(int(ts))


def quoted(etag: str) -> str:
    return f'"{etag}"'


def xml(root: ET.Element) -> bytes:
    return _XML_DECLARATION + ET.tostring(root, encoding="utf-8")


def xml_response(root: ET.Element) -> Response:
    return Response(xml(root), content_type="application/xml")


def child(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def parse_xml(data: bytes) -> ET.Element:
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


def owner(parent: ET.Element, account_id: str) -> None:
    node = child(parent, "Owner")
    child(node, "ID", account_id)
    child(node, "DisplayName", account_id)


def content_md5(md5_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()


def object_headers(record: StoredObject) -> dict[str, str]:
    """The headers GetObject and HeadObject answer with, before Content-Type and ranges."""
    headers = {
        "ETag": quoted(record.etag),
        "Last-Modified": http_date(record.last_modified),
        "x-oss-object-type": record.object_type,
        "x-oss-hash-crc64ecma": str(record.crc64),
        "x-oss-storage-class": "Standard",
        "Accept-Ranges": "bytes",
    }
    if record.object_type == "Normal":
        headers["Content-MD5"] = content_md5(record.md5_hex)
    headers.update(record.headers)
    for name, value in record.user_meta.items():
        headers[f"x-oss-meta-{name}"] = value
    return headers


def write_response(record: StoredObject, status: int = 200) -> Response:
    """What PutObject (and PostObject without a 201) answer: ETag, CRC-64, Content-MD5."""
    response = Response(b"", status=status)
    response.headers["ETag"] = quoted(record.etag)
    response.headers["x-oss-hash-crc64ecma"] = str(record.crc64)
    if record.object_type == "Normal":
        response.headers["Content-MD5"] = content_md5(record.md5_hex)
    return response


def head_response(status: int, headers: dict[str, str]) -> Response:
    """A bodiless response that still reports the object's length, as HEAD must."""
    response = Response(status=status)
    response.headers.update(headers)
    return response
