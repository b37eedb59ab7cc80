"""Read-only IoT Platform OTA queries the ``status`` command needs.

``IotOtaPlatform`` already lists packages by name (``find_firmware``) for the function;
QueryOTAFirmware, which the function never calls, is added here on top of the same
client, error classification and Success=false handling.
"""

from __future__ import annotations

from typing import Any

from ota_release.adapters.iot import IotOtaPlatform

#: QueryOTAFirmware's Status values, in words.
STATUS_WORDS = {
    -1: "no verification needed",
    0: "unverified",
    1: "verified",
    2: "verifying",
    3: "verification failed",
}
TYPE_WORDS = {0: "full", 1: "differential"}


def status_words(status: Any) -> str:
    try:
        return STATUS_WORDS.get(int(status), f"unknown status {status}")
    except (TypeError, ValueError):
        return "unknown"


class FirmwareInspector(IotOtaPlatform):
    """IotOtaPlatform plus QueryOTAFirmware."""

    def query_firmware(self, firmware_id: str, iot_instance_id: str | None) -> dict[str, Any]:
        """QueryOTAFirmware's FirmwareInfo, keyed by the API's field names.

        Raises :class:`~ota_release.errors.NotFoundError` for an unknown id (code
        ``iot.ota.FirmwareNotFound``) and other ``PlatformError`` subclasses otherwise.
        """
        body = self._invoke(
            "QueryOTAFirmware",
            lambda client, models: client.query_otafirmware(
                models.QueryOTAFirmwareRequest(
                    firmware_id=firmware_id, iot_instance_id=iot_instance_id
                )
            ),
        )
        info = body.firmware_info
        return dict(info.to_map()) if info is not None else {}
