"""The one timestamp format the cloud services here write: ISO 8601 UTC, milliseconds, ``Z``.

OSS trigger events (``eventTime``), IoT Platform (``UtcCreate``, the PostObject policy's
``expiration``) and our own notifications (``published_at``) all read like
``2022-08-13T06:45:43.250Z``.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_millis(moment: datetime) -> str:
    """``moment`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (a naive time is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_millis_from_epoch(seconds: float) -> str:
    """A POSIX timestamp (seconds, as ``time.time()`` gives) in the same format."""
    return utc_millis(datetime.fromtimestamp(seconds, timezone.utc))
