"""The ports the release logic talks to, and the values that cross them.

Domain modules depend on these protocols only; ``ota_release.adapters`` implements them
with the cloud SDKs, and the unit tests with in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ota_release.firmware_request import FirmwareRequest, MultiFile

__all__ = [
    "ByteSource",
    "CreatedFirmware",
    "FirmwareRequest",
    "FirmwareSearch",
    "KeyListing",
    "ListedFile",
    "ListedPackage",
    "MultiFile",
    "Notifier",
    "ObjectInfo",
    "ObjectStream",
    "ObjectTooLarge",
    "OtaJob",
    "OtaPlatform",
    "OutcomeStore",
    "PackageStaging",
    "PublishReceipt",
    "SmallObject",
    "StagedCopy",
    "StagedPackage",
    "Storage",
    "UploadTicket",
]


class ObjectTooLarge(ValueError):
    """An object holds more bytes than the reader asked to take (``Storage.read_small``)."""

    def __init__(self, key: str, limit: int) -> None:
        super().__init__(f"{key} is larger than {limit} bytes")
        self.key = key
        self.limit = limit


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD of an OSS object tells."""

    bucket: str
    key: str
    size: int
    etag: str  # without quotes, as OSS reports it
    object_type: str = "Normal"  # Normal | Multipart | Appendable
    last_modified: datetime | None = None
    crc64: int | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class SmallObject:
    """A small object's bytes (``Storage.read_small``) and the GetObject that read them."""

    data: bytes
    request_id: str | None = None


@dataclass(frozen=True)
class KeyListing:
    """ListObjectsV2's answer: each object's key and ETag (unquoted), in key order."""

    etags: dict[str, str]
    #: more objects start with the prefix than were asked for
    truncated: bool = False
    request_id: str | None = None


@dataclass(frozen=True)
class StagedCopy:
    """The request ids of ``Storage.stage_copy``'s pinned GetObject and its PostObject."""

    read_request_id: str | None = None
    post_request_id: str | None = None


class ByteSource(Protocol):
    """Anything readable and closable: an object body, a local file."""

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


class ObjectStream(ByteSource, Protocol):
    """An object body, and the id of the GetObject that opened it."""

    @property
    def request_id(self) -> str | None: ...


@dataclass(frozen=True)
class UploadTicket:
    """GenerateOTAUploadURL's answer: where and how to PostObject a package file."""

    firmware_url: str
    host: str
    key: str
    access_key_id: str
    policy: str
    signature: str
    request_id: str | None = None


class Storage(Protocol):
    """The watched bucket (read only) and the staged upload target."""

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's metadata, or None when it does not exist."""
        ...

    def read_small(self, bucket: str, key: str, limit: int) -> SmallObject:
        """Read an object of at most ``limit`` bytes (a larger one raises ObjectTooLarge)."""
        ...

    def list_keys(self, bucket: str, prefix: str, limit: int) -> KeyListing:
        """The first ``limit`` objects whose keys start with ``prefix``, with their ETags."""
        ...

    def open_stream(self, bucket: str, key: str, if_match: str | None = None) -> ObjectStream:
        """Open the object's body for streaming reads.

        With ``if_match`` (an ETag, unquoted) the read is pinned to that version: an object
        that has been overwritten since raises PermanentError ``PreconditionFailed`` (412).
        """
        ...

    def object_url(self, bucket: str, key: str, ttl: int) -> str:
        """The object's public URL, signed for ``ttl`` seconds when ``ttl`` > 0."""
        ...

    def stage_copy(
        self,
        source: ObjectInfo,
        ticket: UploadTicket,
        filename: str,
        observe: Callable[[bytes], None],
    ) -> StagedCopy:
        """Copy ``source`` to ``ticket.host`` (PostObject) in one read, pinned to its ETag.

        The object is read once (GetObject with ``If-Match: source.etag``) and each chunk is
        handed to ``observe`` in order before it is sent, so the caller can hash exactly the
        bytes that were staged. An object changed since ``source`` was taken raises
        PermanentError ``PreconditionFailed``; fewer or more bytes than ``source.size`` raise
        TransientError ``IntegrityError`` and nothing valid is staged. Returns the two
        calls' request ids.
        """
        ...


@dataclass(frozen=True)
class ListedFile:
    """One file of a multi-file package, as QueryOTAFirmware reports its MultiFiles."""

    name: str
    size: int | None = None
    sign: str | None = None  # SignValue


@dataclass(frozen=True)
class ListedPackage:
    """A firmware package that already exists, as IoT Platform lists (and queries) it."""

    firmware_id: str
    name: str
    dest_version: str
    sign_method: str | None = None
    sign: str | None = None
    size: int | None = None
    module: str | None = None
    product_key: str | None = None
    src_version: str | None = None
    type: int | None = None
    utc_create: str | None = None
    status: int | None = None
    #: FirmwareDesc; None when the platform did not report it.
    description: str | None = None
    #: Udi as QueryOTAFirmware reports it ("" for none); None when not asked for.
    udi: str | None = None
    #: a multi-file package's files (QueryOTAFirmware's MultiFiles); None for a one-file
    #: package, or when not asked for
    files: tuple[ListedFile, ...] | None = None

    @property
    def need_to_verify(self) -> bool | None:
        """NeedToVerify as created, read from Status (-1: no verification needed)."""
        if self.status is None:
            return None
        return self.status != -1


