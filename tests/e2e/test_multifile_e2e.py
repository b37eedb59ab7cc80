"""Multi-file releases end to end: oss2 uploads -> OSS trigger -> FC -> IoT MultiFiles -> MNS."""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_iot20180120 import models as iot_models

from localcloud.cloud import LocalCloud
from tests.e2e.test_pipeline_e2e import Harness

pytestmark = pytest.mark.e2e

FILES = {"app.bin": b"application " * 40, "boot.img": b"boot" * 64, "config.json": b"{}"}
PARTS = ("sidecar", *FILES)
#: Every order in which the sidecar and the three files can arrive (4! = 24).
ORDERS = list(itertools.permutations(PARTS))


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with LocalCloud(flavour="fun") as cloud:
        yield Harness(cloud)


class Release:
    """One multi-file release folder in a fresh prefix, uploaded part by part."""

    def __init__(self, harness: Harness, name: str, files: list[Any] | None = None) -> None:
        self.h = harness
        self.folder = f"{harness.cloud.prefix}{uuid.uuid4().hex[:8]}/cam-2.0.0"
        self.sidecar_key = self.folder + ".ota.json"
        self.name = name
        self.files = list(FILES) if files is None else files

    def key(self, part: str) -> str:
        return self.sidecar_key if part == "sidecar" else f"{self.folder}/{part}"

    def put(self, part: str, data: bytes | None = None) -> None:
        if part == "sidecar":
            doc = {"version": "2.0.0", "name": self.name, "files": self.files}
            self.h.put(self.sidecar_key, json.dumps(doc).encode())
        else:
            self.h.put(self.key(part), FILES.get(part, b"x") if data is None else data)

    def messages(self) -> list[dict[str, Any]]:
        return self.h.messages(self.sidecar_key, *(self.key(p) for p in [*FILES, "notes.txt"]))


def _query(h: Harness, firmware_id: str) -> Any:
    request = iot_models.QueryOTAFirmwareRequest(firmware_id=firmware_id)
    return h.iot.query_otafirmware(request).body.firmware_info


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ">".join(p[:3] for p in o))
def test_a_three_file_release_in_any_order_registers_once_with_three_files(
    harness: Harness, order: tuple[str, ...]
) -> None:
    # GIVEN a release folder of three files and its sidecar, uploaded in this order
    name = "e2e-mf-" + "".join(p[0] for p in order)
    release = Release(harness, name)
    for part in order:
        release.put(part)
    # THEN every arrival but the last was "waiting", the last "created"
    messages = release.messages()
    assert [m["outcome"] for m in messages] == ["waiting"] * 3 + ["created"]
    created = messages[-1]
    assert [f["name"] for f in created["files"]] == list(FILES)
    assert [f["size"] for f in created["files"]] == [len(d) for d in FILES.values()]
    md5s = [hashlib.md5(d).hexdigest() for d in FILES.values()]  # noqa: S324 - API MD5
    assert [f["sign"] for f in created["files"]] == md5s
    # AND IoT Platform holds one package whose files are those three
    (package,) = harness.firmware_named(name)
    info = _query(harness, package.firmware_id)
    assert [(f.name, f.size, f.sign_value) for f in info.multi_files] == list(
        zip(FILES, [len(d) for d in FILES.values()], md5s, strict=True)
    )


def test_a_missing_file_keeps_the_release_waiting_naming_it(harness: Harness) -> None:
    release = Release(harness, "e2e-mf-missing")
    for part in ("sidecar", "app.bin", "config.json"):
        release.put(part)
    messages = release.messages()
    assert [m["outcome"] for m in messages] == ["waiting"] * 3
    assert release.key("boot.img") in messages[-1]["summary"]
    assert release.key("app.bin") not in messages[-1]["summary"]
    assert harness.firmware_named("e2e-mf-missing") == []


def test_a_bad_file_name_is_rejected_naming_it(harness: Harness) -> None:
    release = Release(harness, "e2e-mf-badname", files=["app.bin", "boot img.bin"])
    release.put("sidecar")
    (message,) = release.messages()
    assert message["outcome"] == "rejected"
    (error,) = message["errors"]
    assert error["field"] == "files[1].name" and "boot img.bin" in error["value"]
    assert harness.firmware_named("e2e-mf-badname") == []


def test_a_duplicate_event_registers_nothing_twice(harness: Harness) -> None:
    # GIVEN a registered multi-file release
    release = Release(harness, "e2e-mf-dup")
    for part in PARTS:
        release.put(part)
    # WHEN one file is uploaded again (same bytes: a new event for the same content)
    release.put("boot.img")
    # THEN that event finds the package (created before this upload: already registered)
    # and there is still one package
    outcomes = [m["outcome"] for m in release.messages()]
    assert outcomes == ["waiting"] * 3 + ["created", "already_registered"]
    assert len(harness.firmware_named("e2e-mf-dup")) == 1
    assert release.messages()[4]["firmware"]["id"] == release.messages()[3]["firmware"]["id"]


def test_a_file_the_sidecar_does_not_list_is_rejected_naming_it(harness: Harness) -> None:
    release = Release(harness, "e2e-mf-stray")
    release.put("sidecar")
    release.put("notes.txt", b"not part of the release")
    message = release.messages()[-1]
    assert message["outcome"] == "rejected"
    assert message["errors"][0]["value"] == "notes.txt"
