"""Settings from the environment: every variable checked, all problems reported at once."""

from __future__ import annotations

import json

import pytest

from ota_release.settings import (
    DEFAULT_SIDECAR_SUFFIXES,
    Settings,
    SettingsError,
    UrlMode,
)

MINIMAL = {"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "ota-outcomes", "OTA_ACCOUNT_ID": "123"}


def load(**env: str) -> Settings:
    return Settings.from_env({**MINIMAL, **env})


def problems(env: dict[str, str], account_id: str | None = None) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env, account_id=account_id)
    return caught.value.problems


def test_minimal_settings_fill_regional_defaults() -> None:
    s = Settings.from_env(MINIMAL)
    assert s.region == "cn-shanghai"
    assert s.notify_topic == "ota-outcomes"
    assert s.mns_endpoint == "https://123.mns.cn-shanghai.aliyuncs.com"
    assert s.iot_endpoint == "iot.cn-shanghai.aliyuncs.com"
    assert s.oss_endpoint == "https://oss-cn-shanghai-internal.aliyuncs.com"
    assert s.oss_public_endpoint == "https://oss-cn-shanghai.aliyuncs.com"
    assert (s.url_mode, s.signed_url_ttl, s.sidecar_suffixes) == (
        UrlMode.STAGED,
        0,
        DEFAULT_SIDECAR_SUFFIXES,
    )
    assert (s.iot_instance_id, s.product_key, s.log_level, s.iot_protocol) == (
        None,
        None,
        "INFO",
        "https",
    )


@pytest.mark.parametrize("variable", ["ALIBABA_CLOUD_REGION", "FC_REGION"])
def test_region_falls_back_to_what_fc_sets(variable: str) -> None:
    env = {variable: "cn-beijing", "OTA_NOTIFY_TOPIC": "t", "OTA_ACCOUNT_ID": "1"}
    assert Settings.from_env(env).region == "cn-beijing"


def test_account_id_from_the_context_builds_the_mns_endpoint() -> None:
    env = {"OTA_REGION": "cn-hangzhou", "OTA_NOTIFY_TOPIC": "t"}
    s = Settings.from_env(env, account_id="987")
    assert s.mns_endpoint == "https://987.mns.cn-hangzhou.aliyuncs.com"


def test_every_variable_is_read() -> None:
    s = load(
        OTA_MNS_ENDPOINT="http://127.0.0.1:9001",
        OTA_IOT_ENDPOINT="127.0.0.1:9002",
        OTA_OSS_ENDPOINT="http://127.0.0.1:9003",
        OTA_OSS_PUBLIC_ENDPOINT="https://cdn.example.com",
        OTA_IOT_PROTOCOL="HTTP",
        OTA_IOT_INSTANCE_ID="iot-cn-1",
        OTA_FIRMWARE_URL_MODE="Direct",
        OTA_SIGNED_URL_TTL="3600",
        OTA_SIDECAR_SUFFIXES=" .meta.json , .meta.yaml ",
        OTA_PRODUCT_KEY="a1pk",
        OTA_LOG_LEVEL="debug",
    )
    assert s.mns_endpoint == "http://127.0.0.1:9001"
    assert s.iot_endpoint == "127.0.0.1:9002"
    assert s.oss_endpoint == "http://127.0.0.1:9003"
    assert s.oss_public_endpoint == "https://cdn.example.com"
    assert s.iot_protocol == "http"
    assert s.iot_instance_id == "iot-cn-1"
    assert s.url_mode is UrlMode.DIRECT
    assert s.signed_url_ttl == 3600
    assert s.sidecar_suffixes == (".meta.json", ".meta.yaml")
    assert s.product_key == "a1pk"
    assert s.log_level == "DEBUG"


def test_blank_values_count_as_unset() -> None:
    s = load(OTA_PRODUCT_KEY="   ", OTA_FIRMWARE_URL_MODE="", OTA_SIGNED_URL_TTL=" ")
    assert (s.product_key, s.url_mode, s.signed_url_ttl) == (None, UrlMode.STAGED, 0)


