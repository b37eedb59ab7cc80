"""In-memory fakes of the three ports (Storage, OtaPlatform, Notifier), for unit tests.

They behave like the services as far as the release logic can tell (ETag = uppercase MD5
for Normal objects, FirmwareName unique per account, a package quota) and record every
call. Faults are injected per operation as a queue of exceptions: each call of that
operation pops and raises the next one, and succeeds once the queue is empty.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from ota_release.adapters.staging import TicketedStaging
from ota_release.digest import CRC64_ECMA
from ota_release.errors import (
    DuplicateNameError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from ota_release.events import ObjectCreated
from ota_release.ports import (
    CreatedFirmware,
    FirmwareRequest,
    FirmwareSearch,
    KeyListing,
    ListedFile,
    ListedPackage,
    ObjectInfo,
    ObjectTooLarge,
    OtaJob,
    PublishReceipt,
    SmallObject,
    StagedCopy,
    UploadTicket,
)
from ota_release.timestamps import utc_millis

BUCKET = "firmware-bucket"
#: the verification job type as the SDK spells it (its wire value is unconfirmed)
VERIFY_JOB_TYPE = "VERFIY_FIRMWARE"
#: When the fake objects were stored, unless a test says otherwise.
UPLOADED_AT = datetime(2025, 11, 20, 3, 14, 7, tzinfo=timezone.utc)
#: When the fake platform creates packages: a minute after the upload.
PLATFORM_NOW = UPLOADED_AT + timedelta(minutes=1)


def transient(
    service: str = "oss",
    operation: str = "HeadObject",
    code: str = "InternalError",
    *,
    retry_after: float | None = None,
) -> TransientError:
    return TransientError(
        service, operation, code, "please retry", request_id="REQ-T", retry_after=retry_after
    )


def permanent(
    service: str = "iot", operation: str = "CreateOTAFirmware", code: str = "iot.x.Refused"
) -> PermanentError:
    return PermanentError(service, operation, code, "refused", request_id="REQ-P", status=400)


def not_found(
    service: str = "oss", operation: str = "GetObject", code: str = "NoSuchKey"
) -> NotFoundError:
    return NotFoundError(service, operation, code, "gone", status=404)


def precondition_failed(operation: str = "GetObject") -> PermanentError:
    return PermanentError(
        "oss", operation, "PreconditionFailed", "If-Match did not hold", status=412
    )


class FakeClock:
    """Seconds that pass only when a test (or the retry policy's sleep) says so."""

    def __init__(self) -> None:
        self.now = 0.0
        #: when each upload ticket was handed out, by ticket key
        self.issued: dict[str, float] = {}

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def crc64_of(data: bytes) -> int:
    """CRC-64/ECMA-182 as OSS reports it in x-oss-hash-crc64ecma."""
    import crcmod

    crc = crcmod.Crc(**CRC64_ECMA)
    crc.update(data)
    return int(crc.crcValue)


class _Faults:
    """Per-operation queues of exceptions to raise, and a log of calls."""

    def __init__(self) -> None:
        self.faults: dict[str, deque[BaseException]] = defaultdict(deque)
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def fail(self, operation: str, *errors: BaseException) -> None:
        """The next ``len(errors)`` calls of ``operation`` raise these, in order."""
        self.faults[operation].extend(errors)

    def _enter(self, operation: str, *args: Any) -> None:
        self.calls.append((operation, args))
        queue = self.faults.get(operation)
        if queue:
            raise queue.popleft()

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)


# Storage -------------------------------------------------------------------------------------


@dataclass
class FakeObject:
    data: bytes
    object_type: str = "Normal"
    last_modified: datetime = UPLOADED_AT
    etag: str | None = None  # None: derived from the data and object type
    crc64: int | None = None

    def info(self, bucket: str, key: str) -> ObjectInfo:
        etag = self.etag
        if etag is None:
            md5 = hashlib.md5(self.data).hexdigest().upper()  # noqa: S324 - OSS ETag
            etag = md5 if self.object_type == "Normal" else f"{md5[:28]}ABCD-3"
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=len(self.data),
            etag=etag,
            object_type=self.object_type,
            last_modified=self.last_modified,
            crc64=self.crc64,
            request_id=f"OSS-{key}",
        )


