"""Fixtures for the fault-injection suite: the soak engine, and the long run's switch.

The suite runs with --import-mode=importlib: put the repository root on sys.path so
``scripts.soak`` (the workload shared with ``make soak``) is importable.

Tests marked ``slow`` (the 200-upload run) are skipped unless ``OTA_RELIABILITY_FULL=1``,
so `make test` stays short; `make reliability` sets it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FULL_RUN_ENV = "OTA_RELIABILITY_FULL"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(FULL_RUN_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"long run: set {FULL_RUN_ENV}=1 (make reliability)")
    here = Path(__file__).parent
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_metadata_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SDK in the test process may fall through to the ECS metadata address."""
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
