"""No log line of any path carries an access key secret, an STS token or a signature.

Everything runs at DEBUG: the function's instances (their whole stdout/stderr, where the
SDKs' own loggers end up), and this process's root logger, which sees the local services
and the CLI's fc2 client (fc2 logs request headers, Authorization included, on errors).
The paths covered: created, rejected, conflict, transient faults with retries, dropped
connections, permission denied, crashes, FC retries, and a replay through fc2 whose
invocations fail.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from localcloud.faults import FaultPlan, crash_env, rule
from ota_release.adapters import CloudCredentials
from ota_release.cli.cloud import CloudTarget
from ota_release.cli.cmd_replay import Decision, Listed, _invoke_all
from scripts import soak

pytestmark = pytest.mark.reliability

#: Authorization values and query signatures of every scheme the SDKs use.
SIGNATURE_PATTERNS = [
    re.compile(r"\b(?:OSS|MNS|FC) [\w.\-]+:[A-Za-z0-9+/]{20,}=*"),
    re.compile(r"OSS4-HMAC-SHA256 [^\n]*Signature=[0-9a-f]{32,}"),
    re.compile(r"ACS3-HMAC-SHA256 [^\n]*Signature=[0-9a-f]{32,}"),
    re.compile(r"[?&]Signature=[A-Za-z0-9%+/=]{16,}"),
    re.compile(r"x-acs-signature[^\n]{0,8}[0-9a-f]{32,}", re.IGNORECASE),
]


def _replay_through_fc2(
    cloud: LocalCloud, keys: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    target = CloudTarget(
        credentials=CloudCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
        region=None,
        source="test",
        account_id="1234567890123456",
    )
    chosen = [
        Decision(Listed(key, 10, "ETAG", datetime.now(timezone.utc)), True, "replay")
        for key in keys
    ]
    assert cloud.fc is not None
    return _invoke_all(
        target,
        cloud.endpoints.fc,
        cloud.spec.service,
        cloud.spec.name,
        None,
        chosen,
        cloud.bucket,
        "cn-shanghai",
    )


def _assert_clean(everything: str, secrets: dict[str, str]) -> None:
    for what, secret in secrets.items():
        assert secret and secret not in everything, f"the {what} reached a log line"
    for pattern in SIGNATURE_PATTERNS:
        match = pattern.search(everything)
        assert match is None, f"a signature reached a log line: {match.group(0)[:60]}..."


def test_no_secret_token_or_signature_appears_in_any_function_log_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = FaultPlan(
        [
            rule("oss", "error500", 0.2, "HeadObject", "GetObject", "PostObject"),
            rule("oss", "drop", 0.1, "HeadObject", "GetObject"),
            rule("iot", "throttle", 0.2, retry_after_ms=10),
            rule("iot", "error503", 0.1),
            rule("iot", "deny", 0.05, "GenerateOTAUploadURL"),
            rule("mns", "error500", 0.2, "PublishMessage"),
        ],
        seed=8,
    )
    env = {
        **crash_env({"after_digest": 0.3}, seed=8, ledger=tmp_path / "crashes.log"),
        "OTA_RETRY_BASE_SECONDS": "0.001",
        "OTA_RETRY_CAP_SECONDS": "0.005",
    }
    # One invocation per instance: with 30 % crashes, shared instances would take whole
    # groups of releases to the failure topic and leave the conflict path untried (this
    # test is about what the logs hold on every path, not about concurrency).
    with LocalCloud(
        flavour="fun",
        parameters={"LogLevel": "DEBUG"},
        faults=plan,
        env_overrides=env,
        instance_concurrency=1,
    ) as cloud:
        work = soak.Workload(cloud, seed=8)
        releases = soak.plan_releases(10, seed=8, prefix="firmware/secrets/")
        broken = releases[-1]
        broken.valid, broken.sidecar = False, b'{"version": "1.0.0", "type": "diff"}'
        for r in releases:
            work.release(r)
        assert cloud.wait_idle(120)
        registered = [r for r in releases if r.valid][:2]
        for r in registered:
            work.put(r.firmware_key, r.firmware + b"other", "conflict", r.name)
        assert cloud.wait_idle(120)
        work.close()
        assert cloud.fc is not None and cloud.fc.role_credential is not None
        role = cloud.fc.role_credential
        secrets = {
            "role access key secret": role.access_key_secret,
            "role STS token": role.security_token or "",
            "account access key secret": DEFAULT_ACCESS_KEY_SECRET,
            "IoT upload key secret": cloud.iot.oss_credential.access_key_secret,
        }
        instance_logs = cloud.fc.logs()
        outcomes = {m.tag for m in cloud.mns.messages(cloud.notify_topic)}
    captured = capfd.readouterr()
    everything = "\n".join([instance_logs, captured.out, captured.err])

    # The paths the docstring promises were really taken (else the scan proves little)
    assert {"created", "rejected", "conflict"} <= outcomes
    assert "failed with" in instance_logs, "no in-function retry was logged"
    assert "fault injection: crash" in instance_logs
    assert len(everything) > 10_000

    _assert_clean(everything, secrets)


def test_replay_through_fc2_keeps_signatures_out_of_the_callers_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN an application whose root logger has a handler (here: pytest's), at DEBUG
    caplog.set_level(logging.DEBUG)
    plan = FaultPlan([rule("fc", "error500", 1.0, "InvokeFunction")], seed=8)
    with LocalCloud(flavour="fun", faults=plan) as cloud:
        # WHEN `ota-release replay` invokes the function and FC answers 500
        _, failed, _ = _replay_through_fc2(cloud, ["firmware/replay/a.bin.ota.json"])
        assert failed and "HTTP 500" in failed[0]["error"], failed
        # THEN neither the secret nor the request's signature reached the log
        _assert_clean(caplog.text, {"account access key secret": DEFAULT_ACCESS_KEY_SECRET})
        # AND that is the CLI's doing: fc2 on its own does log the signed header
        import fc2

        caplog.clear()
        client = fc2.Client(
            endpoint=cloud.endpoints.fc,
            accessKeyID=DEFAULT_ACCESS_KEY_ID,
            accessKeySecret=DEFAULT_ACCESS_KEY_SECRET,
        )
        with pytest.raises(Exception, match="500"):
            client.invoke_function(cloud.spec.service, cloud.spec.name, payload=b"{}")
        assert f"FC {DEFAULT_ACCESS_KEY_ID}:" in caplog.text, "expected fc2 to log its signature"
