"""The conformance suite never skips: without Node.js it fails, saying what to install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance import node_clients
from tests.conformance.node_clients import NodeSetupError, node_executable, pinned_versions


def test_missing_node_is_a_loud_failure_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(NodeSetupError, match=r"node is not on PATH.*cannot be skipped"):
        node_executable()


def test_clients_are_pinned_to_exact_versions_and_locked() -> None:
    pins = pinned_versions()
    lock = json.loads(node_clients.PACKAGE_LOCK.read_text())

    assert set(pins) == {"ali-oss", "@alicloud/pop-core", "@alicloud/mns"}
    for name, version in pins.items():
        assert version[0].isdigit() and all(c not in version for c in "^~<>*x "), version
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
