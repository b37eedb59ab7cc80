"""Client-side pacing of IoT calls: at most ``rate`` calls per second per action.

IoT Platform limits each OTA action to 10 QPS per account and counts calls as they
*arrive*. Spacing calls by when we *mean* to send them is not enough once several calls
are in flight at once (InstanceConcurrency > 1): a thread that wakes late, or spends a
few milliseconds building and signing its request, arrives later than planned, and the
call ``limit`` places after it may then land inside the same one-second window
(measured: 3-12 throttled CreateOTAFirmware calls in a burst of 200 on one instance).

So every call is anchored to facts, not plans. Call ``k`` goes out only when

- call ``k - 1`` has gone out (calls leave in the order they asked, so arrivals keep
  that order), and
- call ``k - limit`` has *come back* at least one window ago: it arrived before its
  response did, so ``arrival(k) >= sent(k) >= end(k - limit) + window >
  arrival(k - limit) + window``, whatever the delays on either side.

This costs one round trip per ``limit`` calls, a few milliseconds, instead of a
throttled call's backoff of a second or more.

**A throttled answer slows the whole instance down, not only the call that got it.** The
platform's limit is the account's, shared with every other instance and client, so
``rate`` is only this instance's share when everyone keeps to theirs. Once the platform
says "throttled", the account is over its limit *now*: every call of that action from this
instance, not just the refused one's retry, must slow down, or an instance serving many
invocations (``InstanceConcurrency`` > 1) keeps sending at its full share while each
invocation backs off on its own (measured: ListOTAFirmware arriving at 8-9 calls/s
against a limit of 4, two instances of 20 invocations each). So, per action:

- a throttled answer halves the instance's rate for that action (once per decrease:
  answers to calls sent before the last decrease already reflect the old rate), down to
  ``rate / MAX_SLOWDOWN``, and the next call leaves no sooner than ``1 / reduced rate``
  after the refusal came back, then each call that long after the one before it;
- every full window without a throttled answer gives back ``rate / RECOVERY_STEPS``
  (counted when an unrefused answer comes back), until the full rate is reached and the
  action is paced as before.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: How often a call waiting on another call's progress looks again (seconds).
POLL = 0.002
#: A throttled action's rate never drops below ``rate / MAX_SLOWDOWN``.
MAX_SLOWDOWN = 32
#: A throttled action regains ``rate / RECOVERY_STEPS`` per window without a refusal.
RECOVERY_STEPS = 10


@dataclass(eq=False)
class PacerTicket:
    """One call's place in its action's queue."""

    action: str
    planned: float  # the earliest moment the plan allows, from earlier calls' plans
    previous: PacerTicket | None  # the call just before (must have gone out first)
    anchor: PacerTicket | None  # the call ``limit`` places earlier (must have come back)
    sent: float | None = None
    ended: float | None = None


@dataclass
class _Slowdown:
    """An action's reduced rate after the platform throttled it (see the module doc)."""

    rate: float
    changed: float  # when the rate last went down or up
    last_sent: float  # the latest call sent, or throttled answer received


