#!/usr/bin/env python3
"""Seeded soak run: many uploads under mixed faults, then an account of every one of them.

Usage::

    python scripts/soak.py                     # 600 uploads, seed 7 (what `make soak` runs)
    python scripts/soak.py --uploads 200 --seed 3

It starts a :class:`~localcloud.cloud.LocalCloud` with a :class:`~localcloud.faults.FaultPlan`
on OSS, IoT and MNS and crash points inside the function, uploads releases in every order
(firmware first, sidecar first, both at once), delivers some trigger events several times
at once, uploads invalid sidecars, then re-uploads identical content and different content
under registered names. It then checks the guarantees of docs/reliability.md and prints the
figures. Exit status 1 when any guarantee was broken.

``tests/reliability`` runs a shorter version of the same workload (:func:`run`), so the
suite and the soak cannot drift apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# localcloud is dev-only and not installed: it is imported from the repository root, which
# `python scripts/soak.py` does not put on sys.path by itself (sys.path[0] is scripts/).
_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from localcloud.cloud import LocalCloud  # noqa: E402
from localcloud.faults import FaultPlan, FaultRule, crash_env, read_ledger, rule  # noqa: E402
from localcloud.oss.events import event_time  # noqa: E402
from ota_release.results import FINAL_OUTCOMES, final_key, waiting_key  # noqa: E402

#: Outcomes each upload may legitimately end in, by what the upload was.
ALLOWED = {
    "release": {"waiting", "created"},
    "invalid_firmware": {"waiting", "rejected"},
    "invalid_sidecar": {"rejected"},
    "reupload": {"already_registered"},
    "conflict": {"conflict"},
}
SCENARIOS = ("firmware_first", "sidecar_first", "same_instant", "duplicated", "yaml_sha256")
_RETRY_LINE = re.compile(r"failed with \S+, retry \d+ in")


def mixed_faults(seed: int) -> FaultPlan:
    """Every kind of service fault, on the operations the function uses, a few % each."""
    # PutObject: the function's outcome objects (and the workload's own uploads, which
    # Workload.put retries as any uploader would).
    oss_ops = ("HeadObject", "GetObject", "PostObject", "PutObject")
    rules: list[FaultRule] = [
        rule("oss", "latency", 0.03, *oss_ops, seconds=0.02),
        rule("oss", "error500", 0.03, *oss_ops),
        rule("oss", "error503", 0.02, *oss_ops),
        rule("oss", "throttle", 0.02, *oss_ops),
        rule("oss", "drop", 0.02, *oss_ops),
        rule("iot", "error503", 0.03),
        rule("iot", "error500", 0.02),
        rule("iot", "throttle", 0.03, retry_after_ms=50),
        rule("iot", "drop", 0.02),
        rule("iot", "timeout", 0.01, seconds=0.1),
        rule("mns", "error500", 0.03, "PublishMessage"),
        rule("mns", "error503", 0.02, "PublishMessage"),
        rule("mns", "drop", 0.02, "PublishMessage"),
    ]
    return FaultPlan(rules, seed=seed)


#: Crash points in the function: share of first visits that crash, at most 2 per key/point.
MIXED_CRASHES = {"after_digest": 0.08, "after_create": 0.12, "before_notify": 0.04}
MIXED_CRASHES_NOTIFY = {"during_notify": 0.08}


@dataclass
class Upload:
    """One PutObject the workload made, and what it was for."""

    key: str
    etag: str
    time: str  # the trigger event's eventTime: tells an identical re-upload apart
    role: str  # a key of ALLOWED
    release: str


@dataclass
class Release:
    name: str
    firmware_key: str
    firmware: bytes
    sidecar_key: str
    sidecar: bytes
    valid: bool
    sign_method: str = "MD5"
    scenario: str = "firmware_first"

    @property
    def sign(self) -> str:
        algo = hashlib.sha256 if self.sign_method == "SHA256" else hashlib.md5
        return algo(self.firmware).hexdigest()


@dataclass
class Report:
    """Figures and every broken guarantee (empty lists when all held)."""

    seed: int
    uploads: int = 0
    releases: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    crashes: Counter[str] = field(default_factory=Counter)
    in_function_retries: int = 0
    fc_retries: int = 0
    duplicate_events: int = 0
    notifications: int = 0
    duplicate_notifications: int = 0
    on_failure: int = 0
    double_registered: list[str] = field(default_factory=list)
    missing_registration: list[str] = field(default_factory=list)
    unexpected_registration: list[str] = field(default_factory=list)
    wrong_content: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    unexpected_outcomes: list[str] = field(default_factory=list)
    created_ids_disagree: list[str] = field(default_factory=list)
    registered_without_notification: list[str] = field(default_factory=list)
    outcome_objects: int = 0
    #: releases whose outcome object is not the last final notification about the
    #: objects stored now (or is missing, or holds a waiting)
    outcome_not_current: list[str] = field(default_factory=list)
    #: objects the function wrote anywhere but a release's two outcome keys
    stray_objects: list[str] = field(default_factory=list)

    PROBLEMS = (
        "double_registered",
        "missing_registration",
        "unexpected_registration",
        "wrong_content",
        "lost",
        "unexpected_outcomes",
        "created_ids_disagree",
        "registered_without_notification",
        "outcome_not_current",
        "stray_objects",
    )

    def problems(self) -> dict[str, list[str]]:
        return {name: getattr(self, name) for name in self.PROBLEMS if getattr(self, name)}

    def figures(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "uploads": self.uploads,
            "releases": self.releases,
            "seconds": round(self.seconds, 1),
            "outcomes": dict(sorted(self.outcomes.items())),
            "faults_injected": self.faults,
            "crashes": dict(sorted(self.crashes.items())),
            "retries_in_function": self.in_function_retries,
            "retries_by_fc": self.fc_retries,
            "duplicate_events_delivered": self.duplicate_events,
            "notifications": self.notifications,
            "duplicate_notifications_absorbed": self.duplicate_notifications,
            "on_failure_records": self.on_failure,
            "outcome_objects": self.outcome_objects,
            "lost": len(self.lost),
            "problems": {k: len(v) for k, v in self.problems().items()},
        }


def content(seed: str, size: int) -> bytes:
    """``size`` bytes determined by ``seed``: the same seed always gives the same firmware."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def plan_releases(count: int, seed: int, prefix: str) -> list[Release]:
    """``count`` releases: valid ones in every scenario, and invalid sidecars (1 in 8)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        name = f"soak-{seed}-{i}"
        fw_key = f"{prefix}soak/{seed}/{i}/dev-{i}.bin"
        firmware = content(f"{seed}-{i}", rng.randint(1_000, 40_000))
        if rng.random() < 0.125:
            sidecar = json.dumps({"version": "1.0.0", "name": name, "type": "diff"}).encode()
            out.append(Release(name, fw_key, firmware, fw_key + ".ota.json", sidecar, False))
            continue
        scenario = rng.choice(SCENARIOS)
        if scenario == "yaml_sha256":
            sidecar = f'version: "1.0.{i}"\nname: {name}\nsign_method: sha-256\n'.encode()
            out.append(
                Release(name, fw_key, firmware, fw_key + ".ota.yaml", sidecar, True, "SHA256")
            )
        else:
            sidecar = json.dumps({"version": f"1.0.{i}", "name": name}).encode()
            out.append(Release(name, fw_key, firmware, fw_key + ".ota.json", sidecar, True))
        out[-1].scenario = scenario
    return out


class Workload:
    """Drives the uploads and keeps the ledger of what was uploaded."""

    def __init__(self, cloud: LocalCloud, seed: int) -> None:
        self.cloud = cloud
        self.rng = random.Random(seed + 1)
        self.bucket = cloud.sdk_bucket()
        self.uploads: list[Upload] = []
        self.duplicate_keys: dict[str, int] = {}
        self.duplicates_delivered = 0
        self._lock = threading.Lock()
        self._unsubscribe = cloud.oss.subscribe(self._duplicate)

    def close(self) -> None:
        self._unsubscribe()

    def _duplicate(self, event: Mapping[str, Any]) -> None:
        """Deliver chosen events again, several copies at once (at-least-once delivery)."""
        records = event.get("events") or []
        key = records[0]["oss"]["object"]["key"] if records else None
        copies = self.duplicate_keys.get(key or "", 0)
        assert self.cloud.fc is not None
        for _ in range(copies):
            self.cloud.fc.on_oss_event(json.loads(json.dumps(event)))
        with self._lock:
            self.duplicates_delivered += copies

    def put(self, key: str, data: bytes, role: str, release: str) -> None:
        result = self._put_retried(key, data)
        # Read back in-process (no HTTP, so no injected fault): the event's eventTime is
        # the object's Last-Modified, and no other upload writes this key concurrently.
        stored = self.cloud.oss.head(self.cloud.bucket, key)
        assert stored is not None
        with self._lock:
            self.uploads.append(
                Upload(key, result.etag, event_time(stored.last_modified), role, release)
            )

    def _put_retried(self, key: str, data: bytes) -> Any:
        """PutObject, again after an injected 5xx, throttle or reset (which stored nothing:
        the fault seam runs before OSS acts), as an uploader's SDK retry would."""
        import oss2

        for attempt in range(10):
            try:
                return self.bucket.put_object(key, data)
            except (oss2.exceptions.ServerError, oss2.exceptions.RequestError) as exc:
                status = getattr(exc, "status", 0) or 0
                if attempt == 9 or not (status < 0 or status >= 500 or status == 429):
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def release(self, r: Release) -> None:
        fw_role = "release" if r.valid else "invalid_firmware"
        sc_role = "release" if r.valid else "invalid_sidecar"
        if r.scenario == "duplicated":
            self.duplicate_keys[r.firmware_key] = self.rng.randint(1, 3)
            self.duplicate_keys[r.sidecar_key] = self.rng.randint(1, 3)
        if r.scenario == "same_instant":
            start = threading.Barrier(2)

            def put_after_barrier(key: str, data: bytes) -> None:
                start.wait()
                self.put(key, data, sc_role if key == r.sidecar_key else fw_role, r.name)

            threads = [
                threading.Thread(target=put_after_barrier, args=(r.firmware_key, r.firmware)),
                threading.Thread(target=put_after_barrier, args=(r.sidecar_key, r.sidecar)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elif r.scenario == "sidecar_first":
            self.put(r.sidecar_key, r.sidecar, sc_role, r.name)
            self.await_outcome(r.sidecar_key)
            self.put(r.firmware_key, r.firmware, fw_role, r.name)
        else:
            self.put(r.firmware_key, r.firmware, fw_role, r.name)
            if r.scenario == "firmware_first":
                self.await_outcome(r.firmware_key)
            self.put(r.sidecar_key, r.sidecar, sc_role, r.name)

    def await_outcome(self, key: str, timeout: float = 30.0) -> None:
        """Let the first half be processed alone, so its ``waiting`` outcome is exercised.

        Gives up quietly after ``timeout``: the event may be retrying or on its way to the
        failure topic, which the accounting covers.
        """
        topic = self.cloud.notify_topic
        needle = json.dumps(key, ensure_ascii=False)[1:-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.cloud.mns.messages(topic):
                if needle in message.body and json.loads(message.body)["object"]["key"] == key:
                    return
            time.sleep(0.05)


def failure_records(cloud: LocalCloud) -> list[tuple[str, str, str]]:
    """(key, etag, eventTime) of every event that reached the OnFailure topic."""
    out: list[tuple[str, str, str]] = []
    if cloud.failure_topic is None:
        return out
    for message in cloud.mns.messages(cloud.failure_topic):
        payload = json.loads(json.loads(message.body)["requestPayload"])
        for record in payload.get("events", []):
            obj = record["oss"]["object"]
            out.append((obj["key"], obj["eTag"], record["eventTime"]))
    return out


def account(cloud: LocalCloud, work: Workload, releases: list[Release], report: Report) -> Report:
    """Check every guarantee against what IoT holds and what the topics received."""
    by_name = {r.name: r for r in releases}
    packages: dict[str, list[Any]] = {}
    for package in cloud.iot.firmwares():
        packages.setdefault(package.firmware_name, []).append(package)
    failed = set(failure_records(cloud))
    report.on_failure = len(failed)
    failed_releases = {u.release for u in work.uploads if (u.key, u.etag, u.time) in failed}

    notes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    ids: set[str] = set()
    for message in cloud.mns.messages(cloud.notify_topic):
        body = json.loads(message.body)
        obj = body["object"]
        notes.setdefault((obj["key"], obj["etag"], body["event"]["time"]), []).append(body)
        ids.add(body["message_id"])
        report.notifications += 1
        report.outcomes[body["outcome"]] += 1
    report.duplicate_notifications = report.notifications - len(ids)

    for name, found in packages.items():
        if name not in by_name or not by_name[name].valid:
            report.unexpected_registration.append(name)
        elif len(found) > 1:
            report.double_registered.append(name)
        elif found[0].firmware_sign != by_name[name].sign:
            report.wrong_content.append(name)
    for r in releases:
        if r.valid and r.name not in packages and r.name not in failed_releases:
            report.missing_registration.append(r.name)

    created_ids: dict[str, set[str]] = {}
    for upload in work.uploads:
        got = notes.get((upload.key, upload.etag, upload.time), [])
        if not got and (upload.key, upload.etag, upload.time) not in failed:
            report.lost.append(upload.key)
        for body in got:
            if body["outcome"] not in ALLOWED[upload.role]:
                report.unexpected_outcomes.append(
                    f"{upload.key} ({upload.role}): {body['outcome']} {body['summary']}"
                )
            if body["outcome"] == "created":
                created_ids.setdefault(upload.release, set()).add(body["firmware"]["id"])
    for name, found in packages.items():
        seen = created_ids.get(name, set())
        if len(seen) > 1 or (seen and seen != {found[0].firmware_id}):
            report.created_ids_disagree.append(name)
        if not seen and name not in failed_releases:
            report.registered_without_notification.append(name)
    account_outcome_objects(cloud, releases, failed_releases, report)
    return report


def account_outcome_objects(
    cloud: LocalCloud, releases: list[Release], failed_releases: set[str], report: Report
) -> None:
    """One current outcome per release (docs/notifications.md, "Outcome objects").

    For every release, the final outcome object is the last final notification about the
    objects stored now (same ``message_id``, so the same content), its ``.waiting``
    object holds only a waiting, and the function wrote nothing else anywhere. A release
    with an event on the OnFailure topic may lack its outcome object, as it may lack its
    notification.
    """
    results = cloud.results_prefix
    bodies = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
    expected_keys: set[str] = set()
    for r in releases:
        expected_keys |= {final_key(results, r.firmware_key), waiting_key(results, r.firmware_key)}
        problem = _outcome_problem(cloud, r, bodies, r.name in failed_releases)
        if problem:
            report.outcome_not_current.append(f"{r.firmware_key}: {problem}")
    written = cloud.oss.list_keys(cloud.bucket, results)
    report.outcome_objects = len(written)
    report.stray_objects += sorted(set(written) - expected_keys)
    watched = {u for r in releases for u in (r.firmware_key, r.sidecar_key)}
    report.stray_objects += sorted(
        key
        for key in cloud.oss.list_keys(cloud.bucket, "")
        if not key.startswith(results) and key not in watched
    )


def _outcome_problem(
    cloud: LocalCloud, r: Release, bodies: list[dict[str, Any]], on_failure: bool
) -> str | None:
    """Why the release's outcome objects are not its one current outcome, or None."""
    fw, sc = (cloud.oss.head(cloud.bucket, key) for key in (r.firmware_key, r.sidecar_key))
    now = (fw.etag if fw else None, sc.etag if sc else None)
    about_now = [
        b
        for b in bodies
        if b["outcome"] in FINAL_OUTCOMES
        and b["firmware_key"] == r.firmware_key
        and (b.get("firmware_etag"), b.get("sidecar_etag")) == now
    ]
    final = _stored(cloud, final_key(cloud.results_prefix, r.firmware_key))
    waiting = _stored(cloud, waiting_key(cloud.results_prefix, r.firmware_key))
    if waiting is not None and waiting["outcome"] != "waiting":
        return f"the waiting object holds {waiting['outcome']}"
    if final is not None and final["outcome"] not in FINAL_OUTCOMES:
        return f"the final object holds {final['outcome']}"
    if not about_now:
        return None if final is None or on_failure else "an outcome no notification reports"
    if final is None:
        return None if on_failure else f"no outcome object ({about_now[-1]['outcome']} published)"
    if final["message_id"] != about_now[-1]["message_id"]:
        return f"holds {final['outcome']}, the last notification is {about_now[-1]['outcome']}"
    return None


def _stored(cloud: LocalCloud, key: str) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(cloud.oss.read_object(cloud.bucket, key))
    except FileNotFoundError:
        return None
    return doc


def _count_retry_lines(cloud: LocalCloud) -> int:
    assert cloud.fc is not None
    return len(_RETRY_LINE.findall(cloud.fc.logs()))


@contextmanager
def soak_cloud(
    seed: int,
    faults: FaultPlan,
    crashes: Mapping[str, float],
    ledger: Path,
    *,
    max_instances: int = 4,
    instance_concurrency: int | None = 1,
) -> Iterator[LocalCloud]:
    """By default one invocation per process on up to four instances, so each injected
    crash ends exactly the invocation it hit; ``instance_concurrency=None`` runs
    template.yml's shape, where a crash also ends every invocation sharing the process."""
    env = crash_env(crashes, seed=seed, ledger=ledger, max_per_key=2) if crashes else {}
    with LocalCloud(
        flavour="fun",
        faults=faults,
        env_overrides=env,
        max_instances=max_instances,
        instance_concurrency=instance_concurrency,
    ) as cloud:
        yield cloud


def run(
    uploads: int,
    seed: int,
    *,
    faults: FaultPlan | None = None,
    crashes: Mapping[str, float] | None = None,
    idle_timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
    max_instances: int = 4,
    instance_concurrency: int | None = 1,
) -> Report:
    """Upload about ``uploads`` objects under faults and account for every one of them."""
    faults = faults if faults is not None else mixed_faults(seed)
    crashes = dict(crashes) if crashes is not None else {**MIXED_CRASHES, **MIXED_CRASHES_NOTIFY}
    report = Report(seed)
    started = time.monotonic()
    # Phase 1 uploads two objects per release; phase 2 re-uploads about a fifth of them.
    releases = plan_releases(max(1, round(uploads / 2.2)), seed, "firmware/")
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        ledger = Path(tmp) / "crashes.log"
        with soak_cloud(
            seed,
            faults,
            crashes,
            ledger,
            max_instances=max_instances,
            instance_concurrency=instance_concurrency,
        ) as cloud:
            work = Workload(cloud, seed)
            try:
                _phase_one(cloud, work, releases, idle_timeout, progress)
                _phase_two(cloud, work, releases, uploads, seed, idle_timeout, progress)
                faults.active = False
                report.uploads = len(work.uploads)
                report.releases = len(releases)
                report.faults = faults.injected_by_kind()
                report.crashes = Counter(entry[0] for entry in read_ledger(ledger))
                report.in_function_retries = _count_retry_lines(cloud)
                assert cloud.fc is not None
                report.fc_retries = sum(1 for i in cloud.fc.invocations if i.attempt > 1)
                report.duplicate_events = work.duplicates_delivered
                account(cloud, work, releases, report)
            finally:
                work.close()
    report.seconds = time.monotonic() - started
    return report


def _wait(cloud: LocalCloud, timeout: float) -> None:
    if not cloud.wait_idle(timeout):
        raise TimeoutError(f"the local FC did not go idle within {timeout} s")


def _phase_one(
    cloud: LocalCloud,
    work: Workload,
    releases: list[Release],
    timeout: float,
    progress: Callable[[str], None] | None,
) -> None:
    # Several uploaders at once, like a CI fleet publishing releases.
    def upload_all(chunk: list[Release]) -> None:
        for r in chunk:
            work.release(r)

    threads = [threading.Thread(target=upload_all, args=(releases[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if progress:
        progress(f"phase 1: {len(work.uploads)} uploads made, waiting for the function")
    _wait(cloud, timeout)


def _phase_two(
    cloud: LocalCloud,
    work: Workload,
    releases: list[Release],
    target: int,
    seed: int,
    timeout: float,
    progress: Callable[[str], None] | None,
) -> None:
    """Identical re-uploads (already_registered) and new bytes under a taken name (conflict)."""
    rng = random.Random(seed + 2)
    registered = {p.firmware_name for p in cloud.iot.firmwares()}
    candidates = [r for r in releases if r.valid and r.name in registered]
    rng.shuffle(candidates)
    for r in candidates[: max(0, target - len(work.uploads))]:
        if rng.random() < 0.5:
            work.put(r.sidecar_key, r.sidecar, "reupload", r.name)
        else:
            work.put(r.firmware_key, r.firmware + b"tampered", "conflict", r.name)
    if progress:
        progress(f"phase 2: {len(work.uploads)} uploads made, waiting for the function")
    _wait(cloud, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-instances", type=int, default=4)
    parser.add_argument(
        "--instance-concurrency",
        type=int,
        default=1,
        help="invocations per instance; 0 = template.yml's (default 1: crash isolation)",
    )
    args = parser.parse_args(argv)
    print(f"soak: {args.uploads} uploads, seed {args.seed}", flush=True)
    report = run(
        args.uploads,
        args.seed,
        progress=lambda line: print(line, flush=True),
        max_instances=args.max_instances,
        instance_concurrency=args.instance_concurrency or None,
    )
    print(json.dumps(report.figures(), indent=2))
    for name, items in report.problems().items():
        print(f"BROKEN {name}: {items[:10]}", file=sys.stderr)
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
