"""docs/subscribing.md's local example works: run against the local MNS, it shows what a
subscription with each FilterTag would receive, once per message_id.

The messages are published by the function's own MNS adapter with the tags the function
uses (Outcome.tag), so a renamed tag or a changed read endpoint fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcloud.credentials import CredentialStore
from localcloud.mns import LocalMns
from localcloud.server import LocalServer
from ota_release.adapters import CloudCredentials
from ota_release.adapters.mns import MnsNotifier
from ota_release.notification import Notification, Outcome

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "subscribing.md"
MARKER = "<!-- subscribing-example:"
TOPIC = "ota-release-outcomes"
AK, SK = "LTAI-subscribing-doc", "subscribing-doc-secret"


def example_script() -> str:
    text = DOC.read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match, "docs/subscribing.md: no python block after the example marker"
    return match.group(1)


@pytest.fixture
def mns_url() -> Iterator[str]:
    store = CredentialStore()
    store.add(AK, SK)
    mns = LocalMns(store)
    mns.create_topic(TOPIC)
    with LocalServer(mns, name="mns-subscribing-doc") as server:
        yield server.url


def publish(url: str, outcome: Outcome, key: str) -> str:
    note = Notification(outcome, f"{outcome.value} {key}", "bucket", key, etag="E" + key[-1])
    MnsNotifier(CloudCredentials(AK, SK), url, TOPIC).publish(note.to_body(), outcome.tag)
    return note.message_id


def run_example(url: str, tmp_path: Path, *args: str) -> list[list[str]]:
    script = tmp_path / "outcomes.py"
    script.write_text(example_script(), encoding="utf-8")
    env = {"OTA_MNS_ENDPOINT": url, "OTA_NOTIFY_TOPIC": TOPIC, "PATH": ""}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line.split() for line in done.stdout.splitlines()]


def test_the_example_lists_each_outcome_once_and_filters_like_a_subscription(mns_url, tmp_path):
    # GIVEN a created outcome published twice (a retried invocation), and two others
    created = publish(mns_url, Outcome.CREATED, "firmware/a.bin.ota.json")
    assert publish(mns_url, Outcome.CREATED, "firmware/a.bin.ota.json") == created
    again = publish(mns_url, Outcome.ALREADY_REGISTERED, "firmware/b.bin.ota.json")
    rejected = publish(mns_url, Outcome.REJECTED, "firmware/c.bin.ota.json")

    # WHEN the doc's script runs without a filter, THEN every outcome shows once
    assert run_example(mns_url, tmp_path) == [
        ["created", "created", created, "firmware/a.bin.ota.json"],
        ["already_reg", "already_registered", again, "firmware/b.bin.ota.json"],
        ["rejected", "rejected", rejected, "firmware/c.bin.ota.json"],
    ]
    # AND with a FilterTag, only that tag, named as the doc's tag table names it
    assert run_example(mns_url, tmp_path, "already_reg") == [
        ["already_reg", "already_registered", again, "firmware/b.bin.ota.json"],
    ]
    assert run_example(mns_url, tmp_path, "already_registered") == []


def test_the_tag_table_is_the_code_s() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `([a-z_]+)` \|$", text, re.MULTILINE))
    assert rows == {outcome.value: outcome.tag for outcome in Outcome}


def test_the_event_age_named_is_the_deployed_one() -> None:
    root = DOC.parents[1]
    s_yaml = yaml.safe_load((root / "s.yaml").read_text(encoding="utf-8"))
    age = s_yaml["resources"]["create-firmware"]["props"]["asyncInvokeConfig"][
        "maxAsyncEventAgeInSeconds"
    ]
    template = (root / "template.yml").read_text(encoding="utf-8")
    assert f"MaxAsyncEventAgeInSeconds: {age}" in template
    prose = " ".join(DOC.read_text(encoding="utf-8").split())
    assert f"`MaxAsyncEventAgeInSeconds` of the upload: {age} s" in prose