@pytest.mark.parametrize("ttl", ["60", str(7 * 24 * 3600), "0"])
def test_signed_url_ttl_within_its_range_is_accepted(ttl: str) -> None:
    assert load(OTA_SIGNED_URL_TTL=ttl).signed_url_ttl == int(ttl)


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("OTA_SIGNED_URL_TTL", "59", "between 60 and 604800"),
        ("OTA_SIGNED_URL_TTL", str(7 * 24 * 3600 + 1), "between 60 and 604800"),
        ("OTA_SIGNED_URL_TTL", "-5", "between 60 and 604800"),
        ("OTA_SIGNED_URL_TTL", "1h", "integer of seconds"),
        ("OTA_FIRMWARE_URL_MODE", "presigned", "'staged' or 'direct'"),
        ("OTA_IOT_PROTOCOL", "ftp", "http or https"),
        ("OTA_LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING or ERROR"),
        ("OTA_SIDECAR_SUFFIXES", "meta.json", "start with '.'"),
        ("OTA_SIDECAR_SUFFIXES", ".ok,a/b", "start with '.'"),
        ("OTA_SIDECAR_SUFFIXES", " , ", "start with '.'"),
        ("OTA_MNS_ENDPOINT", "mns.example.com", "http:// or https://"),
        ("OTA_OSS_ENDPOINT", "oss-cn-shanghai.aliyuncs.com", "http:// or https://"),
        ("OTA_OSS_PUBLIC_ENDPOINT", "ftp://x", "http:// or https://"),
    ],
)
def test_invalid_value_is_named_with_what_was_seen(variable: str, value: str, words: str) -> None:
    [problem] = problems({**MINIMAL, variable: value})
    assert problem.startswith(variable + ":")
    assert words in problem


def test_missing_required_settings_are_listed() -> None:
    found = problems({})
    assert [p.split(":")[0] for p in found] == [
        "OTA_REGION",
        "OTA_NOTIFY_TOPIC",
        "OTA_MNS_ENDPOINT",
    ]


def test_every_problem_is_reported_in_one_error() -> None:
    # GIVEN a deployment with five mistakes
    env = {
        "OTA_REGION": "cn-shanghai",
        "OTA_FIRMWARE_URL_MODE": "signed",
        "OTA_SIGNED_URL_TTL": "10",
        "OTA_LOG_LEVEL": "loud",
        "OTA_IOT_PROTOCOL": "gopher",
    }
    # WHEN the settings are read THEN one SettingsError lists all of them
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    names = [p.split(":")[0] for p in caught.value.problems]
    assert names == [
        "OTA_NOTIFY_TOPIC",
        "OTA_MNS_ENDPOINT",
        "OTA_IOT_PROTOCOL",
        "OTA_FIRMWARE_URL_MODE",
        "OTA_SIGNED_URL_TTL",
        "OTA_LOG_LEVEL",
    ]
    for problem in caught.value.problems:
        assert f"  - {problem}" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTA_IOT_INSTANCE_ID", "iot cn/bad"),
        ("OTA_PRODUCT_KEY", "a1 key"),
        ("OTA_PRODUCT_KEY", "k" * 65),
    ],
)
def test_instance_id_and_product_key_follow_the_api_rules(name: str, value: str) -> None:
    # GIVEN an otherwise valid environment with a malformed identifier
    env = {"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "t", "OTA_MNS_ENDPOINT": "http://x"}
    # WHEN the settings are read THEN the problem names the variable, the rule and the value
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**env, name: value})
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name}: must be 1 to 64 characters")
    assert repr(value) in problem


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("OTA_RETRY_BASE_SECONDS", "fast", "number of seconds, 0 or more"),
        ("OTA_RETRY_BASE_SECONDS", "-1", "number of seconds, 0 or more"),
        ("OTA_RETRY_CAP_SECONDS", "nan", "number of seconds, 0 or more"),
        ("OTA_RETRY_THROTTLE_BASE_SECONDS", "1s", "number of seconds, 0 or more"),
        ("OTA_RETRY_MAX_ATTEMPTS", "2.5", "whole number of attempts, 1 or more"),
        ("OTA_RETRY_MAX_ATTEMPTS", "0", "whole number of attempts, 1 or more"),
        ("OTA_IOT_QPS", "inf", "positive number of calls per second"),
        ("OTA_REGION", "Shanghai", "region id such as cn-shanghai"),
        ("OTA_NOTIFY_TOPIC", "ota_outcomes", "MNS topic name"),
    ],
)
def test_malformed_tuning_values_are_reported_never_replaced(
    variable: str, value: str, words: str
) -> None:
    # GIVEN a malformed value that used to fall back silently to its default
    # WHEN the settings are read THEN it is an error naming the variable, rule and value
    [problem] = problems({**MINIMAL, variable: value})
    assert problem.startswith(variable + ":")
    assert words in problem
    assert repr(value) in problem


