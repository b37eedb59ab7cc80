"""No log line of any path carries an access key secret, an STS token or a signature.

Everything runs at DEBUG: the function's instances (their whole stdout/stderr, where the
SDKs' own loggers end up), and this process's root logger, which sees the local services
and the CLI's fc2 client (fc2 logs request headers, Authorization included, on errors).
The paths covered: created, rejected, conflict, transient faults with retries, dropped
connections, permission denied, crashes, FC retries, and a replay through fc2 whose
invocations fail; then, in staged mode and in direct mode with a signed URL, a transport
failure and a refusal of each service (OSS, IoT, MNS), and a CreateOTAFirmware call whose
connection is refused (the SDK's error then quotes the request line, FirmwareUrl included).
Besides the logs, every published message (notifications, FC's OnFailure records) is read.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from localcloud.faults import FaultPlan, crash_env, rule
from localcloud.fc import Flavour
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
        # Every release crashes once after its digest (then FC's retry finishes it): which
        # half of a pair reaches the digest depends on event timing, so a seeded rate
        # below 1 could draw no crash at all on a loaded machine.
        **crash_env({"after_digest": 1.0}, seed=8, ledger=tmp_path / "crashes.log", max_per_key=1),
        "OTA_RETRY_BASE_SECONDS": "0.001",
        "OTA_RETRY_CAP_SECONDS": "0.005",
    }
    # One invocation per instance: with a crash per release, shared instances would take whole
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
        # (blanked when ota_release.redact's scrubber is installed in this process, which
        # importing ota_release.function does; the CLI process does not import it)
        header = rf"'authorization': '(?:FC {DEFAULT_ACCESS_KEY_ID}:|\*\*\*)"
        signed = re.search(header, caplog.text, re.IGNORECASE)
        assert signed, "expected fc2 to log its signed Authorization header"


# Each failure path of each service, in staged and in direct (signed URL) mode -----------------

#: Signatures and tokens as they sit inside a URL that is itself a query parameter (the SDK's
#: request line carries FirmwareUrl percent-encoded once; a URL in a URL, twice).
ENCODED_PATTERNS = [
    re.compile(
        r"(?:[?&]|%3F|%26|%253F|%2526)(?:x-oss-signature|Signature)(?:=|%3D|%253D)"
        r"(?!\*\*\*)[A-Za-z0-9%+/=]{8,}",
        re.IGNORECASE,
    ),
    re.compile(
        r"(?:security-token|SecurityToken)(?:=|%3D|%253D|['\"]?\s*:\s*['\"]?)"
        r"(?!\*\*\*)[A-Za-z0-9%+/=]{8,}",
        re.IGNORECASE,
    ),
]


class Paths:
    """One LocalCloud per URL mode at DEBUG; each test sets its fault and uploads a release."""

    def __init__(self, cloud: LocalCloud, plan: FaultPlan, mode: str) -> None:
        self.cloud = cloud
        self.plan = plan
        self.mode = mode
        self.work = soak.Workload(cloud, seed=12)

    def release(self, name: str) -> str:
        fw_key = f"firmware/secrets/{self.mode}/{name}/dev.bin"
        body = json.dumps({"version": "1.0.0", "name": f"sec-{self.mode}-{name}"}).encode()
        self.work.put(fw_key, soak.content(name, 4_000), "release", name)
        self.work.put(fw_key + ".ota.json", body, "release", name)
        assert self.cloud.wait_idle(90)
        return fw_key

    def secrets(self) -> dict[str, str]:
        assert self.cloud.fc is not None and self.cloud.fc.role_credential is not None
        role = self.cloud.fc.role_credential
        return {
            "role access key secret": role.access_key_secret,
            "role STS token": role.security_token or "",
            "account access key secret": DEFAULT_ACCESS_KEY_SECRET,
            "IoT upload key secret": self.cloud.iot.oss_credential.access_key_secret,
        }

    def published(self) -> str:
        """Every message on every topic: notifications and FC's OnFailure records."""
        return "\n".join(m.body for t in self.cloud.topics() for m in self.cloud.mns.messages(t))


@pytest.fixture(scope="module", params=[("staged", "fun"), ("direct", "s")], ids=lambda p: p[0])
def paths(request: pytest.FixtureRequest) -> Iterator[Paths]:
    mode, flavour = request.param
    plan = FaultPlan(seed=12)
    env = {
        "OTA_LOG_LEVEL": "DEBUG",
        "OTA_FIRMWARE_URL_MODE": mode,
        "OTA_SIGNED_URL_TTL": "600" if mode == "direct" else "0",
        "OTA_RETRY_BASE_SECONDS": "0.001",
        "OTA_RETRY_CAP_SECONDS": "0.005",
        "OTA_RETRY_MAX_ATTEMPTS": "2",
    }
    with LocalCloud(flavour=flavour, faults=plan, env_overrides=env) as cloud:
        p = Paths(cloud, plan, mode)
        yield p
        p.work.close()


STAGED_ONLY = {"PostObject", "GenerateOTAUploadURL"}
#: (service, fault, operations it hits): a transport failure (the connection drops before
#: any answer) and a refusal (403) of each service; the staged copy's PostObject besides.
FAILURE_PATHS = [
    ("oss", "drop", ("HeadObject", "GetObject")),
    ("oss", "deny", ("HeadObject", "GetObject")),
    ("oss", "drop", ("PostObject",)),
    ("iot", "drop", ("CreateOTAFirmware",)),
    ("iot", "deny", ("CreateOTAFirmware",)),
    ("iot", "drop", ("ListOTAFirmware",)),
    ("iot", "drop", ("GenerateOTAUploadURL",)),
    ("mns", "drop", ("PublishMessage",)),
    ("mns", "deny", ("PublishMessage",)),
]


