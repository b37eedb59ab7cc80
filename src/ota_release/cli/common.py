"""Exit codes, error types, output and progress helpers shared by every command.

Exit codes are a contract CI scripts rely on: 0 success, 1 the thing checked or attempted
failed (invalid sidecar, service said no, a release refused), 2 the command was called
wrongly (click's own usage errors, missing files, no credentials or region configured),
3 ``upload --wait`` saw no outcome for its upload in time.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from ota_release.rules import Violation

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: ``upload --wait``: no outcome for this upload within ``--timeout`` seconds.
EXIT_TIMEOUT = 3


class CommandFailed(click.ClickException):
    """The command ran but what it checked or attempted failed: exit 1."""

    exit_code = EXIT_FAILED


class UsageProblem(click.ClickException):
    """The command cannot run as called (missing file, credentials, region): exit 2."""

    exit_code = EXIT_USAGE


def stdout_console() -> Console:
    """Console for results; soft wrap so long values are never split across lines in CI logs."""
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


def stderr_console() -> Console:
    """Console for progress bars and notes, so stdout stays parseable."""
    from rich.console import Console

    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def emit_json(data: Any) -> None:
    """Machine output: one JSON document on stdout, never wrapped or coloured."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def escape(text: object) -> str:
    """Text that rich prints literally, even when it holds ``[brackets]`` from user input."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def print_violations(console: Console, violations: Iterable[Violation], indent: str = "  ") -> None:
    """Each problem on one line: the field, the rule broken, and the value seen."""
    for violation in violations:
        console.print(f"{indent}[red]-[/red] {escape(violation)}")


class Bar:
    """One task of a rich Progress; callers never handle task ids."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)

    def set(self, completed: float) -> None:
        self.progress.update(self.task, completed=completed)


@contextmanager
def byte_progress(description: str, total: int | None) -> Iterator[Bar]:
    """A transfer/hash progress bar on stderr, shown only when stderr is a terminal.

    CI logs and redirected output get no carriage-return noise.
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = stderr_console()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total))


@contextmanager
def count_progress(description: str, total: int) -> Iterator[Bar]:
    """A progress bar counting items (invocations), shown only on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = stderr_console()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total))


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


class ByteSize(click.ParamType):
    """A byte count: ``1048576``, ``512KiB``, ``32MiB``, ``1GiB`` (binary units)."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE_RE.match(str(value))
        if not match:
            self.fail(f"{value!r} is not a size such as 1048576, 512KiB or 32MiB", param, ctx)
        unit = (match.group(2) or "").upper()[:1]
        return int(match.group(1)) * _UNITS[unit]
