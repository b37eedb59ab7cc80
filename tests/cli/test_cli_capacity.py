"""`capacity` against the local Function Compute's FC 2.0 API (the real aliyun-fc2 client).

The stand-in runs the function of the project's own template.yml (OTA_IOT_QPS 10,
InstanceConcurrency 20); a test that needs another OTA_IOT_QPS replaces it in the spec.
No instance is ever started: the command only reads and writes configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AK, SECRET = "LTAI-cli-test", "cli-test-secret"  # conftest's test key
SERVICE, FUNCTION = "ota-release", "create-firmware"
RESOURCE = f"{SERVICE}.LATEST/{FUNCTION}"
KEEP = object()  # make_fc: keep the template's OTA_IOT_QPS

LocalFc = Any  # localcloud.fc.LocalFunctionCompute, imported lazily like the other CLI tests


@pytest.fixture
def make_fc(tmp_path: Path) -> Iterator[Callable[..., LocalFc]]:
    """Start a local FC for template.yml's function, OTA_IOT_QPS replaced if asked."""
    from localcloud.credentials import CredentialStore
    from localcloud.fc import LocalFunctionCompute
    from localcloud.fc.template import load_function_spec
    from localcloud.fc.testkit import process_group_gone, write_handler

    started: list[LocalFc] = []

    def build(qps: object = KEEP) -> LocalFc:
        spec = load_function_spec(REPO / "template.yml")
        if qps is not KEEP:
            env = {k: v for k, v in spec.env.items() if k != "OTA_IOT_QPS"}
            if qps is not None:
                env["OTA_IOT_QPS"] = str(qps)
            spec = replace(spec, env=env)
        code_dir = tmp_path / f"fc{len(started)}"
        write_handler(code_dir, "return event")
        store = CredentialStore()
        store.add(AK, SECRET)
        fc = LocalFunctionCompute(spec, code_dir=code_dir, flavour="s", credentials=store)
        started.append(fc)
        return fc.start()

    yield build
    for fc in started:
        fc.stop()
        assert all(process_group_gone(pid) for pid in fc.instance_pids)


@pytest.fixture
def fc(make_fc: Callable[..., LocalFc]) -> LocalFc:
    return make_fc()


def fc_env(fc: LocalFc, **extra: str) -> dict[str, str]:
    return {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": AK,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "OTA_FC_ENDPOINT": fc.api_url,
        **extra,
    }


def capacity(run: Any, fc: LocalFc, *args: str, **env: str) -> Any:
    return run(
        "capacity", "--service", SERVICE, "--function", FUNCTION, *args, env=fc_env(fc, **env)
    )


def put_cap(fc: LocalFc, count: int) -> None:
    import fc2

    client = fc2.Client(endpoint=fc.api_url, accessKeyID=AK, accessKeySecret=SECRET)
    client.put_on_demand_config(SERVICE, "LATEST", FUNCTION, count)


# setting the cap ------------------------------------------------------------------------------


def test_a_cap_that_fits_the_pacing_prints_the_advice_and_exits_0(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc, "--max-instances", "1")

    assert result.exit_code == 0, result.output
    assert fc.max_instances == 1
    out = result.stdout
    assert f"instance cap of {RESOURCE} set to 1" in out
    assert "each instance may call IoT at 10/1 per second: set OTA_IOT_QPS=10" in out
    assert "function OTA_IOT_QPS: 10" in out
    assert "function InstanceConcurrency: 20" in out
    assert "consistent: OTA_IOT_QPS=10 x 1 instances = the account's 10 per second" in out
    assert result.stderr == ""


def test_the_advice_is_formatted_with_g(run: Any, make_fc: Callable[..., LocalFc]) -> None:
    fc = make_fc(qps="3.33333")

    result = capacity(run, fc, "--max-instances", "3")

    assert result.exit_code == 0, result.output
    assert "each instance may call IoT at 10/3 per second: set OTA_IOT_QPS=3.33333" in (
        result.stdout
    )
    assert "consistent" in result.stdout  # the advice itself passes the check


def test_a_cap_the_pacing_does_not_fit_exits_1_naming_both_numbers(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc, "--max-instances", "2")

    assert result.exit_code == 1
    assert "set OTA_IOT_QPS=5" in result.stdout
    assert (
        "OTA_IOT_QPS=10 on each of up to 2 instances allows 20 IoT calls per second, more "
        "than the account's 10: bursts would be throttled; set OTA_IOT_QPS=5 or "
        "--max-instances 1 (--no-check to accept)"
    ) in result.stderr
    assert fc.max_instances == 2  # the cap was set; only the check failed


def test_no_check_accepts_the_mismatch_but_still_warns(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc, "--max-instances", "2", "--no-check")

    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr
    assert "OTA_IOT_QPS=10 on each of up to 2 instances allows 20" in result.stderr


def test_unused_headroom_is_only_a_note(run: Any, make_fc: Callable[..., LocalFc]) -> None:
    fc = make_fc(qps="2.5")

    result = capacity(run, fc, "--max-instances", "2")

    assert result.exit_code == 0, result.output
    assert (
        "note: OTA_IOT_QPS=2.5 x 2 instances = 5 per second leaves 5 of the account's 10 unused"
        in result.stdout
    )