@pytest.mark.parametrize(
    ("service", "kind", "operations"),
    FAILURE_PATHS,
    ids=[f"{s}-{k}-{o[0]}" for s, k, o in FAILURE_PATHS],
)
def test_no_secret_on_any_failure_path_of_any_service_in_either_mode(
    paths: Paths,
    service: str,
    kind: str,
    operations: tuple[str, ...],
    capfd: pytest.CaptureFixture[str],
) -> None:
    if paths.mode == "direct" and set(operations) <= STAGED_ONLY:
        pytest.skip("direct mode stages nothing: no PostObject, no GenerateOTAUploadURL")
    # GIVEN every call of these operations fails this way
    before = paths.plan.injected[(service, kind)]
    paths.plan.rules = [rule(service, kind, 1.0, *operations)]  # type: ignore[arg-type]
    try:
        # WHEN a release is uploaded and taken as far as it goes
        paths.release(f"{service}-{kind}-{operations[0]}")
    finally:
        paths.plan.rules = []
    assert paths.cloud.fc is not None
    logs = paths.cloud.fc.logs()
    captured = capfd.readouterr()
    # THEN the fault really fired and the function logged the failing call ...
    assert paths.plan.injected[(service, kind)] > before
    assert any(op in logs for op in operations), "the failure path left no log line"
    # ... and nothing it printed, logged or published holds a secret or a signature
    everything = "\n".join([logs, captured.out, captured.err, paths.published()])
    _assert_clean(everything, paths.secrets())
    for pattern in ENCODED_PATTERNS:
        match = pattern.search(everything)
        assert match is None, f"a signature or token reached a log line: {match.group(0)[:60]}"


def _query_actions(path: str, body: bytes) -> list[str]:
    """The RPC ``Action`` named in the query string or a form body (classic signature)."""
    query = path.partition("?")[2] + "&" + body.decode("latin-1")
    return [v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "Action"]


class VanishingEndpoint:
    """An HTTP forwarder in front of the local IoT that stops listening after one action.

    A refused connection is the transport failure whose SDK error quotes the whole request
    line (``Max retries exceeded with url: /?...FirmwareUrl=...``); the fault plan's drops
    happen after connecting and do not. The function's IoT endpoint points here; once
    ``last_action`` has been answered, the listener closes, so the next call (the
    CreateOTAFirmware that follows it) is refused.
    """

    def __init__(self, last_action: str) -> None:
        self.last_action = last_action
        self.upstream: tuple[str, int] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Forward(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                assert endpoint.upstream is not None
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(*endpoint.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body or None, headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True
                action = self.headers.get("x-acs-action") or ""
                if endpoint.last_action in (action, *_query_actions(self.path, body)):
                    threading.Thread(target=endpoint.close, daemon=True).start()

            do_GET = do_POST = _forward

        return Forward

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.server.shutdown()
            self.server.server_close()


@pytest.mark.parametrize(
    ("mode", "flavour", "last_action"),
    [("direct", "s", "ListOTAFirmware"), ("staged", "fun", "GenerateOTAUploadURL")],
)
def test_a_refused_create_call_leaves_no_signed_url_in_logs_or_records(
    mode: str, flavour: Flavour, last_action: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an IoT endpoint that goes away right before CreateOTAFirmware
    endpoint = VanishingEndpoint(last_action)
    env = {
        "OTA_LOG_LEVEL": "DEBUG",
        "OTA_FIRMWARE_URL_MODE": mode,
        "OTA_SIGNED_URL_TTL": "600" if mode == "direct" else "0",
        "OTA_RETRY_BASE_SECONDS": "0.001",
        "OTA_RETRY_CAP_SECONDS": "0.005",
        "OTA_RETRY_MAX_ATTEMPTS": "2",
        "OTA_IOT_ENDPOINT": f"127.0.0.1:{endpoint.port}",
    }
    try:
        with LocalCloud(flavour=flavour, env_overrides=env) as cloud:
            endpoint.upstream = ("127.0.0.1", int(cloud.endpoints.iot.rsplit(":", 1)[1]))
            paths = Paths(cloud, FaultPlan(), mode)
            # WHEN a release is uploaded: the create call is refused, FC retries, gives up
            key = paths.release("refused")
            assert cloud.fc is not None
            logs = cloud.fc.logs()
            published = paths.published()
            secrets = paths.secrets()
            paths.work.close()
    finally:
        endpoint.close()
    captured = capfd.readouterr()
    # THEN the refusal of CreateOTAFirmware was logged with its cause ...
    assert endpoint.closed.is_set()
    assert "Max retries exceeded" in logs, "the refused call was not logged"
    assert key in published, "no OnFailure record for the release"
    # ... and neither the logs, FC's own error output nor the OnFailure record hold a secret
    everything = "\n".join([logs, captured.out, captured.err, published])
    _assert_clean(everything, secrets)
    for pattern in ENCODED_PATTERNS:
        match = pattern.search(everything)
        assert match is None, f"a signature or token reached a log line: {match.group(0)[:60]}"
