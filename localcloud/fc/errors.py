"""Error responses of the local FC's API, in the shapes the SDKs read.

FC 2.0 (aliyun-fc2): ``{"ErrorCode", "ErrorMessage"}``. FC 3.0 (the Tea SDK):
``{"Code", "Message", "RequestId"}``, assumed from that SDK's error handling (no public
FC 3.0 error sample was found). Both carry ``X-Fc-Request-Id`` when a request id is known.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Response


def fc_error(status: int, code: str, message: str, request_id: str = "") -> Response:
    """An FC 2.0 API error response."""
    resp = Response(
        json.dumps({"ErrorCode": code, "ErrorMessage": message}),
        status=status,
        content_type="application/json",
    )
    if request_id:
        resp.headers["X-Fc-Request-Id"] = request_id
    return resp


def fc3_error(status: int, code: str, message: str, request_id: str = "") -> Response:
    """An FC 3.0 API error response, in the shape the Tea SDK reads."""
    resp = Response(
        json.dumps({"Code": code, "Message": message, "RequestId": request_id}),
        status=status,
        content_type="application/json",
    )
    if request_id:
        resp.headers["X-Fc-Request-Id"] = request_id
    return resp
