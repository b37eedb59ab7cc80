"""Each local FC flavour runs the function as its own deploy file describes it.

``localcloud up --flavour s`` once loaded template.yml, so the s.yaml deployment's
instance concurrency, ``OTA_IOT_QPS`` and runtime were never the ones exercised locally.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.fc.s_yaml import load_s_yaml_spec
from localcloud.fc.template import TemplateError, load_function_spec

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"


def test_flavour_s_takes_the_function_from_s_yaml() -> None:
    spec = load_s_yaml_spec(ROOT / "s.yaml", {"BucketName": "uploads"}, account_id=ACCOUNT)

    # THEN what differs from template.yml on purpose is s.yaml's
    assert spec.runtime == "python3.10"
    assert spec.instance_concurrency == 1
    assert spec.env["OTA_IOT_QPS"] == "2"
    # AND the parameter override reaches the env and the trigger, as for template.yml
    assert spec.env["OTA_BUCKETS"] == "uploads"
    assert [t.bucket for t in spec.triggers] == ["uploads"]
    assert spec.on_failure == f"acs:mns:cn-shanghai:{ACCOUNT}:/topics/ota-release-failures/messages"


def test_both_flavours_agree_on_what_the_two_files_share() -> None:
    params = {"BucketName": "uploads"}
    s = load_s_yaml_spec(ROOT / "s.yaml", params, account_id=ACCOUNT)
    fun = load_function_spec(ROOT / "template.yml", params, account_id=ACCOUNT)

    shared = ("handler", "memory", "timeout", "max_async_retry_attempts", "max_async_event_age")
    assert {k: getattr(s, k) for k in shared} == {k: getattr(fun, k) for k in shared}
    assert [(t.events, t.prefix, t.suffix) for t in s.triggers] == [
        (t.events, t.prefix, t.suffix) for t in fun.triggers
    ]
    differ = {"OTA_IOT_QPS"}  # the two files pace differently on purpose
    assert {k: v for k, v in s.env.items() if k not in differ} == {
        k: v for k, v in fun.env.items() if k not in differ
    }


def test_an_expression_the_stand_in_cannot_evaluate_is_an_error(tmp_path: Path) -> None:
    text = (
        (ROOT / "s.yaml")
        .read_text(encoding="utf-8")
        .replace("${vars.region}", "${env('REGION')}", 1)
    )
    broken = tmp_path / "s.yaml"
    broken.write_text(text, encoding="utf-8")

    with pytest.raises(TemplateError, match="env\\('REGION'\\)"):
        load_s_yaml_spec(broken)
