"""Resolve template.yml (ROS/Funcraft) and s.yaml (Serverless Devs) into one comparable view.

The two files use different substitution languages: ROS intrinsic functions (``Ref``,
``Fn::Sub`` and the ``ALIYUN::*`` pseudo parameters) and Serverless Devs expressions
(``${vars.x}``, ``${config('AccountID')}``). Both are evaluated here with the same
inputs (parameter defaults = s.yaml vars, one region, one account id), so a difference in
the resulting :class:`DeploymentView` is a real difference between the deployments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.check_fc3_schema import fc3_resources, load_s_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yml"
S_YAML = ROOT / "s.yaml"
POLICY_DIR = ROOT / "deploy"
MAKEFILE = ROOT / "Makefile"
ACCOUNT_ID = "123456789012"
REGION = "cn-shanghai"

_SUB = re.compile(r"\$\{([^}]+)\}")


class UnresolvedError(ValueError):
    """The template uses an intrinsic function this resolver does not evaluate."""


def resolve_ros(node: Any, params: Mapping[str, Any]) -> Any:
    """Evaluate ``Ref`` and ``Fn::Sub`` (the only functions template.yml uses)."""
    if isinstance(node, list):
        return [resolve_ros(item, params) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            name = node["Ref"]
            if name not in params:
                raise UnresolvedError(f"Ref to unknown parameter {name!r}")
            return params[name]
        if set(node) == {"Fn::Sub"}:
            text = node["Fn::Sub"]
            if not isinstance(text, str):
                raise UnresolvedError("only the string form of Fn::Sub is supported")

            def one(match: re.Match[str]) -> str:
                if match.group(1) not in params:
                    raise UnresolvedError(f"Fn::Sub names unknown parameter {match.group(1)!r}")
                return str(params[match.group(1)])

            return _SUB.sub(one, text)
        functions = [k for k in node if k.startswith("Fn::")]
        if functions:
            raise UnresolvedError(f"unsupported intrinsic function {functions[0]}")
        return {key: resolve_ros(value, params) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class DeploymentView:
    """What must agree between the two deployments, in plain values.

    ``environment`` leaves out ``OTA_IOT_QPS``: the per-instance share of the account's
    IoT rate differs by design (one instance serving 20 at once vs five single-request
    instances, docs/configuration.md); ``account_iot_qps`` is what must agree.
    """

    environment: dict[str, str]
    account_iot_qps: float
    memory: int
    timeout: int
    events: tuple[str, ...]
    bucket: str
    prefix: str
    suffix: str
    retry_attempts: int
    max_event_age: int
    on_failure: str
    deps_layer: str
    log_project: str
    log_store: str


def template_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Parameter values: defaults, then overrides, plus the ROS pseudo parameters."""
    doc = load_template()
    params = {name: spec.get("Default") for name, spec in (doc.get("Parameters") or {}).items()}
    params.update({"ALIYUN::Region": REGION, "ALIYUN::AccountId": ACCOUNT_ID})
    params.update(overrides or {})
    return params


def load_template() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))


