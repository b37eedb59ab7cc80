"""Every command against a running local cloud, with only the environment `localcloud up` prints.

`python -m localcloud up` prints ``export KEY=VALUE`` for each item of
``LocalCloud.client_env()`` under "environment for the SDKs and the ota-release CLI"; these
tests pass exactly that mapping as the whole environment of each command and no endpoint,
bucket, prefix or function option, so a variable the CLI ignores (as it once ignored
``OTA_IOT_PROTOCOL``, ``OTA_BUCKET`` and ``OTA_PREFIX``) fails here.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PAYLOAD = bytes(range(256)) * 64  # 16 KiB


@pytest.fixture(scope="module")
def cloud() -> Iterator[Any]:
    from localcloud.cloud import LocalCloud

    with LocalCloud(flavour="s", max_instances=1) as running:
        yield running


@pytest.fixture(scope="module")
def printed(cloud: Any) -> dict[str, str]:
    return dict(cloud.client_env())


@pytest.fixture(scope="module")
def released(cloud: Any, printed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One release made with init + upload alone, and the function done with it."""
    from click.testing import CliRunner

    from ota_release.cli import cli

    firmware = tmp_path_factory.mktemp("build") / "cam-3.1.0.bin"
    firmware.write_bytes(PAYLOAD)
    runner = CliRunner()
    made = runner.invoke(cli, ["init", str(firmware), "--version", "3.1.0"], env=printed)
    assert made.exit_code == 0, made.output
    uploaded = runner.invoke(cli, ["upload", str(firmware), "--json"], env=printed)
    assert uploaded.exit_code == 0, uploaded.output
    assert cloud.wait_idle(60)
    return json.loads(uploaded.stdout)


def closed_port() -> int:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_upload_takes_bucket_and_prefix_from_the_printed_environment(
    cloud: Any, printed: dict[str, str], released: Any
) -> None:
    assert (released["bucket"], printed["OTA_BUCKET"]) == (cloud.bucket, cloud.bucket)
    assert released["firmware_key"] == printed["OTA_PREFIX"] + "cam-3.1.0.bin"
    assert cloud.oss.read_object(cloud.bucket, released["firmware_key"]) == PAYLOAD
    assert released["topic"] == printed["OTA_NOTIFY_TOPIC"]


def test_status_reaches_the_plain_http_iot_endpoint(
    run: Any, printed: dict[str, str], released: Any
) -> None:
    assert "://" not in printed["OTA_IOT_ENDPOINT"] and printed["OTA_IOT_PROTOCOL"] == "http"

    result = run("status", "--name", "cam-3_1_0", "--json", env=printed)

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["FirmwareName"], info["DestVersion"]) == ("cam-3_1_0", "3.1.0")


def test_replay_needs_no_option_and_registers_nothing_twice(
    run: Any, cloud: Any, printed: dict[str, str], released: Any
) -> None:
    before = len(cloud.iot.firmwares())
    plan = run("replay", "--dry-run", "--json", env=printed)
    assert plan.exit_code == 0, plan.output
    planned = [p["key"] for p in json.loads(plan.stdout)["planned"]]
    assert planned == [released["sidecar_key"]]

    result = run("replay", "--json", env=printed)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [i["key"] for i in summary["invoked"]] == [released["sidecar_key"]]
    assert cloud.wait_idle(60)
    found = run("status", "--name", "cam-3_1_0", "--json", env=printed)
    assert found.exit_code == 0 and json.loads(found.stdout)["FirmwareName"] == "cam-3_1_0"
    assert len(cloud.iot.firmwares()) == before


def test_replay_without_a_service_reaches_the_function_through_the_fc3_api(
    run: Any, cloud: Any, printed: dict[str, str], released: Any
) -> None:
    env = {k: v for k, v in printed.items() if k != "OTA_FC_SERVICE"}
    calls_before = len(cloud.fc.invocations)

    result = run("replay", "--json", env=env)

    assert result.exit_code == 0, result.output
    assert [i["key"] for i in json.loads(result.stdout)["invoked"]] == [released["sidecar_key"]]
    assert cloud.wait_idle(60)
    replayed = cloud.fc.invocations[calls_before:]
    assert [r.source for r in replayed] == ["async"]
    assert replayed[0].status == "succeeded"


def test_capacity_needs_no_option(run: Any, cloud: Any, printed: dict[str, str]) -> None:
    result = run("capacity", env=printed)

    assert result.exit_code == 0, result.output
    resource = f"{cloud.spec.service}.LATEST/{cloud.spec.name}"
    assert f"instance cap of {resource}" in result.stdout


def test_validate_checks_the_uploaded_release_files(
    run: Any, printed: dict[str, str], tmp_path: Path
) -> None:
    firmware = tmp_path / "cam-3.2.0.bin"
    firmware.write_bytes(PAYLOAD)
    assert run("init", firmware, "--version", "3.2.0", env=printed).exit_code == 0

    result = run("validate", "--check-firmware", f"{firmware}.ota.json", env=printed)

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("variable", "command"),
    [
        ("OTA_IOT_ENDPOINT", ["status", "--name", "cam-3_1_0"]),
        ("OTA_OSS_ENDPOINT", ["replay", "--dry-run"]),
        ("OTA_FC_ENDPOINT", ["capacity"]),
    ],
)
def test_an_unreachable_endpoint_is_one_line_naming_it_and_exits_1(
    run: Any, printed: dict[str, str], variable: str, command: list[str]
) -> None:
    port = closed_port()
    endpoint = f"127.0.0.1:{port}" if variable == "OTA_IOT_ENDPOINT" else f"http://127.0.0.1:{port}"

    result = run(*command, env={**printed, variable: endpoint})

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "connection refused" in lines[0]
    assert "{" not in lines[0]  # no SDK dict


def test_upload_to_an_unreachable_oss_is_one_line(
    run: Any, printed: dict[str, str], tmp_path: Path
) -> None:
    firmware = tmp_path / "cam-3.3.0.bin"
    firmware.write_bytes(PAYLOAD)
    assert run("init", firmware, "--version", "3.3.0", env=printed).exit_code == 0
    port = closed_port()

    result = run(
        "upload", firmware, env={**printed, "OTA_OSS_ENDPOINT": f"http://127.0.0.1:{port}"}
    )

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.stderr


def test_https_spoken_to_the_plain_http_iot_says_so_in_one_line(
    run: Any, printed: dict[str, str], released: Any
) -> None:
    env = {k: v for k, v in printed.items() if k != "OTA_IOT_PROTOCOL"}

    result = run("status", "--name", "cam-3_1_0", env=env)

    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TLS handshake failed" in lines[0], result.stderr


def test_a_scheme_that_contradicts_the_iot_protocol_is_a_usage_error(
    run: Any, printed: dict[str, str]
) -> None:
    env = {**printed, "OTA_IOT_ENDPOINT": "https://" + printed["OTA_IOT_ENDPOINT"]}

    result = run("status", "--name", "x", env=env)

    assert result.exit_code == 2
    assert "says https but --iot-protocol / OTA_IOT_PROTOCOL says http" in result.stderr
