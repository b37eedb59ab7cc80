"""Outcome objects with the fakes: one current outcome per release under races and retries."""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from ota_release.errors import RetriesExhausted
from ota_release.pipeline import ReleaseConfig, ReleasePipeline, Result
from ota_release.results import (
    Upload,
    final_key,
    fits,
    is_about_upload,
    outcome_key,
    waiting_key,
)
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import Settings, SettingsError
from tests.unit.fakes import UPLOADED_AT, Ports, object_created, permanent, transient

PREFIX = "ota-results/"
FW_KEY = "firmware/acme/cam-2.0.0.bin"
SC_KEY = FW_KEY + ".ota.json"
FINAL = final_key(PREFIX, FW_KEY)
WAITING = waiting_key(PREFIX, FW_KEY)
V1, V2 = b"firmware one" * 50, b"firmware two" * 50
SIDECAR = json.dumps({"version": "2.0.0"}).encode()
NOW = datetime(2025, 11, 20, 4, 0, tzinfo=timezone.utc)


class Harness:
    def __init__(self, results_prefix: str | None = PREFIX, max_attempts: int = 3) -> None:
        self.ports = Ports()
        self.store = self.ports.store
        retry = RetryPolicy(
            sleep=self.ports.clock.advance, rng=random.Random(0), max_attempts=max_attempts
        )
        self.pipeline = ReleasePipeline(
            self.store,
            self.ports.platform,
            self.ports.notifier,
            ReleaseConfig(results_prefix=results_prefix),
            retry=retry,
            clock=lambda: NOW,
            staging=self.ports.staging,
            outcomes=self.store,
        )

    def run(self, key: str, etag: str | None = None) -> Result:
        record = object_created(key, etag=etag, event_time=UPLOADED_AT)
        return self.pipeline.process(record, Deadline(600, clock=self.ports.clock))

    def etag(self, key: str) -> str:
        info = self.store.head("firmware-bucket", key)
        assert info is not None
        return info.etag

    def published(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.ports.notifier.messages]


def test_a_final_outcome_is_the_published_document_under_the_release_key() -> None:
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)

    result = h.run(SC_KEY)

    assert result.outcome_key == FINAL
    assert h.store.outcome(FINAL) == h.published()[-1]
    assert h.store.outcome(FINAL)["outcome"] == "created"
    assert h.store.outcome(WAITING) is None


def test_waiting_goes_to_its_own_key_named_after_the_firmware_either_half() -> None:
    h = Harness()
    h.store.put(SC_KEY, SIDECAR)  # the sidecar first: its firmware names the release

    result = h.run(SC_KEY)

    assert (result.outcome.value, result.outcome_key) == ("waiting", WAITING)
    assert h.store.outcome(WAITING)["sidecar_key"] == SC_KEY
    assert h.store.outcome(FINAL) is None


def test_a_waiting_written_after_created_never_replaces_it() -> None:
    # GIVEN the firmware's event found no sidecar (waiting), and just before it writes
    # its outcome the sidecar arrives and the sidecar's event reports created
    h = Harness()
    h.store.put(FW_KEY, V1)

    def sidecar_event_first(key: str) -> None:
        if key == WAITING:
            h.store.before_outcome = None
            h.store.put(SC_KEY, SIDECAR)
            assert h.run(SC_KEY).outcome.value == "created"

    h.store.before_outcome = sidecar_event_first

    # WHEN the firmware's late waiting is written
    result = h.run(FW_KEY)

    # THEN the release's final outcome is still created: waiting went elsewhere
    assert result.outcome.value == "waiting"
    assert [key for key, _ in h.store.outcome_writes] == [FINAL, WAITING]
    assert h.store.outcome(FINAL)["outcome"] == "created"
    upload = Upload({FW_KEY: h.etag(FW_KEY), SC_KEY: h.etag(SC_KEY)})
    assert is_about_upload(h.store.outcome(FINAL), upload)


def test_an_outcome_about_an_upload_overwritten_since_is_not_written() -> None:
    # GIVEN a release whose firmware is replaced right after its outcome was published
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)
    publish = h.ports.notifier.publish

    def publish_then_overwrite(body: str, tag: str) -> Any:
        receipt = publish(body, tag)
        h.store.put(FW_KEY, V2)
        return receipt

    h.ports.notifier.publish = publish_then_overwrite  # type: ignore[method-assign]

    # WHEN it finishes
    result = h.run(SC_KEY)

    # THEN the notification went out, but no outcome object reports the old bytes
    assert result.outcome.value == "created" and len(h.published()) == 1
    assert result.outcome_key is None
    assert h.store.outcome_writes == []


