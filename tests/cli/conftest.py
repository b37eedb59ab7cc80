"""Fixtures for the CLI tests: a clean environment, a runner, and the local cloud.

Every test runs with a private HOME (no real ~/.aliyun/config.json, no oss2 resumable
checkpoints in the real home) and without any ALIBABA_CLOUD_* / OTA_* variable from the
developer's shell, so no test can ever reach a real account.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ota_release.cli import cli

AK, SECRET = "LTAI-cli-test", "cli-test-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.cli-test", "cli-sts-secret", "cli-sts-token"
BUCKET = "firmware-bucket"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("ALIBABA_CLOUD_", "OTA_", "ALICLOUD_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    return home


@pytest.fixture(autouse=True)
def _quiet_sdk_logging(caplog: pytest.LogCaptureFixture) -> None:
    # fc2 logs request headers (Authorization included) at ERROR on every 4xx.
    caplog.set_level(logging.CRITICAL)


@pytest.fixture
def run() -> Any:
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    runner = CliRunner()

    def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def aliyun_config(clean_env: Path) -> Any:
    """Writes ~/.aliyun/config.json in the format `aliyun configure` writes."""

    def write(profiles: list[dict[str, Any]], current: str) -> Path:
        path = clean_env / ".aliyun" / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"current": current, "profiles": profiles}
        path.write_text(json.dumps(body), encoding="utf-8")
        return path

    return write


@dataclass
class LocalCloud:
    """The local OSS and IoT stand-ins, served on loopback ports, sharing one key store."""

    oss: Any
    iot: Any
    store: Any
    oss_url: str
    iot_url: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a CLI run against these stand-ins with the test key."""
        values = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "ALIBABA_CLOUD_REGION_ID": "cn-shanghai",
            "OTA_OSS_ENDPOINT": self.oss_url,
            "OTA_IOT_ENDPOINT": self.iot_url,
        }
        values.update(extra)
        return values


@pytest.fixture
def local_cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    from localcloud.credentials import CredentialStore
    from localcloud.iot import LocalIot
    from localcloud.oss import LocalOss
    from localcloud.server import LocalServer

    store = CredentialStore()
    store.add(AK, SECRET)
    store.add(STS_AK, STS_SECRET, STS_TOKEN)
    events: list[dict[str, Any]] = []

    def record(event: dict[str, object]) -> None:
        events.append(event)

    oss = LocalOss(tmp_path / "oss", store, region="cn-shanghai", notify=record)
    oss.create_bucket(BUCKET)
    with LocalServer(oss, name="cli-oss") as oss_server:
        oss.base_url = oss_server.url
        iot = LocalIot(store, oss, oss_base_url=oss_server.url)
        with LocalServer(iot, name="cli-iot") as iot_server:
            yield LocalCloud(oss, iot, store, oss_server.url, iot_server.url, events)
    oss.close()
