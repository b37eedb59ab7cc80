"""The OTA jobs (update batches) of the local IoT Platform, kept per update package.

IoT Platform runs two kinds of job on a package: a verification (CreateOTAVerifyJob) and
upgrade batches (CreateOTAStaticUpgradeJob / CreateOTADynamicUpgradeJob).
ListOTAJobByFirmware lists them as ``SimpleOTAJobInfo`` entries. The stand-in has no
devices, so nothing runs: a job keeps the status it was given until a test (or the
verification it belongs to) changes it.

Values, as the public sources give them (docs/fidelity.md, IoT section):

- JobStatus: PLANNED, IN_PROGRESS, COMPLETED, CANCELED. The SDK's comment on
  ListOTAJobByFirmware spells the finished state COMPLETE, its comment on QueryOTAJob
  and the API reference COMPLETED; the stand-in answers COMPLETED, and clients should
  treat both as finished.
- JobType: UPGRADE_FIRMWARE, and for a verification the SDK's spelling VERFIY_FIRMWARE
  (a reference mirror spells it VERIFY_FIRMWARE; the wire value is unconfirmed, so
  clients should test "not UPGRADE_FIRMWARE" rather than either spelling).
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from ota_release.timestamps import utc_millis

JOB_PLANNED = "PLANNED"
JOB_IN_PROGRESS = "IN_PROGRESS"
JOB_COMPLETED = "COMPLETED"
JOB_CANCELED = "CANCELED"
JOB_STATUSES = (JOB_PLANNED, JOB_IN_PROGRESS, JOB_COMPLETED, JOB_CANCELED)
#: Statuses after which a job no longer uses its package.
FINISHED_STATUSES = frozenset({JOB_COMPLETED, JOB_CANCELED})

JOB_TYPE_UPGRADE = "UPGRADE_FIRMWARE"
JOB_TYPE_VERIFY = "VERFIY_FIRMWARE"
JOB_TYPES = (JOB_TYPE_UPGRADE, JOB_TYPE_VERIFY)

#: SelectionType: STATIC for CreateOTAStaticUpgradeJob and verification, DYNAMIC else.
SELECTION_STATIC = "STATIC"
SELECTION_DYNAMIC = "DYNAMIC"
#: TargetSelection values ListOTAJobByFirmware documents.
TARGET_SELECTIONS = ("ALL", "SPECIFIC", "GRAY", "GROUP")

_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class StoredJob:
    """One job on one package, with the fields ListOTAJobByFirmware reports."""

    job_id: str
    firmware_id: str
    job_type: str
    job_status: str
    product_key: str | None
    selection_type: str
    target_selection: str
    devices: tuple[str, ...]
    utc_create: str
    utc_modified: str
    utc_start_time: str | None = None
    utc_end_time: str | None = None
    sequence: int = 0

    @property
    def finished(self) -> bool:
        return self.job_status in FINISHED_STATUSES


class JobStore:
    """Jobs by package, in creation order; thread-safe. ``now`` stamps their times."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self._lock = threading.Lock()
        self._jobs: dict[str, StoredJob] = {}
        self._sequence = 0

    def add(
        self,
        firmware_id: str,
        job_type: str,
        *,
        status: str = JOB_IN_PROGRESS,
        devices: Iterable[str] = (),
        product_key: str | None = None,
        target_selection: str = "SPECIFIC",
        selection_type: str = SELECTION_STATIC,
    ) -> StoredJob:
        """Record a job on ``firmware_id``; the caller has checked that the package exists."""
        _check_choice("job_type", job_type, JOB_TYPES)
        _check_choice("status", status, JOB_STATUSES)
        _check_choice("target_selection", target_selection, TARGET_SELECTIONS)
        stamp = utc_millis(self.now())
        with self._lock:
            self._sequence += 1
            job = StoredJob(
                job_id=self._new_id(),
                firmware_id=firmware_id,
                job_type=job_type,
                job_status=status,
                product_key=product_key,
                selection_type=selection_type,
                target_selection=target_selection,
                devices=tuple(devices),
                utc_create=stamp,
                utc_modified=stamp,
                utc_start_time=None if status == JOB_PLANNED else stamp,
                utc_end_time=stamp if status in FINISHED_STATUSES else None,
                sequence=self._sequence,
            )
            self._jobs[job.job_id] = job
        return job

    def set_status(self, job_id: str, status: str) -> StoredJob:
        """Move a job to ``status`` (a finished one gets its UtcEndTime)."""
        _check_choice("status", status, JOB_STATUSES)
        stamp = utc_millis(self.now())
        with self._lock:
            job = self._jobs[job_id]
            updated = replace(
                job,
                job_status=status,
                utc_modified=stamp,
                utc_start_time=job.utc_start_time or (None if status == JOB_PLANNED else stamp),
                utc_end_time=stamp if status in FINISHED_STATUSES else None,
            )
            self._jobs[job_id] = updated
        return updated

    def job(self, job_id: str) -> StoredJob:
        with self._lock:
            return self._jobs[job_id]

    def for_firmware(self, firmware_id: str) -> list[StoredJob]:
        """The package's jobs, oldest first."""
        with self._lock:
            found = [j for j in self._jobs.values() if j.firmware_id == firmware_id]
        return sorted(found, key=lambda j: j.sequence)

    def forget_firmware(self, firmware_id: str) -> None:
        """Drop a deleted package's jobs (its id can no longer be listed)."""
        with self._lock:
            for job_id in [k for k, j in self._jobs.items() if j.firmware_id == firmware_id]:
                del self._jobs[job_id]

    def reset(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._sequence = 0

    def _new_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))
            if candidate not in self._jobs:
                return candidate


def _check_choice(name: str, value: str, allowed: Iterable[str]) -> None:
    options = tuple(allowed)
    if value not in options:
        raise ValueError(f"{name}: must be one of {', '.join(options)} (got {value!r})")