def test_an_outcome_about_a_pair_a_second_sidecar_has_joined_since_is_not_written() -> None:
    # GIVEN the firmware paired with a YAML sidecar, and while it was being registered a
    # JSON sidecar of the same firmware arrived and its event reported the release rejected
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(FW_KEY + ".ota.yaml", b"version: 2.0.0\n")
    publish = h.ports.notifier.publish

    def publish_then_second_sidecar(body: str, tag: str) -> Any:
        receipt = publish(body, tag)
        if h.store.head("firmware-bucket", SC_KEY) is None:
            h.store.put(SC_KEY, SIDECAR)
            assert h.run(SC_KEY).outcome.value == "rejected"
        return receipt

    h.ports.notifier.publish = publish_then_second_sidecar  # type: ignore[method-assign]

    # WHEN the firmware's event, about the earlier pair, comes to write its outcome last
    result = h.run(FW_KEY)

    # THEN its created was published, but the outcome object keeps the current rejection
    assert result.outcome.value == "created" and result.outcome_key is None
    assert h.store.outcome(FINAL)["outcome"] == "rejected"
    upload = Upload({FW_KEY: h.etag(FW_KEY), SC_KEY: h.etag(SC_KEY)})
    assert is_about_upload(h.store.outcome(FINAL), upload)


def test_a_late_event_for_an_overwritten_object_leaves_the_current_outcome_alone() -> None:
    # GIVEN v1 released, then v2 uploaded over it and reported (a conflict)
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)
    old_etag = h.etag(FW_KEY)
    assert h.run(SC_KEY).outcome.value == "created"
    h.store.put(FW_KEY, V2)
    assert h.run(FW_KEY, etag=h.etag(FW_KEY)).outcome.value == "conflict"
    current = h.store.outcome(FINAL)

    # WHEN v1's event is delivered again (a replay, a duplicate)
    late = h.run(FW_KEY, etag=old_etag)

    # THEN it is reported failed, and the outcome object still reports v2's conflict
    assert late.outcome.value == "failed" and late.outcome_key is None
    assert h.store.outcome(FINAL) == current
    v2 = Upload({FW_KEY: h.etag(FW_KEY), SC_KEY: h.etag(SC_KEY)})
    v1 = Upload({FW_KEY: old_etag, SC_KEY: h.etag(SC_KEY)})
    assert is_about_upload(current, v2) and not is_about_upload(current, v1)


def test_duplicates_and_both_halves_keep_one_document_with_one_message_id() -> None:
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)

    ids = {h.run(key).message_id for key in (FW_KEY, SC_KEY, SC_KEY, FW_KEY)}

    assert len(ids) == 1
    assert h.store.outcome(FINAL)["message_id"] in ids
    assert {key for key, _ in h.store.outcome_writes} == {FINAL}


def test_a_write_that_keeps_failing_transiently_fails_the_invocation_for_fcs_retry() -> None:
    h = Harness(max_attempts=3)
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)
    h.store.fail("put_outcome", *[transient("oss", "PutObject")] * 3)

    with pytest.raises(RetriesExhausted):
        h.run(SC_KEY)

    # the notification went out; FC's retry publishes it again under the same id
    assert len(h.published()) == 1
    retried = h.run(SC_KEY)
    assert retried.message_id == h.published()[0]["message_id"]
    assert h.store.outcome(FINAL)["message_id"] == retried.message_id


def test_a_refused_write_is_logged_and_the_invocation_still_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)
    h.store.fail("put_outcome", permanent("oss", "PutObject", "AccessDenied"))

    with caplog.at_level(logging.ERROR, logger="ota_release.pipeline"):
        result = h.run(SC_KEY)

    assert result.outcome.value == "created" and result.outcome_key is None
    assert any("AccessDenied" in r.getMessage() and FINAL in r.getMessage() for r in caplog.records)


def test_no_results_prefix_writes_nothing() -> None:
    h = Harness(results_prefix=None)
    h.store.put(FW_KEY, V1)
    h.store.put(SC_KEY, SIDECAR)

    assert h.run(SC_KEY).outcome_key is None
    assert h.store.outcome_writes == []


