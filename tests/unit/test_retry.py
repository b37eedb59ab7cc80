"""Backoff: full jitter within bounds, bounded by attempts and the remaining time."""

from __future__ import annotations

import random

import pytest

from ota_release.errors import PermanentError, RetriesExhausted, TransientError
from ota_release.retry import Deadline, RetryPolicy
from tests.unit.fakes import permanent, transient


class Clock:
    """A manual monotonic clock; the policy's sleep advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails with the given errors, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def policy(clock: Clock, **kwargs: object) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, rng=random.Random(7), **kwargs)  # type: ignore[arg-type]


def test_success_needs_no_sleep() -> None:
    clock = Clock()
    assert policy(clock).call(Flaky(), Deadline(60, clock), "op") == "done"
    assert clock.sleeps == []


def test_transient_errors_are_retried_until_success() -> None:
    clock = Clock()
    fn = Flaky(transient(), transient())
    assert policy(clock).call(fn, Deadline(60, clock), "op") == "done"
    assert fn.calls == 3
    assert len(clock.sleeps) == 2


def test_full_jitter_stays_within_the_capped_exponential() -> None:
    p = RetryPolicy(base=0.5, cap=3.0, rng=random.Random(1))
    for attempt in range(8):
        ceiling = min(3.0, 0.5 * 2**attempt)
        delays = [p.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        # Full jitter: the whole range is used, not just the top.
        assert min(delays) < ceiling * 0.2
        assert max(delays) > ceiling * 0.8


def test_same_seed_gives_the_same_delays() -> None:
    a = RetryPolicy(rng=random.Random(42))
    b = RetryPolicy(rng=random.Random(42))
    assert [a.delay(i) for i in range(6)] == [b.delay(i) for i in range(6)]


def test_retry_after_is_a_floor_for_the_delay() -> None:
    clock = Clock()
    fn = Flaky(transient(code="Throttling", retry_after=2.5))
    policy(clock, base=0.01, cap=0.01).call(fn, Deadline(60, clock), "op")
    assert clock.sleeps == [2.5]


def test_max_attempts_ends_in_retries_exhausted() -> None:
    clock = Clock()
    fn = Flaky(*[transient(code="ServiceUnavailable") for _ in range(10)])
    with pytest.raises(RetriesExhausted) as caught:
        policy(clock, max_attempts=4).call(fn, Deadline(600, clock), "op")
    assert fn.calls == 4
    assert len(clock.sleeps) == 3
    assert caught.value.code == "ServiceUnavailable"
    assert "gave up after 4 attempt(s)" in caught.value.message
    assert isinstance(caught.value.__cause__, TransientError)


def test_never_sleeps_past_the_remaining_time() -> None:
    # GIVEN 1 second left and a service that asks for 5 seconds of patience
    clock = Clock()
    fn = Flaky(transient(retry_after=5.0))
    # WHEN it fails THEN the policy gives up at once instead of sleeping past the deadline
    with pytest.raises(RetriesExhausted):
        policy(clock).call(fn, Deadline(1.0, clock), "op")
    assert clock.sleeps == []


def test_total_sleep_stays_within_the_deadline() -> None:
    clock = Clock()
    fn = Flaky(*[transient() for _ in range(100)])
    deadline = Deadline(3.0, clock)
    with pytest.raises(RetriesExhausted):
        policy(clock, base=0.5, cap=2.0, max_attempts=100).call(fn, deadline, "op")
    assert sum(clock.sleeps) < 3.0


def test_deadline_remaining_never_goes_negative() -> None:
    clock = Clock()
    deadline = Deadline(2.0, clock)
    clock.now += 5
    assert deadline.remaining() == 0.0


@pytest.mark.parametrize("error", [permanent(), PermanentError("oss", "op", "AccessDenied", "no")])
def test_permanent_errors_are_not_retried(error: PermanentError) -> None:
    clock = Clock()
    fn = Flaky(error)
    with pytest.raises(PermanentError):
        policy(clock).call(fn, Deadline(60, clock), "op")
    assert fn.calls == 1
    assert clock.sleeps == []


def test_retries_exhausted_from_a_nested_call_is_not_retried_again() -> None:
    clock = Clock()
    fn = Flaky(RetriesExhausted("iot", "op", "Throttling", "inner gave up"))
    with pytest.raises(RetriesExhausted, match="inner gave up"):
        policy(clock).call(fn, Deadline(60, clock), "op")
    assert fn.calls == 1


def test_other_exceptions_pass_through_untouched() -> None:
    clock = Clock()
    with pytest.raises(KeyError):
        policy(clock).call(Flaky(KeyError("bug")), Deadline(60, clock), "op")


def test_on_retry_is_told_each_attempt_error_and_delay() -> None:
    clock = Clock()
    seen: list[tuple[int, str, float]] = []
    fn = Flaky(transient(code="A"), transient(code="B"))
    p = policy(clock, on_retry=lambda n, e, d: seen.append((n, e.code, d)))
    p.call(fn, Deadline(60, clock), "op")
    assert [(n, c) for n, c, _ in seen] == [(1, "A"), (2, "B")]
    assert [d for _, _, d in seen] == clock.sleeps
