"""docs/ci.md: its two pipelines parse, run only commands and flags the CLI has, keep the
exit code, and its exit-code table is the code's."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from ota_release.cli import cli as cli_group
from ota_release.cli import common
from ota_release.results import FINAL_OUTCOMES, SUCCESS_OUTCOMES

ROOT = Path(__file__).resolve().parents[2]
CI_DOC = ROOT / "docs" / "ci.md"


def yaml_blocks() -> list[Any]:
    text = CI_DOC.read_text(encoding="utf-8")
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]


def github() -> dict[Any, Any]:
    (found,) = [b for b in yaml_blocks() if isinstance(b, dict) and "jobs" in b]
    return found


def gitlab() -> dict[str, Any]:
    (found,) = [b for b in yaml_blocks() if isinstance(b, dict) and "stages" in b]
    return found


def shell_lines() -> Iterator[tuple[str, str]]:
    """(where, line) for every shell line either pipeline runs."""
    for name, job in github()["jobs"].items():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                yield f"github {name}", line
    for name, job in gitlab().items():
        if isinstance(job, dict) and "script" in job:
            for line in job["script"]:
                yield f"gitlab {name}", line


def ota_commands() -> list[tuple[str, list[str]]]:
    """(where, argv after 'ota-release') for every ota-release command line."""
    found = []
    for where, line in shell_lines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "ota-release":
            cut = next((i for i, w in enumerate(words) if w in (">", "|", "&&", ";")), len(words))
            found.append((where, words[1:cut]))
    return found


def test_both_pipelines_parse_and_have_their_runners_shape() -> None:
    gh = github()
    assert set(gh["jobs"]["release"]) >= {"runs-on", "steps", "env"}
    assert "tags" in gh[True]["push"]  # YAML 1.1 reads the key `on` as True
    gl = gitlab()
    jobs = {k: v for k, v in gl.items() if isinstance(v, dict) and "script" in v}
    assert set(jobs) == {"build-firmware", "release-firmware"}
    assert {job["stage"] for job in jobs.values()} <= set(gl["stages"])


def test_every_ota_release_command_and_flag_in_the_pipelines_exists() -> None:
    commands = ota_commands()
    assert {argv[0] for _, argv in commands} == {"init", "validate", "upload"}
    wrong = []
    for where, argv in commands:
        command = cli_group.commands.get(argv[0])
        assert isinstance(command, click.Command), f"{where}: no command {argv[0]}"
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        wrong += [
            f"{where}: {argv[0]} {w}" for w in argv[1:] if w.startswith("--") and w not in options
        ]
    assert wrong == []


def test_both_pipelines_upload_with_wait_and_a_timeout() -> None:
    uploads = [(where, argv) for where, argv in ota_commands() if argv[0] == "upload"]
    assert {where.split()[0] for where, _ in uploads} == {"github", "gitlab"}
    for _, argv in uploads:
        assert "--wait" in argv and "--timeout" in argv


def test_no_exit_code_is_swallowed() -> None:
    # A refused release must fail the job: nothing may hide the command's exit status.
    for where, line in shell_lines():
        assert not re.search(r"\|\|\s*(true|:)|set \+e|\|\s*tee", line), f"{where}: {line}"
    for job in github()["jobs"].values():
        assert "continue-on-error" not in job
        assert all("continue-on-error" not in step for step in job["steps"])
    assert all(not job.get("allow_failure") for job in gitlab().values() if isinstance(job, dict))


def exit_table() -> dict[int, str]:
    text = CI_DOC.read_text(encoding="utf-8")
    section = text[text.index("## Exit codes of `upload --wait`") :]
    rows = re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.MULTILINE)
    return {int(code): cell for code, cell in rows}


def test_the_exit_code_table_is_the_codes() -> None:
    table = exit_table()
    by_outcome = {
        code: set(re.findall(r"`([a-z_]+)`", cell))
        for code, cell in table.items()
        if code in (common.EXIT_OK, common.EXIT_FAILED)
    }
    assert by_outcome == {
        common.EXIT_OK: set(SUCCESS_OUTCOMES),
        common.EXIT_FAILED: set(FINAL_OUTCOMES - SUCCESS_OUTCOMES),
    }
    assert set(table) == {
        common.EXIT_OK,
        common.EXIT_FAILED,
        common.EXIT_USAGE,
        common.EXIT_TIMEOUT,
    }
    assert "usage" in table[common.EXIT_USAGE] and "timeout" in table[common.EXIT_TIMEOUT]


@pytest.mark.parametrize("outcome", sorted(FINAL_OUTCOMES))
def test_the_wait_exits_as_the_table_says(outcome: str) -> None:
    from ota_release.cli.wait import exit_code_of

    code = exit_code_of({"outcome": outcome})
    assert f"`{outcome}`" in exit_table()[code]
