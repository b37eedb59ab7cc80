"""`upload`, `replay` and `status` against the local OSS, IoT Platform and Function Compute.

The real SDKs (oss2, alibabacloud-iot20180120, aliyun-fc2) talk HTTP to the stand-ins in
``localcloud``, which check every signature, so a wrong key here fails as it would in the
cloud. The function behind the local FC is a stand-in handler that echoes its event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ota_release.ports import FirmwareRequest

pytestmark = pytest.mark.integration

BUCKET = "firmware-bucket"
SERVICE, FUNCTION = "ota-release", "create-firmware"
PAYLOAD = bytes(range(256)) * 1200  # 300 KiB
ECHO_HANDLER = 'return event.decode("utf-8")'


@pytest.fixture
def release(tmp_path: Path, run: Any) -> Path:
    """A firmware file with a sidecar written by `ota-release init`."""
    firmware = tmp_path / "build" / "cam-2.0.0.bin"
    firmware.parent.mkdir()
    firmware.write_bytes(PAYLOAD)
    result = run("init", firmware, "--version", "2.0.0", "--product-key", "a1Cam")
    assert result.exit_code == 0, result.output
    return firmware


@pytest.fixture
def local_fc(tmp_path: Path, local_cloud: Any) -> Iterator[Any]:
    from localcloud.fc import LocalFunctionCompute
    from localcloud.fc.template import load_function_spec
    from localcloud.fc.testkit import process_group_gone, write_handler, write_template

    code_dir = tmp_path / "fc" / "functions" / "create_firmware"
    write_handler(code_dir, ECHO_HANDLER)
    spec = load_function_spec(write_template(tmp_path / "fc", retries=0))
    fc = LocalFunctionCompute(
        spec, code_dir=code_dir, flavour="s", credentials=local_cloud.store, max_instances=2
    ).start()
    yield fc
    fc.stop()
    assert all(process_group_gone(pid) for pid in fc.instance_pids)


def keys_in(local_cloud: Any) -> list[str]:
    return sorted(local_cloud.oss.list_keys(BUCKET))


# upload ---------------------------------------------------------------------------------------


def test_upload_puts_firmware_then_sidecar_and_says_what_the_function_will_do(
    run: Any, local_cloud: Any, release: Path
) -> None:
    result = run(
        "upload", release, "--bucket", BUCKET, "--prefix", "firmware/acme",
        env=local_cloud.env(OTA_NOTIFY_TOPIC="ota-outcomes"),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    oss = local_cloud.oss
    assert oss.read_object(BUCKET, "firmware/acme/cam-2.0.0.bin") == PAYLOAD
    sidecar = json.loads(oss.read_object(BUCKET, "firmware/acme/cam-2.0.0.bin.ota.json"))
    assert sidecar["sign"] == hashlib.md5(PAYLOAD, usedforsecurity=False).hexdigest()
    assert oss.drain(5)
    order = [e["events"][0]["oss"]["object"]["key"] for e in local_cloud.events]
    assert order == ["firmware/acme/cam-2.0.0.bin", "firmware/acme/cam-2.0.0.bin.ota.json"]
    assert (
        "the function will register cam-2_0_0 2.0.0 (product a1Cam) and notify topic ota-outcomes"
        in result.stdout
    )


def test_large_firmware_goes_up_as_multipart_with_identical_bytes(
    run: Any, local_cloud: Any, release: Path
) -> None:
    result = run(
        "upload", release, "--bucket", BUCKET, "--json",
        "--multipart-threshold", "100KiB", "--part-size", "100KiB",
        env=local_cloud.env(),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["firmware_key"] == "firmware/cam-2.0.0.bin"
    stored = local_cloud.oss.head(BUCKET, "firmware/cam-2.0.0.bin")
    assert stored.object_type == "Multipart"
    assert local_cloud.oss.read_object(BUCKET, "firmware/cam-2.0.0.bin") == PAYLOAD


def test_upload_refuses_an_invalid_sidecar_and_uploads_nothing(
    run: Any, local_cloud: Any, release: Path
) -> None:
    sidecar = release.with_name(release.name + ".ota.json")
    doc = json.loads(sidecar.read_text())
    doc["size"] = 1
    sidecar.write_text(json.dumps(doc))

    result = run("upload", release, "--bucket", BUCKET, env=local_cloud.env())

    assert result.exit_code == 1
    assert "not uploaded" in result.stdout and "size: must match the firmware file" in result.stdout
    assert keys_in(local_cloud) == []


def test_upload_refuses_a_key_the_function_could_never_pair_and_uploads_nothing(
    run: Any, local_cloud: Any, release: Path
) -> None:
    # GIVEN a prefix so long that the sidecar's key would pass OSS's 1023-byte limit
    prefix = "p" * (1023 - len(release.name) - 5) + "/"

    # WHEN it is uploaded there
    result = run("upload", release, "--bucket", BUCKET, "--prefix", prefix, env=local_cloud.env())

    # THEN the CLI refuses it with the function's own rule, before anything is stored
    assert result.exit_code == 2, result.output
    assert "1023-byte key limit" in result.output
    assert keys_in(local_cloud) == []


def test_upload_with_refused_credentials_exits_1_without_leaking_the_secret(
    run: Any, local_cloud: Any, release: Path
) -> None:
    env = local_cloud.env(ALIBABA_CLOUD_ACCESS_KEY_SECRET="wrong-secret-value")

    result = run("upload", release, "--bucket", BUCKET, env=env)

    assert result.exit_code == 1
    assert "SignatureDoesNotMatch" in result.stderr
    assert "the credentials were refused (key LTAI-cli-test" in result.stderr
    assert "wrong-secret-value" not in result.output
    assert keys_in(local_cloud) == []


def test_upload_to_a_missing_bucket_names_the_problem(
    run: Any, local_cloud: Any, release: Path
) -> None:
    result = run("upload", release, "--bucket", "no-such-bucket", env=local_cloud.env())

    assert result.exit_code == 1
    assert "NoSuchBucket" in result.stderr


def test_upload_without_any_credentials_is_a_usage_error(
    run: Any, local_cloud: Any, release: Path
) -> None:
    env = local_cloud.env()
    del env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]

    result = run("upload", release, "--bucket", BUCKET, env=env)

    assert result.exit_code == 2
    assert "no credentials" in result.stderr


def test_upload_with_an_sts_profile_from_the_aliyun_cli_config(
    run: Any, local_cloud: Any, release: Path, aliyun_config: Any
) -> None:
    aliyun_config(
        [
            {
                "name": "ci",
                "mode": "StsToken",
                "access_key_id": "STS.cli-test",
                "access_key_secret": "cli-sts-secret",
                "sts_token": "cli-sts-token",
                "region_id": "cn-shanghai",
            }
        ],
        current="ci",
    )
    env = local_cloud.env()
    del env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]

    result = run("upload", release, "--bucket", BUCKET, env=env)

    assert result.exit_code == 0, result.output
    assert keys_in(local_cloud) == ["firmware/cam-2.0.0.bin", "firmware/cam-2.0.0.bin.ota.json"]


# replay ---------------------------------------------------------------------------------------


def seed_bucket(local_cloud: Any) -> None:
    put = local_cloud.oss.put_object
    put(BUCKET, "firmware/a.bin", b"aaaa", notify=False)
    put(BUCKET, "firmware/a.bin.ota.json", b'{"version": "1.0.0"}', notify=False)
    put(BUCKET, "firmware/lonely.bin", b"bbbbbb", notify=False)
    put(BUCKET, "elsewhere/x.bin", b"x", notify=False)


def replay_args(local_fc: Any | None, *extra: str) -> list[str]:
    args = ["replay", "--bucket", BUCKET, "--prefix", "firmware/"]
    if local_fc is not None:
        args += ["--service", SERVICE, "--function", FUNCTION, "--fc-endpoint", local_fc.api_url]
    return [*args, *extra]


def test_dry_run_lists_the_plan_and_invokes_nothing(run: Any, local_cloud: Any) -> None:
    seed_bucket(local_cloud)

    result = run(*replay_args(None, "--dry-run", "--json"), env=local_cloud.env())

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [p["key"] for p in summary["planned"]] == [
        "firmware/a.bin.ota.json",
        "firmware/lonely.bin",
    ]
    assert summary["skipped"] == [{"key": "firmware/a.bin", "reason": "covered by its sidecar"}]
    assert summary["invoked"] == []


def test_replay_invokes_the_function_async_with_listing_facts_in_each_event(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    seed_bucket(local_cloud)

    result = run(*replay_args(local_fc, "--account-id", "1938"), env=local_cloud.env())

    assert result.exit_code == 0, result.output
    assert "invoked 2, failed 0, skipped 1" in result.stdout
    assert local_fc.wait_idle(30)
    events = [r.result_json()["events"][0] for r in local_fc.invocations]
    assert {r.source for r in local_fc.invocations} == {"async"}
    by_key = {e["oss"]["object"]["key"]: e for e in events}
    assert set(by_key) == {"firmware/a.bin.ota.json", "firmware/lonely.bin"}
    lonely = by_key["firmware/lonely.bin"]
    stored = local_cloud.oss.head(BUCKET, "firmware/lonely.bin")
    assert lonely["eventName"] == "ObjectCreated:PutObject"
    assert (lonely["oss"]["object"]["size"], lonely["oss"]["object"]["eTag"]) == (
        6,
        stored.etag.strip('"'),
    )
    assert lonely["oss"]["bucket"]["ownerIdentity"] == "1938"


def test_replay_since_a_future_date_skips_everything(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    seed_bucket(local_cloud)

    result = run(*replay_args(local_fc, "--since", "2999-01-01"), env=local_cloud.env())

    assert result.exit_code == 0, result.output
    assert "invoked 0, failed 0, skipped 3" in result.stdout
    assert local_fc.invocations == []


def test_replay_to_an_unknown_function_stops_at_the_first_refusal(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    seed_bucket(local_cloud)
    args = replay_args(local_fc)
    args[args.index(FUNCTION)] = "no-such-function"

    result = run(*args, env=local_cloud.env())

    assert result.exit_code == 1
    assert "FunctionNotFound" in result.stderr and "stopped after 1 of 2" in result.stderr
    assert "Authorization" not in result.output


def test_replay_without_function_is_a_usage_error_unless_dry_run(
    run: Any, local_cloud: Any
) -> None:
    result = run("replay", "--bucket", BUCKET, env=local_cloud.env())

    assert result.exit_code == 2
    assert (
        "--function (with --service for an FC 2.0 service, without for an FC 3.0" in result.stderr
    )


def test_replay_without_service_invokes_through_the_fc3_api(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    """s.yaml deploys an FC 3.0 function, which has no service: --function alone."""
    seed_bucket(local_cloud)
    args = ["replay", "--bucket", BUCKET, "--prefix", "firmware/", "--function", FUNCTION]

    result = run(
        *args, "--fc-endpoint", local_fc.api_url, "--account-id", "1938", "--json",
        env=local_cloud.env(),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [i["key"] for i in summary["invoked"]] == [
        "firmware/a.bin.ota.json",
        "firmware/lonely.bin",
    ]
    assert all(i["request_id"] for i in summary["invoked"])
    assert local_fc.wait_idle(30)
    assert {r.source for r in local_fc.invocations} == {"async"}
    keys = {r.result_json()["events"][0]["oss"]["object"]["key"] for r in local_fc.invocations}
    assert keys == {"firmware/a.bin.ota.json", "firmware/lonely.bin"}


def test_fc3_replay_of_an_unknown_function_stops_at_the_first_refusal(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    seed_bucket(local_cloud)

    result = run(
        "replay", "--bucket", BUCKET, "--function", "no-such-function",
        "--fc-endpoint", local_fc.api_url, env=local_cloud.env(),
    )  # fmt: skip

    assert result.exit_code == 1
    assert "FunctionNotFound" in result.stderr and "stopped after 1 of 2" in result.stderr
    assert local_fc.invocations == []


def test_fc3_replay_with_a_wrong_secret_is_refused_by_the_signature_check(
    run: Any, local_cloud: Any, local_fc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from ota_release.adapters import CloudCredentials
    from ota_release.cli import cmd_replay

    seed_bucket(local_cloud)
    # The listing is signed with the test key, the FC 3.0 call with a secret FC refuses.
    real_init = cmd_replay.Fc3Invoker.__init__

    def with_wrong_secret(self: Any, target: Any, *rest: Any) -> None:
        wrong = CloudCredentials(target.credentials.access_key_id, "not-the-fc-secret")
        real_init(self, replace(target, credentials=wrong), *rest)

    monkeypatch.setattr(cmd_replay.Fc3Invoker, "__init__", with_wrong_secret)

    result = run(
        "replay", "--bucket", BUCKET, "--function", FUNCTION,
        "--fc-endpoint", local_fc.api_url, env=local_cloud.env(),
    )  # fmt: skip

    assert result.exit_code == 1
    assert "SignatureDoesNotMatch" in result.stderr and "stopped after 1 of 2" in result.stderr
    assert "not-the-fc-secret" not in result.output
    assert local_fc.invocations == []


def test_replay_with_refused_credentials_fails_on_the_listing(
    run: Any, local_cloud: Any, local_fc: Any
) -> None:
    env = local_cloud.env(ALIBABA_CLOUD_ACCESS_KEY_ID="LTAI-unknown")

    result = run(*replay_args(local_fc), env=env)

    assert result.exit_code == 1
    assert "listing firmware-bucket failed" in result.stderr
    assert "InvalidAccessKeyId" in result.stderr


# status ---------------------------------------------------------------------------------------


def register(local_cloud: Any, name: str = "cam-2_0_0", version: str = "2.0.0") -> str:
    from ota_release.adapters import CloudCredentials
    from ota_release.adapters.iot import IotOtaPlatform

    key = f"firmware/{name}.bin"
    local_cloud.oss.put_object(BUCKET, key, PAYLOAD, notify=False)
    endpoint = local_cloud.iot_url.removeprefix("http://")
    iot = IotOtaPlatform(
        CloudCredentials("LTAI-cli-test", "cli-test-secret"),
        endpoint,
        "cn-shanghai",
        protocol="http",
    )
    created = iot.create_firmware(
        FirmwareRequest(
            firmware_name=name,
            dest_version=version,
            firmware_url=local_cloud.oss.url_for(BUCKET, key),
            product_key="a1Cam",
        )
    )
    return created.firmware_id


def test_status_by_id_shows_verification_status_in_words(run: Any, local_cloud: Any) -> None:
    firmware_id = register(local_cloud)

    result = run("status", "--id", firmware_id, env=local_cloud.env())

    assert result.exit_code == 0, result.output
    assert f"id  {firmware_id}" in result.stdout
    assert "status  unverified (0)" in result.stdout
    assert "type  full" in result.stdout


def test_status_by_name_and_version_as_json(run: Any, local_cloud: Any) -> None:
    register(local_cloud, "cam-1_0_0", "1.0.0")
    firmware_id = register(local_cloud, "cam-2_0_0", "2.0.0")
    local_cloud.iot.complete_verification(firmware_id, ok=False)

    result = run(
        "status", "--name", "cam-2_0_0", "--version", "2.0.0", "--json", env=local_cloud.env()
    )

    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["FirmwareId"], info["DestVersion"]) == (firmware_id, "2.0.0")
    assert (info["Status"], info["StatusText"]) == (3, "verification failed")
    assert info["FirmwareSize"] == len(PAYLOAD)


def test_status_of_an_unknown_id_exits_1(run: Any, local_cloud: Any) -> None:
    result = run("status", "--id", "NoSuchFirmware0000000000000", env=local_cloud.env())

    assert result.exit_code == 1
    assert "IoT Platform has no firmware with id 'NoSuchFirmware0000000000000'" in result.stderr


def test_status_of_an_unknown_name_exits_1(run: Any, local_cloud: Any) -> None:
    register(local_cloud)

    result = run("status", "--name", "cam-9_9_9", env=local_cloud.env())

    assert result.exit_code == 1
    assert "no firmware named 'cam-9_9_9'" in result.stderr


def test_status_with_refused_credentials_exits_1_with_a_hint(run: Any, local_cloud: Any) -> None:
    env = local_cloud.env(ALIBABA_CLOUD_ACCESS_KEY_SECRET="not-the-secret")

    result = run("status", "--id", "whatever", env=env)

    assert result.exit_code == 1
    assert "querying IoT Platform failed" in result.stderr
    assert "credentials were refused" in result.stderr
    assert "not-the-secret" not in result.output


@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--id", "x", "--name", "y"], ["status", "--id", "x", "--version", "1"]],
)
def test_status_needs_exactly_one_way_to_find_the_firmware(run: Any, args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_an_unreachable_endpoint_exits_1_naming_the_endpoint_problem(run: Any) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-cli-test",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "cli-test-secret",
    }

    result = run("status", "--id", "x", "--iot-endpoint", f"http://127.0.0.1:{port}", env=env)

    assert result.exit_code == 1
    assert "check the endpoint and the network" in result.stderr


def test_replay_of_an_invalid_bucket_name_is_a_usage_error(run: Any, local_cloud: Any) -> None:
    result = run("replay", "--bucket", "Not_A_Bucket", "--dry-run", env=local_cloud.env())

    assert result.exit_code == 2
    assert "'Not_A_Bucket' is not a valid OSS bucket name" in result.stderr
