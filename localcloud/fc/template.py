"""Read the function the local FC runs from the project's Funcraft ``template.yml``.

The local stand-in deliberately takes its configuration from the same file that ``fun
deploy`` uses, so a wrong handler, trigger filter, timeout or retry count shows up locally
instead of after a deployment. Only what the stand-in needs is read; anything else in the
template is ignored.

Funcraft (``Transform: Aliyun::Serverless-2018-04-03``) nests functions inside their
service resource::

    Resources:
      svc:
        Type: Aliyun::Serverless::Service
        Properties: {...}
        fn:
          Type: Aliyun::Serverless::Function
          Properties: {Handler, Runtime, CodeUri, Timeout, AsyncConfiguration, ...}
          Events:
            upload: {Type: OSS, Properties: {BucketName, Events, Filter: {Key: {Prefix, Suffix}}}}
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TRANSFORM = "Aliyun::Serverless-2018-04-03"
SERVICE_TYPE = "Aliyun::Serverless::Service"
FUNCTION_TYPE = "Aliyun::Serverless::Function"

#: FC retries a failed asynchronous invocation 3 times unless told otherwise, and accepts
#: 0 to 8 retries (FC's AsyncConfig / Serverless Devs' maxAsyncRetryAttempts "[0,8]").
DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS = 3
MAX_ASYNC_RETRY_ATTEMPTS_RANGE = (0, 8)
#: Funcraft's documented defaults for a function without MemorySize / Timeout.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3

_ROS_FUNCTIONS = (
    "Base64",
    "Equals",
    "FindInMap",
    "GetAZs",
    "GetAtt",
    "If",
    "Join",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "Sub",
    "Replace",
    "Str",
)


class TemplateError(ValueError):
    """The template does not describe a function the local FC can run."""


@dataclass(frozen=True)
class OssTriggerSpec:
    """One native OSS trigger: which object-created events reach the function."""

    name: str
    bucket: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether a native OSS event record would be delivered by this trigger.

        OSS writes ``eventName`` without the ``oss:`` prefix (``ObjectCreated:PutObject``)
        while trigger configurations use it (``oss:ObjectCreated:*``); both spellings are
        accepted on either side.
        """
        oss = record.get("oss")
        if not isinstance(oss, Mapping):
            return False
        bucket = oss.get("bucket")
        obj = oss.get("object")
        if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping):
            return False
        if bucket.get("name") != self.bucket:
            return False
        key = obj.get("key")
        if not isinstance(key, str) or not key.startswith(self.prefix):
            return False
        if not key.endswith(self.suffix):
            return False
        return event_name_matches(str(record.get("eventName", "")), self.events)


