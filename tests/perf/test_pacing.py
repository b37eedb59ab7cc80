"""Client-side IoT pacing: no window ever holds more calls than the rate, however late
calls arrive; instances de-synchronised.

A fake clock stands in for time where the order of events is fixed; where threads race,
the check is on the order of recorded moments (no test asserts a duration).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from ota_release.adapters import CloudCredentials
from ota_release.adapters.iot import IotOtaPlatform
from ota_release.adapters.pacing import (
    MAX_SLOWDOWN,
    RECOVERY_STEPS,
    ActionPacer,
    PacerTicket,
    is_throttled,
    shared_pacer,
)
from ota_release.settings import Settings, SettingsError


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def most_in_any_window(moments: list[float], window: float) -> int:
    """The most calls any ``window``-second sliding window holds (the platform's count)."""
    return max(sum(1 for m in moments if start <= m < start + window) for start in moments)


def fake_pacer(rate: float, seed: int, **kwargs: Any) -> tuple[ActionPacer, FakeClock]:
    clock = FakeClock()
    pacer = ActionPacer(rate, clock=clock, sleep=clock.sleep, rng=random.Random(seed), **kwargs)
    return pacer, clock


@pytest.mark.parametrize(("rate", "allowed"), [(2.0, 2), (3.0, 3), (2.5, 2), (0.5, 1)])
def test_no_one_second_window_holds_more_calls_than_the_rate(rate: float, allowed: int) -> None:
    pacer, clock = fake_pacer(rate, 1)
    moments = []
    for _ in range(12):
        with pacer.call("CreateOTAFirmware"):
            moments.append(clock.now)
    assert most_in_any_window(moments, 1.0) == allowed


def test_serial_calls_reach_the_rate_over_time() -> None:
    # The margin aside, pacing costs no throughput: 2 per second stays 2 per second.
    pacer, clock = fake_pacer(2.0, 2, margin=0.0)
    with pacer.call("A"):
        first = clock.now
    for _ in range(20):
        with pacer.call("A"):
            pass
    assert clock.now - first == pytest.approx(10.0)


def test_a_slow_response_holds_back_the_call_a_window_later() -> None:
    # GIVEN one call per window, and a first call whose response takes 0.4 s
    pacer, clock = fake_pacer(1.0, 4, margin=0.0)
    with pacer.call("A"):
        clock.sleep(0.4)
        back = clock.now
    # WHEN the next call asks to go
    with pacer.call("A"):
        sent = clock.now
    # THEN it waits a full window after the response, not after the planned send
    assert sent == pytest.approx(back + 1.0)


def test_the_first_call_waits_a_random_part_of_one_slot() -> None:
    # Instances started by the same burst must not all fire at the same instant.
    waits = set()
    for seed in range(20):
        clock = FakeClock()
        ticket = ActionPacer(1.0, margin=0.0, clock=clock, rng=random.Random(seed)).plan("A")
        waits.add(ticket.planned - clock.now)
    assert all(0 <= w < 1.0 for w in waits)
    assert len(waits) == 20, "each pacer draws its own offset"


def test_only_the_pacers_first_call_waits_for_its_random_offset() -> None:
    # A release calls three actions in turn: the offset that de-synchronises instances is
    # drawn once, not once per action (which cost a cold release up to three slots).
    clock = FakeClock()
    pacer = ActionPacer(10.0, margin=0.0, clock=clock, sleep=clock.sleep, rng=random.Random(3))
    first = pacer.plan("ListOTAFirmware")
    assert first.planned > clock.now
    clock.sleep(1.0)
    for action in ("GenerateOTAUploadURL", "CreateOTAFirmware"):
        assert pacer.plan(action).planned == clock.now


def test_actions_are_paced_independently_like_the_platforms_per_action_limit() -> None:
    pacer, clock = fake_pacer(1.0, 3, margin=0.0)
    with pacer.call("ListOTAFirmware"):
        pass
    assert pacer.plan("CreateOTAFirmware").planned - clock.now < 1.0  # its own offset only
    assert pacer.plan("ListOTAFirmware").planned - clock.now == pytest.approx(1.0)


def test_an_idle_pacer_lets_the_next_call_through_at_once() -> None:
    pacer, clock = fake_pacer(1.0, 5)
    with pacer.call("A"):
        pass
    clock.sleep(30)
    before = clock.now
    with pacer.call("A"):
        assert clock.now == before


def test_concurrent_late_calls_never_crowd_a_window() -> None:
    """Threads that arrive late (slow wake-up, request building, network) still keep the
    platform's count: at most ``limit`` arrivals in any window. The plan alone would not:
    a call that leaves late and the call ``limit`` places after it, leaving on time, land
    in one window."""
    # (With these delays, pacing by plan alone put 11-12 arrivals in one window.)
    pacer = ActionPacer(10.0, rng=random.Random(0))
    arrivals: list[float] = []
    lock = threading.Lock()
    rng = random.Random(1)
    delays = [(rng.uniform(0, 0.1), rng.uniform(0, 0.1)) for _ in range(30)]

    def call(i: int) -> None:
        to_server, back = delays[i]
        with pacer.call("CreateOTAFirmware"):
            time.sleep(to_server)  # on its way
            with lock:
                arrivals.append(time.monotonic())
            time.sleep(back)  # the response on its way back

    threads = [threading.Thread(target=call, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(arrivals) == 30
    assert most_in_any_window(sorted(arrivals), 1.0) <= 10


def test_an_abandoned_call_does_not_block_the_queue() -> None:
    # GIVEN a call interrupted while it waits for its slot
    clock = FakeClock()

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    pacer = ActionPacer(1.0, clock=clock, sleep=interrupted, rng=random.Random(9))
    ticket: PacerTicket | None = None
    with pytest.raises(KeyboardInterrupt):
        ticket = pacer.acquire("A")
    assert ticket is None
    # WHEN the next call asks, THEN it is paced after the abandoned one, not stuck behind it
    pacer._sleep = clock.sleep
    with pacer.call("A"):
        assert clock.now >= 100.0


def test_one_pacer_per_rate_is_shared_by_every_invocation_of_an_instance() -> None:
    assert shared_pacer(3.5) is shared_pacer(3.5)
    assert shared_pacer(3.5) is not shared_pacer(4.5)


def test_the_adapter_paces_every_call_and_reports_it_back() -> None:
    events: list[str] = []

    class Recorder(ActionPacer):
        def acquire(self, action: str) -> PacerTicket:
            events.append(f"go {action}")
            return super().acquire(action)

        def done(self, ticket: PacerTicket, *, throttled: bool = False) -> None:
            events.append(f"back {ticket.action}" + (" throttled" if throttled else ""))
            super().done(ticket, throttled=throttled)

    class Body:
        success = True
        data = None
        request_id = "r"

    platform = IotOtaPlatform(
        CloudCredentials("ak", "sk"), "127.0.0.1:1", "cn-shanghai", pacer=Recorder(1000.0)
    )

    def answer(client: Any, models: Any) -> Any:
        events.append("request")
        return type("Response", (), {"body": Body()})()

    def broken(client: Any, models: Any) -> Any:
        raise ConnectionError("reset")

    class SdkError(Exception):  # what the Tea SDK raises for IoT's throttling answer
        code = "Throttling.User"
        status_code = 400

    def throttled(client: Any, models: Any) -> Any:
        raise SdkError("Request was denied due to user flow control.")

    platform._sdk = lambda: (object(), None)  # type: ignore[method-assign] # no SDK needed
    platform._invoke("CreateOTAFirmware", answer)
    with pytest.raises(Exception, match="reset"):
        platform._invoke("ListOTAFirmware", broken)
    with pytest.raises(Exception, match="flow control"):
        platform._invoke("ListOTAFirmware", throttled)
    assert events == [
        "go CreateOTAFirmware",
        "request",
        "back CreateOTAFirmware",
        "go ListOTAFirmware",
        "back ListOTAFirmware",
        "go ListOTAFirmware",
        "back ListOTAFirmware throttled",
    ]


def _send(pacer: ActionPacer, clock: FakeClock, action: str, *, throttled: bool = False) -> float:
    """One call of ``action`` that comes back at once; returns when it went out."""
    ticket = pacer.acquire(action)
    pacer.done(ticket, throttled=throttled)
    return clock.now


def test_a_throttled_answer_halves_the_rate_of_every_later_call_of_that_action() -> None:
    # GIVEN 4 calls/s, and a call the platform refuses for rate (the account is full now)
    pacer, clock = fake_pacer(4.0, 11, margin=0.0)
    refused = _send(pacer, clock, "ListOTAFirmware", throttled=True)
    assert pacer.current_rate("ListOTAFirmware") == 2.0
    # WHEN further calls of that action go within the next window, from any invocation
    sent = [_send(pacer, clock, "ListOTAFirmware") for _ in range(2)]
    # THEN each leaves 1 / 2 s after the one before (the first, after the refusal)
    gaps = [b - a for a, b in zip([refused, *sent], sent, strict=False)]
    assert gaps == [pytest.approx(0.5)] * 2
    # AND another action keeps its full rate
    assert pacer.current_rate("CreateOTAFirmware") == 4.0


def test_refusals_of_calls_sent_before_the_slowdown_do_not_halve_it_again() -> None:
    # GIVEN three calls in flight together, all refused (one burst, one signal)
    pacer, clock = fake_pacer(8.0, 12, margin=0.0)
    tickets = [pacer.acquire("A") for _ in range(3)]
    for ticket in tickets:
        pacer.done(ticket, throttled=True)
    # THEN the rate halved once
    assert pacer.current_rate("A") == 4.0
    # WHEN a call sent after the slowdown is refused too, THEN it halves again
    _send(pacer, clock, "A", throttled=True)
    assert pacer.current_rate("A") == 2.0


def test_the_rate_never_drops_below_its_floor() -> None:
    pacer, clock = fake_pacer(10.0, 13, margin=0.0)
    for _ in range(20):
        _send(pacer, clock, "A", throttled=True)
    assert pacer.current_rate("A") == pytest.approx(10.0 / MAX_SLOWDOWN)


def test_windows_without_a_refusal_give_the_rate_back_step_by_step() -> None:
    pacer, clock = fake_pacer(10.0, 14, margin=0.0)
    _send(pacer, clock, "A", throttled=True)
    seen = [pacer.current_rate("A")]
    while pacer.current_rate("A") < 10.0:
        clock.sleep(1.0)  # a full window ...
        _send(pacer, clock, "A")  # ... and an answer that was not refused
        seen.append(pacer.current_rate("A"))
    assert seen == pytest.approx([5.0 + i * 10.0 / RECOVERY_STEPS for i in range(len(seen))])
    # AND at full rate the action is paced exactly as before any throttling
    assert "A" not in pacer._slowdowns


def test_an_action_idle_for_many_windows_comes_back_at_full_rate() -> None:
    pacer, clock = fake_pacer(10.0, 15, margin=0.0)
    _send(pacer, clock, "A", throttled=True)
    clock.sleep(60.0)
    _send(pacer, clock, "A")
    assert pacer.current_rate("A") == 10.0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (type("E", (Exception,), {"code": "Throttling.User"})(), True),
        (type("E", (Exception,), {"code": "ServiceUnavailable", "status": 429})(), True),
        (type("E", (Exception,), {"code": "Throttling", "throttled": False})(), False),
        (ConnectionError("reset"), False),
        (type("E", (Exception,), {"code": "InvalidParameter", "status": 400})(), False),
    ],
)
def test_what_counts_as_a_throttled_answer(error: BaseException, expected: bool) -> None:
    assert is_throttled(error) is expected


BASE_ENV = {
    "OTA_REGION": "cn-shanghai",
    "OTA_NOTIFY_TOPIC": "outcomes",
    "OTA_MNS_ENDPOINT": "http://127.0.0.1:1",
}


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 10.0), ({"OTA_IOT_QPS": "2.5"}, 2.5), ({"OTA_IOT_QPS": " 1 "}, 1.0)],
)
def test_the_instance_share_comes_from_ota_iot_qps(env: Mapping[str, str], expected: float) -> None:
    assert Settings.from_env({**BASE_ENV, **env}).iot_qps == expected


@pytest.mark.parametrize("text", ["0", "-1", "fast", "inf", "nan"])
def test_a_rate_that_is_not_a_positive_number_is_a_settings_error(text: str) -> None:
    with pytest.raises(SettingsError, match="OTA_IOT_QPS"):
        Settings.from_env({**BASE_ENV, "OTA_IOT_QPS": text})
