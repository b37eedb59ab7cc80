"""`ota-release upload --wait` against the local cloud: the CLI uploads, the function in FC
releases and writes its outcome object, the CLI reads this upload's outcome and exits.

Every command gets only the environment `localcloud up` prints (``client_env``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from localcloud.cloud import LocalCloud
from ota_release.cli import cli
from ota_release.results import final_key, waiting_key

pytestmark = pytest.mark.e2e

PAYLOAD = bytes(range(256)) * 40


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(flavour="s", max_instances=2) as running:
        yield running


@pytest.fixture(scope="module")
def events(cloud: LocalCloud) -> Iterator[list[dict[str, Any]]]:
    """Every OSS event the local OSS raised, as delivered to FC."""
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def record(event: dict[str, Any]) -> None:
        with lock:
            seen.append(event)

    unsubscribe = cloud.oss.subscribe(record)
    yield seen
    unsubscribe()


def invoke(cloud: LocalCloud, *args: str | Path) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], env=cloud.client_env())


class Release:
    """One release's files in a build folder and its own watched sub-prefix."""

    def __init__(
        self, cloud: LocalCloud, folder: Path, version: str, data: bytes, *init_args: str
    ) -> None:
        self.cloud = cloud
        self.prefix = f"{cloud.prefix}{uuid.uuid4().hex[:8]}/"
        self.firmware = folder / f"cam-{version}.bin"
        self.version = version
        self.write(data, *init_args)

    @property
    def key(self) -> str:
        return self.prefix + self.firmware.name

    def write(self, data: bytes, *extra: str) -> None:
        self.firmware.write_bytes(data)
        made = invoke(
            self.cloud, "init", self.firmware, "--version", self.version, "--force", *extra
        )
        assert made.exit_code == 0, made.output

    def upload(self, *extra: str | Path, timeout: str = "60") -> Result:
        return invoke(
            self.cloud,
            "upload",
            self.firmware,
            "--prefix",
            self.prefix,
            "--wait",
            "--timeout",
            timeout,
            *extra,
        )

    def etag(self, key: str | None = None) -> str:
        info = self.cloud.sdk_bucket().head_object(key or self.key)
        return str(info.etag).upper()

    def stored(self) -> dict[str, Any] | None:
        key = final_key(self.cloud.results_prefix, self.key)
        try:
            doc: dict[str, Any] = json.loads(self.cloud.oss.read_object(self.cloud.bucket, key))
        except FileNotFoundError:
            return None
        return doc


def published(cloud: LocalCloud, message_id: str) -> list[dict[str, Any]]:
    bodies = [json.loads(m.body) for m in cloud.mns.messages(cloud.notify_topic)]
    return [b for b in bodies if b["message_id"] == message_id]


def test_a_good_release_exits_0_with_its_created_outcome(cloud: LocalCloud, tmp_path: Path) -> None:
    release = Release(cloud, tmp_path, "4.0.0", PAYLOAD)

    result = release.upload("--json")

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "created" and doc["firmware_key"] == release.key
    assert doc["firmware_etag"] == release.etag()
    # the same document the topic received, stored under the results prefix
    assert published(cloud, doc["message_id"])
    assert release.stored() is not None
    assert release.stored()["message_id"] == doc["message_id"]  # type: ignore[index]


