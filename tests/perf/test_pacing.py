"""Client-side IoT pacing: calls per action spaced 1/rate apart, instances de-synchronised.

A fake clock stands in for time, so no test waits or asserts on wall-clock durations.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from ota_release.adapters import CloudCredentials
from ota_release.adapters.iot import ActionPacer, IotOtaPlatform, shared_pacer
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


@pytest.mark.parametrize(("rate", "allowed"), [(2.0, 2), (3.0, 3), (2.5, 2), (0.5, 1)])
def test_no_one_second_window_holds_more_calls_than_the_rate(rate: float, allowed: int) -> None:
    clock = FakeClock()
    pacer = ActionPacer(rate, clock=clock, sleep=clock.sleep, rng=random.Random(1))
    moments = []
    for _ in range(12):
        pacer.acquire("CreateOTAFirmware")
        moments.append(clock.now)
    assert most_in_any_window(moments, 1.0) == allowed


def test_serial_calls_reach_the_rate_over_time() -> None:
    # The margin aside, pacing costs no throughput: 2 per second stays 2 per second.
    clock = FakeClock()
    pacer = ActionPacer(2.0, margin=0.0, clock=clock, sleep=clock.sleep, rng=random.Random(2))
    pacer.acquire("A")
    first = clock.now
    for _ in range(20):
        pacer.acquire("A")
    assert clock.now - first == pytest.approx(10.0)


def test_the_first_call_waits_a_random_part_of_one_slot() -> None:
    # Instances started by the same burst must not all fire at the same instant.
    waits = {
        ActionPacer(1.0, margin=0.0, clock=FakeClock(), rng=random.Random(seed)).reserve("A")
        for seed in range(20)
    }
    assert all(0 <= w < 1.0 for w in waits)
    assert len(waits) == 20, "each pacer draws its own offset"


def test_actions_are_paced_independently_like_the_platforms_per_action_limit() -> None:
    clock = FakeClock()
    pacer = ActionPacer(1.0, margin=0.0, clock=clock, sleep=clock.sleep, rng=random.Random(3))
    pacer.acquire("ListOTAFirmware")
    assert pacer.reserve("CreateOTAFirmware") < 1.0  # only its own first-call offset
    assert pacer.reserve("ListOTAFirmware") == pytest.approx(1.0)


def test_an_idle_pacer_lets_the_next_call_through_at_once() -> None:
    clock = FakeClock()
    pacer = ActionPacer(1.0, clock=clock, sleep=clock.sleep, rng=random.Random(5))
    pacer.acquire("A")
    clock.sleep(30)
    assert pacer.reserve("A") == 0.0


def test_concurrent_callers_never_crowd_a_window() -> None:
    clock = FakeClock()
    pacer = ActionPacer(10.0, clock=clock, rng=random.Random(7))
    slots: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = pacer.reserve("CreateOTAFirmware")
        with lock:
            slots.append(clock.now + wait)

    threads = [threading.Thread(target=take) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slots) == 50
    assert most_in_any_window(sorted(slots), 1.0) == 10


def test_one_pacer_per_rate_is_shared_by_every_invocation_of_an_instance() -> None:
    assert shared_pacer(3.5) is shared_pacer(3.5)
    assert shared_pacer(3.5) is not shared_pacer(4.5)


def test_the_adapter_takes_a_slot_before_every_call() -> None:
    taken: list[str] = []

    class Recorder(ActionPacer):
        def acquire(self, action: str) -> float:
            taken.append(action)
            return 0.0

    class Body:
        success = True
        data = None
        request_id = "r"

    platform = IotOtaPlatform(
        CloudCredentials("ak", "sk"), "127.0.0.1:1", "cn-shanghai", pacer=Recorder(1.0)
    )

    def answer(client: Any, models: Any) -> Any:
        return type("Response", (), {"body": Body()})()

    platform._sdk = lambda: (object(), None)  # type: ignore[method-assign] # no SDK needed
    platform._invoke("CreateOTAFirmware", answer)
    assert taken == ["CreateOTAFirmware"]


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