class FakeStream:
    """An object body that hands out ``chunk`` bytes at most per read and tracks closing."""

    def __init__(
        self, data: bytes, chunk: int | None = None, request_id: str | None = None
    ) -> None:
        self._data = data
        self._pos = 0
        self._chunk = chunk
        self.closed = False
        self.reads = 0
        self.request_id = request_id

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed stream")
        self.reads += 1
        end = len(self._data) if size is None or size < 0 else self._pos + size
        if self._chunk is not None:
            end = min(end, self._pos + self._chunk)
        out = self._data[self._pos : end]
        self._pos += len(out)
        return out

    def close(self) -> None:
        self.closed = True


@dataclass
class StagedUpload:
    ticket: UploadTicket
    data: bytes
    size: int
    filename: str


class FakeStorage(_Faults):
    """The watched bucket plus the IoT staging host, in a dict.

    Operations for :meth:`fail`: ``head``, ``read_small``, ``open_stream``, ``object_url``,
    ``post_object``, ``put_outcome``.
    """

    def __init__(self, clock: FakeClock | None = None) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str], FakeObject] = {}
        self.staged: dict[str, StagedUpload] = {}
        self.streams: list[FakeStream] = []
        #: buckets that do not exist: every call naming one raises NoSuchBucket
        self.missing_buckets: set[str] = set()
        self.clock = clock or FakeClock()
        #: called with each chunk as it is staged (a test can change the object meanwhile)
        self.during_copy: Any = None
        #: every outcome object written, in order: (key, body)
        self.outcome_writes: list[tuple[str, bytes]] = []
        self.before_outcome: Any = None

    def put(
        self,
        key: str,
        data: bytes,
        *,
        bucket: str = BUCKET,
        object_type: str = "Normal",
        last_modified: datetime = UPLOADED_AT,
        etag: str | None = None,
        crc64: int | bool | None = None,
    ) -> ObjectInfo:
        """Store an object; ``crc64=True`` computes the CRC OSS would report."""
        crc = crc64_of(data) if crc64 is True else (crc64 or None)
        stored = FakeObject(data, object_type, last_modified, etag, crc)
        self.objects[(bucket, key)] = stored
        return stored.info(bucket, key)

    def delete(self, key: str, *, bucket: str = BUCKET) -> None:
        del self.objects[(bucket, key)]

    def touch(self, key: str, when: datetime, *, bucket: str = BUCKET) -> None:
        self.objects[(bucket, key)] = replace(self.objects[(bucket, key)], last_modified=when)

    # The port ---------------------------------------------------------------------------

    def _bucket_exists(self, bucket: str, operation: str) -> None:
        if bucket in self.missing_buckets:
            raise not_found("oss", operation, "NoSuchBucket")

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        self._enter("head", bucket, key)
        self._bucket_exists(bucket, "HeadObject")
        stored = self.objects.get((bucket, key))
        return stored.info(bucket, key) if stored else None

    def read_small(self, bucket: str, key: str, limit: int) -> SmallObject:
        self._enter("read_small", bucket, key, limit)
        self._bucket_exists(bucket, "GetObject")
        stored = self.objects.get((bucket, key))
        if stored is None:
            raise not_found()
        if len(stored.data) > limit:
            raise ObjectTooLarge(key, limit)
        return SmallObject(stored.data, f"OSS-GET-{key}")

    def list_keys(self, bucket: str, prefix: str, limit: int) -> KeyListing:
        """ListObjectsV2 in key order, at most ``limit`` keys."""
        self._enter("list_keys", bucket, prefix, limit)
        self._bucket_exists(bucket, "ListObjects")
        keys = sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))
        etags = {k: self.objects[(bucket, k)].info(bucket, k).etag for k in keys[:limit]}
        return KeyListing(etags, len(keys) > limit, f"OSS-LIST-{prefix}")

    def put_outcome(self, bucket: str, key: str, body: bytes) -> str | None:
        """OutcomeStore: a PutObject into the same bucket (``put_outcome`` for :meth:`fail`).

        ``before_outcome``, when set, is called with the key first (a test can let another
        event run at that moment).
        """
        if self.before_outcome is not None:
            self.before_outcome(key)
        self._enter("put_outcome", bucket, key)
        self._bucket_exists(bucket, "PutObject")
        self.objects[(bucket, key)] = FakeObject(body)
        self.outcome_writes.append((key, body))
        return f"OSS-PUT-{len(self.outcome_writes)}"

    def outcome(self, key: str, *, bucket: str = BUCKET) -> Any:
        """The outcome document stored at ``key``, or None."""
        stored = self.objects.get((bucket, key))
        return json.loads(stored.data) if stored else None

    def open_stream(self, bucket: str, key: str, if_match: str | None = None) -> FakeStream:
        self._enter("open_stream", bucket, key, if_match)
        self._bucket_exists(bucket, "GetObject")
        stored = self.objects.get((bucket, key))
        if stored is None:
            raise not_found()
        if if_match is not None and stored.info(bucket, key).etag != if_match:
            raise precondition_failed()
        stream = FakeStream(stored.data, request_id=f"OSS-STREAM-{len(self.streams) + 1}")
        self.streams.append(stream)
        return stream

    def object_url(self, bucket: str, key: str, ttl: int) -> str:
        self._enter("object_url", bucket, key, ttl)
        url = f"https://{bucket}.oss-cn-shanghai.aliyuncs.com/{quote(key)}"
        if ttl > 0:
            url += f"?OSSAccessKeyId=AK&Expires={ttl}&Signature=fake"
        return url

    def stage_copy(
        self, source: ObjectInfo, ticket: UploadTicket, filename: str, observe: Any
    ) -> StagedCopy:
        """GET pinned to ``source.etag``, each chunk observed, then a PostObject.

        A ticket older than its validity is refused as OSS refuses an expired policy, and
        as the adapter reports it (transient: a retry stages with a fresh ticket).
        """
        self._enter("stage_copy", source.key, ticket.key, filename)
        if self.clock() - self.clock.issued.get(ticket.key, 0.0) > UPLOAD_TICKET_SECONDS:
            raise TransientError(
                "oss",
                "PostObject",
                "PolicyExpired",
                "Invalid according to Policy: Policy expired.",
                status=403,
            )
        body = self.open_stream(source.bucket, source.key, if_match=source.etag)
        parts = []
        while chunk := body.read(64 * 1024):
            if self.during_copy is not None:
                self.during_copy(chunk)
            observe(chunk)
            parts.append(chunk)
        body.close()
        data = b"".join(parts)
        if len(data) != source.size:
            raise TransientError("oss", "PostObject", "IntegrityError", "short source")
        self.staged[ticket.key] = StagedUpload(ticket, data, len(data), filename)
        return StagedCopy(body.request_id, f"OSS-POST-{len(self.staged)}")