def event_name_matches(event_name: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether an OSS event name (``ObjectCreated:PutObject``) matches any trigger pattern.

    Patterns may end in ``*`` (``oss:ObjectCreated:*``), as the OSS trigger config allows.
    """
    name = _strip_oss(event_name)
    return any(fnmatch.fnmatchcase(name, _strip_oss(p)) for p in patterns)


def _strip_oss(name: str) -> str:
    return name[4:] if name.startswith("oss:") else name


@dataclass(frozen=True)
class FunctionSpec:
    """What the local FC needs to know about one function from template.yml."""

    service: str
    name: str
    handler: str
    runtime: str
    code_uri: str
    memory: int = DEFAULT_MEMORY_MB
    timeout: int = DEFAULT_TIMEOUT_S
    env: dict[str, str] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    max_async_retry_attempts: int = DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS
    max_async_event_age: int | None = None
    on_success: str | None = None
    on_failure: str | None = None
    instance_concurrency: int = 1
    initializer: str | None = None
    initialization_timeout: int | None = None
    log_project: str = ""
    log_store: str = ""
    role: str | None = None
    triggers: tuple[OssTriggerSpec, ...] = ()


# --------------------------------------------------------------------------- YAML loading


class _RosLoader(yaml.SafeLoader):
    """SafeLoader that understands the ROS short-form tags (``!Ref``, ``!Sub`` ...)."""


def _construct_ref(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": loader.construct_scalar(node)}  # type: ignore[arg-type]


def _make_fn_constructor(name: str) -> Any:
    key = f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


_RosLoader.add_constructor("!Ref", _construct_ref)
for _fn in _ROS_FUNCTIONS:
    _RosLoader.add_constructor(f"!{_fn}", _make_fn_constructor(_fn))


def load_template(path: Path) -> dict[str, Any]:
    """Parse a Funcraft/ROS template, keeping intrinsic functions as ``{"Fn::X": ...}``."""
    with path.open(encoding="utf-8") as fh:
        doc = yaml.load(fh, Loader=_RosLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: not a YAML mapping")
    return doc


# --------------------------------------------------------------------------- resolution


_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


class _Resolver:
    """Evaluates the intrinsic functions a template uses, against known parameters."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.values = dict(parameters)
        self.conditions_src = template.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        resources = self.template.get("Resources") or {}
        if name in resources:
            return name  # a resource's Ref is its name, as for services and topics
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.conditions_src:
                raise TemplateError(f"condition {name!r} is not defined")
            self._conditions[name] = bool(self.resolve(self.conditions_src[name]))
        return self._conditions[name]

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, local = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, local = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("ALIYUN::"):
                resource, attr = name.split(".", 1)
                return str(self.resolve({"Fn::GetAtt": [resource, attr]}))
            return str(self.ref(name))

        return _SUB_VAR.sub(replace, str(text))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(str(self.resolve(arg)))
            if key == "Condition" and isinstance(arg, str) and arg in self.conditions_src:
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        return {k: self.resolve(v) for k, v in node.items()}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "Sub":
            return self.sub(arg)
        if name == "If":
            cond, yes, no = arg
            return self.resolve(yes if self.condition(cond) else no)
        if name == "GetAtt":
            # No deployed resources exist locally; a readable placeholder beats failing.
            resource, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return f"{resource}.{attr}"
        args = self.resolve(arg)
        if name == "Join":
            return str(args[0]).join(str(a) for a in args[1])
        if name == "Equals":
            return args[0] == args[1]
        if name == "Not":
            return not (args[0] if isinstance(args, list) else args)
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "Select":
            return args[1][int(args[0])]
        if name == "Split":
            return str(args[1]).split(str(args[0]))
        if name == "Replace":
            text = str(args[1])
            for old, new in args[0].items():
                text = text.replace(old, str(new))
            return text
        if name == "Str":
            return str(args)
        if name == "FindInMap":
            return self.template["Mappings"][args[0]][args[1]][args[2]]
        raise TemplateError(f"Fn::{name} is not supported by the local FC")


def _parameter_values(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any],
    region: str,
    account_id: str,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ALIYUN::Region": region,
        "ALIYUN::AccountId": account_id,
        "ALIYUN::StackName": "local",
        "ALIYUN::StackId": "local-stack",
        "ALIYUN::NoValue": None,
    }
    declared = template.get("Parameters") or {}
    missing = []
    for name, decl in declared.items():
        if name in overrides:
            values[name] = overrides[name]
        elif isinstance(decl, Mapping) and "Default" in decl:
            values[name] = decl["Default"]
        else:
            missing.append(name)
    if missing:
        raise TemplateError(f"parameters without a default need a value: {', '.join(missing)}")
    for name, value in overrides.items():
        values.setdefault(name, value)
    return values


