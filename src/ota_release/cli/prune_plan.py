"""What ``ota-release prune`` deletes, and the paced run that deletes it.

:func:`select` is pure: per product and module it keeps the newest ``keep`` packages (by
UtcCreate) and offers the older ones, oldest first, narrowed by age. :func:`run` then
takes each candidate in that order: ListOTAJobByFirmware first, and a package any job
still uses (any status but finished) is kept; the rest are deleted with
DeleteOTAFirmware, only when asked to. The dry run makes the same job checks, so what it
lists is what ``--yes`` deletes (unless jobs start or finish in between).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol, TypeVar

from ota_release.errors import NotFoundError, PlatformError
from ota_release.ports import ListedPackage, OtaJob

T = TypeVar("T")
#: How a call is made: its description and the call (the CLI retries transient errors).
Caller = Callable[[str, Callable[[], T]], T]


class PruneTarget(Protocol):
    """The IoT operations prune needs (``IotOtaPlatform`` has them, so do the fakes)."""

    def list_packages(
        self, product_key: str | None, iot_instance_id: str | None
    ) -> list[ListedPackage]: ...

    def list_jobs(self, firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]: ...

    def delete_firmware(self, firmware_id: str, iot_instance_id: str | None) -> str | None: ...


def created_at(package: ListedPackage) -> datetime | None:
    """The package's UtcCreate, or None when it is missing or unreadable."""
    if not package.utc_create:
        return None
    try:
        value = datetime.fromisoformat(package.utc_create.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def group_of(package: ListedPackage) -> tuple[str, str]:
    """(ProductKey, ModuleName); an empty module is the default module."""
    return (package.product_key or "", package.module or "default")


@dataclass
class Selection:
    """The candidates, oldest first, and what was kept without asking IoT."""

    candidates: list[ListedPackage] = field(default_factory=list)
    newest: list[ListedPackage] = field(default_factory=list)
    too_recent: list[ListedPackage] = field(default_factory=list)
    undated: list[ListedPackage] = field(default_factory=list)


def _age_order(package: ListedPackage) -> tuple[int, datetime, str]:
    """Oldest first; a package without a readable UtcCreate counts as the newest."""
    moment = created_at(package)
    if moment is None:
        return (1, datetime.max.replace(tzinfo=timezone.utc), package.firmware_id)
    return (0, moment, package.firmware_id)


def select(
    packages: Iterable[ListedPackage],
    keep: int,
    *,
    module: str | None = None,
    older_than: timedelta | None = None,
    now: datetime,
) -> Selection:
    """Per product and module: the newest ``keep`` stay, the older ones are candidates.

    ``module`` narrows to one ModuleName; ``older_than`` keeps candidates created less
    than that long before ``now``. An undated package is never a candidate.
    """
    groups: dict[tuple[str, str], list[ListedPackage]] = defaultdict(list)
    for package in packages:
        if module is None or group_of(package)[1] == module:
            groups[group_of(package)].append(package)
    chosen = Selection()
    for members in groups.values():
        ordered = sorted(members, key=_age_order)
        cut = max(0, len(ordered) - keep)
        chosen.newest += ordered[cut:]
        for package in ordered[:cut]:
            moment = created_at(package)
            if moment is None:
                chosen.undated.append(package)
            elif older_than is not None and moment > now - older_than:
                chosen.too_recent.append(package)
            else:
                chosen.candidates.append(package)
    chosen.candidates.sort(key=_age_order)
    return chosen


@dataclass
class PruneReport:
    """What happened to each candidate."""

    deleted: list[tuple[ListedPackage, str | None]] = field(default_factory=list)
    would_delete: list[ListedPackage] = field(default_factory=list)
    in_use: list[tuple[ListedPackage, list[OtaJob]]] = field(default_factory=list)
    gone: list[ListedPackage] = field(default_factory=list)
    failed: list[tuple[ListedPackage, str]] = field(default_factory=list)


def run(
    target: PruneTarget,
    candidates: Iterable[ListedPackage],
    *,
    delete: bool,
    iot_instance_id: str | None,
    call: Caller[object],
    heard: Callable[[str, ListedPackage, str], None] = lambda *_: None,
) -> PruneReport:
    """Check each candidate's jobs, oldest first; delete the unused ones when ``delete``.

    ``heard(verdict, package, detail)`` is told each verdict as it is reached: ``in use``,
    ``would delete``, ``deleted``, ``gone`` (someone deleted it meanwhile), ``failed``.
    """
    report = PruneReport()
    for package in candidates:
        verdict, detail = _one(target, package, delete, iot_instance_id, call, report)
        heard(verdict, package, detail)
    return report


def _one(
    target: PruneTarget,
    package: ListedPackage,
    delete: bool,
    instance: str | None,
    call: Caller[object],
    report: PruneReport,
) -> tuple[str, str]:
    fid = package.firmware_id
    try:
        jobs = call(f"ListOTAJobByFirmware {fid}", lambda: target.list_jobs(fid, instance))
        assert isinstance(jobs, list)
        busy = [job for job in jobs if job.in_use]
        if busy:
            report.in_use.append((package, busy))
            return "in use", ", ".join(f"{j.job_type} {j.job_id} {j.job_status}" for j in busy)
        if not delete:
            report.would_delete.append(package)
            return "would delete", ""
        request_id = call(f"DeleteOTAFirmware {fid}", lambda: target.delete_firmware(fid, instance))
        report.deleted.append((package, request_id if isinstance(request_id, str) else None))
        return "deleted", ""
    except NotFoundError:
        report.gone.append(package)
        return "gone", "no longer exists"
    except PlatformError as exc:
        detail = f"{exc.operation} {exc.code}: {exc.message}"
        report.failed.append((package, detail))
        return "failed", detail


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``: a whole number and a unit (s, m, h, d, w)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise ValueError(
            f"--older-than: must be a whole number and a unit s, m, h, d or w, "
            f"such as 30d (got {text!r})"
        )
    return timedelta(**{units[unit]: int(number)})
