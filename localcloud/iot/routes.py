"""The IoT actions the stand-in answers (API 2018-01-20), each mapped to its handler.

Every IoT call is ``POST /`` or ``GET /`` with the action in a parameter, so the route
table is keyed by action; adding an action is one handler in
:mod:`localcloud.iot.responses` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import localcloud.iot.responses as responses
from localcloud.iot.backend import IotBackend

API_VERSION = "2018-01-20"

Handler = Callable[[IotBackend, Mapping[str, str]], dict[str, Any]]

ACTIONS: Mapping[str, Handler] = {
    "GenerateOTAUploadURL": responses.generate_upload_url,
    "CreateOTAFirmware": responses.create_firmware,
    "ListOTAFirmware": responses.list_firmware,
    "QueryOTAFirmware": responses.query_firmware,
    "DeleteOTAFirmware": responses.delete_firmware,
    "CreateOTAVerifyJob": responses.create_verify_job,
    "ListOTAJobByFirmware": responses.list_jobs_by_firmware,
}