def _int(value: Any, what: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise TemplateError(f"{what}: expected an integer, got {value!r}") from exc


def _retries(value: Any) -> int:
    retries = _int(value, "MaxAsyncRetryAttempts", DEFAULT_MAX_ASYNC_RETRY_ATTEMPTS)
    low, high = MAX_ASYNC_RETRY_ATTEMPTS_RANGE
    if not low <= retries <= high:
        raise TemplateError(
            f"MaxAsyncRetryAttempts: must be between {low} and {high} (FC's range), got {retries}"
        )
    return retries


def _destination(async_cfg: Mapping[str, Any], which: str) -> str | None:
    dest = (async_cfg.get("Destination") or {}).get(which)
    if dest is None:
        return None
    if isinstance(dest, Mapping):  # FC API spelling: {"Destination": "acs:..."}
        dest = dest.get("Destination") or dest.get("destination")
    return str(dest) if dest else None


def _triggers(events: Mapping[str, Any]) -> tuple[OssTriggerSpec, ...]:
    triggers = []
    for name, event in (events or {}).items():
        if not isinstance(event, Mapping) or event.get("Type") != "OSS":
            continue
        props = event.get("Properties") or {}
        key_filter = ((props.get("Filter") or {}).get("Key")) or {}
        bucket = props.get("BucketName")
        if not bucket:
            raise TemplateError(f"OSS trigger {name}: BucketName is required")
        triggers.append(
            OssTriggerSpec(
                name=str(name),
                bucket=str(bucket),
                events=tuple(str(e) for e in props.get("Events") or ()),
                prefix=str(key_filter.get("Prefix") or ""),
                suffix=str(key_filter.get("Suffix") or ""),
            )
        )
    return tuple(triggers)


def load_function_spec(
    path: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    region: str = "cn-shanghai",
    account_id: str = "1234567890",
    service: str | None = None,
    function: str | None = None,
) -> FunctionSpec:
    """The function described by a Funcraft template, with parameters and ``!Sub`` resolved.

    ``parameters`` override the template's parameter defaults (like ``fun deploy
    --parameter-override``). ``service``/``function`` pick one when the template has
    several; otherwise the template must hold exactly one function.
    """
    template = load_template(path)
    if template.get("Transform") != TRANSFORM:
        raise TemplateError(f"{path}: Transform must be {TRANSFORM!r}")
    values = _parameter_values(template, parameters or {}, region, account_id)
    resolver = _Resolver(template, values)

    found: list[tuple[str, Mapping[str, Any], str, Mapping[str, Any]]] = []
    for svc_name, svc in (template.get("Resources") or {}).items():
        if not isinstance(svc, Mapping) or svc.get("Type") != SERVICE_TYPE:
            continue
        if service is not None and svc_name != service:
            continue
        for fn_name, fn in svc.items():
            is_function = isinstance(fn, Mapping) and fn.get("Type") == FUNCTION_TYPE
            if is_function and (function is None or fn_name == function):
                found.append((str(svc_name), svc, str(fn_name), fn))
    if len(found) != 1:
        names = ", ".join(f"{s}/{f}" for s, _, f, _ in found) or "none"
        raise TemplateError(f"{path}: expected exactly one function, found {names}")
    svc_name, svc, fn_name, fn = found[0]

    svc_props = resolver.resolve(svc.get("Properties") or {})
    props = resolver.resolve(fn.get("Properties") or {})
    events = resolver.resolve(fn.get("Events") or {})
    for required in ("Handler", "Runtime", "CodeUri"):
        if not props.get(required):
            raise TemplateError(f"{svc_name}/{fn_name}: {required} is required")
    async_cfg = props.get("AsyncConfiguration") or {}
    log_cfg = svc_props.get("LogConfig") or {}
    env = {
        str(k): "" if v is None else str(v)
        for k, v in (props.get("EnvironmentVariables") or {}).items()
    }
    return FunctionSpec(
        service=svc_name,
        name=fn_name,
        handler=str(props["Handler"]),
        runtime=str(props["Runtime"]),
        code_uri=str(props["CodeUri"]),
        memory=_int(props.get("MemorySize"), "MemorySize", DEFAULT_MEMORY_MB),
        timeout=_int(props.get("Timeout"), "Timeout", DEFAULT_TIMEOUT_S),
        env=env,
        layers=tuple(str(layer) for layer in props.get("Layers") or ()),
        max_async_retry_attempts=_retries(async_cfg.get("MaxAsyncRetryAttempts")),
        max_async_event_age=(
            _int(async_cfg.get("MaxAsyncEventAgeInSeconds"), "MaxAsyncEventAgeInSeconds", 0) or None
        ),
        on_success=_destination(async_cfg, "OnSuccess"),
        on_failure=_destination(async_cfg, "OnFailure"),
        instance_concurrency=_int(props.get("InstanceConcurrency"), "InstanceConcurrency", 1),
        initializer=str(props["Initializer"]) if props.get("Initializer") else None,
        initialization_timeout=(
            _int(props.get("InitializationTimeout"), "InitializationTimeout", 3)
            if props.get("Initializer")
            else None
        ),
        log_project=str(log_cfg.get("Project") or ""),
        log_store=str(log_cfg.get("Logstore") or ""),
        role=str(svc_props["Role"]) if svc_props.get("Role") else None,
        triggers=_triggers(events),
    )


_MNS_TOPIC_ARN = re.compile(
    r"^acs:mns:(?P<region>[^:]*):(?P<account>[^:]*):/topics/(?P<topic>[^/]+)"
)


def mns_topic_from_arn(arn: str) -> str | None:
    """The topic in an FC destination ARN ``acs:mns:<region>:<uid>:/topics/<name>/messages``."""
    match = _MNS_TOPIC_ARN.match(arn)
    return match.group("topic") if match else None
