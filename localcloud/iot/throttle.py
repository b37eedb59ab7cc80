"""Per-action QPS limits of the IoT gateway, as a sliding one-second window."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

#: Documented QPS of each action relative to the 10-QPS ones (CreateOTAFirmware,
#: GenerateOTAUploadURL, ListOTAFirmware, DeleteOTAFirmware, CreateOTAVerifyJob,
#: ListOTAJobByFirmware): the QueryOTAFirmware reference gives 20 QPS per account. The
#: limiter scales ``qps`` by it.
QPS_FACTOR = {"QueryOTAFirmware": 2}


class SlidingWindowLimiter:
    """At most ``limit`` calls per key in any window of ``window`` seconds.

    A sliding log rather than a token bucket: it never lets a burst of 2x the limit through
    across a window boundary, which is how a client's own rate limiter is best tested.
    """

    def __init__(
        self, limit: int, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, key: str, limit: int | None = None) -> float | None:
        """Take a slot; None when allowed, else the seconds until the next slot frees.

        ``limit`` overrides the limiter's own for this key (actions differ in their QPS).
        """
        now = self.clock()
        allowed = self.limit if limit is None else limit
        with self._lock:
            log = self._calls.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= allowed:
                return log[0] + self.window - now
            log.append(now)
            return None

    def acquire_action(self, action: str) -> float | None:
        """:meth:`acquire` for an IoT action at its documented share of the QPS."""
        return self.acquire(action, self.limit * QPS_FACTOR.get(action, 1))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
