"""The IoT account's OTA state, and the Python API tests and the demo use to read it.

The backend knows nothing of HTTP: :mod:`localcloud.iot.responses` turns request parameters
into calls here and results into response bodies. IoT rules that need the stored packages
(name taken, quota, URL naming no object, status transitions) are checked here and raise
:class:`~localcloud.iot.errors.BusinessError`.

Multi-file packages (MultiFiles) are stored with their files; each file's Url must name a
stored object, as FirmwareUrl must. Simplifications, on purpose: uploads made through
GenerateOTAUploadURL are not cleaned up after 60 minutes; a declared FirmwareSign or
FirmwareSize is stored as given, not compared with the object (the platform's behaviour
there is unconfirmed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from localcloud.contracts import ObjectFacts, ObjectLookup
from localcloud.credentials import Credential
from localcloud.iot.errors import BusinessError, IotCode
from localcloud.iot.jobs import (
    JOB_COMPLETED,
    JOB_IN_PROGRESS,
    JOB_TYPE_UPGRADE,
    JOB_TYPE_VERIFY,
    JobStore,
    StoredJob,
)
from ota_release import rules
from ota_release.timestamps import utc_millis

DEFAULT_OTA_BUCKET = "iotx-ota"
#: GenerateOTAUploadURL's PostObject policy is valid this long.
UPLOAD_POLICY_TTL = timedelta(seconds=60)

# Package status values, as QueryOTAFirmware reports them. ListOTAFirmware documents only
# 0-3, so its entries leave Status out for a package that needs no verification (-1).
STATUS_NO_VERIFY = -1
STATUS_UNVERIFIED = 0
STATUS_VERIFIED = 1
STATUS_VERIFYING = 2
STATUS_VERIFY_FAILED = 3

_ID_ALPHABET = string.ascii_letters + string.digits


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso_ms(moment: datetime) -> str:
    return utc_millis(moment)


def _firmware_sign(declared: str | None, sign_method: str, facts: ObjectFacts) -> str:
    """FirmwareSign as given, else the documented default: the MD5 of the file in OSS."""
    if declared is not None:
        return declared
    # With SHA256 and no sign the platform's behaviour is undocumented; the MD5 would be
    # wrong, so refuse.
    if sign_method != "MD5":
        raise BusinessError(
            IotCode.ILLEGAL_REQUEST, "FirmwareSign: is required when SignMethod is not MD5"
        )
    return facts.md5_hex


def _random_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))


@dataclass(frozen=True)
class StoredFile:
    """One file of a multi-file package (QueryOTAFirmware's ``MultiFiles`` entry)."""

    name: str
    url: str
    size: int
    sign_value: str
    file_md5: str


@dataclass(frozen=True)
class StoredPackage:
    """One OTA update package as the local IoT Platform holds it (QueryOTAFirmware's fields)."""

    firmware_id: str
    firmware_name: str
    dest_version: str
    src_version: str | None
    module_name: str
    type: int
    sign_method: str
    #: FirmwareSign, FirmwareSize and FirmwareUrl describe a one-file package; None for a
    #: multi-file one, whose files are in ``multi_files``
    firmware_sign: str | None
    firmware_size: int | None
    firmware_desc: str | None
    product_key: str | None
    firmware_url: str | None
    status: int
    udi: str | None
    utc_create: str
    utc_modified: str
    sequence: int = field(repr=False, default=0)
    multi_files: tuple[StoredFile, ...] = ()


@dataclass(frozen=True)
class UploadForm:
    """A GenerateOTAUploadURL answer: a V1 PostObject form for one key of the OTA bucket."""

    firmware_url: str
    host: str
    key: str
    access_key_id: str
    policy: str
    signature: str
    utc_create: str


class IotBackend:
    """The packages of one account, with the rules that depend on them.

    ``objects`` resolves a FirmwareUrl to a stored object (the local OSS implements it).
    ``oss_credential`` signs the upload policies GenerateOTAUploadURL hands out; uploads go
    to ``oss_base_url``/``ota_bucket`` (settable once the OSS server has a port).
    ``auto_verify``: the stand-in has no devices, so a verify job marks the package verified
    (status 1) at once; with ``auto_verify=False`` it stays verifying (2) until
    :meth:`complete_verification`.
    """

    def __init__(
        self,
        objects: ObjectLookup,
        oss_credential: Credential,
        *,
        oss_base_url: str = "http://127.0.0.1",
        ota_bucket: str = DEFAULT_OTA_BUCKET,
        iot_instance_id: str | None = None,
        package_quota: int = rules.PACKAGE_QUOTA,
        auto_verify: bool = True,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.objects = objects
        self.oss_credential = oss_credential
        self.oss_base_url = oss_base_url.rstrip("/")
        self.ota_bucket = ota_bucket
        self.iot_instance_id = iot_instance_id
        self.package_quota = package_quota
        self.auto_verify = auto_verify
        self.now = now
        self._lock = threading.RLock()
        self._packages: dict[str, StoredPackage] = {}
        self._sequence = 0
        #: the packages' jobs (verifications and upgrade batches), read by ListOTAJobByFirmware
        self.jobs = JobStore(lambda: self.now())

    # Python API for tests and the demo ------------------------------------------------------

    def firmwares(self) -> list[StoredPackage]:
        """Every stored package, oldest first."""
        with self._lock:
            return sorted(self._packages.values(), key=lambda p: p.sequence)

    def complete_verification(self, firmware_id: str, *, ok: bool = True) -> StoredPackage:
        """Finish a verification started with ``auto_verify=False`` (its job completes)."""
        for job in self.jobs.for_firmware(firmware_id):
            if job.job_type == JOB_TYPE_VERIFY and not job.finished:
                self.jobs.set_status(job.job_id, JOB_COMPLETED)
        return self.update_package(
            firmware_id,
            status=STATUS_VERIFIED if ok else STATUS_VERIFY_FAILED,
            utc_modified=iso_ms(self.now()),
        )

    def add_upgrade_job(
        self,
        firmware_id: str,
        *,
        status: str = JOB_IN_PROGRESS,
        devices: tuple[str, ...] = ("device-1",),
        target_selection: str = "SPECIFIC",
    ) -> StoredJob:
        """Record an upgrade batch on a stored package, as if created in the console.

        The stand-in runs no upgrades: the job keeps ``status`` until
        :meth:`set_job_status` changes it.
        """
        package = self.package(firmware_id)
        return self.jobs.add(
            firmware_id,
            JOB_TYPE_UPGRADE,
            status=status,
            devices=devices,
            product_key=package.product_key,
            target_selection=target_selection,
        )

    def add_verify_job(
        self, firmware_id: str, devices: tuple[str, ...], *, status: str = JOB_IN_PROGRESS
    ) -> StoredJob:
        """Record a verification job on a stored package (CreateOTAVerifyJob's record)."""
        package = self.package(firmware_id)
        return self.jobs.add(
            firmware_id,
            JOB_TYPE_VERIFY,
            status=status,
            devices=devices,
            product_key=package.product_key,
            target_selection="SPECIFIC",
        )

    def set_job_status(self, job_id: str, status: str) -> StoredJob:
        """Move a job on (e.g. an upgrade batch to COMPLETED or CANCELED)."""
        return self.jobs.set_status(job_id, status)

    def jobs_of(self, firmware_id: str | None) -> list[StoredJob]:
        """The jobs of an existing package, newest first (ListOTAJobByFirmware's order)."""
        package = self.package(firmware_id)
        return list(reversed(self.jobs.for_firmware(package.firmware_id)))

    def seed_packages(
        self,
        count: int,
        *,
        product_key: str | None = "seeded",
        module_name: str = "default",
        name_prefix: str = "seeded",
        spacing: timedelta = timedelta(minutes=1),
    ) -> list[StoredPackage]:
        """Store ``count`` packages at once (no upload, no quota check), oldest first.

        For tests that need a full account: names ``<prefix>-<n>``, versions ``1.0.<n>``,
        created ``spacing`` apart and ending now. The quota still refuses later
        CreateOTAFirmware calls as usual.
        """
        now = self.now()
        seeded: list[StoredPackage] = []
        with self._lock:
            start = len(self._packages)
            for n in range(start, start + count):
                stamp = iso_ms(now - spacing * (start + count - 1 - n))
                self._sequence += 1
                package = StoredPackage(
                    firmware_id=self._new_firmware_id(),
                    firmware_name=f"{name_prefix}-{n}",
                    dest_version=f"1.0.{n}",
                    src_version=None,
                    module_name=module_name,
                    type=0,
                    sign_method="MD5",
                    firmware_sign=hashlib.md5(str(n).encode(), usedforsecurity=False).hexdigest(),
                    firmware_size=1024,
                    firmware_desc=None,
                    product_key=product_key,
                    firmware_url=f"{self.oss_base_url}/{self.ota_bucket}/seeded/{n}.bin",
                    status=STATUS_NO_VERIFY,
                    udi=None,
                    utc_create=stamp,
                    utc_modified=stamp,
                    sequence=self._sequence,
                )
                self._packages[package.firmware_id] = package
                seeded.append(package)
        return seeded

    def update_package(self, firmware_id: str, **changes: Any) -> StoredPackage:
        """Change stored fields of a package, as a test does to make one look older."""
        with self._lock:
            updated = replace(self._packages[firmware_id], **changes)
            self._packages[firmware_id] = updated
            return updated

    def reset(self) -> None:
        """Forget every package."""
        with self._lock:
            self._packages.clear()
            self._sequence = 0
        self.jobs.reset()

    # Operations -----------------------------------------------------------------------------

    def check_instance(self, requested: str | None) -> None:
        """Purchased instances must be named; the public instance must not be."""
        if self.iot_instance_id is None:
            if requested:
                raise BusinessError(
                    IotCode.INSTANCE_NOT_FOUND, f"IotInstanceId {requested!r} does not exist."
                )
            return
        if not requested:
            raise BusinessError(
                IotCode.ILLEGAL_REQUEST, "IotInstanceId: is required for this instance."
            )
        if requested != self.iot_instance_id:
            raise BusinessError(
                IotCode.INSTANCE_NOT_FOUND, f"IotInstanceId {requested!r} does not exist."
            )

    def upload_form(self, suffix: str) -> UploadForm:
        """A one-minute PostObject form for a fresh key ending in ``.suffix``."""
        now = self.now()
        key = f"ota/{uuid.uuid4().hex}/{uuid.uuid4().hex.upper()}.{suffix}"
        policy_doc = {
            "expiration": utc_millis((now + UPLOAD_POLICY_TTL).replace(microsecond=0)),
            "conditions": [
                ["content-length-range", 0, rules.FIRMWARE_SIZE_MAX],
                {"bucket": self.ota_bucket},
                ["eq", "$key", key],
            ],
        }
        policy = base64.b64encode(json.dumps(policy_doc, separators=(",", ":")).encode()).decode()
        signature = base64.b64encode(
            hmac.new(
                self.oss_credential.access_key_secret.encode(), policy.encode(), hashlib.sha1
            ).digest()
        ).decode()
        host = f"{self.oss_base_url}/{self.ota_bucket}"
        return UploadForm(
            firmware_url=f"{host}/{quote(key, safe='/')}",
            host=host,
            key=key,
            access_key_id=self.oss_credential.access_key_id,
            policy=policy,
            signature=signature,
            utc_create=iso_ms(now),
        )

    def create_package(self, request: Mapping[str, Any]) -> StoredPackage:
        """Store a package from CreateOTAFirmware parameters already checked by the rules.

        ``request["MultiFiles"]``, when present, is the list of file entries (``Name``,
        ``Url``, ``Size``, ``SignValue``, ``FileMd5``) of a multi-file package.
        """
        with self._lock:
            sign_method = request.get("SignMethod", "MD5")
            content = self._content(request, sign_method)
            need_to_verify = rules.parse_query_bool(request.get("NeedToVerify", "true"))
            created = iso_ms(self.now())
            self._sequence += 1
            package = StoredPackage(
                firmware_id=self._new_firmware_id(),
                firmware_name=request["FirmwareName"],
                dest_version=request["DestVersion"],
                src_version=request.get("SrcVersion"),
                module_name=request.get("ModuleName", "default"),
                type=rules.parse_query_int(request.get("Type", "0")) or 0,
                sign_method=sign_method,
                firmware_desc=request.get("FirmwareDesc"),
                product_key=request.get("ProductKey"),
                status=STATUS_UNVERIFIED if need_to_verify else STATUS_NO_VERIFY,
                udi=request.get("Udi"),
                utc_create=created,
                utc_modified=created,
                sequence=self._sequence,
                **content,
            )
            self._packages[package.firmware_id] = package
        return package

    def _content(self, request: Mapping[str, Any], sign_method: str) -> dict[str, Any]:
        """The package's files (one, or MultiFiles), once its name, URLs and quota allow it.

        A file's sign, size and MD5 default to the object's in OSS, as documented; a
        declared one is stored as given.
        """
        self._name_free(request["FirmwareName"])
        entries = request.get("MultiFiles")
        if entries is None:
            facts = self._object(request["FirmwareUrl"], "FirmwareUrl")
            size = rules.parse_query_int(request.get("FirmwareSize"))
            content: dict[str, Any] = {
                "firmware_url": request["FirmwareUrl"],
                "firmware_sign": _firmware_sign(request.get("FirmwareSign"), sign_method, facts),
                "firmware_size": size if size is not None else facts.size,
            }
        else:
            files = []
            for index, entry in enumerate(entries, start=1):
                facts = self._object(entry["Url"], f"MultiFiles.{index}.Url")
                size = rules.parse_query_int(entry.get("Size"))
                sign = _firmware_sign(entry.get("SignValue"), sign_method, facts)
                md5 = entry.get("FileMd5") or facts.md5_hex
                url, name = entry["Url"], entry["Name"]
                files.append(StoredFile(name, url, size or facts.size, sign, md5))
            content = {"firmware_url": None, "firmware_sign": None, "firmware_size": None}
            content["multi_files"] = tuple(files)
        self._quota_left()
        return content

    def _name_free(self, name: str) -> None:
        if any(p.firmware_name == name for p in self._packages.values()):
            raise BusinessError(
                IotCode.FIRMWARE_NAME_EXISTED,
                f"FirmwareName: {name!r} already exists in this account.",
            )

    def _object(self, url: str, field: str) -> ObjectFacts:
        """The stored object a package's URL names, or the platform's refusal."""
        facts = self.objects.lookup_url(url)
        if facts is None:
            raise BusinessError(
                IotCode.FIRMWARE_URL_INVALID, f"{field}: no package file found at {url!r}."
            )
        return facts

    def _quota_left(self) -> None:
        if len(self._packages) >= self.package_quota:
            raise BusinessError(
                IotCode.FIRMWARE_COUNT_EXCEED,
                f"The account already has {len(self._packages)} update packages; "
                f"the limit is {self.package_quota}.",
            )

    def _new_firmware_id(self) -> str:
        while True:
            candidate = _random_id()
            if candidate not in self._packages:
                return candidate

    def package(self, firmware_id: str | None) -> StoredPackage:
        """The package with this FirmwareId, or the IoT error for a missing or unknown one."""
        if not firmware_id:
            raise BusinessError(IotCode.ILLEGAL_REQUEST, "FirmwareId: is required")
        with self._lock:
            package = self._packages.get(firmware_id)
        if package is None:
            raise BusinessError(
                IotCode.FIRMWARE_NOT_FOUND, f"FirmwareId: package {firmware_id!r} does not exist."
            )
        return package

    def delete_package(self, firmware_id: str) -> None:
        """Delete a package and forget its jobs, whatever their status.

        Whether the platform refuses to delete a package a job still uses is undocumented;
        the stand-in deletes it, so a client that forgets to check its jobs first is caught
        by what it deleted rather than saved by a refusal.
        """
        with self._lock:
            self._packages.pop(firmware_id, None)
        self.jobs.forget_firmware(firmware_id)

    def start_verification(
        self, package: StoredPackage, devices: tuple[str, ...] = ()
    ) -> tuple[str, str]:
        """Start a verify job on ``package``; returns the job id and its UtcCreate.

        The job is recorded for ListOTAJobByFirmware: COMPLETED at once with
        ``auto_verify``, else IN_PROGRESS until :meth:`complete_verification`.
        """
        if package.status not in (STATUS_UNVERIFIED, STATUS_VERIFY_FAILED):
            raise BusinessError(
                IotCode.VERIFY_NOT_ALLOWED,
                f"Package {package.firmware_id} has status {package.status}; only unverified "
                "(0) or failed (3) packages can be verified.",
            )
        now = iso_ms(self.now())
        with self._lock:
            self._packages[package.firmware_id] = replace(
                package,
                status=STATUS_VERIFIED if self.auto_verify else STATUS_VERIFYING,
                utc_modified=now,
            )
        job = self.add_verify_job(
            package.firmware_id,
            devices,
            status=JOB_COMPLETED if self.auto_verify else JOB_IN_PROGRESS,
        )
        return job.job_id, job.utc_create
