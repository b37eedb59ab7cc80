"""The package quota: how many packages the account holds, in every notification that counts.

IoT Platform caps an account (or instance) at 500 update packages, and refuses
CreateOTAFirmware past it with a code no public source names. So the release never guesses
codes: it counts (ListOTAFirmware's Total, one entry, no filter) and compares with
``OTA_PACKAGE_LIMIT``.

- ``created`` and ``already_registered`` carry ``quota: {packages, limit, ...}``; from
  90 % of the limit on the notification warns (its ``quota.warning`` and a line in the
  summary) and so does the log. A count that fails leaves the release as it is and says
  the count is unknown.
- A refused CreateOTAFirmware (no package holds the name) is counted afresh: at the limit
  the release ends ``failed`` saying the quota is full and how to free it.

Counting is one more ListOTAFirmware per release, the action the idempotency check already
spends its 10 QPS on, which would halve a burst's rate. :class:`PackageCounter` therefore
asks IoT at most once per ``max_age`` seconds per process and instance id, one caller at a
time, and adds the packages this process created since (docs/benchmarks.md measures it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from ota_release.errors import DuplicateNameError, PermanentError, PlatformError
from ota_release.notification import ErrorItem, Outcome, QuotaUsage
from ota_release.pipeline.context import Release, Stop
from ota_release.ports import OtaPlatform
from ota_release.timestamps import utc_millis

logger = logging.getLogger("ota_release.pipeline")

#: Outcomes whose notification reports the package count.
COUNTED_OUTCOMES = frozenset({Outcome.CREATED, Outcome.ALREADY_REGISTERED})


@dataclass
class _Count:
    packages: int
    taken: float  # monotonic seconds
    counted_at: str  # when IoT Platform was asked, UTC


class PackageCounter:
    """Package counts per instance id, asked at most every ``max_age`` seconds.

    Thread-safe; one caller per instance id asks IoT while the others wait for its answer,
    so a burst of invocations starting together costs one call. ``max_age`` 0 asks every
    time. :meth:`created` adds a package this process registered to the cached count.
    """

    def __init__(
        self,
        max_age: float = 10.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.max_age = max_age
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._asking: dict[str | None, threading.Lock] = {}
        self._counts: dict[str | None, _Count] = {}

    def usage(
        self, platform: OtaPlatform, instance: str | None, limit: int, *, fresh: bool = False
    ) -> QuotaUsage:
        """The count against ``limit``: cached when young enough (unless ``fresh``).

        While one caller renews an old count, the others take the old one (with its
        ``counted_at``) rather than wait; only without any count, with ``fresh`` or with
        ``max_age`` 0 do they wait for the answer.
        """
        with self._lock:
            asking = self._asking.setdefault(instance, threading.Lock())
            cached = self._counts.get(instance)
        if cached is not None and not fresh and self._is_young(cached):
            return QuotaUsage(cached.packages, limit, cached.counted_at)
        wait = cached is None or fresh or self.max_age == 0
        if not asking.acquire(blocking=wait):
            assert cached is not None
            return QuotaUsage(cached.packages, limit, cached.counted_at)
        try:
            return self._ask(platform, instance, limit, fresh)
        finally:
            asking.release()

    def _ask(
        self, platform: OtaPlatform, instance: str | None, limit: int, fresh: bool
    ) -> QuotaUsage:
        """Ask IoT, unless a caller that held the turn before us just did."""
        with self._lock:
            cached = self._counts.get(instance)
        if cached is not None and not fresh and self._is_young(cached):
            return QuotaUsage(cached.packages, limit, cached.counted_at)
        counted_at = utc_millis(self._wall())
        try:
            packages = platform.count_packages(instance)
        except PlatformError as exc:
            return QuotaUsage(None, limit, None, f"{exc.operation} failed: {exc.code}")
        with self._lock:
            self._counts[instance] = _Count(packages, self._monotonic(), counted_at)
        return QuotaUsage(packages, limit, counted_at)

    def created(self, instance: str | None) -> None:
        """This process registered one more package: a cached count includes it."""
        with self._lock:
            cached = self._counts.get(instance)
            if cached is not None:
                cached.packages += 1

    def _is_young(self, cached: _Count) -> bool:
        return self._monotonic() - cached.taken < self.max_age


_shared_lock = threading.Lock()
_shared: dict[tuple[str, float], PackageCounter] = {}


def shared_counter(endpoint: str, max_age: float) -> PackageCounter:
    """The process-wide counter for an IoT endpoint: pipelines are built per invocation,
    but the count is worth reusing across every invocation an instance serves."""
    with _shared_lock:
        counter = _shared.get((endpoint, max_age))
        if counter is None:
            counter = _shared[(endpoint, max_age)] = PackageCounter(max_age)
        return counter


def _instance(r: Release) -> str | None:
    return r.spec.iot_instance_id if r.spec is not None else r.config.iot_instance_id


def count_for(r: Release, end: Stop, counter: PackageCounter) -> QuotaUsage | None:
    """The quota usage a ``created``/``already_registered`` notification carries.

    From 90 % of the limit on the log warns; a failed count is logged and reported unknown.
    """
    if end.outcome not in COUNTED_OUTCOMES:
        return None
    usage = counter.usage(r.ports.platform, _instance(r), r.config.package_limit)
    if usage.packages is None:
        logger.warning(
            "could not count the account's OTA packages (%s); the notification says so",
            usage.error,
            extra={"object_key": r.key},
        )
    elif usage.warning:
        logger.warning(
            usage.warning,
            extra={"object_key": r.key, "packages": usage.packages, "limit": usage.limit},
        )
    return usage


def quota_full(r: Release, exc: Exception, counter: PackageCounter) -> Stop | None:
    """A refused CreateOTAFirmware at the limit: ``failed``, saying how to free the quota.

    Whatever the refusal's code (none is documented for a full quota), the account is
    counted afresh; None when it is below the limit or could not be counted, and the
    refusal is reported as it is.
    """
    if not isinstance(exc, PermanentError) or isinstance(exc, DuplicateNameError):
        return None
    if exc.operation != "CreateOTAFirmware" or r.spec is None:
        return None
    usage = counter.usage(r.ports.platform, _instance(r), r.config.package_limit, fresh=True)
    if not usage.full:
        return None
    r.request_ids.add(exc.service, exc.request_id)
    r.quota = usage
    spec = r.spec
    logger.warning(
        "package quota full: %s of %s", usage.packages, usage.limit, extra={"object_key": r.key}
    )
    return Stop(
        Outcome.FAILED,
        f"CreateOTAFirmware refused {spec.name} {spec.version}: the package quota is full "
        f"({usage.packages} of {usage.limit} packages). Free some with `ota-release prune "
        "--keep N --yes` (DeleteOTAFirmware on the oldest packages no job uses), then "
        "`ota-release replay` this release.",
        [
            ErrorItem(
                "quota",
                f"the account holds at most {usage.limit} OTA packages",
                f"{usage.packages} of {usage.limit}: delete packages no longer needed "
                "(`ota-release prune --keep N --yes`, or DeleteOTAFirmware)",
            ),
            ErrorItem(exc.operation, exc.code, exc.message),
        ],
    )
