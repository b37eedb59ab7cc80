"""A sidecar's verification job is started once, also when FC retries after a crash.

Crash points need the stand-in's machinery in the function's instances (like every crash
test, in tests/reliability rather than the e2e suite, which also runs on CPython 3.10).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import FaultPlan, crash_env, read_ledger
from localcloud.iot import JOB_TYPE_VERIFY

pytestmark = pytest.mark.reliability

DEVICES = ["cam-lab-01", "cam-lab-02"]


def _bytes(seed: str, size: int = 100_000) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // 32 + 1))[:size]


def test_a_verify_job_is_created_once_when_fc_retries_after_the_create(tmp_path: Path) -> None:
    # GIVEN a function that dies right after every successful CreateOTAFirmware
    ledger = tmp_path / "crashes.log"
    env = crash_env({"after_create": 1.0}, seed=1, ledger=ledger)
    with LocalCloud(flavour="fun", env_overrides=env, faults=FaultPlan()) as cloud:
        bucket = cloud.sdk_bucket()
        fw_key = f"{cloud.prefix}crash/cam-5.0.0.bin"
        sidecar = {"version": "5.0.0", "product_key": "a1Cam", "verify": {"devices": DEVICES}}
        bucket.put_object(fw_key, _bytes(fw_key))
        assert cloud.wait_idle(60)
        bucket.put_object(fw_key + ".ota.json", json.dumps(sidecar).encode())
        assert cloud.wait_idle(120)
        # THEN the crash happened, and FC's retry found its own package and started the job
        assert len(read_ledger(ledger)) >= 1
        (package,) = cloud.iot.firmwares()
        jobs = cloud.iot.backend.jobs_of(package.firmware_id)
        assert [j.job_type for j in jobs] == [JOB_TYPE_VERIFY]
        notes = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
        created = [n for n in notes if n["outcome"] == "created"]
        assert created and {n["verification"]["job_id"] for n in created} == {jobs[0].job_id}
