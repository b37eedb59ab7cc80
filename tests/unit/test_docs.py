"""What README.md and docs/ name must exist in the code, with the value they state.

Everything is read from the code, not from a list kept here: environment variables (every
``OTA_*`` name), their defaults (set to the documented default, a setting must change
nothing), MessageTags and outcomes (``Outcome``), the CLI's exit codes (``EXIT_*``) and
flags (the click commands), ``localcloud up``'s options (its argparse parser), make
targets (the Makefile) and the message schema name. And the reverse where a user needs it:
every variable the function reads and every MessageTag is documented.

Rename any of these in the code and a test here fails, naming the doc and the name.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest

from localcloud.__main__ import build_parser
from localcloud.mns import ReceivedMessage
from ota_release.cli import cli as cli_group
from ota_release.cli import common as cli_common
from ota_release.notification import SCHEMA, Notification, Outcome
from ota_release.retry import RetryPolicy
from ota_release.rules import RULES_TABLE
from ota_release.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
SIDECAR_DOC = ROOT / "docs" / "sidecar.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("api_name", sorted(RULES_TABLE))
def test_every_rule_is_stated_in_the_sidecar_reference(api_name: str) -> None:
    text = doc_text(SIDECAR_DOC)
    row = f"| `{api_name}` | {RULES_TABLE[api_name]} |"
    assert row in text, f"docs/sidecar.md lacks the current rule for {api_name}: {row}"


# -- environment variables ------------------------------------------------------------------

#: Where a variable named in the docs may be defined or read: the code and what deploys it.
CODE_PLACES = [
    "src",
    "functions",
    "localcloud",
    "scripts",
    "benchmarks",
    "tests/reliability/conftest.py",
    "Makefile",
    "template.yml",
    "s.yaml",
]
ENV_NAME = re.compile(r"\bOTA_[A-Z0-9_]*[A-Z0-9]\b(\*)?")
#: A CI secret's name in an example workflow is the user's, not the project's.
CI_SECRET = re.compile(r"\$\{\{\s*secrets\.[A-Z0-9_]+\s*\}\}")


def code_text() -> str:
    parts = []
    for place in CODE_PLACES:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if file.suffix in {".pyc", ".zip"} or "__pycache__" in file.parts:
                continue
            parts.append(file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def documented_env_names() -> Iterator[tuple[str, str]]:
    """(doc, name) for every OTA_* name the docs mention; ``OTA_RETRY_*`` as a prefix."""
    for path in DOCS:
        text = CI_SECRET.sub("", doc_text(path))
        for match in ENV_NAME.finditer(text):
            yield rel(path), match.group(0)


def function_env_names() -> set[str]:
    """Every OTA_* string constant in the function's and the CLI's code (what they read)."""
    names: set[str] = set()
    files = [*sorted((ROOT / "src" / "ota_release").rglob("*.py"))]
    files += sorted((ROOT / "functions").rglob("*.py"))
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"OTA_[A-Z0-9_]*[A-Z0-9]", node.value)
            ):
                names.add(node.value)
    bootstrap = (ROOT / "functions" / "create_firmware" / "bootstrap").read_text()
    names |= set(re.findall(r"\bOTA_[A-Z0-9_]*[A-Z0-9]\b", bootstrap))
    return names


def test_the_docs_name_variables_at_all() -> None:
    # The walks below must see something, or they would pass on nothing.
    assert len(set(documented_env_names())) > 20
    assert {"OTA_NOTIFY_TOPIC", "OTA_IOT_QPS", "OTA_RETRY_MAX_ATTEMPTS"} <= function_env_names()


def test_every_variable_named_in_the_docs_exists_in_the_code() -> None:
    code = code_text()
    missing = set()
    for doc, name in documented_env_names():
        found = re.search(re.escape(name.rstrip("*")) + ("" if name.endswith("*") else r"\b"), code)
        if not found:
            missing.add(f"{doc}: {name}")
    assert missing == set(), "named in the docs, absent from the code"


def test_every_variable_the_function_or_the_cli_reads_is_documented() -> None:
    documented = {name for _, name in documented_env_names()}
    prefixes = tuple(n.rstrip("*") for n in documented if n.endswith("*"))
    undocumented = {
        n for n in function_env_names() if n not in documented and not n.startswith(prefixes)
    }
    assert undocumented == set(), "read by the code, named in no doc"


# -- defaults ---------------------------------------------------------------------------------

ACCOUNT = "1234567890123456"
REGION = "cn-shanghai"
BASE_ENV = {
    "OTA_REGION": REGION,
    "OTA_NOTIFY_TOPIC": "ota-release-outcomes",
    "OTA_ACCOUNT_ID": ACCOUNT,
}
PLACEHOLDERS = {"<region>": REGION, "<account>": ACCOUNT}
#: Modules whose variables have a default the tests below can observe.
SETTINGS_SOURCES = [
    ROOT / "src" / "ota_release" / "settings.py",
    ROOT / "src" / "ota_release" / "retry.py",
]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def documented_defaults() -> Iterator[tuple[str, str, str]]:
    """(doc, variable, default) from every table with a 'variable' and a 'default' column
    whose default cell is one code literal (placeholders like <region> filled in)."""
    for path in DOCS:
        lines = doc_text(path).splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("|"):
                continue
            header = [c.lower() for c in _cells(line)]
            if "variable" not in header or "default" not in header:
                continue
            var_col, default_col = header.index("variable"), header.index("default")
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                var = re.fullmatch(r"`(OTA_[A-Z0-9_]+)`", cells[var_col])
                default = re.fullmatch(r"`([^`]+)`", cells[default_col])
                if var and default:
                    value = default.group(1)
                    for placeholder, filled in PLACEHOLDERS.items():
                        value = value.replace(placeholder, filled)
                    if "<" not in value:
                        yield rel(path), var.group(1), value


def observable_defaults() -> list[tuple[str, str, str]]:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in SETTINGS_SOURCES)
    return [d for d in documented_defaults() if f'"{d[1]}"' in sources]


def snapshot(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the function would run with: its Settings (or the error) and its retry policy."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("OTA_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            settings: Any = Settings.from_env(dict(env))
        except SettingsError as exc:
            settings = ("SettingsError", str(exc))
        policy = RetryPolicy()
        retry = {
            f.name: getattr(policy, f.name)
            for f in dataclasses.fields(policy)
            if isinstance(getattr(policy, f.name), (int, float))
        }
    return settings, retry


def _other_value(value: str) -> str:
    try:
        return str(float(value) + 1)
    except ValueError:
        return value + "-other"


def test_the_docs_state_defaults_this_test_can_check() -> None:
    checked = {var for _, var, _ in observable_defaults()}
    assert {"OTA_IOT_QPS", "OTA_LOG_LEVEL", "OTA_RETRY_MAX_ATTEMPTS", "OTA_IOT_ENDPOINT"} <= checked


@pytest.mark.parametrize(
    ("doc", "var", "default"), observable_defaults(), ids=lambda v: str(v).replace("/", "_")
)
def test_a_documented_default_is_the_code_s_default(
    doc: str, var: str, default: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unset = snapshot(BASE_ENV, monkeypatch)
    assert not isinstance(unset[0], tuple), unset[0]
    # Setting the variable to its documented default changes nothing ...
    assert snapshot({**BASE_ENV, var: default}, monkeypatch) == unset, (
        f"{doc}: {var} is documented to default to {default!r}, the code's default differs"
    )
    # ... while another value does (so the variable really is read under this name).
    assert snapshot({**BASE_ENV, var: _other_value(default)}, monkeypatch) != unset, (
        f"{doc}: setting {var} changes nothing; is it still read under this name?"
    )


# -- MessageTags and outcomes ------------------------------------------------------------------

TAGS = {o.tag for o in Outcome}
OUTCOMES = {o.value for o in Outcome}
TOKEN = re.compile(r"`([a-z]+(?:_[a-z]+)*)`")
TAG_WORD = re.compile(r"\b(?:[Tt]ag(?:s|ged)?|MessageTag|FilterTag)\b")


def _body_fields() -> set[str]:
    note = Notification(Outcome.CREATED, "s", "b", "k")
    fields: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                fields.add(key)
                walk(value)

    walk(json.loads(note.to_body()))
    return fields


def sentences(text: str) -> Iterator[str]:
    """Table rows and the sentences of prose paragraphs, whitespace collapsed."""
    for block in re.split(r"\n\s*\n", text):
        if block.lstrip().startswith("```"):
            continue
        rows = [line for line in block.splitlines() if line.startswith("|")]
        yield from rows
        prose = " ".join(line for line in block.splitlines() if not line.startswith("|"))
        yield from re.split(r"(?<=[.!?])\s+(?=[A-Z(`*])", " ".join(prose.split()))


def tag_claims() -> Iterator[tuple[str, str, str]]:
    """(doc, token, sentence): backticked words a sentence about tags presents as tags.

    An outcome name counts as explained (not claimed as a tag) when its tag is in the same
    sentence, as in "`already_registered` is tagged `already_reg`". Body field names are
    not tag claims.
    """
    # Field names of our body and of the local topic reader's records are not tags.
    not_tags = _body_fields() | {f.name for f in dataclasses.fields(ReceivedMessage)}
    for path in DOCS:
        for sentence in sentences(doc_text(path)):
            if not TAG_WORD.search(sentence):
                continue
            for token in TOKEN.findall(sentence):
                if token in not_tags or token in TAGS:
                    continue
                if token in OUTCOMES and f"`{Outcome(token).tag}`" in sentence:
                    continue
                yield rel(path), token, sentence


def test_every_tag_named_in_the_docs_is_one_the_function_publishes() -> None:
    wrong = {f"{doc}: `{token}` in: {sentence[:160]}" for doc, token, sentence in tag_claims()}
    assert wrong == set()


def test_every_tag_is_documented_in_the_notification_and_subscription_guides() -> None:
    for name in ("notifications.md", "subscribing.md"):
        text = doc_text(ROOT / "docs" / name)
        assert {t for t in TAGS if f"`{t}`" not in text} == set(), name


def test_the_outcome_table_is_the_code_s_outcomes() -> None:
    text = doc_text(ROOT / "docs" / "notifications.md")
    section = text[text.index("## Outcomes") :]
    section = section[: section.index("\n## ")]
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert listed == OUTCOMES


def test_every_outcome_named_as_one_is_an_outcome() -> None:
    claim = re.compile(r"\b(?:outcome|outcomes|ends|ended) (?:is |was |as |of )?\**`([a-z_]+)`")
    wrong = set()
    for path in DOCS:
        for token in claim.findall(" ".join(doc_text(path).split())):
            if token not in OUTCOMES and token not in TAGS:
                wrong.add(f"{rel(path)}: `{token}`")
    assert wrong == set()


def test_the_message_schema_named_is_the_code_s() -> None:
    named = {
        (rel(path), m)
        for path in DOCS
        for m in re.findall(r"ota-release/notification/v\d+", doc_text(path))
    }
    assert named, "the docs name the message schema"
    assert {(doc, m) for doc, m in named if m != SCHEMA} == set()


# -- the CLI ------------------------------------------------------------------------------------


def cli_options() -> dict[str, set[str]]:
    """Every command's options (the group's own included), from the click objects."""
    options: dict[str, set[str]] = {}
    group = {o for p in cli_group.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
    for name, command in cli_group.commands.items():
        opts = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        if isinstance(command, click.Command):
            opts |= set(command.get_help_option_names(click.Context(command)))
        options[name] = opts | group
    return options


def command_lines() -> Iterator[tuple[str, str, str]]:
    """(doc, command, line) for every `ota-release <command> ...` in the docs, with a code
    block's backslash continuations joined."""
    commands = set(cli_group.commands)
    for path in DOCS:
        text = re.sub(r"\\\n\s*", " ", doc_text(path))
        for match in re.finditer(r"ota-release\s+([a-z]+)([^\n`|]*)", text):
            if match.group(1) in commands:
                yield rel(path), match.group(1), match.group(2)


