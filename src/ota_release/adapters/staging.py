"""Staging a package (``ports.PackageStaging``) by composing the IoT and OSS adapters."""

from __future__ import annotations

from collections.abc import Callable

from ota_release.ports import ObjectInfo, OtaPlatform, StagedPackage, Storage


class TicketedStaging:
    """GenerateOTAUploadURL on the platform, then ``stage_copy`` on the storage into it.

    The retry stays with the pipeline (one retry policy, deadline and back-off for every
    call, and a fresh hasher per attempt): each retried :meth:`stage` asks for a new
    ticket, which is what keeps every attempt's policy unexpired.
    """

    def __init__(self, platform: OtaPlatform, storage: Storage) -> None:
        self.platform = platform
        self.storage = storage

    def stage(
        self,
        source: ObjectInfo,
        file_suffix: str,
        iot_instance_id: str | None,
        observe: Callable[[bytes], None],
        request_id: Callable[[str, str | None], None],
    ) -> StagedPackage:
        ticket = self.platform.generate_upload_url(file_suffix, iot_instance_id)
        request_id("iot", ticket.request_id)
        filename = source.key.rsplit("/", 1)[-1]
        copy = self.storage.stage_copy(source, ticket, filename, observe)
        request_id("oss", copy.read_request_id)
        request_id("oss", copy.post_request_id)
        return StagedPackage(str(ticket.firmware_url))
