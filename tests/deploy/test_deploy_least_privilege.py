"""The function's role can read the watched prefix, register firmware and publish: no more."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_views import ACCOUNT_ID, REGION, fun_function, policy_file, template_params

ROOT = Path(__file__).resolve().parents[2]
WILDCARD_ACTION = re.compile(r"(^\*$)|(:\*$)|\*")


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


def test_template_inline_policy_is_the_staged_policy_file():
    service, _ = fun_function()
    (inline,) = service["Properties"]["Policies"]

    assert inline == policy_file("staged", policy_params())


def test_direct_mode_policy_only_drops_generate_upload_url():
    staged = policy_file("staged", policy_params())
    direct = policy_file("direct", policy_params())

    assert set(actions_in(staged)) - set(actions_in(direct)) == {"iot:GenerateOTAUploadURL"}
    assert set(actions_in(direct)) <= set(actions_in(staged))


def test_oss_read_is_limited_to_the_watched_prefix_of_the_bucket():
    policy = policy_file("staged", policy_params())
    (oss,) = [s for s in policy["Statement"] if any(a.startswith("oss:") for a in s["Action"])]

    assert oss["Action"] == ["oss:GetObject"]
    assert oss["Resource"] == ["acs:oss:*:*:my-firmware-bucket/firmware/*"]


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
