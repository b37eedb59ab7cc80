"""Capped, jittered exponential backoff bounded by the function's remaining time."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ota_release.errors import RetriesExhausted, TransientError

T = TypeVar("T")
logger = logging.getLogger("ota_release.retry")


#: Codes services use to say "too many requests" (besides HTTP 429 and ``Throttling*``).
THROTTLING_CODES = frozenset(
    {"SlowDown", "QpsLimitExceeded", "TooManyRequests", "ResourceThrottled"}
)


def is_throttling(error: TransientError) -> bool:
    """The service refused for rate, not for a fault: back off longer (no retry storm)."""
    return (
        error.status == 429 or error.code.startswith("Throttling") or error.code in THROTTLING_CODES
    )


class Deadline:
    """The moment the invocation must have finished by, minus a safety margin."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock())


@dataclass
class RetryPolicy:
    """Full-jitter exponential backoff: sleep U(0, min(cap, base * 2^attempt)).

    Full jitter spreads the retries of many instances that failed together, so they do not
    come back in lockstep against a rate-limited API. A ``retry_after`` the service sends
    is a floor for the next sleep.
    """

    # The function builds its policy from settings (OTA_RETRY_*, validated there with every
    # other setting, see docs/configuration.md); these are the documented defaults.
    base: float = 0.2
    cap: float = 5.0
    max_attempts: int = 6
    #: Throttling backs off from this longer base: the QPS limit is shared by every instance
    #: of the account, so a quick retry only adds rejected calls (a retry storm).
    throttle_base: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    #: Called with (attempt, error, delay) before each sleep; counts retries for reports.
    on_retry: Callable[[int, TransientError, float], None] | None = None

    def delay(
        self, attempt: int, retry_after: float | None = None, *, throttled: bool = False
    ) -> float:
        base = max(self.base, self.throttle_base) if throttled else self.base
        ceiling = min(self.cap, base * (2**attempt))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def call(self, fn: Callable[[], T], deadline: Deadline, what: str) -> T:
        """Run ``fn``, retrying transient errors while attempts and time remain.

        Permanent errors pass straight through. When the budget runs out the last transient
        error is re-raised as :class:`RetriesExhausted`, for Function Compute to retry the
        whole invocation later.
        """
        attempt = 0
        while True:
            try:
                return fn()
            except RetriesExhausted:
                raise
            except TransientError as exc:
                attempt += 1
                wait = self.delay(attempt - 1, exc.retry_after, throttled=is_throttling(exc))
                if attempt >= self.max_attempts or wait >= deadline.remaining():
                    raise RetriesExhausted(
                        exc.service,
                        exc.operation,
                        exc.code,
                        f"{exc.message} (gave up after {attempt} attempt(s))",
                        request_id=exc.request_id,
                        status=exc.status,
                    ) from exc
                logger.warning(
                    "%s failed with %s, retry %d in %.2fs", what, exc.code, attempt, wait
                )
                if self.on_retry is not None:
                    self.on_retry(attempt, exc, wait)
                self.sleep(wait)
