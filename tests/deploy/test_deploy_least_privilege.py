"""The function's role can read the watched prefix, register firmware and publish: no more.

The actions the role needs are derived from the function's adapter code (the API calls it
makes), so a grant nothing calls, or a call nothing grants, fails here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mns.topic
import oss2
import pytest
import yaml

from ota_release.adapters.iot import OPERATOR_ACTIONS
from tests.deploy.deploy_views import ACCOUNT_ID, REGION, fun_function, policy_file, template_params

ROOT = Path(__file__).resolve().parents[2]
WILDCARD_ACTION = re.compile(r"(^\*$)|(:\*$)|\*")
ADAPTERS = ROOT / "src" / "ota_release" / "adapters"
PACKAGE = ROOT / "src" / "ota_release"

#: SDK methods the adapters may call, and the API operation each one is.
SDK_METHODS = {
    "get_object": ("oss", "GetObject"),
    # A signed URL is read with the role's rights: the role needs what a GET needs.
    "sign_url": ("oss", "GetObject"),
    "publish_message": ("mns", "PublishMessage"),
}
#: The RAM action each operation needs (OSS authorises HEAD with oss:GetObject). None: no
#: RAM action, because the form policy IoT's GenerateOTAUploadURL signed authorises it.
RAM_ACTIONS: dict[tuple[str, str], str | None] = {
    ("oss", "GetObject"): "oss:GetObject",
    ("oss", "HeadObject"): "oss:GetObject",
    ("oss", "PostObject"): None,
    ("oss", "PutObject"): "oss:PutObject",
    ("oss", "ListObjects"): "oss:ListObjects",
    ("mns", "PublishMessage"): "mns:PublishMessage",
}
#: Needed by FC itself, not by the code: FC writes the function's logs with this role.
PLATFORM_ACTIONS = {"log:PostLogStoreLogs"}
#: Only the staged firmware URL mode asks IoT for an upload form.
STAGED_ONLY = {"iot:GenerateOTAUploadURL"}


def _str_arg(call: ast.Call, index: int) -> str | None:
    arg = call.args[index] if len(call.args) > index else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def adapter_operations() -> Iterator[tuple[str, str, str]]:
    """(service, operation, where) for every cloud API call in the function's adapters.

    - IoT: ``self._invoke("<Action>", ...)`` (every IoT call goes through it), or
      ``self._pages("<Action>", ...)`` (which calls it for each page);
    - OSS small reads: ``self._call(<verb>, "<Operation>", ...)``;
    - OSS staged copy: ``requests.post(...)`` is the PostObject to IoT's upload host;
    - SDK methods (oss2.Bucket, mns Topic) by name, from SDK_METHODS. Any other method
      those SDK classes have is an error: add it to SDK_METHODS with its operation.
    """
    sdk_names = {
        n for cls in (oss2.Bucket, mns.topic.Topic) for n in dir(cls) if not n.startswith("_")
    }
    for path in sorted(ADAPTERS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, where = node.func.attr, f"{path.name}:{node.lineno}"
            owner = node.func.value
            if name in ("_invoke", "_pages") and (op := _str_arg(node, 0)):
                yield "iot", op, where
            elif name == "_call" and (op := _str_arg(node, 1)):
                yield "oss", op, where
            elif name == "post" and isinstance(owner, ast.Name) and owner.id == "requests":
                yield "oss", "PostObject", where
            elif name in SDK_METHODS:
                yield (*SDK_METHODS[name], where)
            elif name in sdk_names and not (isinstance(owner, ast.Name) and owner.id == "self"):
                raise AssertionError(f"{where}: SDK method {name}() is not in SDK_METHODS")


def needed_actions() -> set[str]:
    """The RAM actions the function's code needs (staged mode), plus FC's own."""
    needed = set(PLATFORM_ACTIONS)
    for service, op, where in adapter_operations():
        if service == "iot":
            if op not in OPERATOR_ACTIONS:
                needed.add(f"iot:{op}")
            continue
        assert (service, op) in RAM_ACTIONS, f"{where}: {service} {op} has no RAM_ACTIONS entry"
        action = RAM_ACTIONS[(service, op)]
        if action is not None:
            needed.add(action)
    return needed


def operator_methods() -> dict[str, str]:
    """Adapter methods that invoke an operator-only IoT action, and that action."""
    found: dict[str, str] = {}
    tree = ast.parse((ADAPTERS / "iot.py").read_text(encoding="utf-8"))
    for method in ast.walk(tree):
        if not isinstance(method, ast.FunctionDef):
            continue
        for node in ast.walk(method):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            op = _str_arg(node, 0) if node.func.attr == "_invoke" else None
            if op in OPERATOR_ACTIONS:
                found[method.name] = str(op)
    return found


def actions_in(node: Any) -> list[str]:
    """Every value of an ``Action`` key anywhere in a document."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Action":
                found += [value] if isinstance(value, str) else list(value)
            else:
                found += actions_in(value)
    elif isinstance(node, list):
        for item in node:
            found += actions_in(item)
    return found


