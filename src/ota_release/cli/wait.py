"""Waiting for an upload's outcome: poll its outcome objects, show progress, print the end.

The function leaves each release's outcome in the bucket under OTA_RESULTS_PREFIX
(:mod:`ota_release.results`): the final one at ``<prefix><firmware key>.json``, progress
(``waiting``) at ``.waiting``. This upload's outcome is the one whose ETags are the ones
its PutObject calls answered (an older outcome of the same key is never taken for it).
Used by ``upload --wait`` and ``status KEY``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click

from ota_release.cli.common import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, CommandFailed
from ota_release.results import (
    SUCCESS_OUTCOMES,
    Upload,
    final_key,
    is_about_upload,
    waiting_key,
)

#: Seconds between two looks at the outcome objects (two small GETs each).
POLL_SECONDS = 1.0
#: Without a terminal, a progress line is printed when it changes, or this often.
PLAIN_PROGRESS_EVERY = 10.0

Reader = Callable[[str], "dict[str, Any] | None"]


def oss_reader(oss: Any) -> Reader:
    """Read an outcome document from an ``oss2.Bucket``: None when there is none."""
    import oss2

    from ota_release.adapters.oss import classify_oss_error
    from ota_release.errors import TransientError

    def read(key: str) -> dict[str, Any] | None:
        try:
            data = oss.get_object(key).read()
        except oss2.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            error = classify_oss_error(exc, "GetObject")
            if isinstance(error, TransientError):
                return None  # looked at again on the next poll; the timeout bounds it
            raise error from exc
        try:
            doc = json.loads(data)
        except ValueError:
            return None  # not an outcome document (someone else's object under the prefix)
        return doc if isinstance(doc, dict) else None

    return read


@dataclass
class Waited:
    """How a wait ended: this upload's final outcome, or what was last seen instead."""

    outcome: dict[str, Any] | None
    waiting: dict[str, Any] | None = None
    other: dict[str, Any] | None = None
    seconds: float = 0.0


def wait_for_outcome(
    read: Reader,
    results_prefix: str,
    release_key: str,
    upload: Upload,
    timeout: float,
    *,
    progress: Callable[[str, float], None] = lambda text, seconds: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited:
    """Poll until this upload's final outcome is stored, or ``timeout`` seconds pass."""
    start = clock()
    while True:
        final = read(final_key(results_prefix, release_key))
        if final is not None and is_about_upload(final, upload):
            return Waited(final, seconds=clock() - start)
        waiting = read(waiting_key(results_prefix, release_key))
        mine = waiting if waiting is not None and is_about_upload(waiting, upload) else None
        elapsed = clock() - start
        progress(progress_text(mine, final), elapsed)
        if elapsed >= timeout:
            return Waited(None, mine, final, elapsed)
        sleep(min(POLL_SECONDS, timeout - elapsed))


def progress_text(waiting: Mapping[str, Any] | None, other: Mapping[str, Any] | None) -> str:
    """What the release is waiting for, as far as the outcome objects tell."""
    if waiting is not None:
        summary = str(waiting.get("summary") or "")
        return summary.split("; ", 1)[-1] if "; " in summary else "waiting"
    if other is not None:
        return "waiting for the function (the stored outcome is about an earlier upload)"
    return "waiting for the function's outcome"


class ProgressLine:
    """One live line on stderr: rewritten in place on a terminal, else printed on change."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last: tuple[str, float] | None = None
        self._width = 0

    def __call__(self, text: str, seconds: float) -> None:
        line = f"{text} … {seconds:.0f} s"
        if self.live:
            self._width = max(self._width, len(line))
            self.stream.write("\r" + line.ljust(self._width))
            self.stream.flush()
            return
        last = self._last
        if last is None or last[0] != text or seconds - last[1] >= PLAIN_PROGRESS_EVERY:
            self._last = (text, seconds)
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.live and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


def exit_code_of(doc: Mapping[str, Any]) -> int:
    """0 for a registered release (created, already_registered), 1 for any other end."""
    return EXIT_OK if doc.get("outcome") in SUCCESS_OUTCOMES else EXIT_FAILED


def outcome_lines(doc: Mapping[str, Any]) -> list[str]:
    """The outcome as the notification tells it: outcome and summary, then each error."""
    lines = [f"{doc.get('outcome')}: {doc.get('summary')}"]
    firmware = doc.get("firmware")
    if isinstance(firmware, Mapping) and firmware.get("id"):
        lines.append(f"  package {firmware.get('name')} ({firmware.get('id')})")
    for error in doc.get("errors") or []:
        if isinstance(error, Mapping):
            field, rule, value = error.get("field"), error.get("rule"), error.get("value")
            lines.append(f"  - {field}: {rule} (got {value})")
    dropped = doc.get("errors_dropped") or 0
    if dropped:
        lines.append(f"  ({dropped} more errors left out of the message)")
    return lines


def timeout_message(waited: Waited, timeout: float, key: str) -> str:
    """Why no outcome came, as far as the outcome objects tell."""
    head = f"no outcome for this upload after {timeout:g} s"
    if waited.waiting is not None:
        return f"{head}; the function says: {waited.waiting.get('summary')}"
    if waited.other is not None:
        other = waited.other
        return (
            f"{head}; {key} holds the outcome of an earlier upload "
            f"({other.get('outcome')}, event at {(other.get('event') or {}).get('time')})"
        )
    return (
        f"{head}; nothing at {key}. Is the function running, and deployed with this "
        "OTA_RESULTS_PREFIX and an OTA_PREFIX (it writes no outcome objects without one)?"
    )


def finish(waited: Waited, timeout: float, key: str, as_json: bool, report: Any) -> None:
    """Print how the wait ended and exit with its code (0, 1 or 3)."""
    from ota_release.cli.common import emit_json, escape, stderr_console, stdout_console

    if waited.outcome is None:
        message = timeout_message(waited, timeout, key)
        if as_json:
            emit_json({**report, "outcome": None, "timed_out_after": timeout, "reason": message})
        stderr_console().print(f"[yellow]timeout[/yellow]: {escape(message)}")
        raise click.exceptions.Exit(EXIT_TIMEOUT)
    if as_json:
        emit_json(waited.outcome)
    else:
        console = stdout_console()
        for line in outcome_lines(waited.outcome):
            console.print(escape(line))
    code = exit_code_of(waited.outcome)
    if code != EXIT_OK:
        raise click.exceptions.Exit(code)


def read_or_fail(read: Reader, key: str) -> dict[str, Any] | None:
    """One outcome object, a refused read being the command's failure."""
    from ota_release.errors import PlatformError

    try:
        return read(key)
    except PlatformError as exc:
        raise CommandFailed(f"reading {key}: {exc.code}: {exc.message}") from exc
