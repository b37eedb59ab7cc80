"""Read the function the local FC runs from the project's Serverless Devs ``s.yaml``.

``localcloud up --flavour s`` stands in for what ``s deploy`` creates, so it takes the
function from the file ``s deploy`` reads, as flavour "fun" takes it from template.yml:
the runtime, handler, timeout, memory, environment (``OTA_IOT_QPS`` differs between the
two files on purpose), instance concurrency, asynchronous retries and destinations, and
the OSS trigger. Only the fc3 props the stand-in needs are read.

Serverless Devs expressions are evaluated for the two forms s.yaml uses:
``${vars.name}`` and ``${config('AccountID')}``. A template parameter given to
:class:`~localcloud.cloud.LocalCloud` (``BucketName``) overrides the var of the same
name in lower camel case (``bucketName``), so both flavours take the same overrides.

FC 3.0 has no services. The stand-in still answers the FC 2.0 paths the CLI's
``capacity`` and ``replay --service`` use, under the s.yaml project ``name``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from localcloud.fc.template import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    FunctionSpec,
    OssTriggerSpec,
    TemplateError,
    _int,
    _retries,
)

FC3_COMPONENT = "fc3"
_EXPRESSION = re.compile(r"\$\{([^}]+)\}")
_VAR = re.compile(r"^vars\.([A-Za-z_][A-Za-z0-9_]*)$")
_CONFIG = re.compile(r"""^config\(\s*['"]([A-Za-z]+)['"]\s*\)$""")


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


class _Expressions:
    """Evaluates ``${vars.x}`` and ``${config('AccountID')}`` inside strings."""

    def __init__(self, variables: Mapping[str, Any], account_id: str) -> None:
        self.variables = dict(variables)
        self.account_id = account_id

    def one(self, match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        var = _VAR.match(expression)
        if var is not None:
            if var.group(1) not in self.variables:
                raise TemplateError(f"s.yaml: ${{{expression}}} names no var")
            value = self.variables[var.group(1)]
            return "" if value is None else str(value)
        config = _CONFIG.match(expression)
        if config is not None and config.group(1) == "AccountID":
            return self.account_id
        raise TemplateError(f"s.yaml: the stand-in does not evaluate ${{{expression}}}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str):
            return _EXPRESSION.sub(self.one, node)
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if isinstance(node, Mapping):
            return {str(k): self.resolve(v) for k, v in node.items()}
        return node


def _the_function(document: Mapping[str, Any], path: Path) -> tuple[str, Mapping[str, Any]]:
    found = [
        (str(name), resource.get("props") or {})
        for name, resource in (document.get("resources") or {}).items()
        if isinstance(resource, Mapping) and resource.get("component") == FC3_COMPONENT
    ]
    if len(found) != 1:
        names = ", ".join(name for name, _ in found) or "none"
        raise TemplateError(f"{path}: expected exactly one fc3 resource, found {names}")
    return found[0]


def _bucket_of(source_arn: str) -> str:
    """``acs:oss:{region}:{account}:{bucket}`` -> the bucket."""
    parts = source_arn.split(":")
    if len(parts) != 5 or parts[:2] != ["acs", "oss"] or not parts[4]:
        raise TemplateError(f"s.yaml: OSS trigger sourceArn {source_arn!r} names no bucket")
    return parts[4]


def _triggers(props: Mapping[str, Any]) -> tuple[OssTriggerSpec, ...]:
    triggers = []
    for trigger in props.get("triggers") or ():
        if not isinstance(trigger, Mapping) or trigger.get("triggerType") != "oss":
            continue
        config = trigger.get("triggerConfig") or {}
        key_filter = (config.get("filter") or {}).get("key") or {}
        triggers.append(
            OssTriggerSpec(
                name=str(trigger.get("triggerName") or "oss"),
                bucket=_bucket_of(str(trigger.get("sourceArn") or "")),
                events=tuple(str(e) for e in config.get("events") or ()),
                prefix=str(key_filter.get("prefix") or ""),
                suffix=str(key_filter.get("suffix") or ""),
            )
        )
    return tuple(triggers)


def _destination(async_cfg: Mapping[str, Any], which: str) -> str | None:
    value = ((async_cfg.get("destinationConfig") or {}).get(which) or {}).get("destination")
    return str(value) if value else None


def load_s_yaml_spec(
    path: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    account_id: str = "1234567890",
) -> FunctionSpec:
    """The one fc3 function in ``path``, with its vars (and ``parameters``) substituted."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    variables = dict(document.get("vars") or {})
    variables.update({_lower_camel(k): v for k, v in (parameters or {}).items()})
    name, raw = _the_function(document, path)
    props = _Expressions(variables, account_id).resolve(raw)
    for required in ("functionName", "handler", "runtime", "code"):
        if not props.get(required):
            raise TemplateError(f"{path}: {name}: {required} is required")
    async_cfg = props.get("asyncInvokeConfig") or {}
    log_cfg = props.get("logConfig") or {}
    return FunctionSpec(
        service=str(document.get("name") or name),
        name=str(props["functionName"]),
        handler=str(props["handler"]),
        runtime=str(props["runtime"]),
        code_uri=str(props["code"]),
        memory=_int(props.get("memorySize"), "memorySize", DEFAULT_MEMORY_MB),
        timeout=_int(props.get("timeout"), "timeout", DEFAULT_TIMEOUT_S),
        env={
            str(k): "" if v is None else str(v)
            for k, v in (props.get("environmentVariables") or {}).items()
        },
        layers=tuple(str(layer) for layer in props.get("layers") or ()),
        max_async_retry_attempts=_retries(async_cfg.get("maxAsyncRetryAttempts")),
        max_async_event_age=(
            _int(async_cfg.get("maxAsyncEventAgeInSeconds"), "maxAsyncEventAgeInSeconds", 0) or None
        ),
        on_success=_destination(async_cfg, "onSuccess"),
        on_failure=_destination(async_cfg, "onFailure"),
        instance_concurrency=_int(props.get("instanceConcurrency"), "instanceConcurrency", 1),
        log_project=str(log_cfg.get("project") or ""),
        log_store=str(log_cfg.get("logstore") or ""),
        role=str(props["role"]) if props.get("role") else None,
        triggers=_triggers(props),
    )
