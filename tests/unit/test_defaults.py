"""Folder defaults: resolution, merging and provenance, in the pipeline and in handle()."""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from typing import Any

import pytest

from ota_release.defaults import (
    DEFAULTABLE,
    REFUSED,
    Defaults,
    check_defaults_document,
    effective_spec,
    folders_for,
    is_defaults_key,
    resolve,
)
from ota_release.function import Adapters, handle
from ota_release.notification import Outcome
from ota_release.pipeline import ReleaseConfig, ReleasePipeline, Result
from ota_release.retry import Deadline, RetryPolicy
from tests.unit.fakes import Ports, object_created, oss_trigger_event

FW_KEY = "firmware/acme/cam/cam-2.0.0.bin"
SC_KEY = FW_KEY + ".ota.json"
ROOT_DEFAULTS = "firmware/.ota-defaults.json"
ACME_DEFAULTS = "firmware/acme/.ota-defaults.yaml"
CAM_DEFAULTS = "firmware/acme/cam/.ota-defaults.yml"


def doc(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def reader(files: dict[str, bytes]) -> Any:
    return files.get


# Resolution (the function and the CLI share it) ------------------------------------------------


def test_folders_run_from_the_prefix_down_to_the_sidecar_s_folder() -> None:
    assert folders_for("a/b/x.ota.json") == ["", "a/", "a/b/"]
    assert folders_for(SC_KEY, "firmware/") == [
        "firmware/",
        "firmware/acme/",
        "firmware/acme/cam/",
    ]
    # a prefix that is not a folder boundary: only folders inside it are read
    assert folders_for(SC_KEY, "firmware/ac") == ["firmware/acme/", "firmware/acme/cam/"]
    assert folders_for("x.ota.json", "firmware/") == []


def test_defaults_file_names_are_recognised_by_their_base_name() -> None:
    assert is_defaults_key(ROOT_DEFAULTS) and is_defaults_key(".ota-defaults.yml")
    assert not is_defaults_key("firmware/x.ota-defaults.json")
    assert not is_defaults_key("firmware/.ota-defaults.json.ota.json")


def test_nearest_folder_wins_per_key_and_the_sidecar_wins_over_every_default() -> None:
    files = {
        ROOT_DEFAULTS: doc(product_key="a1Root", module="camera", description="root"),
        ACME_DEFAULTS: b"product_key: a1Acme\nneed_to_verify: true\n",
        CAM_DEFAULTS: b"description: from cam\n",
    }
    found = resolve(reader(files), SC_KEY, "firmware/")
    assert [f.key for f in found.files] == [ROOT_DEFAULTS, ACME_DEFAULTS, CAM_DEFAULTS]
    effective = effective_spec(
        doc(version="2.0.0", module="lens"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=found,
    )
    spec = effective.result.spec
    assert spec is not None, effective.result.errors
    assert (spec.product_key, spec.module, spec.description) == ("a1Acme", "lens", "from cam")
    assert spec.need_to_verify is True
    assert effective.sources == {
        "version": SC_KEY,
        "module": SC_KEY,
        "product_key": ACME_DEFAULTS,
        "need_to_verify": ACME_DEFAULTS,
        "description": CAM_DEFAULTS,
    }


def test_a_sidecar_key_by_its_api_name_still_wins_over_a_default() -> None:
    found = resolve(reader({ROOT_DEFAULTS: doc(product_key="a1Root")}), SC_KEY, "firmware/")
    effective = effective_spec(
        doc(DestVersion="2.0.0", ProductKey="a1Mine"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=found,
    )
    assert effective.result.spec is not None and effective.result.spec.product_key == "a1Mine"
    assert effective.sources["product_key"] == SC_KEY


def test_a_default_beats_the_setting_and_the_setting_is_named_as_a_source() -> None:
    found = resolve(reader({ROOT_DEFAULTS: doc(module="camera")}), SC_KEY, "firmware/")
    effective = effective_spec(
        doc(version="2.0.0"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=found,
        default_product_key="a1Setting",
    )
    assert effective.result.spec is not None
    assert effective.result.spec.product_key == "a1Setting"
    assert effective.sources["product_key"] == "OTA_PRODUCT_KEY"
    overridden = effective_spec(
        doc(version="2.0.0"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=resolve(reader({ROOT_DEFAULTS: doc(product_key="a1Dflt")}), SC_KEY),
        default_product_key="a1Setting",
    )
    assert overridden.result.spec is not None and overridden.result.spec.product_key == "a1Dflt"


def test_a_nearer_verify_block_replaces_a_farther_one_whole() -> None:
    files = {
        ROOT_DEFAULTS: doc(
            product_key="a1Cam", verify={"devices": ["lab-0001"], "timeout_minutes": 60}
        ),
        CAM_DEFAULTS: b"verify:\n  devices: [cam-lab-7]\n",
    }
    effective = effective_spec(
        doc(version="2.0.0"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=resolve(reader(files), SC_KEY, "firmware/"),
    )
    spec = effective.result.spec
    assert spec is not None and spec.verify is not None
    assert (spec.verify.devices, spec.verify.timeout_minutes) == (("cam-lab-7",), None)
    assert effective.sources["verify"] == CAM_DEFAULTS


@pytest.mark.parametrize("key", ["name", "version", "FirmwareName", "size", "sign", "src_version"])
def test_keys_that_name_one_release_or_one_file_are_refused_naming_the_key(key: str) -> None:
    values, errors = check_defaults_document(doc(**{key: "x"}, module="camera"), ROOT_DEFAULTS)
    assert values == {}
    [error] = errors
    assert error.field == key and error.rule.startswith("cannot be a folder default: ")
    assert error.value == "x"


def test_an_unknown_key_and_a_bad_value_are_both_named() -> None:
    _, errors = check_defaults_document(doc(colour="blue", product_key="a b"), ROOT_DEFAULTS)
    assert [(e.field, e.value) for e in errors] == [("colour", "blue"), ("product_key", "a b")]
    assert "allowed: " + ", ".join(DEFAULTABLE) in errors[0].rule


def test_every_defaultable_key_is_a_sidecar_key_and_none_is_refused() -> None:
    assert not set(DEFAULTABLE) & set(REFUSED)
    values, errors = check_defaults_document(
        doc(
            product_key="a1Cam",
            module="camera",
            type="diff",
            sign_method="sha-256",
            need_to_verify=True,
            description="night mode",
            udi="(01)123",
            iot_instance_id="iot-cn-1",
            verify={"devices": ["lab-0001"]},
        ),
        ROOT_DEFAULTS,
    )
    assert errors == [] and set(values) == set(DEFAULTABLE)


def test_a_bad_defaults_file_makes_every_release_below_it_invalid_naming_the_file() -> None:
    files = {ACME_DEFAULTS: b"module: 'bad module'\nversion: '9'\n"}
    effective = effective_spec(
        doc(version="2.0.0"),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=resolve(reader(files), SC_KEY, "firmware/"),
    )
    assert effective.result.spec is None
    fields = [e.field for e in effective.result.errors]
    assert f"version (in {ACME_DEFAULTS})" in fields
    assert f"module (in {ACME_DEFAULTS})" in fields


def test_two_defaults_files_in_one_folder_are_refused() -> None:
    files = {ROOT_DEFAULTS: doc(module="a"), "firmware/.ota-defaults.yaml": b"module: b\n"}
    found = resolve(reader(files), SC_KEY, "firmware/")
    [error] = found.errors
    assert (error.field, error.rule) == ("firmware/", "one defaults file per folder")
    assert error.value == [ROOT_DEFAULTS, "firmware/.ota-defaults.yaml"]


def test_a_defaulted_need_to_verify_false_under_a_verify_block_names_both_and_the_file() -> None:
    files = {ROOT_DEFAULTS: doc(need_to_verify=False)}
    effective = effective_spec(
        doc(version="2.0.0", product_key="a1Cam", verify={"devices": ["lab-0001"]}),
        sidecar_key=SC_KEY,
        firmware_key=FW_KEY,
        defaults=resolve(reader(files), SC_KEY, "firmware/"),
    )
    [error] = effective.result.errors
    assert error.field == f"need_to_verify (from {ROOT_DEFAULTS}), verify"


def test_no_defaults_file_gives_exactly_the_sidecar_s_own_result() -> None:
    effective = effective_spec(
        doc(version="2.0.0"), sidecar_key=SC_KEY, firmware_key=FW_KEY, defaults=Defaults()
    )
    assert effective.result.spec is not None and effective.sources == {"version": SC_KEY}


# In the pipeline (fakes) ----------------------------------------------------------------------


class Harness:
    def __init__(self, prefix: str = "firmware/") -> None:
        self.ports = Ports()
        self.store = self.ports.store
        self.platform = self.ports.platform
        self.notifier = self.ports.notifier
        self.pipeline = ReleasePipeline(
            self.store,
            self.platform,
            self.notifier,
            ReleaseConfig(prefix=prefix),
            retry=RetryPolicy(sleep=lambda _s: None, rng=random.Random(0)),
            clock=lambda: datetime(2025, 11, 20, 4, 0, tzinfo=timezone.utc),
            staging=self.ports.staging,
        )

    def run(self, key: str) -> Result:
        return self.pipeline.process(object_created(key), Deadline(600))

    def message(self) -> dict[str, Any]:
        body, _tag = self.notifier.messages[-1]
        loaded: dict[str, Any] = json.loads(body)
        return loaded


def test_a_release_takes_its_folder_defaults_and_the_notification_names_their_source() -> None:
    h = Harness()
    h.store.put(ROOT_DEFAULTS, doc(product_key="a1Root", module="camera"))
    h.store.put(ACME_DEFAULTS, b"product_key: a1Acme\n")
    h.store.put(FW_KEY, b"firmware bytes")
    h.store.put(SC_KEY, doc(version="2.0.0", description="night"))
    assert h.run(FW_KEY).outcome is Outcome.CREATED
    [params] = h.platform.created_params
    assert (params["ProductKey"], params["ModuleName"]) == ("a1Acme", "camera")
    message = h.message()
    assert message["sources"] == {
        "description": SC_KEY,
        "module": ROOT_DEFAULTS,
        "product_key": ACME_DEFAULTS,
        "version": SC_KEY,
    }
    # the reads that found a defaults file are accounted for
    assert {f"OSS-GET-{ROOT_DEFAULTS}", f"OSS-GET-{ACME_DEFAULTS}"} <= set(
        message["request_ids"]["oss"]
    )


def test_without_defaults_the_notification_has_no_sources_and_keeps_its_shape() -> None:
    h = Harness()
    h.store.put(FW_KEY, b"firmware bytes")
    h.store.put(SC_KEY, doc(version="2.0.0"))
    assert h.run(FW_KEY).outcome is Outcome.CREATED
    assert "sources" not in h.message() and "verification" not in h.message()


def test_waiting_reads_no_defaults() -> None:
    h = Harness()
    h.store.put(ROOT_DEFAULTS, doc(module="camera"))
    h.store.put(FW_KEY, b"firmware bytes")
    assert h.run(FW_KEY).outcome is Outcome.WAITING
    assert h.store.count("read_small") == 0


def test_folders_above_the_prefix_are_never_read() -> None:
    h = Harness(prefix="firmware/acme/")
    h.store.put(ROOT_DEFAULTS, doc(module="camera"))
    h.store.put(FW_KEY, b"firmware bytes")
    h.store.put(SC_KEY, doc(version="2.0.0"))
    assert h.run(FW_KEY).outcome is Outcome.CREATED
    read = [args[1] for name, args in h.store.calls if name == "read_small"]
    assert not any(key.startswith("firmware/.ota-defaults") for key in read)
    assert "ModuleName" not in h.platform.created_params[0]


def test_a_bad_defaults_upload_is_rejected_naming_the_field_and_re_runs_nothing() -> None:
    h = Harness()
    h.store.put(FW_KEY, b"firmware bytes")
    h.store.put(SC_KEY, doc(version="2.0.0"))
    h.store.put(ACME_DEFAULTS, b"name: everything\nmodule: camera\n")
    result = h.pipeline.process_defaults(object_created(ACME_DEFAULTS), Deadline(600))
    assert isinstance(result, Result) and result.outcome is Outcome.REJECTED
    message = h.message()
    assert [e["field"] for e in message["errors"]] == ["name"]
    assert "no release was re-run" in message["summary"]
    assert h.platform.calls == []  # nothing looked up, nothing created
    assert [args[1] for name, args in h.store.calls if name == "read_small"] == [ACME_DEFAULTS]


def test_a_valid_defaults_upload_publishes_nothing_and_re_runs_nothing() -> None:
    h = Harness()
    h.store.put(FW_KEY, b"firmware bytes")
    h.store.put(SC_KEY, doc(version="2.0.0"))
    h.store.put(ACME_DEFAULTS, b"module: camera\n")
    result = h.pipeline.process_defaults(object_created(ACME_DEFAULTS), Deadline(600))
    assert isinstance(result, str) and "none was re-run" in result and "module" in result
    assert h.notifier.messages == [] and h.platform.calls == []


@pytest.mark.usefixtures("fresh_settings")
def test_handle_lists_a_valid_defaults_upload_as_skipped_with_the_reason() -> None:
    ports = Ports()
    ports.store.put(ROOT_DEFAULTS, doc(module="camera"))
    summary = handle(
        oss_trigger_event([ROOT_DEFAULTS]),
        None,
        env={"OTA_REGION": "cn-shanghai", "OTA_NOTIFY_TOPIC": "t", "OTA_ACCOUNT_ID": "42"},
        adapters=Adapters(ports.store, ports.platform, ports.notifier),
        retry=RetryPolicy(sleep=lambda _s: None, rng=random.Random(0)),
    )
    assert summary["results"] == []
    [skipped] = summary["skipped"]
    assert skipped["key"] == ROOT_DEFAULTS and "are valid (module)" in skipped["reason"]
    assert ports.notifier.messages == []


# The docs --------------------------------------------------------------------------------------


def test_the_sidecar_reference_states_the_verify_rules_and_the_default_keys() -> None:
    from pathlib import Path

    from ota_release.rules import VERIFY_RULES_TABLE

    text = (Path(__file__).resolve().parents[2] / "docs" / "sidecar.md").read_text("utf-8")
    for key, rule in VERIFY_RULES_TABLE.items():
        api, _, words = rule.partition(": ")
        assert f"| `verify.{key}` | `{api}" in text and words in text, key
    section = text[text.index("## Folder defaults") :]
    section = section[: section.index("\n## ")]
    for key in (*DEFAULTABLE, *REFUSED):
        assert f"`{key}`" in section, key


def test_a_sidecar_naming_a_defaults_file_as_its_firmware_is_rejected_naming_the_key() -> None:
    h = Harness()
    h.store.put(ACME_DEFAULTS, b"module: camera\n")
    sidecar = ACME_DEFAULTS + ".ota.json"
    h.store.put(sidecar, doc(version="1.0.0"))
    assert h.run(sidecar).outcome is Outcome.REJECTED
    [error] = h.message()["errors"]
    assert error["field"] == "key" and "folder defaults file" in error["rule"]
    assert h.platform.calls == [] and h.store.count("head") == 1  # its own HEAD only


# The defaults JSON Schema ---------------------------------------------------------------------


def test_the_committed_defaults_schema_is_the_generated_one() -> None:
    from pathlib import Path

    from ota_release.defaults import defaults_json_schema

    path = Path(__file__).resolve().parents[2] / "schemas" / "defaults.schema.json"
    expected = json.dumps(defaults_json_schema(), indent=2, ensure_ascii=False) + "\n"
    assert path.read_text(encoding="utf-8") == expected, "run: python scripts/gen_schema.py"


@pytest.mark.parametrize(
    ("document", "valid"),
    [
        ({"product_key": "a1Cam", "verify": {"devices": ["cam-lab-01"]}}, True),
        ({"ModuleName": "camera", "need_to_verify": True}, True),
        ({}, True),
        ({"version": "1.0.0"}, False),
        ({"name": "cam"}, False),
        ({"size": 10}, False),
        ({"verify": {"devices": []}}, False),
    ],
)
def test_the_defaults_schema_accepts_exactly_the_defaultable_keys(
    document: dict[str, Any], valid: bool
) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    from ota_release.defaults import defaults_json_schema

    errors = list(jsonschema.Draft202012Validator(defaults_json_schema()).iter_errors(document))
    assert (errors == []) is valid
    # and the function agrees with the schema
    _, problems = check_defaults_document(json.dumps(document).encode(), ROOT_DEFAULTS)
    assert (problems == []) is valid


def test_a_sidecar_null_drops_a_default() -> None:
    found = resolve(reader({ROOT_DEFAULTS: doc(module="camera")}), SC_KEY, "firmware/")
    effective = effective_spec(
        doc(version="2.0.0", module=None), sidecar_key=SC_KEY, firmware_key=FW_KEY, defaults=found
    )
    assert effective.result.spec is not None and effective.result.spec.module is None
    assert effective.sources["module"] == SC_KEY