def policy_params() -> dict[str, Any]:
    params = template_params()
    return {**params, "Region": REGION, "AccountId": ACCOUNT_ID}


@pytest.mark.parametrize(
    "path",
    ["template.yml", "s.yaml", "deploy/ram-policy.staged.json", "deploy/ram-policy.direct.json"],
)
def test_no_wildcard_action_anywhere(path):
    text = (ROOT / path).read_text()
    doc = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)

    actions = actions_in(doc)

    if path != "s.yaml":  # s.yaml references a role by ARN and holds no policy
        assert actions, f"{path} declares no actions"
    assert [a for a in actions if WILDCARD_ACTION.search(a)] == []


def test_the_adapters_calls_are_found():
    # The derivation itself must see the calls it claims to see (not an empty walk).
    ops = {(service, op) for service, op, _ in adapter_operations()}
    assert {("iot", "CreateOTAFirmware"), ("oss", "HeadObject"), ("mns", "PublishMessage")} <= ops


def test_operator_only_actions_are_never_called_by_the_function():
    # The function's role is not granted OPERATOR_ACTIONS; only the CLI may call the adapter
    # methods that use them. Code outside cli/ calling one must move its action out of
    # OPERATOR_ACTIONS and grant it (template.yml, s.yaml, deploy/ram-policy.*.json).
    methods = operator_methods()
    assert set(methods.values()) == set(OPERATOR_ACTIONS), "an operator action nothing calls"
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("cli", "adapters"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in methods:
                calls.append(f"{relative}:{node.lineno} {node.func.attr}()")
    assert calls == []


def test_the_staged_policy_grants_exactly_what_the_function_calls():
    granted = set(actions_in(policy_file("staged", policy_params())))
    needed = needed_actions()

    assert granted - needed == set(), "granted, but nothing in the function calls it"
    assert needed - granted == set(), "called by the function, but not granted"


def test_the_direct_policy_grants_exactly_what_the_function_calls_in_direct_mode():
    granted = set(actions_in(policy_file("direct", policy_params())))

    assert granted == needed_actions() - STAGED_ONLY


def test_the_function_is_granted_query_ota_firmware_because_it_compares_udi():
    # ListOTAFirmware leaves out a package's Udi; judging an existing package compares it.
    assert "iot:QueryOTAFirmware" in needed_actions()
    for path in ("template.yml", "deploy/ram-policy.staged.json", "deploy/ram-policy.direct.json"):
        assert "iot:QueryOTAFirmware" in (ROOT / path).read_text(), path


def test_deploy_md_lists_exactly_the_granted_actions():
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("| action | resource | why |") :]
    table = section[: section.index("\n\n")]
    listed = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        listed |= set(re.findall(r"`([a-z]+:[A-Za-z]+)`", first_cell))

    assert listed == set(actions_in(policy_file("staged", policy_params())))