class ActionPacer:
    """At most ``limit`` calls of one action in any window, counted as the platform does.

    ``limit`` is the whole part of ``rate`` (at least 1) and the window is
    ``limit / rate`` seconds but never under one, so no one-second window holds more than
    ``rate`` calls. ``margin`` stretches the window for clock granularity (the anchoring
    already covers network delay). The first call of a new pacer waits a random part of
    one slot, so instances started by the same burst do not fire in lockstep.

    Thread-safe. Use :meth:`call` around the request (or :meth:`acquire` / :meth:`done`).
    """

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.limit = max(1, int(rate))
        self.window = max(1.0, self.limit / rate) * (1.0 + margin)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._queues: dict[str, deque[PacerTicket]] = {}
        #: the random start is drawn once per pacer: it shifts this instance's timeline
        #: against other instances', and later actions keep that shift
        self._offset_drawn = False
        self._slowdowns: dict[str, _Slowdown] = {}

    def plan(self, action: str) -> PacerTicket:
        """Queue a call of ``action``; its ``planned`` moment says when it may go at best."""
        with self._lock:
            now = self._clock()
            queue = self._queues.get(action)
            if queue is None:
                queue = self._queues[action] = deque(maxlen=self.limit)
                planned = now
                if not self._offset_drawn:
                    self._offset_drawn = True
                    planned += self._rng.uniform(0, self.window / self.limit)
            else:
                planned = max(now, queue[-1].planned)
                if len(queue) == self.limit:
                    planned = max(planned, queue[0].planned + self.window)
            previous = queue[-1] if queue else None
            anchor = queue[0] if len(queue) == self.limit else None
            ticket = PacerTicket(action, planned, previous, anchor)
            queue.append(ticket)
            return ticket

    def _ready_in(self, ticket: PacerTicket) -> float:
        """Seconds until ``ticket`` may go (0: now; marks it sent). Called under the lock."""
        now = self._clock()
        wait = ticket.planned - now
        if ticket.previous is not None and ticket.previous.sent is None:
            wait = max(wait, POLL)
        anchor = ticket.anchor
        if anchor is not None:
            if anchor.ended is None:
                wait = max(wait, POLL)
            else:
                wait = max(wait, anchor.ended + self.window - now)
        slow = self._slowdowns.get(ticket.action)
        if slow is not None:
            wait = max(wait, slow.last_sent + 1.0 / slow.rate - now)
        if wait <= 0:
            ticket.sent = now
            if slow is not None:
                slow.last_sent = now
            # Drop the links: a ticket only needs them until it goes out, and keeping
            # them would chain every ticket ever issued together.
            ticket.previous = ticket.anchor = None
            return 0.0
        return wait

    def acquire(self, action: str) -> PacerTicket:
        """Wait until a call of ``action`` may go out; pass the ticket to :meth:`done`."""
        ticket = self.plan(action)
        try:
            while True:
                with self._lock:
                    wait = self._ready_in(ticket)
                if wait <= 0:
                    return ticket
                self._sleep(wait)
        except BaseException:
            # Abandoned (interrupted while waiting): it must not hold up the calls queued
            # behind it, which wait for it to go out and come back.
            with self._lock:
                ticket.sent = ticket.ended = self._clock()
                ticket.previous = ticket.anchor = None
            raise

    def done(self, ticket: PacerTicket, *, throttled: bool = False) -> None:
        """The call's response (or failure) is back; ``throttled``: the platform refused it
        for rate (its limit is full now), which slows this action down (module doc)."""
        with self._lock:
            now = ticket.ended = self._clock()
            slow = self._slowdowns.get(ticket.action)
            if throttled:
                sent = ticket.sent if ticket.sent is not None else now
                if slow is None:
                    slow = self._slowdowns[ticket.action] = _Slowdown(self.rate / 2, now, now)
                elif sent > slow.changed:
                    slow.rate = max(self.rate / MAX_SLOWDOWN, slow.rate / 2)
                    slow.changed = now
                slow.last_sent = max(slow.last_sent, now)
            elif slow is not None and now - slow.changed >= self.window:
                # One step per full window since the last change: an action idle for a
                # while comes back at full rate on its first unrefused answer.
                windows = int((now - slow.changed) / self.window)
                slow.rate += windows * self.rate / RECOVERY_STEPS
                slow.changed = now
                if slow.rate >= self.rate:
                    del self._slowdowns[ticket.action]

    def current_rate(self, action: str) -> float:
        """The rate ``action`` is paced at now: ``rate``, or less after throttling."""
        with self._lock:
            slow = self._slowdowns.get(action)
            return self.rate if slow is None else slow.rate

    @contextmanager
    def call(self, action: str) -> Iterator[PacerTicket]:
        """Pace one call; an exception marked ``throttled`` (see :func:`is_throttled`)
        reports a throttled answer."""
        ticket = self.acquire(action)
        throttled = False
        try:
            yield ticket
        except BaseException as exc:
            throttled = is_throttled(exc)
            raise
        finally:
            self.done(ticket, throttled=throttled)


def is_throttled(exc: BaseException) -> bool:
    """Whether an error says the platform refused the call for rate (any exception type
    with a ``throttled`` attribute, or a code like ``Throttling*`` / HTTP 429)."""
    flag = getattr(exc, "throttled", None)
    if isinstance(flag, bool):
        return flag
    code = str(getattr(exc, "code", "") or "")
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    return code.startswith("Throttling") or status == 429


_shared_pacers: dict[float, ActionPacer] = {}
_shared_lock = threading.Lock()


def shared_pacer(rate: float) -> ActionPacer:
    """The process-wide pacer for ``rate``: adapters are built per invocation, but the
    spacing must hold across every invocation an instance serves."""
    with _shared_lock:
        pacer = _shared_pacers.get(rate)
        if pacer is None:
            pacer = _shared_pacers[rate] = ActionPacer(rate)
        return pacer
