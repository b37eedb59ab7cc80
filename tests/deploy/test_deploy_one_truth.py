"""template.yml (Funcraft/ROS) and s.yaml (Serverless Devs) deploy the same function."""

from __future__ import annotations

import pytest
import yaml

from ota_release.settings import Settings, UrlMode
from tests.deploy.deploy_views import (
    ACCOUNT_ID,
    REGION,
    S_YAML,
    fun_function,
    fun_view,
    load_template,
    s_props,
    s_view,
    template_params,
)

#: template.yml parameter -> s.yaml var carrying the same setting.
PARAM_TO_VAR = {
    "BucketName": "bucketName",
    "WatchPrefix": "watchPrefix",
    "ResultsPrefix": "resultsPrefix",
    "FirmwareUrlMode": "firmwareUrlMode",
    "SignedUrlTtl": "signedUrlTtl",
    "IotInstanceId": "iotInstanceId",
    "ProductKey": "productKey",
    "LogLevel": "logLevel",
    "LogProject": "logProject",
    "LogStore": "logStore",
    "DepsLayerArn": "depsLayerArn",
}


def test_every_template_parameter_has_an_s_yaml_var_with_the_same_default():
    params = load_template()["Parameters"]
    variables = yaml.safe_load(S_YAML.read_text())["vars"]

    assert set(params) == set(PARAM_TO_VAR)
    for param, var in PARAM_TO_VAR.items():
        assert str(params[param]["Default"]) == str(variables[var]), param
    assert variables["region"] == REGION


def test_defaults_resolve_to_the_same_deployment():
    assert fun_view() == s_view()


@pytest.mark.parametrize(
    "overrides",
    [
        {"BucketName": "acme-fw", "WatchPrefix": "incoming/", "FirmwareUrlMode": "direct"},
        {"ResultsPrefix": "release-outcomes/"},
        {"IotInstanceId": "iot-cn-abc123", "ProductKey": "a1B2c3", "SignedUrlTtl": "3600"},
    ],
)
def test_the_same_inputs_resolve_to_the_same_deployment(overrides):
    # Proves the parameters are wired through, not just that the defaults happen to match.
    fun = fun_view(template_params(overrides))
    s = s_view({PARAM_TO_VAR[k]: v for k, v in overrides.items()})

    assert fun == s
    assert fun != fun_view()


def test_resolved_environment_is_accepted_by_the_function_settings():
    env = s_view().environment

    settings = Settings.from_env(env)

    assert settings.region == REGION
    assert settings.notify_topic == "ota-release-outcomes"
    assert settings.mns_endpoint == f"https://{ACCOUNT_ID}.mns.{REGION}.aliyuncs.com"
    assert settings.url_mode is UrlMode.STAGED
    assert settings.iot_instance_id is None and settings.product_key is None
    # outcome objects outside the watched prefix: the trigger never fires on them
    assert (settings.prefix, settings.results_prefix) == ("firmware/", "ota-results/")


def test_topics_in_environment_and_destination_are_the_declared_mns_topics():
    topics = {
        name
        for name, res in load_template()["Resources"].items()
        if res["Type"] == "Aliyun::Serverless::MNSTopic"
    }
    view = fun_view()

    assert topics == {"ota-release-outcomes", "ota-release-failures"}
    assert view.environment["OTA_NOTIFY_TOPIC"] == "ota-release-outcomes"
    assert view.on_failure == (
        f"acs:mns:{REGION}:{ACCOUNT_ID}:/topics/ota-release-failures/messages"
    )


def test_trigger_lets_both_the_firmware_and_its_sidecar_through():
    view = fun_view()
    keys = [
        "firmware/acme/cam-2.0.0.bin",
        "firmware/acme/cam-2.0.0.bin.ota.json",
        "firmware/acme/cam-2.0.0.bin.ota.yaml",
    ]

    assert all(k.startswith(view.prefix) and k.endswith(view.suffix) for k in keys)
    assert not "other/cam.bin".startswith(view.prefix)
    assert set(view.events) == {
        "oss:ObjectCreated:PutObject",
        "oss:ObjectCreated:PostObject",
        "oss:ObjectCreated:CompleteMultipartUpload",
        "oss:ObjectCreated:CopyObject",
    }


def test_custom_runtime_in_template_and_builtin_python310_in_s_yaml_share_the_handler():
    _, function = fun_function()
    props = s_props()

    assert function["Properties"]["Runtime"] == "custom"
    assert any("layers/Python310/" in layer for layer in function["Properties"]["Layers"])
    assert props["runtime"] == "python3.10"
    assert function["Properties"]["Handler"] == props["handler"] == "index.handler"


def test_both_deployments_keep_the_accounts_iot_rate_within_the_limit():
    # OTA_IOT_QPS x instance cap: each deployment's instances together stay at the
    # account's 10 calls/s per action, using all of it (a smaller product wastes rate).
    for view in (fun_view(), s_view()):
        assert view.account_iot_qps == 10.0


def test_the_custom_runtime_serves_many_at_once_and_the_builtin_one():
    _, function = fun_function()
    # One instance pacing 20 releases keeps its IoT limiter busy (docs/configuration.md).
    assert function["Properties"]["InstanceConcurrency"] == 20
    assert s_props().get("instanceConcurrency", 1) == 1