#: GenerateOTAUploadURL's form is valid this long (docs/fidelity.md, IoT section).
UPLOAD_TICKET_SECONDS = 60.0


# OtaPlatform ---------------------------------------------------------------------------------


class FakeOtaPlatform(_Faults):
    """IoT Platform's OTA packages: unique names, a quota, filtered listing.

    Operations for :meth:`fail`: ``find_firmware``, ``create_firmware``,
    ``generate_upload_url``, ``list_jobs``, ``count_packages``, ``delete_firmware``.
    """

    def __init__(
        self, *, quota: int = 500, now: datetime = PLATFORM_NOW, clock: FakeClock | None = None
    ) -> None:
        super().__init__()
        self.clock = clock or FakeClock()
        #: called before each upload ticket is handed out (a test can race it)
        self.before_ticket: Any = None
        self.firmware: list[ListedPackage] = []
        self.created_params: list[dict[str, Any]] = []
        self.tickets: list[UploadTicket] = []
        self.quota = quota
        self.now = now
        self._ids = itertools.count(1)
        #: jobs by firmware id, oldest first (``add_job``)
        self.jobs: dict[str, list[OtaJob]] = defaultdict(list)
        #: every verification started: (firmware id, product key, devices, timeout)
        self.verify_jobs: list[tuple[str, str, tuple[str, ...], int | None]] = []

    def add(self, **fields: Any) -> ListedPackage:
        """Register a package directly (as if created earlier by someone else)."""
        fields.setdefault("firmware_id", f"fw-existing-{next(self._ids)}")
        fields.setdefault("utc_create", "2025-01-01T00:00:00.000Z")
        fields.setdefault("udi", "")  # the platform adapter asks QueryOTAFirmware for it
        record = ListedPackage(**fields)
        self.firmware.append(record)
        return record

    def add_job(
        self,
        firmware_id: str,
        job_status: str = "IN_PROGRESS",
        job_type: str = "UPGRADE_FIRMWARE",
    ) -> OtaJob:
        """Record a job on a package (an upgrade batch unless ``job_type`` says otherwise)."""
        job = OtaJob(
            job_id=f"job-{next(self._ids)}",
            job_type=job_type,
            job_status=job_status,
            utc_create=self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        )
        self.jobs[firmware_id].append(job)
        return job

    def create_verify_job(
        self,
        firmware_id: str,
        product_key: str,
        devices: tuple[str, ...],
        timeout_minutes: int | None,
        iot_instance_id: str | None,
    ) -> tuple[str, str | None]:
        """A verification job on a package that needs one and has none running or passed."""
        self._enter(
            "create_verify_job", firmware_id, product_key, devices, timeout_minutes, iot_instance_id
        )
        package = next((r for r in self.firmware if r.firmware_id == firmware_id), None)
        if package is None:
            raise NotFoundError(
                "iot", "CreateOTAVerifyJob", "iot.ota.FirmwareNotFound", "no such package"
            )
        if package.status not in (0, 3):
            raise PermanentError(
                "iot",
                "CreateOTAVerifyJob",
                "iot.ota.FirmwareVerifyNotAllowed",
                f"package status {package.status}",
            )
        job = self.add_job(firmware_id, "IN_PROGRESS", VERIFY_JOB_TYPE)
        self.firmware[self.firmware.index(package)] = replace(package, status=2)
        self.verify_jobs.append((firmware_id, product_key, devices, timeout_minutes))
        return job.job_id, f"IOT-VERIFY-{len(self.verify_jobs)}"

    def list_packages(
        self, product_key: str | None, iot_instance_id: str | None
    ) -> list[ListedPackage]:
        """Every package (of ``product_key`` when given), newest first, as one listing."""
        self._enter("list_packages", product_key, iot_instance_id)
        return [
            r
            for r in reversed(self.firmware)
            if product_key is None or r.product_key == product_key
        ]

    def count_packages(self, iot_instance_id: str | None) -> int:
        """Every package held (ListOTAFirmware's Total, unfiltered)."""
        self._enter("count_packages", iot_instance_id)
        return len(self.firmware)

    def delete_firmware(self, firmware_id: str, iot_instance_id: str | None) -> str | None:
        """Drop a package (and its jobs); an unknown one is NotFoundError."""
        self._enter("delete_firmware", firmware_id, iot_instance_id)
        kept = [r for r in self.firmware if r.firmware_id != firmware_id]
        if len(kept) == len(self.firmware):
            raise NotFoundError(
                "iot", "DeleteOTAFirmware", "iot.ota.FirmwareNotFound", "no such package"
            )
        self.firmware = kept
        self.jobs.pop(firmware_id, None)
        return f"IOT-DELETE-{self.count('delete_firmware')}"

    def list_jobs(self, firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]:
        """The package's jobs, newest first; an unknown package is NotFoundError."""
        self._enter("list_jobs", firmware_id, iot_instance_id)
        if not any(r.firmware_id == firmware_id for r in self.firmware):
            raise NotFoundError(
                "iot", "ListOTAJobByFirmware", "iot.ota.FirmwareNotFound", "no such package"
            )
        return list(reversed(self.jobs.get(firmware_id, [])))

    def find_firmware(
        self,
        name: str,
        dest_version: str | None,
        product_key: str | None,
        iot_instance_id: str | None,
    ) -> FirmwareSearch:
        """One listing call (and a query of the package found), each with its request id."""
        self._enter("find_firmware", name, dest_version, product_key, iot_instance_id)
        number = self.count("find_firmware")
        listed = f"IOT-LIST-{number}"
        for record in self.firmware:
            if record.name != name:
                continue
            if dest_version is not None and record.dest_version != dest_version:
                continue
            if product_key is not None and record.product_key != product_key:
                continue
            return FirmwareSearch(record, (listed, f"IOT-QUERY-{number}"))
        return FirmwareSearch(None, (listed,))

    def create_firmware(self, request: FirmwareRequest) -> CreatedFirmware:
        params = request.api_params()  # recorded by API name, as the service would see it
        self._enter("create_firmware", params)
        self.created_params.append(params)
        if any(r.name == params["FirmwareName"] for r in self.firmware):
            raise DuplicateNameError(
                "iot", "CreateOTAFirmware", "iot.ota.FirmwareNameExisted", "name taken"
            )
        if len(self.firmware) >= self.quota:
            raise PermanentError(
                "iot", "CreateOTAFirmware", "iot.ota.FirmwareCountExceeded", "500 packages"
            )
        number = next(self._ids)
        utc_create = self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        record = ListedPackage(
            firmware_id=f"fw-{number:04d}",
            name=params["FirmwareName"],
            dest_version=params["DestVersion"],
            sign_method=params.get("SignMethod", "MD5"),
            sign=str(params.get("FirmwareSign", "")).lower() or None,
            size=params.get("FirmwareSize"),
            module=params.get("ModuleName", "default"),
            product_key=params.get("ProductKey"),
            src_version=params.get("SrcVersion"),
            type=int(params.get("Type", 0)),
            utc_create=utc_create,
            status=0 if params.get("NeedToVerify", True) else -1,
            description=params.get("FirmwareDesc"),
            udi=params.get("Udi", ""),
            files=_listed_files(params.get("MultiFiles")),
        )
        self.firmware.append(record)
        return CreatedFirmware(record.firmware_id, utc_create, f"IOT-CREATE-{number}")

    def generate_upload_url(self, file_suffix: str, iot_instance_id: str | None) -> UploadTicket:
        self._enter("generate_upload_url", file_suffix, iot_instance_id)
        if self.before_ticket is not None:
            self.before_ticket()
        number = len(self.tickets) + 1
        key = f"ota/product/{number:04d}.{file_suffix}"
        ticket = UploadTicket(
            firmware_url=f"https://iotx-ota.oss-cn-shanghai.aliyuncs.com/{key}",
            host="https://iotx-ota.oss-cn-shanghai.aliyuncs.com",
            key=key,
            access_key_id="STS.upload",
            policy="cG9saWN5",
            signature="c2lnbmF0dXJl",
            request_id=f"IOT-UPLOAD-{number}",
        )
        self.clock.issued[ticket.key] = self.clock()
        self.tickets.append(ticket)
        return ticket


