"""The local IoT Platform's two error shapes, and the codes it uses.

- Gateway errors (signature, keys, STS token, clock skew, nonce reuse, throttling, unknown
  action or version): HTTP 4xx with JSON ``{RequestId, HostId, Code, Message, Recommend}``.
  The Tea SDK raises ``ClientException`` carrying ``code``; throttling raises
  ``ThrottlingException`` only when the stand-in is told to send ``x-acs-retry-after``.
- Business errors (every IoT rule): HTTP 200 with ``{RequestId, Success: false, Code,
  ErrorMessage}``. The SDK raises nothing; the caller must read ``body.success``. The real
  status of IoT business errors is unconfirmed; 200 is the harder case for a client, so the
  stand-in uses it.

Codes taken from the IoT error-code reference: ``iot.system.IllegalRequest``,
``iot.system.InstanceNotFound``, ``iot.common.InvalidPageParams``, ``iot.ota.FirmwareNotFound``.
Codes the docs do not name, chosen here and kept in :class:`IotCode`:
``iot.ota.FirmwareNameExisted``, ``iot.ota.FirmwareCountExceed``, ``iot.ota.FirmwareUrlInvalid``,
``iot.ota.FirmwareVerifyNotAllowed``. Clients should branch on them through these constants.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Response

HOST_ID = "iot.cn-shanghai.aliyuncs.com"


class IotCode:
    """Business error codes the stand-in returns (see the module docstring for provenance)."""

    ILLEGAL_REQUEST = "iot.system.IllegalRequest"
    INSTANCE_NOT_FOUND = "iot.system.InstanceNotFound"
    INVALID_PAGE_PARAMS = "iot.common.InvalidPageParams"
    FIRMWARE_NOT_FOUND = "iot.ota.FirmwareNotFound"
    FIRMWARE_NAME_EXISTED = "iot.ota.FirmwareNameExisted"
    FIRMWARE_COUNT_EXCEED = "iot.ota.FirmwareCountExceed"
    FIRMWARE_URL_INVALID = "iot.ota.FirmwareUrlInvalid"
    VERIFY_NOT_ALLOWED = "iot.ota.FirmwareVerifyNotAllowed"


class BusinessError(Exception):
    """An IoT rule refused the request: answered 200 with ``Success: false``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def json_response(status: int, request_id: str, payload: Mapping[str, Any]) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False),
        status=status,
        content_type="application/json;charset=utf-8",
        headers={"x-acs-request-id": request_id},
    )


def success_response(request_id: str, data: Mapping[str, Any]) -> Response:
    return json_response(200, request_id, {"RequestId": request_id, "Success": True, **data})


def business_error_response(request_id: str, error: BusinessError) -> Response:
    return json_response(
        200,
        request_id,
        {
            "RequestId": request_id,
            "Success": False,
            "Code": error.code,
            "ErrorMessage": error.message,
        },
    )


def gateway_error_response(request_id: str, status: int, code: str, message: str) -> Response:
    return json_response(
        status,
        request_id,
        {
            "RequestId": request_id,
            "HostId": HOST_ID,
            "Code": code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"
            f"&product=Iot&requestId={request_id}",
        },
    )


def throttled_response(
    request_id: str, status: int, wait_seconds: float, *, retry_after_header: bool
) -> Response:
    """``Throttling.User``; with ``retry_after_header`` also ``x-acs-retry-after`` (ms)."""
    response = gateway_error_response(
        request_id, status, "Throttling.User", "Request was denied due to user flow control."
    )
    if retry_after_header:
        response.headers["x-acs-retry-after"] = str(max(1, math.ceil(wait_seconds * 1000)))
    return response
