"""The IoT platform adapter, built on its first call.

Half of all invocations end ``waiting`` or ``rejected`` without one IoT call; building
the adapter (its module, the shared pacer) for them would be cold-start time spent for
nothing (docs/benchmarks.md, "cold start").
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ota_release.ports import (
    CreatedFirmware,
    FirmwareRequest,
    FirmwareSearch,
    OtaJob,
    OtaPlatform,
    UploadTicket,
)


class DeferredPlatform:
    """An :class:`~ota_release.ports.OtaPlatform` that builds the real one when first used."""

    def __init__(self, build: Callable[[], OtaPlatform]) -> None:
        self._build = build
        self._platform: OtaPlatform | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether a call has needed the platform yet."""
        return self._platform is not None

    def _get(self) -> OtaPlatform:
        with self._lock:
            if self._platform is None:
                self._platform = self._build()
            return self._platform

    def find_firmware(
        self,
        name: str,
        dest_version: str | None,
        product_key: str | None,
        iot_instance_id: str | None,
    ) -> FirmwareSearch:
        return self._get().find_firmware(name, dest_version, product_key, iot_instance_id)

    def create_firmware(self, request: FirmwareRequest) -> CreatedFirmware:
        return self._get().create_firmware(request)

    def generate_upload_url(self, file_suffix: str, iot_instance_id: str | None) -> UploadTicket:
        return self._get().generate_upload_url(file_suffix, iot_instance_id)

    def create_verify_job(
        self,
        firmware_id: str,
        product_key: str,
        devices: tuple[str, ...],
        timeout_minutes: int | None,
        iot_instance_id: str | None,
    ) -> tuple[str, str | None]:
        return self._get().create_verify_job(
            firmware_id, product_key, devices, timeout_minutes, iot_instance_id
        )

    def count_packages(self, iot_instance_id: str | None) -> int:
        return self._get().count_packages(iot_instance_id)

    def delete_firmware(self, firmware_id: str, iot_instance_id: str | None) -> str | None:
        return self._get().delete_firmware(firmware_id, iot_instance_id)

    def list_jobs(self, firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]:
        return self._get().list_jobs(firmware_id, iot_instance_id)