def test_a_release_key_too_long_for_an_outcome_key_gets_none() -> None:
    long_key = "firmware/" + "k" * 1000
    assert fits(PREFIX, "firmware/short.bin") and not fits(PREFIX, long_key)
    assert outcome_key(PREFIX, long_key, "created") is None
    assert outcome_key(PREFIX, "firmware/a.bin", "waiting") == PREFIX + "firmware/a.bin.waiting"


def test_no_final_key_is_ever_a_waiting_key() -> None:
    # A firmware named like another's waiting key gets a key of its own.
    assert final_key(PREFIX, "fw/x.waiting") != waiting_key(PREFIX, "fw/x")
    assert final_key(PREFIX, "fw/x").endswith(".json")
    assert waiting_key(PREFIX, "fw/x.json").endswith(".waiting")


def _doc(etag: str, time: str | None = "2025-11-20T03:14:07.000Z") -> dict[str, Any]:
    return {
        "object": {"key": SC_KEY, "etag": "S1"},
        "event": {"time": time},
        "firmware_key": FW_KEY,
        "firmware_etag": etag,
        "sidecar_key": SC_KEY,
        "sidecar_etag": "S1",
    }


def test_an_upload_is_told_by_every_etag_and_by_not_being_older_than_the_document() -> None:
    at = datetime(2025, 11, 20, 3, 14, 7, tzinfo=timezone.utc)
    mine = Upload({FW_KEY: '"f1"', SC_KEY: "s1"}, not_before=at)

    assert is_about_upload(_doc("F1"), mine)
    assert not is_about_upload(_doc("F0"), mine)  # an older firmware
    # the same bytes uploaded again later: the older outcome is not this upload's
    later = Upload(mine.etags, not_before=at + timedelta(minutes=5))
    assert not is_about_upload(_doc("F1"), later)
    # a document naming no ETag tells nothing
    assert not is_about_upload({"object": {"key": FW_KEY, "etag": None}}, mine)


def test_an_identical_re_upload_is_told_by_the_request_id_of_its_event() -> None:
    doc = {**_doc("F1"), "request_ids": {"oss_event": "REQ-OLD"}}
    etags = {FW_KEY: "F1", SC_KEY: "S1"}

    assert not is_about_upload(doc, Upload(etags, frozenset({"REQ-NEW-FW", "REQ-NEW-SC"})))
    assert is_about_upload(doc, Upload(etags, frozenset({"REQ-OLD", "REQ-NEW-SC"})))


BASE = {"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "t", "OTA_ACCOUNT_ID": "1"}


def test_the_results_prefix_defaults_outside_the_watched_prefix_and_needs_one() -> None:
    assert Settings.from_env({**BASE, "OTA_PREFIX": "firmware/"}).results_prefix == PREFIX
    assert Settings.from_env(BASE).results_prefix is None


@pytest.mark.parametrize(
    ("watched", "results", "rule"),
    [
        ("firmware/", "firmware/results/", "must lie outside OTA_PREFIX"),
        ("firmware/", "firmware/", "must lie outside OTA_PREFIX"),
        ("firmware/acme/", "firmware/", "must lie outside OTA_PREFIX"),
        ("", "ota-results/", "needs OTA_PREFIX"),
        ("firmware/", "/abs/", "a key prefix ending in '/'"),
        ("firmware/", "no-slash", "a key prefix ending in '/'"),
    ],
)
def test_a_results_prefix_the_trigger_could_fire_on_is_refused(
    watched: str, results: str, rule: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**BASE, "OTA_PREFIX": watched, "OTA_RESULTS_PREFIX": results})
    (error,) = caught.value.errors
    assert error["field"] == "OTA_RESULTS_PREFIX" and error["value"] == results
    assert rule in error["rule"]


def test_the_handler_wires_the_results_prefix_from_the_settings() -> None:
    from ota_release import function
    from tests.unit.fakes import oss_trigger_event

    ports = Ports()
    ports.store.put(FW_KEY, V1)
    ports.store.put(SC_KEY, SIDECAR)
    adapters = function.Adapters(ports.store, ports.platform, ports.notifier, outcomes=ports.store)
    context = SimpleNamespace(request_id="fc-1", account_id="7", credentials=None, function=None)
    summary = function.handle(
        oss_trigger_event([SC_KEY]),
        context,
        env={**BASE, "OTA_PREFIX": "firmware/"},
        adapters=adapters,
        retry=RetryPolicy(sleep=lambda _s: None, rng=random.Random(0)),
    )

    assert summary["results"][0]["outcome"] == "created"
    assert ports.store.outcome(FINAL)["message_id"] == summary["results"][0]["message_id"]