def test_the_docs_show_cli_commands() -> None:
    assert {c for _, c, _ in command_lines()} == set(cli_group.commands)


def test_every_flag_in_a_documented_command_line_exists() -> None:
    options = cli_options()
    wrong = set()
    for doc, command, line in command_lines():
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line):
            if flag not in options[command]:
                wrong.add(f"{doc}: ota-release {command} {flag}")
    assert wrong == set()


def test_every_flag_in_a_cli_md_command_section_exists() -> None:
    options = cli_options()
    text = doc_text(ROOT / "docs" / "cli.md")
    wrong = set()
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        command = section.split()[0]
        if command not in options:
            continue
        for flag in re.findall(r"`(--[a-z][a-z0-9-]*)", section):
            if flag not in options[command]:
                wrong.add(f"docs/cli.md ## {command}: {flag}")
    assert wrong == set()


def test_the_exit_status_table_is_the_code_s() -> None:
    codes = {v for k, v in vars(cli_common).items() if k.startswith("EXIT_")}
    text = doc_text(ROOT / "docs" / "cli.md")
    section = text[text.index("## Exit status") :]
    section = section[: section.index("\n\n", section.index("|"))]
    listed = {int(c) for c in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)}
    assert listed == codes


# -- localcloud up ------------------------------------------------------------------------------


