"""Exactly one firmware per release, and every upload accounted for, under mixed faults.

The workload (scripts/soak.py) uploads releases in every order, delivers some events
several times at once, crashes the function after the digest, after CreateOTAFirmware and
around the notification, and injects 5xx, throttling, latency and dropped connections into
OSS, IoT and MNS. The accounting then compares IoT's packages and both topics with what
was uploaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import FaultPlan, crash_env, read_ledger
from scripts import soak

pytestmark = pytest.mark.reliability


def _assert_every_guarantee_held(report: soak.Report) -> None:
    assert report.double_registered == [], "a release was registered more than once"
    assert report.missing_registration == [], "a valid release was never registered"
    assert report.unexpected_registration == [], "an invalid release was registered"
    assert report.wrong_content == [], "a package does not hold its release's bytes"
    assert report.lost == [], "uploads with neither a notification nor a failure record"
    assert report.unexpected_outcomes == []
    assert report.created_ids_disagree == [], "'created' named another package"
    assert report.registered_without_notification == []
    assert report.outcome_not_current == [], "an outcome object is not the current outcome"
    assert report.stray_objects == [], "the function wrote outside its outcome keys"


def test_mixed_workload_under_faults_registers_each_release_once_and_loses_nothing() -> None:
    # GIVEN ~40 uploads in every order, duplicated events, crashes and service faults
    report = soak.run(40, seed=11)
    # THEN every guarantee held
    _assert_every_guarantee_held(report)
    # AND the run really exercised what it claims to survive (not a vacuous pass)
    kinds = {name.split(".")[1] for name in report.faults}
    assert {"error500", "throttle", "drop"} <= kinds, report.faults
    assert sum(report.crashes.values()) > 0, "no crash point fired"
    assert report.fc_retries > 0 and report.in_function_retries > 0
    assert report.duplicate_events > 0
    assert report.duplicate_notifications > 0, "duplicates are expected and must be absorbed"
    assert {"created", "rejected", "conflict", "already_registered"} <= set(report.outcomes)
    assert report.outcome_objects > 0


@pytest.mark.slow
def test_two_hundred_uploads_under_mixed_faults_keep_every_guarantee() -> None:
    report = soak.run(200, seed=23)
    print(json.dumps(report.figures(), indent=2))
    _assert_every_guarantee_held(report)
    assert report.uploads >= 200


def _upload_both_halves_at_once(
    tmp_path: Path, crashes: dict[str, float], concurrency: int
) -> tuple[soak.Release, list[Any], list[Any], list[tuple[str, str, str]], int, int]:
    """One valid release, both halves at once (two events), with the given crash points.

    Returns the release, its packages, the notifications, the failure records, the
    number of crashed attempts and of ledger entries. With ``concurrency`` > 1 both events
    may share an instance, and a crash then also ends the other's attempt (as on FC), so
    crashed attempts can outnumber the crash points that fired (the ledger).
    """
    ledger = tmp_path / "crashes.log"
    env = crash_env(crashes, seed=1, ledger=ledger)
    with LocalCloud(
        flavour="fun", env_overrides=env, faults=FaultPlan(), instance_concurrency=concurrency
    ) as cloud:
        work = soak.Workload(cloud, seed=1)
        (release,) = soak.plan_releases(1, seed=5, prefix="firmware/crash/")
        release.scenario, release.valid = "same_instant", True
        work.release(release)
        assert cloud.wait_idle(120)
        work.close()
        assert cloud.fc is not None
        crashed = sum(1 for i in cloud.fc.invocations if i.status == "crashed")
        return (
            release,
            [p for p in cloud.iot.firmwares() if p.firmware_name == release.name],
            [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)],
            soak.failure_records(cloud),
            crashed,
            len(read_ledger(ledger)),
        )


# 1: one invocation per instance; 20: template.yml's InstanceConcurrency.
CONCURRENCY = pytest.mark.parametrize("concurrency", [1, 20])


@CONCURRENCY
def test_crash_after_create_is_reported_as_created_by_the_retry(
    tmp_path: Path, concurrency: int
) -> None:
    # GIVEN a function that dies right after every successful CreateOTAFirmware
    _, packages, notes, failures, crashed, ledger = _upload_both_halves_at_once(
        tmp_path, {"after_create": 1.0}, concurrency
    )
    # THEN the crash happened, and the package exists exactly once
    assert ledger >= 1
    assert crashed == ledger if concurrency == 1 else crashed >= ledger
    (package,) = packages
    # AND the retry found its own earlier attempt's package and reported it as created,
    # under one message id that names that package
    assert {n["outcome"] for n in notes} == {"created"}
    assert {n["message_id"] for n in notes} == {notes[0]["message_id"]}
    assert {n["firmware"]["id"] for n in notes} == {package.firmware_id}
    assert failures == []


@CONCURRENCY
def test_event_that_crashes_on_every_attempt_ends_on_the_failure_topic(
    tmp_path: Path, concurrency: int
) -> None:
    # GIVEN a function that dies before publishing, on every attempt
    release, packages, notes, failures, crashed, ledger = _upload_both_halves_at_once(
        tmp_path, {"before_notify": 1.0}, concurrency
    )
    # THEN the package was registered once, and no outcome was published
    assert len(packages) == 1
    assert notes == []
    # AND both events exhausted FC's retries (1 + MaxAsyncRetryAttempts 3) and reached
    # the OnFailure topic: the registered package is accounted for there
    assert sorted(key for key, _, _ in failures) == sorted(
        [release.firmware_key, release.sidecar_key]
    )
    assert crashed == 8
    assert ledger == 8 if concurrency == 1 else 1 <= ledger <= 8
