"""The --wait loop with a scripted reader and clock: paced, honest about timeouts, and only
ever this upload's outcome."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ota_release.cli.wait import (
    POLL_SECONDS,
    ProgressLine,
    exit_code_of,
    outcome_lines,
    timeout_message,
    wait_for_outcome,
)
from ota_release.results import Upload, final_key, waiting_key

PREFIX = "ota-results/"
FW, SC = "firmware/cam.bin", "firmware/cam.bin.ota.json"
MINE = Upload({FW: "F2", SC: "S2"}, frozenset({"REQ-FW-2", "REQ-SC-2"}))


def doc(outcome: str, fw_etag: str, request: str, **extra: Any) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "summary": extra.pop("summary", f"{outcome} summary"),
        "object": {"key": FW, "etag": fw_etag},
        "firmware_key": FW,
        "firmware_etag": fw_etag,
        "sidecar_key": SC if outcome != "waiting" else None,
        "sidecar_etag": "S2" if outcome != "waiting" else None,
        "request_ids": {"oss_event": request},
        "event": {"time": "2026-11-29T10:00:00.000Z"},
        **extra,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Bucket:
    """Outcome objects that change as the (scripted) function proceeds: at each time."""

    def __init__(self, script: list[tuple[float, str, dict[str, Any]]], clock: Clock) -> None:
        self.script, self.clock = script, clock
        self.reads = 0

    def read(self, key: str) -> dict[str, Any] | None:
        self.reads += 1
        found = [d for at, k, d in self.script if k == key and at <= self.clock.now]
        return found[-1] if found else None


def wait_with(
    script: list[tuple[float, str, dict[str, Any]]], timeout: float
) -> tuple[Any, Clock, list[str]]:
    clock = Clock()
    bucket = Bucket(script, clock)
    lines: list[str] = []
    waited = wait_for_outcome(
        bucket.read,
        PREFIX,
        FW,
        MINE,
        timeout,
        progress=lambda text, seconds: lines.append(f"{text} {seconds:.0f}"),
        clock=clock,
        sleep=clock.sleep,
    )
    return waited, clock, lines


FINAL, WAITING = final_key(PREFIX, FW), waiting_key(PREFIX, FW)


def test_an_earlier_uploads_outcome_is_passed_over_until_this_ones_arrives() -> None:
    # GIVEN v1's created stored, then this upload's waiting, then its conflict
    script = [
        (0.0, FINAL, doc("created", "F1", "REQ-FW-1")),
        (
            2.0,
            WAITING,
            doc("waiting", "F2", "REQ-FW-2", summary="x is stored; waiting for its sidecar y"),
        ),
        (5.0, FINAL, doc("conflict", "F2", "REQ-SC-2")),
    ]

    waited, clock, lines = wait_with(script, timeout=60)

    assert waited.outcome["outcome"] == "conflict"
    assert exit_code_of(waited.outcome) == 1
    # paced: one look per POLL_SECONDS, never a busy loop
    assert set(clock.sleeps) == {POLL_SECONDS} and clock.now == 5.0
    assert lines[0].startswith("waiting for the function (the stored outcome is about an earlier")
    assert "waiting for its sidecar y 2" in lines


def test_an_identical_re_upload_is_not_answered_by_the_original() -> None:
    # same ETags as this upload, but the event of another upload (its request id)
    script = [(0.0, FINAL, doc("created", "F2", "REQ-FW-OLD"))]

    waited, clock, _ = wait_with(script, timeout=3)

    assert waited.outcome is None and waited.other is not None
    assert clock.now == 3.0


def test_the_timeout_is_kept_and_says_what_was_seen() -> None:
    script = [
        (
            0.0,
            WAITING,
            doc("waiting", "F2", "REQ-FW-2", summary="x is stored; waiting for its sidecar y"),
        )
    ]

    waited, clock, _ = wait_with(script, timeout=2.5)

    assert waited.outcome is None and clock.now == 2.5  # the last sleep is cut to the limit
    message = timeout_message(waited, 2.5, FINAL)
    assert message.startswith("no outcome for this upload after 2.5 s")
    assert "the function says: x is stored; waiting for its sidecar y" in message
    nothing = timeout_message(wait_with([], timeout=1)[0], 1, FINAL)
    assert f"nothing at {FINAL}" in nothing and "OTA_RESULTS_PREFIX" in nothing


@pytest.mark.parametrize(
    ("outcome", "code"),
    [("created", 0), ("already_registered", 0), ("rejected", 1), ("conflict", 1), ("failed", 1)],
)
def test_exit_codes_by_outcome(outcome: str, code: int) -> None:
    assert exit_code_of({"outcome": outcome}) == code


def test_errors_are_listed_as_the_notification_lists_them() -> None:
    lines = outcome_lines(
        {
            "outcome": "rejected",
            "summary": "the sidecar has 1 problem(s)",
            "errors": [{"field": "version", "rule": "is required", "value": None}],
        }
    )
    assert lines == [
        "rejected: the sidecar has 1 problem(s)",
        "  - version: is required (got None)",
    ]


def test_without_a_terminal_the_progress_is_printed_on_change_or_every_ten_seconds() -> None:
    out = io.StringIO()
    line = ProgressLine(out)
    for second in range(25):
        line("waiting for the function's outcome", float(second))
    line("waiting for its sidecar y", 25.0)
    line.close()
    assert out.getvalue().splitlines() == [
        "waiting for the function's outcome … 0 s",
        "waiting for the function's outcome … 10 s",
        "waiting for the function's outcome … 20 s",
        "waiting for its sidecar y … 25 s",
    ]


def test_timeout_needs_wait_and_the_results_prefix_must_not_overlap(
    run: Any, tmp_path: Path
) -> None:
    firmware = tmp_path / "cam-1.0.0.bin"
    firmware.write_bytes(b"x" * 100)
    assert run("init", firmware, "--version", "1.0.0").exit_code == 0

    alone = run("upload", firmware, "--bucket", "b", "--timeout", "5")
    inside = run("upload", firmware, "--bucket", "b", "--wait", "--results-prefix", "firmware/out/")

    assert alone.exit_code == 2 and "--timeout applies to --wait only" in alone.stderr
    assert inside.exit_code == 2 and "overlaps --prefix 'firmware/'" in inside.stderr