def test_a_function_without_ota_iot_qps_is_checked_at_its_default(
    run: Any, make_fc: Callable[..., LocalFc]
) -> None:
    fc = make_fc(qps=None)

    result = capacity(run, fc, "--max-instances", "3")

    assert result.exit_code == 1
    assert "function OTA_IOT_QPS: 10 (not set: the function's default)" in result.stdout
    assert "allows 30 IoT calls per second" in result.stderr


def test_an_unusable_ota_iot_qps_on_the_function_exits_1_naming_it(
    run: Any, make_fc: Callable[..., LocalFc]
) -> None:
    fc = make_fc(qps="fast")

    result = capacity(run, fc, "--max-instances", "1")

    assert result.exit_code == 1
    assert (
        "the function's OTA_IOT_QPS: must be a positive number of calls per second, got 'fast'"
        in result.stderr
    )


def test_account_qps_changes_the_limit_checked(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc, "--max-instances", "2", "--account-qps", "20")

    assert result.exit_code == 0, result.output
    assert "each instance may call IoT at 20/2 per second: set OTA_IOT_QPS=10" in result.stdout


def test_a_cap_of_zero_stops_the_function(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc, "--max-instances", "0")

    assert result.exit_code == 0, result.output
    assert fc.max_instances == 0
    assert "no instance may start" in result.stdout


# showing the cap ------------------------------------------------------------------------------


def test_showing_a_cap_that_fits(run: Any, fc: LocalFc) -> None:
    put_cap(fc, 1)

    result = capacity(run, fc)

    assert result.exit_code == 0, result.output
    assert f"instance cap of {RESOURCE}: 1" in result.stdout
    assert "function OTA_IOT_QPS: 10" in result.stdout
    assert "function InstanceConcurrency: 20" in result.stdout
    assert "consistent" in result.stdout
    assert fc.max_instances == 1


def test_showing_a_cap_that_does_not_fit_exits_1(run: Any, fc: LocalFc) -> None:
    put_cap(fc, 4)

    result = capacity(run, fc)

    assert result.exit_code == 1
    assert f"instance cap of {RESOURCE}: 4" in result.stdout
    assert "OTA_IOT_QPS=10 on each of up to 4 instances allows 40" in result.stderr


def test_showing_a_function_without_a_cap_warns_and_exits_0(run: Any, fc: LocalFc) -> None:
    result = capacity(run, fc)

    assert result.exit_code == 0, result.output
    assert f"instance cap of {RESOURCE}: no cap set" in result.stdout
    assert "function OTA_IOT_QPS: 10" in result.stdout
    assert "warning: no instance cap: FC may start as many instances" in result.stderr
    assert "--max-instances 1" in result.stderr


# failures -------------------------------------------------------------------------------------


def test_an_unknown_function_exits_1_naming_the_call(run: Any, fc: LocalFc) -> None:
    result = run(
        "capacity", "--service", SERVICE, "--function", "no-such-function", "--max-instances", "1",
        env=fc_env(fc),
    )  # fmt: skip

    assert result.exit_code == 1
    assert "setting the instance cap of ota-release.LATEST/no-such-function failed" in (
        result.stderr
    )
    assert "FC PutOnDemandConfig: FunctionNotFound" in result.stderr
    assert fc.max_instances == 4


def test_showing_an_unknown_function_is_not_mistaken_for_no_cap(run: Any, fc: LocalFc) -> None:
    result = run("capacity", "--service", SERVICE, "--function", "no-such-function", env=fc_env(fc))

    assert result.exit_code == 1
    assert "FC GetOnDemandConfig: FunctionNotFound" in result.stderr


def test_refused_credentials_exit_1_with_a_hint_and_no_secret(run: Any, fc: LocalFc) -> None:
    result = capacity(
        run, fc, "--max-instances", "1", ALIBABA_CLOUD_ACCESS_KEY_SECRET="wrong-secret-value"
    )

    assert result.exit_code == 1
    assert "SignatureNotMatch" in result.stderr
    assert "the credentials were refused (key LTAI-cli-test" in result.stderr
    assert "wrong-secret-value" not in result.output
    assert "Authorization" not in result.output
    assert fc.max_instances == 4


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["capacity", "--function", FUNCTION], "Missing option '--service'"),
        (["capacity", "--service", SERVICE, "--function", FUNCTION, "--max-instances", "-1"], "-1"),
        (
            ["capacity", "--service", SERVICE, "--function", FUNCTION, "--account-qps", "0"],
            "--account-qps",
        ),
    ],
)
def test_bad_options_are_usage_errors(run: Any, args: list[str], says: str) -> None:
    result = run(*args)

    assert result.exit_code == 2
    assert says in result.stderr


def test_no_fc_endpoint_is_a_usage_error(run: Any) -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET}

    result = run("capacity", "--service", SERVICE, "--function", FUNCTION, env=env)

    assert result.exit_code == 2
    assert "no Function Compute endpoint" in result.stderr