def test_human_output_names_the_outcome_and_the_progress_goes_to_stderr(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    release = Release(cloud, tmp_path, "4.0.1", PAYLOAD + b"1")

    result = release.upload()

    assert result.exit_code == 0, result.output
    assert "created: registered cam-4_0_1 4.0.1 as " in result.stdout
    assert " s\n" in result.stderr  # the progress line: "<what it waits for> … N s"


def test_a_release_the_function_refuses_exits_1_naming_the_field(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN an old YAML sidecar of the same firmware left in the bucket
    release = Release(cloud, tmp_path, "4.1.0", PAYLOAD + b"2")
    cloud.sdk_bucket().put_object(release.key + ".ota.yaml", b"version: 4.1.0\n")
    assert cloud.wait_idle(60)

    # WHEN the JSON sidecar and the firmware are uploaded with --wait
    result = release.upload()

    # THEN the function's rejection is printed as the notification lists it, and exit 1
    assert result.exit_code == 1, result.output
    assert "rejected: " in result.stdout
    assert "- sidecar: exactly one sidecar per firmware file" in result.stdout


def test_a_conflict_exits_1_and_is_the_new_uploads_not_the_old_created(
    cloud: LocalCloud, tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    # GIVEN v1 registered
    release = Release(cloud, tmp_path, "4.2.0", PAYLOAD + b"v1")
    first = release.upload("--json")
    assert first.exit_code == 0, first.output
    old_etag = release.etag()
    assert json.loads(first.stdout)["outcome"] == "created"

    # WHEN other bytes are uploaded under the same name and version
    release.write(PAYLOAD + b"v2 other bytes")
    second = release.upload("--json")

    # THEN this upload's conflict is reported, never the stored created of v1
    assert second.exit_code == 1, second.output
    doc = json.loads(second.stdout)
    assert doc["outcome"] == "conflict"
    assert doc["firmware_etag"] == release.etag() != old_etag
    assert any(e["field"] in ("sign", "size") for e in doc["errors"])

    # AND a duplicate of v1's firmware event, delivered late, leaves the outcome alone
    (old_event,) = [
        e
        for e in events
        if e["events"][0]["oss"]["object"]["key"] == release.key
        and e["events"][0]["oss"]["object"]["eTag"].upper() == old_etag
    ]
    cloud.fc.on_oss_event(old_event)  # type: ignore[union-attr]
    assert cloud.wait_idle(60)
    assert release.stored() == doc
    status = invoke(cloud, "status", release.key, "--json")
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["outcome"]["message_id"] == doc["message_id"]


def test_an_identical_re_upload_reports_already_registered_not_the_earlier_created(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    release = Release(cloud, tmp_path, "4.3.0", PAYLOAD + b"same")
    first = release.upload("--json")
    assert first.exit_code == 0 and json.loads(first.stdout)["outcome"] == "created"

    again = release.upload("--json")

    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["outcome"] == "already_registered"


def test_a_firmware_whose_sidecar_never_comes_times_out_with_3(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a sidecar named with a suffix the function does not know: to the function
    # the firmware's sidecar never arrives
    release = Release(
        cloud, tmp_path, "4.4.0", PAYLOAD + b"lonely", "--sidecar-suffixes", ".release.json"
    )

    result = release.upload("--sidecar-suffixes", ".release.json", timeout="4")

    assert result.exit_code == 3, result.output
    assert "no outcome for this upload after 4 s" in result.stderr
    assert f"waiting for its sidecar {release.key}.ota.json" in result.stderr
    waiting = cloud.oss.read_object(cloud.bucket, waiting_key(cloud.results_prefix, release.key))
    assert json.loads(waiting)["outcome"] == "waiting"
    assert release.stored() is None


def test_status_of_a_key_shows_its_stored_outcome(cloud: LocalCloud, tmp_path: Path) -> None:
    release = Release(cloud, tmp_path, "4.5.0", PAYLOAD + b"status")
    assert release.upload().exit_code == 0

    result = invoke(cloud, "status", release.key + ".ota.json")

    assert result.exit_code == 0, result.output
    assert f"{release.key}: published " in result.stdout
    assert "created: registered cam-4_5_0 4.5.0" in result.stdout
    missing = invoke(cloud, "status", release.prefix + "never-uploaded.bin")
    assert missing.exit_code == 1
    assert "no outcome stored for" in missing.stderr


def test_the_upload_event_carries_the_request_id_of_the_upload_answer(
    cloud: LocalCloud, events: list[dict[str, Any]]
) -> None:
    # What --wait matches an identical re-upload by (docs/fidelity.md, OSS).
    key = f"{cloud.prefix}{uuid.uuid4().hex[:8]}/probe.bin"

    answer = cloud.sdk_bucket().put_object(key, b"probe")

    assert cloud.wait_idle(60)
    (event,) = [e for e in events if e["events"][0]["oss"]["object"]["key"] == key]
    assert event["events"][0]["responseElements"]["requestId"] == answer.request_id


def test_a_release_folder_waits_for_its_multi_file_outcome(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    # GIVEN a release folder of three files and its multi-file sidecar made by init
    folder = tmp_path / "hub-7.0.0"
    folder.mkdir()
    names = ["app.bin", "boot.img", "config.json"]
    for i, name in enumerate(names):
        (folder / name).write_bytes(PAYLOAD + bytes([i]) * (i + 1))
    files = [a for name in names for a in ("--file", name)]
    made = invoke(cloud, "init", folder, "--version", "7.0.0", *files)
    assert made.exit_code == 0, made.output
    prefix = f"{cloud.prefix}{uuid.uuid4().hex[:8]}/"

    # WHEN the folder is uploaded with --wait
    result = invoke(cloud, "upload", folder, "--prefix", prefix, "--wait", "--json")

    # THEN the release's own outcome (every file's ETag is this upload's) ends it with 0
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "created"
    assert sorted(f["name"] for f in doc["files"]) == names
    bucket = cloud.sdk_bucket()
    for entry in doc["files"]:
        assert entry["etag"] == str(bucket.head_object(entry["key"]).etag).upper()
    assert (
        doc["message_id"]
        == json.loads(
            cloud.oss.read_object(
                cloud.bucket, final_key(cloud.results_prefix, prefix + "hub-7.0.0")
            )
        )["message_id"]
    )
