"""Which objects `replay` invokes the function for, and the event it sends (pure functions)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ota_release.cli.cmd_replay import Listed, parse_since, plan_replay, replay_event
from ota_release.events import parse_trigger_event
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES

OLD = datetime(2025, 1, 1, tzinfo=timezone.utc)
NEW = datetime(2025, 6, 1, 12, 30, 5, 250000, tzinfo=timezone.utc)


def listed(key: str, when: datetime = NEW, size: int = 10) -> Listed:
    return Listed(key=key, size=size, etag="9B2E61F04C7A3D58E1A06F2C4B8D7E35", last_modified=when)


def decisions(objects: list[Listed], **kwargs: object) -> dict[str, tuple[bool, str]]:
    plan = plan_replay(objects, DEFAULT_SIDECAR_SUFFIXES, **kwargs)  # type: ignore[arg-type]
    return {d.obj.key: (d.invoke, d.reason) for d in plan}


def test_a_complete_pair_is_replayed_once_through_its_sidecar() -> None:
    got = decisions([listed("fw/a.bin"), listed("fw/a.bin.ota.json")])

    assert got == {
        "fw/a.bin": (False, "covered by its sidecar"),
        "fw/a.bin.ota.json": (True, "sidecar"),
    }


def test_orphans_are_replayed_so_each_gets_its_waiting_notice() -> None:
    got = decisions([listed("fw/lonely.bin"), listed("fw/ghost.bin.ota.yaml")])

    assert got["fw/lonely.bin"] == (True, "firmware without sidecar (waiting)")
    assert got["fw/ghost.bin.ota.yaml"] == (True, "sidecar without firmware (waiting)")


def test_include_firmware_replays_both_halves() -> None:
    got = decisions([listed("fw/a.bin"), listed("fw/a.bin.ota.json")], include_firmware=True)

    assert all(invoke for invoke, _ in got.values())


def test_since_keeps_a_pair_when_either_half_changed_and_skips_untouched_pairs() -> None:
    objects = [
        listed("fw/a.bin", OLD),
        listed("fw/a.bin.ota.json", NEW),  # a fixed sidecar re-uploaded for an old file
        listed("fw/b.bin", OLD),
        listed("fw/b.bin.ota.json", OLD),
        listed("fw/c/", NEW),
    ]

    got = decisions(objects, since=datetime(2025, 3, 1, tzinfo=timezone.utc))

    assert got["fw/a.bin.ota.json"] == (True, "sidecar")
    assert got["fw/b.bin"] == got["fw/b.bin.ota.json"] == (False, "not modified since --since")
    assert got["fw/c/"] == (False, "folder marker")


def test_replay_event_is_a_native_oss_put_event_the_function_parses() -> None:
    obj = listed("firmware/acme/cam 2.0.bin", size=3145728)

    event = replay_event(obj, bucket="firmware-bucket", region="cn-shanghai", account_id="1938")

    record = event["events"][0]
    sample_path = Path(__file__).resolve().parents[2] / "events" / "oss-put.json"
    sample = json.loads(sample_path.read_text())["events"][0]
    assert set(record) == set(sample)
    assert set(record["oss"]["object"]) <= set(sample["oss"]["object"])
    assert record["eventName"] == "ObjectCreated:PutObject"
    assert record["eventTime"] == "2025-06-01T12:30:05.250Z"
    assert record["oss"]["bucket"]["arn"] == "acs:oss:cn-shanghai:1938:firmware-bucket"
    parsed = parse_trigger_event(json.dumps(event).encode())
    created = parsed.records[0]
    assert (created.bucket, created.key, created.size) == (
        "firmware-bucket",
        "firmware/acme/cam 2.0.bin",
        3145728,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-20", datetime(2025, 11, 20, tzinfo=timezone.utc)),
        ("2025-11-20T08:00:00Z", datetime(2025, 11, 20, 8, tzinfo=timezone.utc)),
        ("2025-11-20T08:00:00", datetime(2025, 11, 20, 8, tzinfo=timezone.utc)),
    ],
)
def test_since_accepts_dates_and_iso_times_in_utc(text: str, expected: datetime) -> None:
    assert parse_since(text) == expected
