"""The handler's intake: bucket/prefix boundary, repeated records, the bound per event."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from ota_release import function
from ota_release.events import MAX_RECORDS_PER_EVENT, TooManyRecordsError
from ota_release.function import Adapters, handle
from ota_release.retry import RetryPolicy
from ota_release.settings import Settings, SettingsError
from tests.unit.fakes import Ports, oss_trigger_event

#: the handler reads its settings afresh in every test
pytestmark = pytest.mark.usefixtures("fresh_settings")

FW_KEY = "firmware/acme/cam-2.0.0.bin"
SC_KEY = FW_KEY + ".ota.json"
ENV = {
    "OTA_REGION": "cn-shanghai",
    "OTA_NOTIFY_TOPIC": "ota-outcomes",
    "OTA_ACCOUNT_ID": "42",
    "OTA_BUCKETS": "firmware-bucket",
    "OTA_PREFIX": "firmware/",
}


class Context:
    request_id = "fc-req-1"
    account_id = "42"
    credentials = None


def _run(event: Any, ports: Ports, env: dict[str, str] | None = None) -> dict[str, Any]:
    return handle(
        event,
        Context(),
        env=ENV if env is None else env,
        adapters=Adapters(ports.store, ports.platform, ports.notifier),
        retry=RetryPolicy(sleep=lambda _s: None, rng=random.Random(0), max_attempts=2),
    )


def _released() -> Ports:
    ports = Ports()
    ports.store.put(FW_KEY, b"firmware bytes")
    ports.store.put(SC_KEY, b'{"version": "2.0.0"}')
    return ports


def test_settings_read_the_boundary_and_report_bad_values_together() -> None:
    settings = Settings.from_env({**ENV, "OTA_BUCKETS": "a-bucket, b-bucket"})
    assert (settings.buckets, settings.prefix) == (("a-bucket", "b-bucket"), "firmware/")
    unset = Settings.from_env({k: v for k, v in ENV.items() if not k.startswith("OTA_B")})
    assert unset.buckets == ()
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**ENV, "OTA_BUCKETS": "Bad_Bucket", "OTA_PREFIX": "/abs"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["OTA_BUCKETS", "OTA_PREFIX"]
    assert "'Bad_Bucket'" in caught.value.problems[0]


def test_an_event_for_another_bucket_registers_and_publishes_nothing(log: io.StringIO) -> None:
    # GIVEN a release stored in a bucket the function is not configured for
    ports = Ports()
    ports.store.put(FW_KEY, b"firmware bytes", bucket="other-bucket")
    ports.store.put(SC_KEY, b'{"version": "2.0.0"}', bucket="other-bucket")
    # WHEN its event arrives
    summary = _run(oss_trigger_event([SC_KEY], bucket="other-bucket"), ports)
    # THEN it is skipped: no read, no package, no message, one log line with the reason
    assert summary["results"] == [] and summary["skipped"][0]["key"] == SC_KEY
    assert ports.store.calls == [] and ports.platform.calls == []
    assert ports.notifier.messages == []
    lines = [json.loads(x) for x in log.getvalue().splitlines() if x.strip()]
    skipped = [x for x in lines if x.get("outcome") == "skipped"]
    assert len(skipped) == 1 and "OTA_BUCKETS" in skipped[0]["message"]


def test_a_key_outside_the_prefix_is_skipped() -> None:
    ports = Ports()
    ports.store.put("private/cam.bin", b"x")
    summary = _run(oss_trigger_event(["private/cam.bin"]), ports)
    assert summary["results"] == [] and ports.notifier.messages == []


def test_9532_copies_of_one_upload_publish_one_outcome() -> None:
    ports = _released()
    summary = _run(oss_trigger_event([SC_KEY] * 9_532), ports)
    assert [r["outcome"] for r in summary["results"]] == ["created"]
    assert summary["duplicates"] == 9_531
    assert len(ports.notifier.messages) == 1


def test_too_many_distinct_records_fail_the_invocation_before_any_is_processed(
    log: io.StringIO,
) -> None:
    # GIVEN an event naming more distinct objects than one invocation processes
    ports = _released()
    keys = [f"firmware/missing/{i}.bin" for i in range(MAX_RECORDS_PER_EVENT + 1)]
    # WHEN it is handled
    with pytest.raises(TooManyRecordsError):
        _run(oss_trigger_event(keys), ports)
    # THEN nothing was published (no storm of `failed`) and one error line says why
    assert ports.notifier.messages == []
    lines = [json.loads(x) for x in log.getvalue().splitlines() if x.strip()]
    errors = [x for x in lines if x.get("level") == "ERROR"]
    assert len(errors) == 1 and f"at most {MAX_RECORDS_PER_EVENT}" in errors[0]["message"]


def test_many_skipped_records_are_logged_in_bounded_lines(log: io.StringIO) -> None:
    keys = [f"private/{i}.bin" for i in range(500)]
    summary = _run(oss_trigger_event(keys), Ports())
    lines = [json.loads(x) for x in log.getvalue().splitlines() if x.strip()]
    assert len([x for x in lines if x.get("outcome") == "skipped"]) == function.MAX_LOGGED_SKIPS + 1
    assert summary["skipped_total"] == 500
    assert len(summary["skipped"]) == MAX_RECORDS_PER_EVENT