def test_retry_settings_reach_the_retry_policy() -> None:
    s = load(
        OTA_RETRY_BASE_SECONDS="0.001",
        OTA_RETRY_CAP_SECONDS="0.5",
        OTA_RETRY_THROTTLE_BASE_SECONDS="0",
        OTA_RETRY_MAX_ATTEMPTS="9",
    )
    policy = s.retry_policy()
    assert (policy.base, policy.cap, policy.throttle_base, policy.max_attempts) == (
        0.001,
        0.5,
        0.0,
        9,
    )
    default = load().retry_policy()
    assert (default.base, default.cap, default.throttle_base, default.max_attempts) == (
        0.2,
        5.0,
        1.0,
        6,
    )


def test_every_error_carries_field_rule_and_value() -> None:
    env = {**MINIMAL, "OTA_LOG_LEVEL": "trace", "OTA_RETRY_MAX_ATTEMPTS": "many"}
    env.pop("OTA_NOTIFY_TOPIC")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert caught.value.errors == [
        {
            "field": "OTA_NOTIFY_TOPIC",
            "rule": "required (the MNS topic for outcomes)",
            "value": None,
        },
        {
            "field": "OTA_LOG_LEVEL",
            "rule": "must be DEBUG, INFO, WARNING or ERROR",
            "value": "trace",
        },
        {
            "field": "OTA_RETRY_MAX_ATTEMPTS",
            "rule": "must be a whole number of attempts, 1 or more",
            "value": "many",
        },
    ]


def test_a_bad_log_level_does_not_break_the_import_and_is_reported_with_the_rest() -> None:
    # GIVEN OTA_LOG_LEVEL=trace and malformed retry settings in the function's environment
    import subprocess
    import sys
    from pathlib import Path

    env = {
        "PATH": "/usr/bin:/bin",
        # The library as the interpreter running the suite sees it (an editable install,
        # or PYTHONPATH=src in the CPython 3.10 run).
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "OTA_LOG_LEVEL": "trace",
        "OTA_RETRY_CAP_SECONDS": "soon",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    script = (
        "import json, ota_release.function as f\n"
        "from ota_release.settings import SettingsError\n"
        "try:\n"
        "    f.settings_for(__import__('os').environ, None)\n"
        "except SettingsError as e:\n"
        "    print(json.dumps([p.split(':')[0] for p in e.problems]))\n"
    )
    # WHEN the function module is imported (a cold start) and settings are read
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    # THEN the import survives and every problem is listed together
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "OTA_REGION",
        "OTA_NOTIFY_TOPIC",
        "OTA_MNS_ENDPOINT",
        "OTA_LOG_LEVEL",
        "OTA_RETRY_CAP_SECONDS",
    ]


def test_docs_configuration_lists_every_setting_with_its_default() -> None:
    from enum import Enum
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    rows = {
        line.split(" | ")[0][3:-1]: line.split(" | ")
        for line in doc.splitlines()
        if line.startswith("| `OTA_")
    }
    for field in Settings.model_fields.values():
        assert field.alias in rows, f"docs/configuration.md has no row for {field.alias}"
        default = field.default
        if default is None or field.is_required():
            continue
        cell = rows[field.alias][2].strip("`")
        if default in ((), ""):
            assert cell == "—", f"{field.alias}: an empty default is written as —"
        elif isinstance(default, Enum):
            assert cell == default.value, field.alias
        elif isinstance(default, tuple):
            assert cell == ",".join(default), field.alias
        elif isinstance(default, (int, float)):
            assert float(cell) == default, field.alias
        else:
            assert cell == str(default), field.alias
    documented = {name for name in rows if name.startswith("OTA_")}
    assert documented == {f.alias for f in Settings.model_fields.values()} | {"OTA_ACCOUNT_ID"}


@pytest.mark.parametrize("region", ["oss-cn-shanghai", "CN-SHANGHAI", "shanghai", "cn_shanghai"])
def test_a_region_that_oss_v4_cannot_sign_for_is_reported(region: str) -> None:
    # GIVEN a region that is not a region id (it is signed into every OSS request)
    env = {"OTA_REGION": region, "OTA_NOTIFY_TOPIC": "t", "OTA_MNS_ENDPOINT": "http://x"}
    # WHEN the settings are read THEN the problem names the variable, the rule and the value
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    (problem,) = caught.value.problems
    assert problem.startswith("OTA_REGION: must be a region id such as cn-shanghai")
    assert repr(region) in problem