@dataclass(frozen=True)
class FirmwareSearch:
    """What ``find_firmware`` learnt, and the request ids of every call that told it."""

    package: ListedPackage | None
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CreatedFirmware:
    """CreateOTAFirmware's answer."""

    firmware_id: str
    utc_create: str | None
    request_id: str | None


#: JobStatus values after which a job no longer uses its package. The API reference and
#: the SDK's QueryOTAJob comment say COMPLETED, the SDK's ListOTAJobByFirmware comment
#: COMPLETE: both count. Anything else (PLANNED, IN_PROGRESS, a value no source lists)
#: counts as in use, so an unknown status never lets a package be deleted.
FINISHED_JOB_STATUSES = frozenset({"COMPLETED", "COMPLETE", "CANCELED"})


@dataclass(frozen=True)
class OtaJob:
    """One job (update batch) on a package, as ListOTAJobByFirmware lists it.

    ``job_type`` is UPGRADE_FIRMWARE for an upgrade batch; a verification's wire value is
    unconfirmed (the SDK spells it VERFIY_FIRMWARE), so read it as "not UPGRADE_FIRMWARE".
    """

    job_id: str
    job_type: str | None
    job_status: str | None
    utc_create: str | None = None
    utc_modified: str | None = None
    target_selection: str | None = None

    @property
    def finished(self) -> bool:
        return self.job_status in FINISHED_JOB_STATUSES

    @property
    def in_use(self) -> bool:
        """The job may still need its package (any status but a finished one)."""
        return not self.finished

    @property
    def is_upgrade(self) -> bool:
        return self.job_type == "UPGRADE_FIRMWARE"


class OtaPlatform(Protocol):
    """IoT Platform's OTA package operations."""

    def find_firmware(
        self,
        name: str,
        dest_version: str | None,
        product_key: str | None,
        iot_instance_id: str | None,
    ) -> FirmwareSearch:
        """The existing package called ``name``, if any, searched through every page.

        ``dest_version``/``product_key`` narrow the listing; None searches all packages.
        """
        ...

    def create_firmware(self, request: FirmwareRequest) -> CreatedFirmware:
        """CreateOTAFirmware."""
        ...

    def generate_upload_url(self, file_suffix: str, iot_instance_id: str | None) -> UploadTicket:
        """GenerateOTAUploadURL."""
        ...

    def create_verify_job(
        self,
        firmware_id: str,
        product_key: str,
        devices: tuple[str, ...],
        timeout_minutes: int | None,
        iot_instance_id: str | None,
    ) -> tuple[str, str | None]:
        """CreateOTAVerifyJob on ``devices`` of ``product_key``; the JobId and request id."""
        ...

    def count_packages(self, iot_instance_id: str | None) -> int:
        """How many packages the account (or the named instance) holds, of every product.

        ListOTAFirmware's Total, asked for one entry and no filter.
        """
        ...

    def delete_firmware(self, firmware_id: str, iot_instance_id: str | None) -> str | None:
        """DeleteOTAFirmware; returns the call's request id.

        Raises :class:`~ota_release.errors.NotFoundError` for an unknown package.
        """
        ...

    def list_jobs(self, firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]:
        """Every job on the package (ListOTAJobByFirmware, all pages), newest first.

        Raises :class:`~ota_release.errors.NotFoundError` for an unknown package.
        """
        ...


@dataclass(frozen=True)
class PublishReceipt:
    message_id: str
    request_id: str | None = None


class Notifier(Protocol):
    """The MNS topic that hears every outcome."""

    def publish(self, body: str, tag: str) -> PublishReceipt: ...


@dataclass(frozen=True)
class StagedPackage:
    """Where ``PackageStaging.stage`` put the package: the FirmwareUrl IoT Platform fetches."""

    firmware_url: str


class PackageStaging(Protocol):
    """Staging a package where IoT Platform will fetch it: one operation for the pipeline.

    It spans two services (GenerateOTAUploadURL's ticket, then the pinned PostObject copy
    into it); ``adapters.staging.TicketedStaging`` composes the two ports for it.
    """

    def stage(
        self,
        source: ObjectInfo,
        file_suffix: str,
        iot_instance_id: str | None,
        observe: Callable[[bytes], None],
        request_id: Callable[[str, str | None], None],
    ) -> StagedPackage:
        """Ask for a fresh upload ticket for ``file_suffix`` and copy ``source`` into it.

        Every call asks for its own ticket (its form is valid for 60 seconds), so a stage
        retried after a slow or failed attempt never posts an expired policy. The copy is
        ``Storage.stage_copy``'s: one read pinned to ``source.etag``, each chunk handed to
        ``observe`` before it is sent, with its errors. ``request_id(service, id)`` hears
        each call's request id (``"iot"``, ``"oss"``) as soon as the call answers, so a
        failed attempt's calls are still accounted for.
        """
        ...


class OutcomeStore(Protocol):
    """Where the function leaves each release's outcome document for its uploader."""

    def put_outcome(self, bucket: str, key: str, body: bytes) -> str | None:
        """PutObject ``body`` (a JSON document) at ``key``, replacing what is there.

        Returns the call's request id. The key lies under OTA_RESULTS_PREFIX, the only
        place the function's role may write (deploy/ram-policy.*.json).
        """
        ...
