"""Transient faults: retried with backoff, then FC's retries, then the failure topic.

And no retry storm: under sustained throttling the calls IoT receives stay near its limit.
"""

from __future__ import annotations

import json
import re
import threading

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import FaultPlan, calls_per_second, rule
from scripts import soak

pytestmark = pytest.mark.reliability

FAST_RETRIES = {"OTA_RETRY_BASE_SECONDS": "0.001", "OTA_RETRY_CAP_SECONDS": "0.005"}


def _valid_release(index: int, prefix: str, scenario: str) -> soak.Release:
    name = f"{prefix.strip('/').replace('/', '-')}-{index}"
    fw_key = f"firmware/{prefix}{index}/dev.bin"
    sidecar = json.dumps({"version": f"2.0.{index}", "name": name}).encode()
    firmware = soak.content(name, 4_000 + index)
    return soak.Release(
        name, fw_key, firmware, fw_key + ".ota.json", sidecar, True, scenario=scenario
    )


def test_failure_that_outlives_every_retry_lands_on_the_failure_topic_and_nothing_else() -> None:
    # GIVEN CreateOTAFirmware answering 503 every time
    plan = FaultPlan([rule("iot", "error503", 1.0, "CreateOTAFirmware")], seed=3)
    with LocalCloud(flavour="fun", faults=plan, env_overrides=FAST_RETRIES) as cloud:
        work = soak.Workload(cloud, seed=3)
        release = _valid_release(1, "exhaust/", "firmware_first")
        # WHEN the firmware, then its sidecar, are uploaded
        work.release(release)
        assert cloud.wait_idle(120)
        work.close()
        notes = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
        failures = soak.failure_records(cloud)
        creates = cloud.iot.calls["CreateOTAFirmware"]
        packages = cloud.iot.firmwares()
    # THEN the sidecar's event was tried 6 times in each of FC's 4 attempts, no more,
    assert creates == 6 * 4
    # AND it reached the OnFailure topic, with no outcome published for it
    assert [key for key, _, _ in failures] == [release.sidecar_key]
    assert [(n["object"]["key"], n["outcome"]) for n in notes] == [
        (release.firmware_key, "waiting")
    ]
    assert packages == []


def test_transient_faults_on_every_service_are_retried_to_one_created_outcome() -> None:
    # GIVEN every service failing a third of its calls, in every way
    plan = FaultPlan(
        [
            rule("oss", "drop", 0.15, "HeadObject", "GetObject", "PostObject"),
            rule("oss", "error503", 0.15, "HeadObject", "GetObject", "PostObject"),
            rule("iot", "throttle", 0.15, retry_after_ms=20),
            rule("iot", "drop", 0.1),
            rule("iot", "error500", 0.1),
            rule("mns", "drop", 0.15, "PublishMessage"),
            rule("mns", "error500", 0.15, "PublishMessage"),
        ],
        seed=5,
    )
    with LocalCloud(flavour="fun", faults=plan, env_overrides=FAST_RETRIES) as cloud:
        work = soak.Workload(cloud, seed=5)
        releases = [_valid_release(i, "flaky/", "same_instant") for i in range(6)]
        for r in releases:
            work.release(r)
        assert cloud.wait_idle(120)
        work.close()
        retried = re.findall(r"failed with (\S+), retry", cloud.fc.logs() if cloud.fc else "")
        report = soak.account(cloud, work, releases, soak.Report(5))
    # THEN each release was registered once and notified, nothing lost
    assert report.problems() == {}
    assert report.outcomes["created"] >= len(releases)
    # AND the retries really covered throttling, resets and 5xx
    assert {"Throttling.User", "ServiceUnavailable"} <= set(retried)
    assert any("Connection" in code or "RequestError" in code for code in retried), retried


def test_sustained_throttling_keeps_the_call_rate_near_the_limit() -> None:
    # GIVEN IoT limited to 4 calls per second per action, 4 instances, 28 events at once
    qps = 4
    plan = FaultPlan()  # no faults: it only logs when each call arrived
    with LocalCloud(flavour="fun", faults=plan, iot_qps=qps, max_instances=4) as cloud:
        work = soak.Workload(cloud, seed=9)
        releases = [_valid_release(i, "burst/", "same_instant") for i in range(14)]
        threads = [threading.Thread(target=work.release, args=(r,)) for r in releases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert cloud.wait_idle(300)
        work.close()
        throttled = cloud.fc.logs().count("Throttling.User") if cloud.fc else 0
        report = soak.account(cloud, work, releases, soak.Report(9))
        rates = {}
        for action in ("ListOTAFirmware", "GenerateOTAUploadURL", "CreateOTAFirmware"):
            per_second = calls_per_second(plan.call_times("iot", action))
            rates[action] = sum(per_second) / len(per_second)
    # THEN IoT really throttled (28 events at once, each instance allowing itself 10
    # calls/s against a limit of 4), and the releases still all went through once. How
    # many calls it refused is the client's to keep small (pacing.py slows down on the
    # first refusal), so the count is not a measure of the scenario: any refusal is.
    assert throttled > 0
    assert report.problems() == {}
    # AND the calls IoT received, rejected ones included, stayed near the limit: a
    # refusal halves the instance's rate for that action (adapters/pacing.py), so its
    # many throttled invocations do not each keep retrying at the instance's full share;
    # within 2x of a limit of 4, where immediate retries would reach ~50x
    for action, rate in rates.items():
        assert rate <= 2.0 * qps, f"{action}: {rate:.2f} calls/s against a limit of {qps}"