def _listed_files(entries: list[dict[str, Any]] | None) -> tuple[ListedFile, ...] | None:
    """A created package's MultiFiles as QueryOTAFirmware would report them."""
    if entries is None:
        return None
    return tuple(ListedFile(e["Name"], e.get("Size"), e.get("SignValue")) for e in entries)


# Notifier ------------------------------------------------------------------------------------


class FakeNotifier(_Faults):
    """The MNS topic: keeps every published (body, tag). Operation for :meth:`fail`: ``publish``."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, str]] = []
        #: every (body, tag) offered, including those whose publish failed
        self.attempts: list[tuple[str, str]] = []

    def publish(self, body: str, tag: str) -> PublishReceipt:
        self.attempts.append((body, tag))
        self._enter("publish", tag)
        self.messages.append((body, tag))
        return PublishReceipt(f"MNS-{len(self.messages)}", f"MNS-REQ-{len(self.messages)}")


@dataclass
class Ports:
    """The fakes together, as a pipeline or ``function.handle`` takes them.

    ``staging`` is the product's own composition over the two fakes, so a fault queued on
    ``generate_upload_url`` or ``stage_copy`` fails the staging as it would in production.
    """

    clock: FakeClock = field(default_factory=FakeClock)
    store: FakeStorage = field(init=False)
    platform: FakeOtaPlatform = field(init=False)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    staging: TicketedStaging = field(init=False)

    def __post_init__(self) -> None:
        self.store = FakeStorage(self.clock)
        self.platform = FakeOtaPlatform(clock=self.clock)
        self.staging = TicketedStaging(self.platform, self.store)


# Events --------------------------------------------------------------------------------------


def object_created(
    key: str,
    *,
    bucket: str = BUCKET,
    size: int | None = None,
    etag: str | None = None,
    event_name: str = "ObjectCreated:PutObject",
    request_id: str | None = "691E84B3A2F5C10D3E7B9A42",
    event_time: datetime | None = UPLOADED_AT,
) -> ObjectCreated:
    """The record ``ota_release.events`` would produce for an upload of ``key``."""
    when = utc_millis(event_time) if event_time else None
    return ObjectCreated(
        bucket=bucket,
        key=key,
        size=size,
        etag=etag,
        event_name=event_name,
        region="cn-shanghai",
        event_time=when,
        oss_request_id=request_id,
        source="oss",
    )


def oss_trigger_event(
    keys: Iterable[str],
    *,
    bucket: str = BUCKET,
    event_name: str = "ObjectCreated:PutObject",
    etags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A native OSS trigger event (``{"events": [...]}``) with one record per key.

    ``etags`` gives a key's ``eTag``; without one the record has none (the function then
    judges the object as it is when it runs).
    """
    etags = etags or {}
    return {
        "events": [
            {
                "eventName": event_name,
                "eventSource": "acs:oss",
                "eventTime": "2025-11-20T03:14:07.000Z",
                "region": "cn-shanghai",
                "oss": {
                    "bucket": {"name": bucket, "arn": f"acs:oss:cn-shanghai:1:{bucket}"},
                    "object": {"key": key, "size": 1}
                    | ({"eTag": etags[key]} if key in etags else {}),
                },
                "responseElements": {"requestId": "691E84B3A2F5C10D3E7B9A42"},
            }
            for key in keys
        ]
    }