def test_template_inline_policy_is_the_staged_policy_file():
    service, _ = fun_function()
    (inline,) = service["Properties"]["Policies"]

    assert inline == policy_file("staged", policy_params())


def test_direct_mode_policy_only_drops_generate_upload_url():
    staged = policy_file("staged", policy_params())
    direct = policy_file("direct", policy_params())

    assert set(actions_in(staged)) - set(actions_in(direct)) == {"iot:GenerateOTAUploadURL"}
    assert set(actions_in(direct)) <= set(actions_in(staged))


def _oss_statement(policy: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if action in s["Action"]]
    return found


@pytest.mark.parametrize("mode", ["staged", "direct"])
def test_oss_read_is_limited_to_the_watched_prefix_of_the_bucket(mode: str) -> None:
    oss = _oss_statement(policy_file(mode, policy_params()), "oss:GetObject")

    assert oss["Action"] == ["oss:GetObject"]
    assert oss["Resource"] == ["acs:oss:*:*:my-firmware-bucket/firmware/*"]


@pytest.mark.parametrize("mode", ["staged", "direct"])
def test_oss_write_is_limited_to_the_results_prefix_outside_the_watched_one(mode: str) -> None:
    # The function writes outcome objects only; the trigger never fires on them.
    params = policy_params()
    oss = _oss_statement(policy_file(mode, params), "oss:PutObject")

    assert oss["Action"] == ["oss:PutObject"]
    assert oss["Resource"] == ["acs:oss:*:*:my-firmware-bucket/ota-results/*"]
    watched, results = params["WatchPrefix"], params["ResultsPrefix"]
    assert not results.startswith(watched) and not watched.startswith(results)
    oss_actions = {a for a in needed_actions() if a.startswith("oss:")}
    assert oss_actions == {"oss:GetObject", "oss:PutObject", "oss:ListObjects"}


def test_the_only_oss_write_the_adapters_make_is_the_outcome_put():
    writes = [
        (op, where)
        for service, op, where in adapter_operations()
        if service == "oss" and op not in ("GetObject", "HeadObject", "ListObjects")
    ]
    assert sorted(op for op, _ in writes) == ["PostObject", "PutObject"], writes


def test_publish_is_limited_to_the_two_topics():
    policy = policy_file("staged", policy_params())
    (mns,) = [s for s in policy["Statement"] if any(a.startswith("mns:") for a in s["Action"])]

    assert mns["Action"] == ["mns:PublishMessage"]
    assert sorted(mns["Resource"]) == [
        f"acs:mns:{REGION}:{ACCOUNT_ID}:/topics/ota-release-failures/messages",
        f"acs:mns:{REGION}:{ACCOUNT_ID}:/topics/ota-release-outcomes/messages",
    ]


def test_s_yaml_role_is_the_role_docs_tell_you_to_create():
    doc = yaml.safe_load((ROOT / "s.yaml").read_text())
    role_name = doc["vars"]["roleName"]
    docs = (ROOT / "docs" / "deploy.md").read_text()

    assert "role/${vars.roleName}" in doc["resources"]["create-firmware"]["props"]["role"]
    assert role_name in docs
    assert "ram-policy.staged.json" in docs and "ram-policy.direct.json" in docs


@pytest.mark.parametrize("mode", ["staged", "direct"])
def test_listing_is_limited_to_the_watched_prefix_of_the_bucket(mode: str) -> None:
    listing = _oss_statement(policy_file(mode, policy_params()), "oss:ListObjects")

    assert listing["Action"] == ["oss:ListObjects"]
    assert listing["Resource"] == ["acs:oss:*:*:my-firmware-bucket"]
    assert listing["Condition"] == {"StringLike": {"oss:Prefix": ["firmware/*"]}}
