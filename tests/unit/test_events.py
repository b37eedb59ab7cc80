"""Behaviour of ota_release.events: every trigger shape in, records or a clear error out."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ota_release import events as events_module
from ota_release.events import (
    MAX_EVENT_BYTES,
    MAX_RECORDS_PER_EVENT,
    Boundary,
    EventShapeError,
    ObjectCreated,
    SkippedEvent,
    TooManyRecordsError,
    TriggerBatch,
    parse_trigger_event,
    screen_records,
)

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
FIRMWARE_KEY = "firmware/acme/cam-2.0.0.bin"
SIDECAR_KEY = "firmware/acme/cam-2.0.0.bin.ota.json"
SAMPLE_FILES = sorted(p.name for p in EVENTS_DIR.glob("*.json"))


def load_bytes(name: str) -> bytes:
    return (EVENTS_DIR / name).read_bytes()


def load_json(name: str) -> Any:
    return json.loads(load_bytes(name))


def native_record(name: str = "oss-put.json") -> dict[str, Any]:
    """A fresh copy of the first classic record of a native sample, for editing."""
    record: dict[str, Any] = copy.deepcopy(load_json(name)["events"][0])
    return record


def with_key(key: str) -> dict[str, Any]:
    record = native_record()
    record["oss"]["object"]["key"] = key
    return {"events": [record]}


def in_form(payload: Any, form: str) -> Any:
    """The same event as FC (bytes), a test harness (str) or a caller (decoded) passes it."""
    if form == "bytes":
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    if form == "bytearray":
        return bytearray(json.dumps(payload).encode("utf-8"))
    if form == "str":
        return json.dumps(payload, ensure_ascii=False)
    return copy.deepcopy(payload)


FORMS = ["bytes", "bytearray", "str", "decoded"]


def shape_error(event: Any) -> EventShapeError:
    with pytest.raises(EventShapeError) as caught:
        parse_trigger_event(event)
    return caught.value


# ----------------------------------------------------------------------- sample events


def test_sample_events_exist_for_every_documented_shape() -> None:
    assert set(SAMPLE_FILES) >= {
        "oss-put.json",
        "oss-put-sidecar.json",
        "oss-multi.json",
        "oss-delete.json",
        "oss-unicode-key.json",
        "eventbridge-put.json",
        "eventbridge-batch.json",
        "eventbridge-rawdata.json",
    }


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_every_sample_gives_the_same_batch_in_every_input_form(name: str, form: str) -> None:
    # GIVEN a sample event as FC delivers it (bytes) and as it would be once decoded
    expected = parse_trigger_event(load_bytes(name))
    # WHEN the same event arrives as bytes, bytearray, str or an already-decoded value
    batch = parse_trigger_event(in_form(load_json(name), form))
    # THEN the result does not depend on the form
    assert batch == expected
    assert batch.records or batch.skipped


def test_native_put_event_yields_the_firmware_record_with_all_fields() -> None:
    batch = parse_trigger_event(load_bytes("oss-put.json"))

    assert batch == TriggerBatch(
        records=[
            ObjectCreated(
                bucket="firmware-bucket",
                key=FIRMWARE_KEY,
                size=3145728,
                etag="9B2E61F04C7A3D58E1A06F2C4B8D7E35",
                event_name="ObjectCreated:PutObject",
                region="cn-shanghai",
                event_time="2025-11-20T03:14:07.000Z",
                oss_request_id="691E84B3A2F5C10D3E7B9A42",
                source="oss",
            )
        ],
        skipped=[],
    )


def test_native_sidecar_event_yields_the_sidecar_key() -> None:
    (record,) = parse_trigger_event(load_bytes("oss-put-sidecar.json")).records

    assert record.key == SIDECAR_KEY
    assert record.size == 412


def test_native_event_with_two_records_keeps_both_in_delivery_order() -> None:
    batch = parse_trigger_event(load_bytes("oss-multi.json"))

    assert [r.key for r in batch.records] == [FIRMWARE_KEY, SIDECAR_KEY]
    assert {r.source for r in batch.records} == {"oss"}


def test_eventbridge_cloudevent_yields_the_record_from_data() -> None:
    (record,) = parse_trigger_event(load_bytes("eventbridge-put.json")).records

    assert record.source == "eventbridge"
    assert (record.bucket, record.key, record.size) == ("firmware-bucket", FIRMWARE_KEY, 3145728)
    assert record.oss_request_id == "691E84B3A2F5C10D3E7B9A42"


def test_eventbridge_key_comes_from_data_not_from_subject() -> None:
    # GIVEN a CloudEvent whose subject names another object than its data
    event = load_json("eventbridge-put.json")
    event["subject"] = "acs:oss:cn-shanghai:1:firmware-bucket/something/else.bin"
    # WHEN it is parsed
    (record,) = parse_trigger_event(event).records
    # THEN the key is data.oss.object.key
    assert record.key == FIRMWARE_KEY


def test_eventbridge_batch_array_yields_one_record_per_cloudevent() -> None:
    batch = parse_trigger_event(load_bytes("eventbridge-batch.json"))

    assert [(r.key, r.source) for r in batch.records] == [
        (FIRMWARE_KEY, "eventbridge"),
        (SIDECAR_KEY, "eventbridge"),
    ]


def test_eventbridge_rawdata_bare_record_yields_one_eventbridge_record() -> None:
    (record,) = parse_trigger_event(load_bytes("eventbridge-rawdata.json")).records

    assert (record.key, record.source, record.region) == (
        FIRMWARE_KEY,
        "eventbridge",
        "cn-shanghai",
    )


def test_eventbridge_array_may_mix_cloudevents_and_bare_records() -> None:
    batch = parse_trigger_event(
        [load_json("eventbridge-put.json"), native_record("oss-put-sidecar.json")]
    )

    assert [r.key for r in batch.records] == [FIRMWARE_KEY, SIDECAR_KEY]


def test_eventbridge_region_and_time_fall_back_to_the_envelope() -> None:
    # GIVEN a CloudEvent whose record lacks region and eventTime
    event = load_json("eventbridge-put.json")
    del event["data"]["region"], event["data"]["eventTime"]
    # WHEN it is parsed
    (record,) = parse_trigger_event(event).records
    # THEN the envelope's aliyunregionid and time fill them in
    assert record.region == "cn-shanghai"
    assert record.event_time == event["time"]


def test_optional_object_fields_absent_become_none() -> None:
    record = native_record()
    for field in ("size", "eTag", "deltaSize"):
        del record["oss"]["object"][field]
    del record["responseElements"], record["region"], record["eventTime"]

    (parsed,) = parse_trigger_event({"events": [record]}).records

    assert (parsed.size, parsed.etag, parsed.oss_request_id) == (None, None, None)
    assert (parsed.region, parsed.event_time) == (None, None)


def test_quoted_etag_is_unquoted_and_case_kept() -> None:
    record = native_record()
    record["oss"]["object"]["eTag"] = '"9B2E61F04C7A3D58E1A06F2C4B8D7E35-2"'

    (parsed,) = parse_trigger_event({"events": [record]}).records

    assert parsed.etag == "9B2E61F04C7A3D58E1A06F2C4B8D7E35-2"


def test_unknown_fields_are_ignored() -> None:
    event = load_json("oss-put.json")
    event["somethingNew"] = {"nested": [1, 2]}
    event["events"][0]["oss"]["object"]["storageClass"] = "Standard"

    assert parse_trigger_event(event) == parse_trigger_event(load_bytes("oss-put.json"))


def test_zero_size_object_is_accepted() -> None:
    record = native_record()
    record["oss"]["object"]["size"] = 0

    assert parse_trigger_event({"events": [record]}).records[0].size == 0


# ---------------------------------------------------------------------------- skips


def test_delete_event_is_skipped_with_a_reason_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ota_release.events")

    batch = parse_trigger_event(load_bytes("oss-delete.json"))

    assert batch.records == []
    assert batch.skipped == [
        SkippedEvent(
            event_name="ObjectRemoved:DeleteObject",
            bucket="firmware-bucket",
            key="firmware/acme/cam-1.9.0.bin",
            reason="ObjectRemoved:DeleteObject is not an object-created event",
        )
    ]
    lines = [r for r in caplog.records if r.name == "ota_release.events"]
    assert len(lines) == 1
    assert "ObjectRemoved:DeleteObject" in lines[0].getMessage()
    assert "cam-1.9.0.bin" in lines[0].getMessage()


def test_mixed_batch_keeps_created_records_and_skips_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ota_release.events")
    removed = native_record("oss-delete.json")
    restored = native_record()
    restored["eventName"] = "ObjectRestore:FinishRestore"

    batch = parse_trigger_event({"events": [removed, native_record(), restored]})

    assert [r.key for r in batch.records] == [FIRMWARE_KEY]
    assert [s.event_name for s in batch.skipped] == [
        "ObjectRemoved:DeleteObject",
        "ObjectRestore:FinishRestore",
    ]
    assert len([r for r in caplog.records if r.name == "ota_release.events"]) == 2


def test_non_object_event_without_oss_object_is_skipped_not_rejected() -> None:
    # GIVEN an EventBridge bucket-level event, which carries no object
    event = load_json("eventbridge-put.json")
    event["type"] = "oss:BucketCreated:PutBucket"
    event["data"] = {"eventName": "BucketCreated:PutBucket", "region": "cn-shanghai"}
    # WHEN it is parsed
    batch = parse_trigger_event(event)
    # THEN it is skipped, with what is known about it
    assert batch.records == []
    assert batch.skipped[0].event_name == "BucketCreated:PutBucket"
    assert (batch.skipped[0].bucket, batch.skipped[0].key) == (None, None)


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectCreated:InitiateMultipartUpload",
        "ObjectCreated:UploadPart",
        "ObjectCreated:UploadPartCopy",
    ],
)
def test_multipart_upload_in_progress_is_skipped(event_name: str) -> None:
    record = native_record()
    record["eventName"] = event_name

    batch = parse_trigger_event({"events": [record]})

    assert batch.records == []
    assert batch.skipped[0].key == FIRMWARE_KEY
    assert "CompleteMultipartUpload" in batch.skipped[0].reason


@pytest.mark.parametrize(
    "event_name",
    [
        "ObjectCreated:PostObject",
        "ObjectCreated:CopyObject",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:AppendObject",
        "ObjectCreated:PutSymlink",
    ],
)
def test_other_object_created_events_are_records(event_name: str) -> None:
    record = native_record()
    record["eventName"] = event_name

    (parsed,) = parse_trigger_event({"events": [record]}).records

    assert parsed.event_name == event_name


# -------------------------------------------------------------------------- key rule


@pytest.mark.parametrize(
    ("key", "candidates"),
    [
        pytest.param("firmware/a.bin", ("firmware/a.bin",), id="plain"),
        pytest.param("firmware/my fw.bin", ("firmware/my fw.bin",), id="raw-space"),
        pytest.param("firmware/a+b.bin", ("firmware/a+b.bin",), id="plus-stays-plus"),
        pytest.param(
            "firmware/my%20fw.bin", ("firmware/my%20fw.bin", "firmware/my fw.bin"), id="pct-20"
        ),
        pytest.param(
            "firmware/a+b%20c.bin",
            ("firmware/a+b%20c.bin", "firmware/a+b c.bin"),
            id="plus-and-pct",
        ),
        pytest.param("firmware/100%/a.bin", ("firmware/100%/a.bin",), id="literal-pct"),
        pytest.param("firmware/50%zz.bin", ("firmware/50%zz.bin",), id="pct-non-hex"),
        pytest.param("firmware/a%2", ("firmware/a%2",), id="pct-one-hex-digit-at-end"),
        pytest.param(
            "firmware/100%25.bin", ("firmware/100%25.bin", "firmware/100%.bin"), id="pct-25"
        ),
        pytest.param(
            "firmware/100%/b%20c",
            ("firmware/100%/b%20c", "firmware/100%/b c"),
            id="literal-and-escape",
        ),
        pytest.param("firmware/相机.bin", ("firmware/相机.bin",), id="chinese-raw"),
        pytest.param(
            "firmware/" + quote("相机 固件") + ".bin",
            ("firmware/%E7%9B%B8%E6%9C%BA%20%E5%9B%BA%E4%BB%B6.bin", "firmware/相机 固件.bin"),
            id="chinese-encoded",
        ),
        pytest.param(
            "firmware/%e7%9b%b8.bin", ("firmware/%e7%9b%b8.bin", "firmware/相.bin"), id="lower-hex"
        ),
        pytest.param("firmware/%FF%FE.bin", ("firmware/%FF%FE.bin",), id="escapes-not-utf8"),
        pytest.param("firmware/%E7%9B.bin", ("firmware/%E7%9B.bin",), id="truncated-utf8"),
    ],
)
def test_key_candidates_follow_the_key_rule(key: str, candidates: tuple[str, ...]) -> None:
    # WHEN an event delivers this key
    (record,) = parse_trigger_event(in_form(with_key(key), "bytes")).records
    # THEN the key is kept exactly as delivered, and the candidates follow the rule
    assert record.key == key
    assert record.key_candidates == candidates


def test_unicode_sample_key_is_delivered_raw_and_tried_as_is() -> None:
    (record,) = parse_trigger_event(load_bytes("oss-unicode-key.json")).records

    assert record.key == "firmware/acme/相机 固件+beta 100%/cam 2.0.0.bin"
    assert record.key_candidates == (record.key,)


def test_unicode_sample_key_percent_encoded_decodes_back_to_the_raw_key() -> None:
    # GIVEN the unicode sample with its key percent-encoded (as a URL-encoding sender would)
    raw = load_json("oss-unicode-key.json")["events"][0]["oss"]["object"]["key"]
    event = with_key(quote(raw, safe="/"))
    # WHEN it is parsed
    (record,) = parse_trigger_event(event).records
    # THEN the encoded key is tried first and the raw key second
    assert record.key_candidates == (quote(raw, safe="/"), raw)


@given(st.text(alphabet="aZ/ +%2Fe7E9B相", min_size=1) | st.text(min_size=1))
def test_key_candidates_are_the_key_then_its_strict_percent_decoding(key: str) -> None:
    record = ObjectCreated("b", key, None, None, "ObjectCreated:PutObject", None, None, None, "oss")

    candidates = record.key_candidates

    assert candidates[0] == key
    assert len(candidates) in (1, 2)
    if len(candidates) == 2:
        assert candidates[1] == unquote(key, errors="strict") != key
        # "+" is data, not a form-encoded space: decoding never removes one
        assert candidates[1].count("+") >= key.count("+")


# ---------------------------------------------------------------------------- errors


def test_shape_error_is_a_value_error() -> None:
    assert issubclass(EventShapeError, ValueError)


def test_empty_events_list_is_rejected() -> None:
    error = shape_error(b'{"events": []}')

    assert "events: must not be empty" in str(error)


def test_empty_array_is_rejected() -> None:
    assert "empty JSON array" in str(shape_error(b"[]"))


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b'{"events": [', b"{'single': 'quotes'}", b"\xef\xbb\xbf{}"]
)
def test_non_json_bytes_are_rejected(raw: bytes) -> None:
    assert "not valid JSON" in str(shape_error(raw))


def test_bytes_that_are_not_utf8_are_rejected() -> None:
    assert "not UTF-8" in str(shape_error(b'{"events": "\xff"}'))


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        ("5", "number 5"),
        ("null", "null"),
        ('"x"', "string"),
        ("true", "boolean"),
        ("1.5", "number"),
    ],
)
def test_json_scalars_are_rejected_naming_what_was_seen(raw: str, seen: str) -> None:
    message = str(shape_error(raw.encode()))

    assert "expected a JSON object or array" in message
    assert seen in message


@pytest.mark.parametrize("value", [None, 5, 1.5, ("a",), {"events"}])
def test_unsupported_python_types_are_rejected(value: Any) -> None:
    assert "unsupported event type" in str(shape_error(value))


def test_object_of_unknown_shape_says_what_was_seen_and_expected() -> None:
    message = str(shape_error({"triggerTime": "2025-11-20T03:14:07Z", "payload": "x"}))

    assert "unrecognised event shape" in message
    assert "'payload', 'triggerTime'" in message
    assert '"events"' in message and '"specversion"' in message and '"eventName"' in message


def test_missing_key_names_the_path_of_the_field() -> None:
    event = load_json("oss-put.json")
    del event["events"][0]["oss"]["object"]["key"]

    error = shape_error(event)

    assert "events[0].oss.object.key: field required" in str(error)
    assert error.problems == ("events[0].oss.object.key: field required",)


def test_bad_field_in_second_record_names_its_index() -> None:
    event = load_json("oss-multi.json")
    event["events"][1]["oss"]["bucket"]["name"] = ""

    assert "events[1].oss.bucket.name" in str(shape_error(event))


def test_negative_size_is_rejected_showing_the_value() -> None:
    record = native_record()
    record["oss"]["object"]["size"] = -1

    message = str(shape_error({"events": [record]}))

    assert "events[0].oss.object.size" in message
    assert "(got -1)" in message


@pytest.mark.parametrize("size", ["3145728", 3145728.0, True, [1]])
def test_size_that_is_not_an_integer_is_rejected(size: Any) -> None:
    record = native_record()
    record["oss"]["object"]["size"] = size

    assert "events[0].oss.object.size" in str(shape_error({"events": [record]}))


def test_record_that_is_not_an_object_is_rejected_with_its_path() -> None:
    assert "events[0]: expected a JSON object, got string" in str(shape_error({"events": ["x"]}))


def test_events_that_is_not_a_list_is_rejected() -> None:
    assert "events: " in str(shape_error({"events": {"eventName": "x"}}))


def test_cloudevent_without_required_attributes_names_each() -> None:
    event = load_json("eventbridge-put.json")
    del event["id"], event["type"]

    error = shape_error(event)

    assert "id: field required" in error.problems
    assert "type: field required" in error.problems


def test_cloudevent_with_non_object_data_is_rejected() -> None:
    event = load_json("eventbridge-put.json")
    event["data"] = "ObjectCreated"

    assert "data: expected a JSON object, got string" in str(shape_error(event))


def test_bad_record_in_eventbridge_batch_names_array_index_and_data_path() -> None:
    events = load_json("eventbridge-batch.json")
    del events[1]["data"]["oss"]["bucket"]

    assert "[1].data.oss.bucket: field required" in str(shape_error(events))


def test_bad_rawdata_record_names_the_field_from_the_root() -> None:
    record = native_record()
    record["oss"]["object"]["key"] = 42

    assert "oss.object.key: input should be a valid string (got 42)" in str(shape_error(record))


def test_record_without_event_name_is_rejected() -> None:
    record = native_record()
    del record["eventName"]

    assert "events[0].eventName: field required" in str(shape_error({"events": [record]}))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ([1], "[0]: expected an EventBridge event (JSON object), got number 1"),
        ([{"events": []}], "[0]: unrecognised event shape"),
        ([{"foo": 1}], "[0]: unrecognised event shape"),
    ],
)
def test_array_elements_must_be_eventbridge_events(event: Any, expected: str) -> None:
    assert expected in str(shape_error(event))


def test_oversized_bytes_are_rejected_before_json_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an event one byte over the cap, and a json.loads that must not be reached
    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("json.loads called on oversized input")

    monkeypatch.setattr(events_module.json, "loads", forbidden)
    raw = b" " * (MAX_EVENT_BYTES + 1)
    # WHEN / THEN it is rejected on size
    assert "larger than the 1048576 bytes" in str(shape_error(raw))


def test_oversized_str_is_measured_in_utf8_bytes() -> None:
    # GIVEN a str under the cap in characters but over it in UTF-8 bytes
    text = '{"events": [], "pad": "' + "相" * (MAX_EVENT_BYTES // 3) + '"}'
    assert len(text) < MAX_EVENT_BYTES

    assert "larger than" in str(shape_error(text))


def test_event_exactly_at_the_size_cap_is_accepted() -> None:
    raw = load_bytes("oss-put.json")
    padded = raw + b" " * (MAX_EVENT_BYTES - len(raw))

    assert len(parse_trigger_event(padded).records) == 1


def test_deeply_nested_json_is_a_shape_error_not_a_recursion_error() -> None:
    raw = b"[" * 200_000 + b"]" * 200_000

    assert "nested too deeply" in str(shape_error(raw))


def test_error_message_is_truncated_for_huge_inputs() -> None:
    event = {f"key{i}": i for i in range(5000)}

    assert len(str(shape_error(event))) <= 2000


def test_every_bad_field_of_a_record_is_reported_at_once() -> None:
    record = native_record()
    for field in ("eventSource", "eventTime", "region"):
        record[field] = 0
    record["oss"] = {"bucket": {"name": 1, "arn": 2}, "object": {"key": 3, "size": -1, "eTag": 4}}
    record["responseElements"] = {"requestId": 5}

    error = shape_error({"events": [record]})

    assert len(error.problems) == 9
    assert "events[0].oss.object.size: input should be greater than or equal to 0 (got -1)" in (
        error.problems
    )


def test_problem_list_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "_MAX_PROBLEMS", 2)
    record = native_record()
    record["oss"]["object"].update({"key": 3, "size": -1, "eTag": 4})

    error = shape_error({"events": [record]})

    assert error.problems[-1] == "... and 1 more"
    assert len(error.problems) == 3


# ------------------------------------------------------------------------ robustness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["events", "data", "specversion", "eventName", "oss", "key"])
            | st.text(),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def assert_batch_or_shape_error(event: Any) -> None:
    try:
        result = parse_trigger_event(event)
    except EventShapeError:
        return
    assert isinstance(result, TriggerBatch)
    assert all(isinstance(r, ObjectCreated) for r in result.records)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_values_give_a_batch_or_a_shape_error(value: Any) -> None:
    assert_batch_or_shape_error(value)
    assert_batch_or_shape_error(json.dumps(value).encode())


@settings(max_examples=300)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_give_a_batch_or_a_shape_error(raw: bytes) -> None:
    assert_batch_or_shape_error(raw)


def _leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaf_paths(v, (*prefix, k))] or [prefix]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*prefix, i))] or [prefix]
    return [prefix]


SAMPLES = {name: load_json(name) for name in SAMPLE_FILES}


@settings(max_examples=300)
@given(st.sampled_from(SAMPLE_FILES), st.data(), json_values)
def test_samples_with_one_field_replaced_give_a_batch_or_a_shape_error(
    name: str, data: st.DataObject, replacement: Any
) -> None:
    # GIVEN a real sample with one leaf replaced by an arbitrary JSON value
    event = copy.deepcopy(SAMPLES[name])
    path = data.draw(st.sampled_from(_leaf_paths(event)))
    target = event
    for part in path[:-1]:
        target = target[part]
    if path:
        target[path[-1]] = replacement
    # WHEN / THEN parsing never fails with anything but EventShapeError
    assert_batch_or_shape_error(event)


# ------------------------------------------------------------------------- screening


def _created(key: str = FIRMWARE_KEY, bucket: str = "firmware-bucket", **kw: Any) -> ObjectCreated:
    fields: dict[str, Any] = {
        "size": 1,
        "etag": "E",
        "event_name": "ObjectCreated:PutObject",
        "region": "cn-shanghai",
        "event_time": "2025-11-20T03:14:07.000Z",
        "oss_request_id": "R1",
        "source": "oss",
    }
    fields.update(kw)
    return ObjectCreated(bucket=bucket, key=key, **fields)


def _screen(records: list[ObjectCreated], boundary: Boundary | None = None) -> TriggerBatch:
    return screen_records(TriggerBatch(records=records, skipped=[]), boundary or Boundary())


def test_records_for_another_bucket_or_outside_the_prefix_are_skipped_with_the_setting() -> None:
    boundary = Boundary(frozenset({"firmware-bucket"}), "firmware/")
    batch = _screen(
        [
            _created(),
            _created(bucket="someone-elses-bucket"),
            _created(key="private/cam.bin"),
            # the percent-decoded key is the one under the prefix: it may be the real key
            _created(key="%66irmware/cam.bin"),
        ],
        boundary,
    )
    assert [r.key for r in batch.records] == [FIRMWARE_KEY, "%66irmware/cam.bin"]
    assert [(s.bucket, s.key) for s in batch.skipped] == [
        ("someone-elses-bucket", FIRMWARE_KEY),
        ("firmware-bucket", "private/cam.bin"),
    ]
    assert "OTA_BUCKETS: firmware-bucket" in batch.skipped[0].reason
    assert "OTA_PREFIX: 'firmware/'" in batch.skipped[1].reason


def test_an_unset_boundary_accepts_every_bucket_and_key() -> None:
    batch = _screen([_created(bucket="a-bucket"), _created(key="anything.bin")])
    assert len(batch.records) == 2 and batch.skipped == []


def test_one_upload_delivered_9532_times_is_processed_once() -> None:
    batch = _screen([_created()] * 9_532)
    assert batch.records == [_created()]
    assert batch.duplicates == 9_531


def test_deliveries_differing_in_anything_that_tells_uploads_apart_are_kept() -> None:
    variants = [
        _created(),
        _created(etag="E2"),
        _created(event_time="2025-11-20T03:14:08.000Z"),
        _created(oss_request_id="R2"),
        _created(size=2),
        _created(bucket="other-bucket"),
    ]
    assert _screen(variants * 3).records == variants


def test_more_distinct_records_than_the_limit_are_refused_before_any_is_processed() -> None:
    records = [_created(key=f"firmware/{i}.bin") for i in range(MAX_RECORDS_PER_EVENT + 1)]
    assert len(_screen(records[:-1]).records) == MAX_RECORDS_PER_EVENT
    with pytest.raises(TooManyRecordsError) as caught:
        _screen(records)
    message = str(caught.value)
    assert f"{MAX_RECORDS_PER_EVENT + 1} distinct" in message
    assert f"at most {MAX_RECORDS_PER_EVENT}" in message
    assert isinstance(caught.value, EventShapeError)


def test_duplicates_and_skips_do_not_count_towards_the_limit() -> None:
    boundary = Boundary(frozenset({"firmware-bucket"}))
    records = [_created()] * 500 + [_created(bucket="other-bucket", key=f"{i}") for i in range(500)]
    batch = _screen(records, boundary)
    assert len(batch.records) == 1 and len(batch.skipped) == 500


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("firmware/" + "k" * 1015, "1024 bytes; OSS keys are at most 1023 bytes"),
        ("firmware/\ud800.bin", "not valid UTF-8"),
        ("firmware/folder/", "folder marker"),
        ("/firmware/cam.bin", "OSS keys never do"),
        ("\\firmware\\cam.bin", "OSS keys never do"),
    ],
)
def test_keys_no_oss_object_can_have_are_skipped_with_the_reason(key: str, words: str) -> None:
    batch = _screen([_created(key=key)])
    assert batch.records == []
    assert words in batch.skipped[0].reason


def test_a_long_delivered_key_whose_decoded_form_fits_is_kept() -> None:
    key = "firmware/" + "%41" * 400  # 1209 bytes as delivered, 409 decoded
    assert _screen([_created(key=key)]).records != []


def test_the_outside_boundary_sample_is_skipped_whole_by_the_deployed_boundary() -> None:
    # GIVEN the sample: one upload to another bucket, one outside the watched prefix
    batch = parse_trigger_event(load_bytes("oss-put-outside-boundary.json"))
    assert len(batch.records) == 2
    # WHEN screened with the boundary template.yml deploys (its bucket, "firmware/")
    screened = screen_records(batch, Boundary(frozenset({"firmware-bucket"}), "firmware/"))
    # THEN nothing is left to process, and each skip says which setting excluded it
    assert screened.records == []
    assert ["OTA_BUCKETS" in s.reason for s in screened.skipped] == [True, False]
    assert "OTA_PREFIX" in screened.skipped[1].reason


def test_a_built_trigger_record_parses_back_to_what_was_built() -> None:
    # GIVEN a record written by the one builder (replay, the local OSS and the kits use it)
    from datetime import datetime, timedelta, timezone

    moment = datetime(2025, 6, 1, 20, 30, 5, 250_999, tzinfo=timezone(timedelta(hours=8)))
    record = events_module.oss_trigger_record(
        bucket="fw",
        key="p/cam 2%.bin",
        size=12,
        etag='"0123456789ABCDEF0123456789ABCDEF"',
        event_time=moment,
        region="cn-shanghai",
        account_id="1234",
        request_id="R-1",
        rule_id="rule",
        event_name="ObjectCreated:PostObject",
    )
    # WHEN the function parses it
    batch = parse_trigger_event({"events": [record]})
    # THEN every field survives, the time in UTC with milliseconds and the ETag unquoted
    (parsed,) = batch.records
    assert (parsed.bucket, parsed.key, parsed.size, parsed.etag) == (
        "fw",
        "p/cam 2%.bin",
        12,
        "0123456789ABCDEF0123456789ABCDEF",
    )
    assert (parsed.event_name, parsed.region, parsed.oss_request_id) == (
        "ObjectCreated:PostObject",
        "cn-shanghai",
        "R-1",
    )
    assert parsed.event_time == "2025-06-01T12:30:05.250Z"
    assert record["oss"]["bucket"]["arn"] == "acs:oss:cn-shanghai:1234:fw"
