"""Fixtures for the deployment checks: repo paths, a live runtime server, built zips."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "create_firmware"
# The suite runs with --import-mode=importlib: make `scripts.*` and `tests.deploy.*`
# importable however pytest was started.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_CREDENTIAL_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)


@pytest.fixture(autouse=True)
def _isolated_cloud_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SDK may reach the ECS metadata address; credentials set by a test are undone."""
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    saved = {name: os.environ.get(name) for name in _CREDENTIAL_VARS}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def runtime_server_module() -> ModuleType:
    """functions/create_firmware/runtime_server.py, imported by path (it ships as a script)."""
    spec = importlib.util.spec_from_file_location(
        "ota_runtime_server", FUNCTION_DIR / "runtime_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class RunningServer:
    """A runtime server on 127.0.0.1:<free port>, serving in a background thread."""

    def __init__(self, module: ModuleType, runtime: object) -> None:
        self.server = module.make_server("127.0.0.1", 0, runtime)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RunningServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(runtime_server_module: ModuleType) -> Iterator[object]:
    """Start a server for a given FunctionRuntime; every server started is stopped."""
    started: list[RunningServer] = []

    def start(runtime: object) -> RunningServer:
        running = RunningServer(runtime_server_module, runtime).__enter__()
        started.append(running)
        return running

    yield start
    for running in started:
        running.__exit__(None, None, None)
