"""Credentials, region and endpoints: the documented precedence, and refusals that say why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ota_release.cli.cloud import resolve_target
from ota_release.cli.common import UsageProblem

AK_PROFILE = {
    "name": "default",
    "mode": "AK",
    "access_key_id": "LTAI-profile",
    "access_key_secret": "profile-secret",
    "sts_token": "",
    "region_id": "cn-beijing",
}
STS_PROFILE = {
    "name": "release",
    "mode": "StsToken",
    "access_key_id": "STS.profile",
    "access_key_secret": "sts-secret",
    "sts_token": "sts-token",
    "region_id": "cn-hangzhou",
}


def test_current_profile_is_used_when_no_keys_are_in_the_environment(aliyun_config: Any) -> None:
    aliyun_config([AK_PROFILE, STS_PROFILE], current="default")

    target = resolve_target(profile=None, region=None, env={})

    assert target.credentials.access_key_id == "LTAI-profile"
    assert target.credentials.security_token is None
    assert target.region == "cn-beijing"
    assert target.oss() == "https://oss-cn-beijing.aliyuncs.com"


def test_named_sts_profile_carries_its_token(aliyun_config: Any) -> None:
    aliyun_config([AK_PROFILE, STS_PROFILE], current="default")

    target = resolve_target(profile="release", region=None, env={})

    assert (target.credentials.access_key_id, target.credentials.security_token) == (
        "STS.profile",
        "sts-token",
    )
    assert target.iot() == ("iot.cn-hangzhou.aliyuncs.com", "https")


def test_environment_keys_win_over_the_current_profile_but_not_over_an_explicit_one(
    aliyun_config: Any,
) -> None:
    aliyun_config([AK_PROFILE, STS_PROFILE], current="default")
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token",
        "ALIBABA_CLOUD_REGION_ID": "ap-southeast-1",
    }

    from_env = resolve_target(profile=None, region=None, env=env)
    explicit = resolve_target(profile="release", region="cn-shenzhen", env=env)

    assert from_env.credentials.access_key_id == "LTAI-env"
    assert from_env.credentials.security_token == "env-token"
    assert from_env.region == "ap-southeast-1"
    assert explicit.credentials.access_key_id == "STS.profile"
    assert explicit.region == "cn-shenzhen"


ENV_KEYS = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
}
ROLE_PROFILE = {
    "name": "corp",
    "mode": "RamRoleArn",
    "access_key_id": "LTAI-role-source",
    "access_key_secret": "role-secret",
    "ram_role_arn": "acs:ram::123:role/release",
    "region_id": "cn-beijing",
}


@pytest.mark.parametrize("mode", ["RamRoleArn", "EcsRamRole", "OAuth"])
def test_environment_keys_are_used_without_reading_an_unusable_current_profile(
    aliyun_config: Any, mode: str
) -> None:
    aliyun_config([{**ROLE_PROFILE, "mode": mode}], current="corp")

    target = resolve_target(profile=None, region=None, env=ENV_KEYS)

    assert target.credentials.access_key_id == "LTAI-env"
    assert target.source == "ALIBABA_CLOUD_ACCESS_KEY_ID"
    # The profile was not read: its region does not leak in either.
    assert target.region is None


def test_environment_keys_are_used_when_the_aliyun_config_is_broken(clean_env: Path) -> None:
    path = clean_env / ".aliyun" / "config.json"
    path.parent.mkdir()
    path.write_text("{not json")

    target = resolve_target(profile=None, region=None, env=ENV_KEYS)

    assert target.credentials.access_key_id == "LTAI-env"


def test_environment_keys_win_over_alibaba_cloud_profile(aliyun_config: Any) -> None:
    aliyun_config([AK_PROFILE, STS_PROFILE], current="default")

    target = resolve_target(
        profile=None, region=None, env={**ENV_KEYS, "ALIBABA_CLOUD_PROFILE": "release"}
    )

    assert target.credentials.access_key_id == "LTAI-env"


def test_alibaba_cloud_profile_picks_the_profile_when_no_keys_are_exported(
    aliyun_config: Any,
) -> None:
    aliyun_config([AK_PROFILE, STS_PROFILE], current="default")

    target = resolve_target(profile=None, region=None, env={"ALIBABA_CLOUD_PROFILE": "release"})

    assert target.credentials.access_key_id == "STS.profile"
    assert target.source == "aliyun CLI profile 'release'"
    assert target.region == "cn-hangzhou"


def test_an_unusable_current_profile_is_an_error_naming_the_mode_and_what_to_do(
    aliyun_config: Any,
) -> None:
    aliyun_config([ROLE_PROFILE], current="corp")

    with pytest.raises(UsageProblem) as err:
        resolve_target(profile=None, region=None, env={})

    text = err.value.message
    assert "profile 'corp' (the aliyun CLI's current profile) uses mode 'RamRoleArn'" in text
    assert "Export ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET" in text
    assert "pass --profile naming an AK or StsToken profile" in text
    assert err.value.exit_code == 2


def test_an_unusable_profile_asked_for_by_name_is_refused_even_with_keys_exported(
    aliyun_config: Any,
) -> None:
    aliyun_config([AK_PROFILE, ROLE_PROFILE], current="default")

    with pytest.raises(UsageProblem, match="'corp' \\(asked for with --profile\\) uses mode"):
        resolve_target(profile="corp", region=None, env=ENV_KEYS)


def test_only_half_of_the_key_pair_is_a_usage_problem_naming_the_missing_half(
    aliyun_config: Any,
) -> None:
    aliyun_config([AK_PROFILE], current="default")

    with pytest.raises(UsageProblem, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"):
        resolve_target(profile=None, region=None, env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env"})


def test_cli_with_exported_keys_runs_despite_a_ram_role_current_profile(
    aliyun_config: Any, run: Any
) -> None:
    """Seen from the command line: before, every cloud command exited 2 here."""
    import socket

    aliyun_config([ROLE_PROFILE], current="corp")
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run("status", "--id", "x", "--iot-endpoint", f"http://127.0.0.1:{port}", env=ENV_KEYS)
    refused = run("status", "--id", "x", "--iot-endpoint", f"http://127.0.0.1:{port}")

    assert result.exit_code == 1  # got as far as calling the (absent) service
    assert "RamRoleArn" not in result.output
    assert refused.exit_code == 2 and "uses mode 'RamRoleArn'" in refused.stderr


@pytest.mark.parametrize(
    ("profiles", "profile", "message"),
    [
        ([{**AK_PROFILE, "mode": "RamRoleArn"}], None, "reads only AK and StsToken profiles"),
        ([{**STS_PROFILE, "sts_token": ""}], "release", "without sts_token"),
        ([AK_PROFILE], "missing", "no profile 'missing'"),
        ([{**AK_PROFILE, "access_key_secret": ""}], None, "has no access_key_id"),
    ],
)
def test_unusable_profiles_are_refused_with_the_reason(
    aliyun_config: Any, profiles: list[dict[str, Any]], profile: str | None, message: str
) -> None:
    aliyun_config(profiles, current=profiles[0]["name"])

    with pytest.raises(UsageProblem, match=message):
        resolve_target(profile=profile, region=None, env={})


def test_no_credentials_anywhere_is_a_usage_problem() -> None:
    with pytest.raises(UsageProblem, match="no credentials") as err:
        resolve_target(profile=None, region=None, env={})
    assert err.value.exit_code == 2


def test_explicit_endpoints_need_no_region_and_keep_their_scheme() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"}

    target = resolve_target(
        profile=None,
        region=None,
        env=env,
        oss_endpoint="http://127.0.0.1:9100/",
        iot_endpoint="http://127.0.0.1:9101",
        fc_endpoint="127.0.0.1:9102",
    )

    assert target.oss() == "http://127.0.0.1:9100"
    assert target.iot() == ("127.0.0.1:9101", "http")
    assert target.fc() == "https://127.0.0.1:9102"


def test_fc_endpoint_is_built_from_account_and_region_or_refused() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"}

    built = resolve_target(profile=None, region="cn-shanghai", env=env, account_id="123")
    missing = resolve_target(profile=None, region="cn-shanghai", env=env)
    no_region = resolve_target(profile=None, region=None, env=env)

    assert built.fc() == "https://123.cn-shanghai.fc.aliyuncs.com"
    with pytest.raises(UsageProblem, match="--account-id"):
        missing.fc()
    with pytest.raises(UsageProblem, match="no region"):
        no_region.oss()


def test_a_broken_config_file_is_reported_not_ignored(clean_env: Path) -> None:
    path = clean_env / ".aliyun" / "config.json"
    path.parent.mkdir()
    path.write_text("{not json")

    with pytest.raises(UsageProblem, match="cannot read the aliyun CLI configuration"):
        resolve_target(profile=None, region=None, env={})


@pytest.mark.parametrize(
    ("endpoint", "protocol", "expected"),
    [
        ("127.0.0.1:9101", "http", ("127.0.0.1:9101", "http")),
        ("127.0.0.1:9101", "HTTPS", ("127.0.0.1:9101", "https")),
        ("127.0.0.1:9101", None, ("127.0.0.1:9101", "https")),
        ("http://127.0.0.1:9101", None, ("127.0.0.1:9101", "http")),
        ("http://127.0.0.1:9101", "http", ("127.0.0.1:9101", "http")),
        (None, "http", ("iot.cn-shanghai.aliyuncs.com", "http")),
    ],
)
def test_iot_protocol_applies_to_an_endpoint_without_a_scheme(
    endpoint: str | None, protocol: str | None, expected: tuple[str, str]
) -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"}

    target = resolve_target(
        profile=None,
        region="cn-shanghai",
        env=env,
        iot_endpoint=endpoint,
        iot_protocol=protocol,
    )

    assert target.iot() == expected


def test_an_iot_scheme_contradicting_the_protocol_is_a_usage_problem() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"}
    target = resolve_target(
        profile=None, region=None, env=env, iot_endpoint="https://h:1", iot_protocol="http"
    )

    with pytest.raises(UsageProblem, match="says https but --iot-protocol"):
        target.iot()
