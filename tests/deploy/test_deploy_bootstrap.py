"""bootstrap starts the runtime server on an overridable Python, as FC's custom runtime would."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.fc_headers import FC_HEADERS

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "functions" / "create_firmware" / "bootstrap"


def test_bootstrap_is_an_executable_shell_script():
    mode = BOOTSTRAP.stat().st_mode
    assert mode & stat.S_IXUSR and mode & stat.S_IXGRP and mode & stat.S_IXOTH
    assert BOOTSTRAP.read_text().startswith("#!/bin/sh\n")


#: The interpreter bootstrap is told to use: make test's CPython 3.10 pass sets
#: OTA_FUNCTION_PYTHON; otherwise the test's own.
RUNTIME_PYTHON = os.environ.get("OTA_FUNCTION_PYTHON") or sys.executable


def _major_minor(python: str) -> list[int]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(part) for part in out.split()]


@pytest.fixture
def bootstrap_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run bootstrap with the test's Python and a stand-in handler on a free loopback port."""
    code = tmp_path / "standin"
    code.mkdir()
    (code / "standin_handler.py").write_text(
        "import os, sys\n"
        "def handler(event, context):\n"
        "    return {'python': list(sys.version_info[:2]), 'event': event.decode(),\n"
        "            'request_id': context.request_id,\n"
        "            'key_id': os.environ.get('ALIBABA_CLOUD_ACCESS_KEY_ID')}\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OTA_RUNTIME_PYTHON": RUNTIME_PYTHON,
        "OTA_RUNTIME_HANDLER": "standin_handler.handler",
        "OTA_RUNTIME_HOST": "127.0.0.1",
        "FC_SERVER_PORT": "0",
        "PYTHONPATH": str(code),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    proc = subprocess.Popen(
        [str(BOOTSTRAP)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("runtime_server: listening on 127.0.0.1:"), first
        yield proc, "http://" + first.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_bootstrap_serves_invoke_with_the_overridden_interpreter(bootstrap_process):
    _, url = bootstrap_process
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url + "/invoke", data=b'{"k": 1}', method="POST", headers=FC_HEADERS
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        status, fc_status, body = response.status, response.headers["x-fc-status"], response.read()

    assert (status, fc_status) == (200, "200")
    assert json.loads(body) == {
        "python": _major_minor(RUNTIME_PYTHON),
        "event": '{"k": 1}',
        "request_id": "req-0001",
        "key_id": "STS.dummy-key-id",
    }


def test_bootstrap_stops_cleanly_on_sigterm(bootstrap_process):
    proc, _ = bootstrap_process
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def test_bootstrap_refuses_to_start_without_a_python310():
    # No OTA_RUNTIME_PYTHON and none of FC's interpreter paths exist on a build machine.
    if any(Path(p).exists() for p in ("/var/fc/lang/python3.10", "/opt/python3.10")):
        pytest.skip("this machine has an FC Python 3.10 path")
    proc = subprocess.run(
        [str(BOOTSTRAP)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 1
    assert "no Python 3.10 found" in proc.stderr