def fun_function(params: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resolved (service, function) resources of template.yml."""
    doc = resolve_ros(load_template(), params or template_params())
    services = [
        (name, res)
        for name, res in doc["Resources"].items()
        if res.get("Type") == "Aliyun::Serverless::Service"
    ]
    assert len(services) == 1, "template.yml should declare exactly one service"
    service = services[0][1]
    functions = [
        res
        for name, res in service.items()
        if isinstance(res, dict) and res.get("Type") == "Aliyun::Serverless::Function"
    ]
    assert len(functions) == 1, "the service should hold exactly one function"
    return service, functions[0]


def fun_view(params: Mapping[str, Any] | None = None) -> DeploymentView:
    """template.yml as ROS would deploy it (fun's ':::' shorthand filled like fun does)."""
    values = params or template_params()
    service, function = fun_function(values)
    props = function["Properties"]
    (event,) = [e for e in function["Events"].values() if e["Type"] == "OSS"]
    oss = event["Properties"]
    async_cfg = props["AsyncConfiguration"]
    on_failure = async_cfg["Destination"]["OnFailure"].replace(
        ":::", f":{values['ALIYUN::Region']}:{values['ALIYUN::AccountId']}:"
    )
    official = [layer for layer in props["Layers"] if ":official:" in layer]
    own = [layer for layer in props["Layers"] if ":official:" not in layer]
    assert len(own) == 1 and len(official) <= 1, props["Layers"]
    environment = {k: str(v) for k, v in props["EnvironmentVariables"].items()}
    share = float(environment.pop("OTA_IOT_QPS", "10"))
    return DeploymentView(
        environment=environment,
        account_iot_qps=share * fun_max_instances(),
        memory=props["MemorySize"],
        timeout=props["Timeout"],
        events=tuple(sorted(oss["Events"])),
        bucket=oss["BucketName"],
        prefix=oss["Filter"]["Key"]["Prefix"],
        suffix=oss["Filter"]["Key"]["Suffix"],
        retry_attempts=async_cfg["MaxAsyncRetryAttempts"],
        max_event_age=async_cfg["MaxAsyncEventAgeInSeconds"],
        on_failure=on_failure,
        deps_layer=own[0],
        log_project=service["Properties"]["LogConfig"]["Project"],
        log_store=service["Properties"]["LogConfig"]["Logstore"],
    )


def fun_max_instances() -> int:
    """The instance cap ``make deploy-fun`` sets after deploying (FC 2.0's on-demand
    config has no template.yml property)."""
    found = re.search(r"^FUN_MAX_INSTANCES\s*:?=\s*(\d+)\s*$", MAKEFILE.read_text(), re.M)
    assert found, "Makefile should define FUN_MAX_INSTANCES for deploy-fun"
    return int(found.group(1))


def s_max_instances(props: Mapping[str, Any]) -> int:
    """fc3: reserved concurrency caps requests in flight; with one request per instance
    (the built-in runtime) that is the instance cap."""
    assert props.get("instanceConcurrency", 1) == 1, "fc3 built-in runtimes serve one at a time"
    return int(props["concurrencyConfig"]["reservedConcurrency"])


def s_props(var_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    doc = load_s_yaml(S_YAML, account_id=ACCOUNT_ID, var_overrides=var_overrides, env={})
    (props,) = fc3_resources(doc).values()
    return props


def s_view(var_overrides: Mapping[str, Any] | None = None) -> DeploymentView:
    """s.yaml with its vars and the same account id substituted."""
    props = s_props(var_overrides)
    (trigger,) = [t for t in props["triggers"] if t["triggerType"] == "oss"]
    cfg = trigger["triggerConfig"]
    bucket = trigger["sourceArn"].rsplit(":", 1)[1]
    async_cfg = props["asyncInvokeConfig"]
    (layer,) = props["layers"]
    environment = {k: str(v) for k, v in props["environmentVariables"].items()}
    share = float(environment.pop("OTA_IOT_QPS", "10"))
    return DeploymentView(
        environment=environment,
        account_iot_qps=share * s_max_instances(props),
        memory=props["memorySize"],
        timeout=props["timeout"],
        events=tuple(sorted(cfg["events"])),
        bucket=bucket,
        prefix=cfg["filter"]["key"]["prefix"],
        suffix=cfg["filter"]["key"]["suffix"],
        retry_attempts=async_cfg["maxAsyncRetryAttempts"],
        max_event_age=async_cfg["maxAsyncEventAgeInSeconds"],
        on_failure=async_cfg["destinationConfig"]["onFailure"]["destination"],
        deps_layer=layer,
        log_project=props["logConfig"]["project"],
        log_store=props["logConfig"]["logstore"],
    )


def policy_file(mode: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """deploy/ram-policy.<mode>.json with its ``${...}`` placeholders filled."""
    text = (POLICY_DIR / f"ram-policy.{mode}.json").read_text(encoding="utf-8")
    return json.loads(_SUB.sub(lambda m: str(params[m.group(1)]), text))
