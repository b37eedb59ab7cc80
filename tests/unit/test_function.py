"""function.handle: FC context, settings, the summary, logging, with fakes for the ports."""

from __future__ import annotations

import io
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ota_release import function
from ota_release.adapters import CloudCredentials
from ota_release.errors import RetriesExhausted
from ota_release.function import Adapters, credentials_from, handle, handle_json
from ota_release.retry import RetryPolicy
from ota_release.settings import Settings, SettingsError
from tests.unit.fakes import Ports, oss_trigger_event, transient

#: the handler reads its settings afresh in every test
pytestmark = pytest.mark.usefixtures("fresh_settings")

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
FW_KEY = "firmware/acme/cam-2.0.0.bin"
SC_KEY = FW_KEY + ".ota.json"
SECRET = "sk-very-secret-0123456789"
TOKEN = "CAIS-security-token-abcdef"
ENV = {"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "ota-outcomes", "OTA_ACCOUNT_ID": "42"}


@dataclass
class FakeCredentials:
    access_key_id: str = "STS.ak"
    access_key_secret: str = SECRET
    security_token: str = TOKEN


@dataclass
class FakeFunctionMeta:
    name: str = "create-firmware"
    handler: str = "index.handler"
    memory: int = 512
    timeout: Any = 60


@dataclass
class FakeContext:
    """What FC passes on python3.9/3.10 (python3.12 has no ``credentials``)."""

    request_id: str = "fc-req-1"
    account_id: str = "42"
    region: str = "cn-shanghai"
    credentials: FakeCredentials | None = field(default_factory=FakeCredentials)
    function: FakeFunctionMeta = field(default_factory=FakeFunctionMeta)


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def no_sleep_retry(max_attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(sleep=lambda _s: None, rng=random.Random(0), max_attempts=max_attempts)


def adapters_of(ports: Ports) -> Adapters:
    return Adapters(ports.store, ports.platform, ports.notifier)


def released(ports: Ports) -> Ports:
    ports.store.put(FW_KEY, b"firmware bytes")
    ports.store.put(SC_KEY, b'{"version": "2.0.0"}')
    return ports


def run(
    event: Any,
    ports: Ports,
    context: Any = None,
    env: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    return handle(
        event,
        context or FakeContext(),
        env=ENV if env is None else env,
        adapters=adapters_of(ports),
        retry=retry or no_sleep_retry(),
    )


# The summary ----------------------------------------------------------------------------------


def test_summary_lists_each_record_with_outcome_and_message_id() -> None:
    ports = released(Ports())
    summary = run(oss_trigger_event([FW_KEY]), ports)
    [body] = [json.loads(b) for b, _ in ports.notifier.messages]
    assert summary == {
        "request_id": "fc-req-1",
        "results": [{"key": FW_KEY, "outcome": "created", "message_id": body["message_id"]}],
        "skipped": [],
    }
    assert body["request_ids"]["fc"] == "fc-req-1"


def test_event_as_bytes_is_accepted_and_handle_json_serialises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = released(Ports())
    # The handler runs on the real clock: FC's retry comes while the package is fresh.
    ports.platform.now = datetime.now(timezone.utc)
    raw = json.dumps(oss_trigger_event([FW_KEY])).encode()
    [first] = run(raw, ports)["results"]
    assert first["outcome"] == "created"
    # FC delivers the same event again: handle_json gives the same answer, as JSON text.
    monkeypatch.setattr(function, "build_adapters", lambda settings, creds: adapters_of(ports))
    monkeypatch.setattr(function.os, "environ", ENV)
    text = handle_json(raw, FakeContext())
    assert json.loads(text)["results"] == [first]
    assert ports.platform.count("create_firmware") == 1


@pytest.mark.parametrize("sample", sorted(p.name for p in EVENTS_DIR.glob("*.json")))
def test_every_sample_event_shape_reaches_an_outcome_per_record(sample: str) -> None:
    # GIVEN only the firmware file is stored (so every record has a definite outcome)
    ports = Ports()
    ports.store.put(FW_KEY, b"firmware bytes")
    # WHEN the sample event is handled
    summary = run((EVENTS_DIR / sample).read_bytes(), ports)
    # THEN each record got exactly one published outcome, and skips are listed
    assert len(ports.notifier.messages) == len(summary["results"])
    for result in summary["results"]:
        assert result["outcome"] in {"waiting", "failed"}
        assert len(result["message_id"]) == 32
    assert summary["results"] or summary["skipped"]


def test_skipped_events_are_summarised_without_reading_settings() -> None:
    ports = Ports()
    event = oss_trigger_event(["old.bin"], event_name="ObjectRemoved:DeleteObject")
    # An empty environment would be a SettingsError if settings were read.
    summary = run(event, ports, env={})
    assert summary == {
        "request_id": "fc-req-1",
        "results": [],
        "skipped": [{"key": "old.bin", "event": "ObjectRemoved:DeleteObject"}],
    }
    assert ports.notifier.messages == []


def test_broken_settings_fail_the_invocation_listing_every_problem() -> None:
    ports = released(Ports())
    with pytest.raises(SettingsError) as caught:
        run(oss_trigger_event([FW_KEY]), ports, env={"OTA_LOG_LEVEL": "LOUD"})
    names = [p.split(":")[0] for p in caught.value.problems]
    # (the MNS endpoint is built from the context's account id, so it is not missing)
    assert names == ["OTA_REGION", "OTA_NOTIFY_TOPIC", "OTA_LOG_LEVEL"]
    assert ports.notifier.messages == []
    assert ports.store.calls == []


def test_settings_reach_the_pipeline() -> None:
    ports = released(Ports())
    env = {**ENV, "OTA_FIRMWARE_URL_MODE": "direct", "OTA_PRODUCT_KEY": "pk1"}
    run(oss_trigger_event([FW_KEY]), ports, env=env)
    params = ports.platform.created_params[0]
    assert params["ProductKey"] == "pk1"
    assert params["FirmwareUrl"].startswith("https://firmware-bucket.oss-")


def test_one_failing_record_does_not_stop_the_others_and_the_invocation_then_fails() -> None:
    # GIVEN three records, the first of which hits a bug in the object store
    ports = released(Ports())
    ports.store.put("other.bin", b"x")
    ports.store.fail("head", RuntimeError("bug in the store"))
    event = oss_trigger_event([FW_KEY, SC_KEY, "other.bin"])
    # WHEN handled THEN the other two are processed and published, and the bug is raised
    with pytest.raises(RuntimeError, match="bug in the store"):
        run(event, ports)
    tags = [tag for _, tag in ports.notifier.messages]
    assert tags == ["created", "waiting"]


def test_transient_failure_beyond_the_functions_time_is_raised_for_fc_to_retry() -> None:
    # GIVEN a one-second function and a throttled store asking for five seconds
    ports = released(Ports())
    ports.store.fail("head", transient(code="Throttling", retry_after=5.0))
    sleeps: list[float] = []
    retry = RetryPolicy(sleep=sleeps.append, rng=random.Random(0))
    context = FakeContext(function=FakeFunctionMeta(timeout=1))
    # WHEN handled THEN it gives up at once (no sleep past the deadline), publishing nothing
    with pytest.raises(RetriesExhausted):
        run(oss_trigger_event([FW_KEY]), ports, context=context, retry=retry)
    assert sleeps == []
    assert ports.notifier.messages == []


@pytest.mark.parametrize(("timeout", "expected"), [(30, 30.0), (None, 60.0), ("abc", 60.0)])
def test_function_timeout_comes_from_the_context(timeout: Any, expected: float) -> None:
    context = FakeContext(function=FakeFunctionMeta(timeout=timeout))
    assert function._timeout_of(context) == expected


def test_settings_are_read_once_per_instance() -> None:
    first = function.settings_for(ENV, "42")
    assert function.settings_for({}, "42") is first
    assert isinstance(first, Settings)


# Credentials ----------------------------------------------------------------------------------


def test_credentials_come_from_the_context_when_it_has_them() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env-ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-sk"}
    assert credentials_from(FakeContext(), env) == CloudCredentials("STS.ak", SECRET, TOKEN)


def test_credentials_come_from_the_environment_on_python312() -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "env-ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-sk",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token",
    }
    assert credentials_from(FakeContext(credentials=None), env) == CloudCredentials(
        "env-ak", "env-sk", "env-token"
    )
    empty_creds = FakeContext(credentials=FakeCredentials(access_key_id=""))
    assert credentials_from(empty_creds, env).access_key_id == "env-ak"


def test_missing_credentials_are_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        credentials_from(FakeContext(credentials=None), {})


def test_handler_builds_adapters_with_the_context_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ports = released(Ports())
    seen: list[CloudCredentials] = []

    def build(settings: Settings, credentials: CloudCredentials) -> Adapters:
        seen.append(credentials)
        return adapters_of(ports)

    monkeypatch.setattr(function, "build_adapters", build)
    handle(oss_trigger_event([FW_KEY]), FakeContext(), env=ENV, retry=no_sleep_retry())
    assert seen == [CloudCredentials("STS.ak", SECRET, TOKEN)]
    assert SECRET not in repr(seen[0])


# Logs -----------------------------------------------------------------------------------------


def test_log_lines_carry_correlation_id_key_and_outcome(log: io.StringIO) -> None:
    ports = released(Ports())
    run(oss_trigger_event([FW_KEY]), ports)
    lines = log_lines(log)
    [summary_line] = [line for line in lines if line.get("message_id")]
    assert summary_line["correlation_id"] == "fc-req-1"
    assert summary_line["object_key"] == FW_KEY
    assert summary_line["outcome"] == "created"
    assert summary_line["level"] == "INFO"


def test_concurrent_invocations_keep_their_own_log_keys(log: io.StringIO) -> None:
    # GIVEN one instance serving two invocations at once (InstanceConcurrency > 1), each
    # paused inside the pipeline until the other has set its keys
    barrier = threading.Barrier(2, timeout=10)

    class PausingNotifier:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def publish(self, *args: Any, **kwargs: Any) -> Any:
            barrier.wait()
            return self.inner.publish(*args, **kwargs)

    def invoke(request_id: str, key: str) -> None:
        ports = Ports()
        ports.store.put(key, b"firmware bytes")
        ports.store.put(key + ".ota.json", b'{"version": "2.0.0"}')
        adapters = Adapters(ports.store, ports.platform, PausingNotifier(ports.notifier))
        handle(
            oss_trigger_event([key]),
            FakeContext(request_id=request_id),
            env=ENV,
            adapters=adapters,
            retry=no_sleep_retry(),
        )

    # WHEN both run in their own threads
    threads = [
        threading.Thread(target=invoke, args=("req-a", "firmware/a/cam-1.0.0.bin")),
        threading.Thread(target=invoke, args=("req-b", "firmware/b/cam-1.0.0.bin")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    # THEN every summary line names its own invocation's request id and key
    summaries = [line for line in log_lines(log) if line.get("message_id")]
    assert sorted((s["correlation_id"], s["object_key"]) for s in summaries) == [
        ("req-a", "firmware/a/cam-1.0.0.bin"),
        ("req-b", "firmware/b/cam-1.0.0.bin"),
    ]


def test_skipped_events_are_logged_one_line_each(log: io.StringIO) -> None:
    run(oss_trigger_event(["a.bin", "b.bin"], event_name="ObjectRemoved:DeleteObject"), Ports())
    skipped = [line for line in log_lines(log) if line.get("outcome") == "skipped"]
    assert [line["object_key"] for line in skipped] == ["a.bin", "b.bin"]


def test_logs_never_contain_the_secret_or_token(
    log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN credentials in the context and a run that logs successes, a retry and an error
    ports = released(Ports())
    ports.store.put("other.bin", b"x")
    ports.store.fail("head", transient(), RuntimeError(f"boom with {FW_KEY}"))
    monkeypatch.setattr(function, "build_adapters", lambda s, c: adapters_of(ports))
    event = oss_trigger_event([FW_KEY, SC_KEY, "other.bin"])
    with pytest.raises(RuntimeError):
        handle(event, FakeContext(), env={**ENV, "OTA_LOG_LEVEL": "DEBUG"}, retry=no_sleep_retry())
    # THEN the log shows the error with its correlation id, and no secret anywhere
    text = log.getvalue()
    assert SECRET not in text
    assert TOKEN not in text
    [error_line] = [line for line in log_lines(log) if line.get("outcome") == "error"]
    assert error_line["correlation_id"] == "fc-req-1"
    assert error_line["object_key"] == FW_KEY
    assert "boom" in error_line["exception"]