def up_options() -> set[str]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    up = sub.choices["up"]
    return {o for a in up._actions for o in a.option_strings if o not in ("-h", "--help")}


def test_readme_lists_exactly_the_options_of_localcloud_up() -> None:
    text = doc_text(ROOT / "README.md")
    section = text[text.index("## The local cloud") :]
    section = section[: section.index("\n## ")]
    listed = set(re.findall(r"^\| `(--[a-z0-9-]+)` \|", section, re.MULTILINE))
    assert listed == up_options()


def test_every_flag_given_to_localcloud_up_in_the_docs_exists() -> None:
    options = up_options()
    wrong = set()
    for path in DOCS:
        for line in re.findall(r"localcloud up([^\n`|]*)", doc_text(path)):
            wrong |= {f"{rel(path)}: {f}" for f in re.findall(r"--[a-z0-9-]+", line)} - {
                f"{rel(path)}: {o}" for o in options | {"--help"}
            }
    assert wrong == set()


# -- make targets -------------------------------------------------------------------------------


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-zA-Z][a-zA-Z0-9_-]*):", makefile, re.MULTILINE))


def test_every_make_target_named_in_the_docs_exists() -> None:
    targets = make_targets()
    named = {
        (rel(path), t)
        for path in DOCS
        for t in re.findall(r"`make ([a-z][a-z0-9-]*)", doc_text(path))
        + [
            t
            for block in re.findall(r"```[a-z]*\n(.*?)```", doc_text(path), re.DOTALL)
            for t in re.findall(r"^\s*make ([a-z][a-z0-9-]*)", block, re.MULTILINE)
        ]
    }
    assert len(named) > 5
    assert {f"{doc}: make {t}" for doc, t in named if t not in targets} == set()
