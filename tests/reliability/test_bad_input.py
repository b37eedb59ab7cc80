"""Hostile and malformed input: every case is a clear rejection or a clean, logged error.

Three levels: a corpus of malformed trigger events sent to a real instance (it must answer
each with a function error or a skip, never crash, hang or balloon), a corpus of broken
sidecars and awkward keys uploaded through OSS (each gets its notification), and
hypothesis-generated sidecars run through the pipeline on fakes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localcloud.cloud import LocalCloud
from ota_release.pipeline import ReleasePipeline
from ota_release.retry import Deadline, RetryPolicy
from scripts import soak
from tests.unit.fakes import Ports, object_created

pytestmark = pytest.mark.reliability

#: Peak resident memory an instance may reach while chewing the corpus (it idles ~100 MB).
INSTANCE_RSS_LIMIT_KB = 400 * 1024

_RECORD = {
    "eventName": "ObjectCreated:PutObject",
    "eventSource": "acs:oss",
    "eventTime": "2025-11-20T04:00:00.000Z",
    "region": "cn-shanghai",
    "oss": {"bucket": {"name": "firmware-bucket"}, "object": {"key": "firmware/x.bin"}},
}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


MALFORMED_EVENTS: dict[str, bytes | str] = {
    "empty": b"",
    "not json": b"this is not json",
    "truncated json": b'{"events": [{"eventName": ',
    "binary garbage": bytes(range(256)) * 4,
    "invalid utf-8": b'{"events": "\xff\xfe"}',
    "json null": b"null",
    "json number": b"42",
    "json string": b'"events"',
    "empty object": b"{}",
    "empty array": b"[]",
    "events not a list": b'{"events": {"a": 1}}',
    "events of numbers": b'{"events": [1, 2, 3]}',
    "record missing oss": json.dumps({"events": [{"eventName": "ObjectCreated:PutObject"}]}),
    "record missing key": json.dumps(
        {"events": [{**_RECORD, "oss": {"bucket": {"name": "b"}, "object": {}}}]}
    ),
    "key of wrong type": json.dumps(
        {"events": [{**_RECORD, "oss": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}
    ),
    "bucket of wrong type": json.dumps(
        {"events": [{**_RECORD, "oss": {"bucket": ["b"], "object": {"key": "k"}}}]}
    ),
    "deeply nested array": _nested(100_000),
    "deeply nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "huge (2 MiB)": json.dumps({"events": [_RECORD], "pad": "x" * (2 << 20)}),
    "many records (10k)": json.dumps({"events": [_RECORD] * 10_000}),
    "cloudevent without data": json.dumps(
        {"specversion": "1.0", "source": "acs.oss", "type": "oss:ObjectCreated:PutObject"}
    ),
    "NaN size": b'{"events": [{"eventName": "ObjectCreated:PutObject", "oss": '
    b'{"bucket": {"name": "b"}, "object": {"key": "k", "size": NaN}}}]}',
    "delete event only": json.dumps({"events": [{**_RECORD, "eventName": "ObjectRemoved:Delete"}]}),
}


BAD_SIDECARS: dict[str, tuple[str, bytes]] = {
    "broken json": (".ota.json", b'{"version": "1.0.0",'),
    "broken yaml": (".ota.yaml", b"version: [1.0.0\nname: : :"),
    "yaml alias bomb": (
        ".ota.yaml",
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        b"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nversion: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
    ),
    "deep nesting json": (".ota.json", b'{"version": ' + _nested(5_000) + b"}"),
    "deep nesting yaml": (".ota.yaml", b"version: " + b"[" * 5_000 + b"]" * 5_000),
    "10 MB": (".ota.json", b'{"version": "1.0.0", "description": "' + b"x" * 10_000_000 + b'"}'),
    "binary garbage": (".ota.json", bytes(range(256)) * 8),
    "wrong types": (".ota.json", b'{"version": 1.0, "type": true, "size": "12", "name": []}'),
    "duplicate keys": (".ota.json", b'{"version": "1.0.0", "version": "2.0.0"}'),
    "NaN and Infinity": (".ota.json", b'{"version": "1.0.0", "size": NaN, "type": Infinity}'),
    "numbers as strings": (".ota.json", b'{"version": "1.0.0", "size": "4096", "type": "0"}'),
    "top level list": (".ota.json", b'["version", "1.0.0"]'),
    "utf-16": (".ota.json", '{"version": "1.0.0"}'.encode("utf-16")),
    "yaml python tag": (".ota.yaml", b"version: !!python/object/apply:os.system ['true']\n"),
    # The SDK cannot UTF-8 encode a lone surrogate: refused up front, never retried.
    "lone surrogate description": (".ota.json", b'{"version": "1.0.0", "description": "\\ud800"}'),
    "lone surrogate udi": (".ota.json", b'{"version": "1.0.0", "udi": "a\\udfffb"}'),
    "control character": (".ota.json", b'{"version": "1.0.0", "description": "a\\u0007b"}'),
}

#: Keys OSS accepts that a naive decoder mangles; each must register normally.
AWKWARD_KEYS = {
    "unicode": "firmware/固件/相机 2.0.bin",
    "spaces": "firmware/my dir/cam fw.bin",
    "percent": "firmware/100%/cam%2F%zz.bin",
    "plus": "firmware/a+b/cam+1.bin",
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(flavour="fun", max_instances=1) as c:
        yield c


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def test_malformed_trigger_events_are_clean_errors_on_one_surviving_instance(
    cloud: LocalCloud,
) -> None:
    assert cloud.fc is not None
    records = {}
    for name, payload in MALFORMED_EVENTS.items():
        body = payload if isinstance(payload, bytes) else payload.encode()
        records[name] = cloud.fc.invoke_sync(body)
    statuses = {name: r.status for name, r in records.items()}
    # THEN no case crashed the process or ran into the timeout
    assert set(statuses.values()) <= {"failed", "succeeded"}, statuses
    # AND each failure is a clean function error that says what was wrong
    for name, r in records.items():
        if r.status == "failed":
            assert r.error_message and len(r.error_message) < 4000, name
    # AND one instance served the whole corpus, within bounded memory
    pids = {r.instance_pid for r in records.values()}
    assert len(pids) == 1 and cloud.fc.instance_pids == list(pids)
    assert _peak_rss_kb(pids.pop() or 0) < INSTANCE_RSS_LIMIT_KB
    print(f"malformed events: {len(records)} ({sorted(set(statuses.values()))})")


def test_broken_sidecars_are_each_rejected_with_their_problem(cloud: LocalCloud) -> None:
    work = soak.Workload(cloud, seed=0)
    keys = {}
    try:
        for i, (name, (suffix, data)) in enumerate(BAD_SIDECARS.items()):
            fw_key = f"firmware/bad/{i}/dev.bin"
            work.put(fw_key, b"firmware-bytes", "invalid_firmware", name)
            work.put(fw_key + suffix, data, "invalid_sidecar", name)
            keys[fw_key + suffix] = name
        assert cloud.wait_idle(120)
    finally:
        work.close()
    notes = {}
    for message in cloud.mns.messages(cloud.notify_topic):
        body = json.loads(message.body)
        if body["object"]["key"] in keys:
            notes[keys[body["object"]["key"]]] = body
    assert set(notes) == set(BAD_SIDECARS), "a broken sidecar got no notification"
    for name, body in notes.items():
        assert body["outcome"] == "rejected", (name, body["summary"])
        assert body["errors"] and all(e["field"] for e in body["errors"]), name
    for name, field in (
        ("lone surrogate description", "description"),
        ("lone surrogate udi", "udi"),
        ("control character", "description"),
    ):
        assert [e["field"] for e in notes[name]["errors"]] == [field], notes[name]["summary"]
    assert not any(p.firmware_name.startswith("dev") for p in cloud.iot.firmwares())
    print(f"broken sidecars: {len(notes)} rejected")


def test_awkward_keys_register_and_notify_under_their_exact_key(cloud: LocalCloud) -> None:
    work = soak.Workload(cloud, seed=0)
    try:
        for i, key in enumerate(AWKWARD_KEYS.values()):
            sidecar = json.dumps({"version": "1.0.0", "name": f"awkward-{i}"}).encode()
            work.put(key, soak.content(key, 2_000), "release", f"awkward-{i}")
            work.put(key + ".ota.json", sidecar, "release", f"awkward-{i}")
        assert cloud.wait_idle(120)
    finally:
        work.close()
    created = {
        json.loads(m.body)["firmware_key"]
        for m in cloud.mns.messages(cloud.notify_topic)
        if m.tag == "created"
    }
    assert set(AWKWARD_KEYS.values()) <= created
    names = [p.firmware_name for p in cloud.iot.firmwares()]
    assert sorted(n for n in names if n.startswith("awkward-")) == [
        f"awkward-{i}" for i in range(len(AWKWARD_KEYS))
    ]


_TEXT_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
_SIDECAR_KEYS = st.sampled_from(
    ["version", "name", "type", "size", "sign", "sign_method", "module", "udi", "FirmwareUrl"]
)
_SIDECAR_DOCS = st.dictionaries(_SIDECAR_KEYS | st.text(max_size=10), _TEXT_VALUES, max_size=8)


def _run_pipeline(sidecar: bytes, suffix: str) -> list[tuple[str, str]]:
    ports = Ports()
    fw_key = "firmware/fuzz/dev.bin"
    ports.store.put(fw_key, b"firmware-bytes")
    ports.store.put(fw_key + suffix, sidecar)
    pipeline = ReleasePipeline(
        ports.store,
        ports.platform,
        ports.notifier,
        retry=RetryPolicy(sleep=lambda _: None),
        staging=ports.staging,
    )
    pipeline.process(object_created(fw_key + suffix), Deadline(60))
    return ports.notifier.messages


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=2048), suffix=st.sampled_from([".ota.json", ".ota.yaml"]))
def test_fuzzed_sidecar_bytes_end_in_exactly_one_notification(raw: bytes, suffix: str) -> None:
    (message,) = _run_pipeline(raw, suffix)
    assert message[1] in ("rejected", "created")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_SIDECAR_DOCS, as_yaml=st.booleans())
def test_fuzzed_sidecar_documents_end_in_exactly_one_notification(
    doc: dict[str, Any], as_yaml: bool
) -> None:
    text = json.dumps(doc, allow_nan=True)  # JSON is YAML too, NaN included
    (message,) = _run_pipeline(text.encode(), ".ota.yaml" if as_yaml else ".ota.json")
    body = json.loads(message[0])
    assert message[1] in ("rejected", "created")
    if message[1] == "rejected":
        assert body["errors"], "a rejection must name its problems"
