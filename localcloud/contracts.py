"""Small interfaces between the local services (OSS serves objects that IoT checks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from werkzeug.wrappers import Response

#: The instance variable naming the function's crash points (docs/reliability.md). Read by
#: the fault machinery (localcloud.faults) and by the local FC, which runs the crash
#: handler instead of the function's own when it is set.
CRASH_ENV = "OTA_FAULT_CRASH_AT"


@dataclass(frozen=True)
class ObjectFacts:
    """What IoT Platform learns about a package file it is pointed at."""

    bucket: str
    key: str
    size: int
    md5_hex: str  # lowercase hex MD5 of the bytes


class ObjectLookup(Protocol):
    """Resolves a FirmwareUrl to an object stored in the local OSS."""

    def lookup_url(self, url: str) -> ObjectFacts | None:
        """The object the URL names (path-style or virtual-host, signed or not), or None."""
        ...


class OssEventSink(Protocol):
    """Receives OSS object-created notifications (the local FC subscribes)."""

    def __call__(self, event: dict[str, object]) -> None:
        """``event`` is the native FC OSS trigger payload: ``{"events": [record]}``."""
        ...


class FaultHook(Protocol):
    """The fault-injection seam every stand-in calls in its one dispatch path.

    ``service`` is ``oss``, ``iot``, ``mns`` or ``fc``; ``operation`` the API action. Return
    a response to answer the call instead of the service, or None to let it through
    (``localcloud.faults.FaultPlan`` is the implementation).
    """

    def before(self, service: str, operation: str) -> Response | None: ...
