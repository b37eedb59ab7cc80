"""The MNS 2015-06-06 wire constants and the response envelopes every answer uses."""

from __future__ import annotations

from werkzeug.wrappers import Response

MNS_VERSION = "2015-06-06"
MNS_XMLNS = "http://mns.aliyuncs.com/doc/v1/"


def headers(request_id: str) -> dict[str, str]:
    return {"x-mns-request-id": request_id, "x-mns-version": MNS_VERSION}


def xml_response(status: int, request_id: str, document: str) -> Response:
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>' + document,
        status=status,
        content_type="text/xml;charset=utf-8",
        headers=headers(request_id),
    )


def empty_response(status: int, request_id: str) -> Response:
    return Response(b"", status=status, headers=headers(request_id))
