"""The local Function Compute: template reading, trigger filter, async runs, retries, instances.

Every stand-in is built through the ``make_fc`` fixture, whose teardown stops it and checks
that no instance process (or anything in its process group) outlived the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.credentials import CredentialStore
from localcloud.fc import LocalFunctionCompute
from localcloud.fc_template import (
    OssTriggerSpec,
    TemplateError,
    event_name_matches,
    load_function_spec,
    mns_topic_from_arn,
)
from localcloud.fc_testkit import (
    oss_event,
    oss_record,
    process_group_gone,
    write_handler,
    write_template,
    write_tiny_bootstrap,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REAL_CODE_DIR = REPO / "functions" / "create_firmware"

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


class FakeTopicSink:
    """Collects what the stand-in publishes to MNS topics (the OnFailure destination)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], str | None]] = []

    def __call__(self, topic: str, body: str, tag: str | None) -> None:
        self.messages.append((topic, json.loads(body), tag))


@pytest.fixture
def sink() -> FakeTopicSink:
    return FakeTopicSink()


@pytest.fixture
def make_fc(tmp_path: Path, sink: FakeTopicSink) -> Iterator[Callable[..., LocalFunctionCompute]]:
    """Build and start a stand-in for a template written to tmp_path; stop it afterwards."""
    started: list[LocalFunctionCompute] = []

    def build(
        handler_body: str,
        *,
        flavour: str = "s",
        template: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> LocalFunctionCompute:
        code_dir = tmp_path / "functions" / "create_firmware"
        write_handler(code_dir, handler_body)
        if flavour == "fun":
            write_tiny_bootstrap(code_dir)
        spec = load_function_spec(write_template(tmp_path, **(template or {})))
        kwargs.setdefault("retry_base_delay", 0.01)
        kwargs.setdefault("serve_api", False)
        fc = LocalFunctionCompute(
            spec,
            code_dir=code_dir,
            flavour=flavour,  # type: ignore[arg-type]
            credentials=CredentialStore(),
            destination_sink=sink,
            **kwargs,
        )
        started.append(fc)
        return fc.start()

    yield build
    for fc in started:
        fc.stop()
        leftovers = [pid for pid in fc.instance_pids if not process_group_gone(pid)]
        assert leftovers == [], f"instance processes outlived the test: {leftovers}"


# --------------------------------------------------------------------------- template


def test_template_resolves_refs_and_subs_with_parameter_overrides(tmp_path: Path) -> None:
    # GIVEN a Funcraft template whose trigger and destination use Ref / Fn::Sub
    path = write_template(tmp_path, retries=2, timeout=7)

    # WHEN it is read with one parameter overridden
    spec = load_function_spec(
        path, {"BucketName": "acme-fw"}, region="cn-hangzhou", account_id="42"
    )

    # THEN parameters, pseudo parameters and defaults are all substituted
    assert (spec.service, spec.name, spec.handler) == (
        "ota-release",
        "create-firmware",
        "index.handler",
    )
    assert spec.env["WATCHED_BUCKET"] == "acme-fw"
    assert spec.env["OTA_REGION"] == "cn-hangzhou"
    assert spec.on_failure == "acs:mns:cn-hangzhou:42:/topics/ota-failures/messages"
    assert spec.role == "acs:ram::42:role/ota-release"
    assert (spec.timeout, spec.memory, spec.max_async_retry_attempts) == (7, 256, 2)
    assert (spec.log_project, spec.log_store) == ("ota-logs", "fc")
    (trigger,) = spec.triggers
    assert trigger == OssTriggerSpec(
        name="upload",
        bucket="acme-fw",
        events=("oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject"),
        prefix="firmware/",
        suffix="",
    )


def test_missing_retry_setting_means_fc_default_of_three(tmp_path: Path) -> None:
    spec = load_function_spec(write_template(tmp_path, retries=None))
    assert spec.max_async_retry_attempts == 3


def test_ros_short_tags_are_understood(tmp_path: Path) -> None:
    # GIVEN a template written with the ROS short tags (which ROS accepts, Funcraft does not)
    path = tmp_path / "template.yml"
    path.write_text(
        """
ROSTemplateFormatVersion: '2015-09-01'
Transform: 'Aliyun::Serverless-2018-04-03'
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  svc:
    Type: 'Aliyun::Serverless::Service'
    fn:
      Type: 'Aliyun::Serverless::Function'
      Properties:
        Handler: index.handler
        Runtime: python3.10
        CodeUri: ./code
        EnvironmentVariables:
          TOPIC: !Sub 'ota-${Stage}'
          JOINED: !Join ['-', [a, !Ref Stage]]
          LEVEL: !If [IsProd, WARNING, DEBUG]
          ROLE: !GetAtt Role.Arn
          ACCOUNT: !Sub ['${A}/${ALIYUN::AccountId}', {A: !Ref Stage}]
""",
        encoding="utf-8",
    )
    spec = load_function_spec(path, {"Stage": "prod"}, account_id="7")
    assert spec.env == {
        "TOPIC": "ota-prod",
        "JOINED": "a-prod",
        "LEVEL": "WARNING",
        "ROLE": "Role.Arn",
        "ACCOUNT": "prod/7",
    }


def test_template_with_unknown_parameter_reference_is_rejected(tmp_path: Path) -> None:
    path = write_template(tmp_path)
    path.write_text(path.read_text().replace("{Ref: BucketName}", "{Ref: NoSuchParam}"))
    with pytest.raises(TemplateError, match="NoSuchParam"):
        load_function_spec(path)


def test_destination_arn_names_the_mns_topic() -> None:
    assert mns_topic_from_arn("acs:mns:cn-shanghai:123:/topics/ota-failures/messages") == (
        "ota-failures"
    )
    assert mns_topic_from_arn("acs:fc:cn-shanghai:123:services/s/functions/f") is None


# --------------------------------------------------------------------------- trigger filter


TRIGGER = OssTriggerSpec(
    name="upload",
    bucket="firmware-bucket",
    events=("oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject"),
    prefix="firmware/",
    suffix="",
)


@pytest.mark.parametrize(
    ("record", "delivered"),
    [
        (oss_record("firmware/acme/cam-2.0.0.bin"), True),
        (oss_record("firmware/acme/cam-2.0.0.bin.ota.json"), True),
        (oss_record("firmware/x.bin", event_name="ObjectCreated:PostObject"), True),
        (oss_record("other/cam.bin"), False),
        (oss_record("firmware/cam.bin", bucket="another-bucket"), False),
        (oss_record("firmware/cam.bin", event_name="ObjectCreated:AppendObject"), False),
        (oss_record("firmware/cam.bin", event_name="ObjectRemoved:DeleteObject"), False),
    ],
)
def test_trigger_delivers_only_matching_bucket_prefix_and_event(
    record: dict[str, Any], delivered: bool
) -> None:
    assert TRIGGER.matches(record) is delivered


def test_trigger_suffix_and_wildcard_event_patterns() -> None:
    trigger = OssTriggerSpec("t", "firmware-bucket", ("oss:ObjectCreated:*",), "firmware/", ".json")
    assert trigger.matches(
        oss_record("firmware/a.bin.ota.json", event_name="ObjectCreated:CopyObject")
    )
    assert not trigger.matches(oss_record("firmware/a.bin"))
    assert event_name_matches("oss:ObjectCreated:PutObject", ["ObjectCreated:*"])
    assert not event_name_matches("ObjectRemoved:DeleteObject", ["oss:ObjectCreated:*"])


def test_non_matching_events_are_dropped_and_counted(
    make_fc: Callable[..., LocalFunctionCompute],
) -> None:
    fc = make_fc("return 'ok'")
    fc.on_oss_event(oss_event("elsewhere/a.bin", "firmware/b.bin"))
    fc.on_oss_event({"not": "an oss event"})
    assert fc.wait_idle(30)
    assert fc.dropped_events == 2
    assert [r.status for r in fc.invocations] == ["succeeded"]


# --------------------------------------------------------------------------- invocation


CONTEXT_ECHO = """
return json.dumps({
    "event": json.loads(event),
    "request_id": context.request_id,
    "function": context.function.name,
    "region": context.region,
    "ak": context.credentials.access_key_id,
    "token": context.credentials.security_token,
    "env_ak": os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
    "env": {k: os.environ.get(k) for k in ("OTA_NOTIFY_TOPIC", "FC_FUNCTION_NAME",
            "FC_REGION", "LOCAL_OSS_ENDPOINT", "ALIBABA_CLOUD_ECS_METADATA_DISABLED")},
    "pythonpath": os.environ["PYTHONPATH"],
})
"""


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_trigger_event_reaches_handler_with_fc_context_and_env(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    # GIVEN a running stand-in of either flavour with a local endpoint override
    fc = make_fc(
        CONTEXT_ECHO,
        flavour=flavour,
        env_overrides={"LOCAL_OSS_ENDPOINT": "http://127.0.0.1:1"},
        extra_pythonpath=[tmp_path / "src"],
    )

    # WHEN OSS reports an upload under the watched prefix
    fc.on_oss_event(oss_event("firmware/acme/cam-2.0.0.bin"))

    # THEN the handler ran once with the native payload, FC's context and the minted STS key
    assert fc.wait_idle(30)
    (record,) = fc.invocations
    assert record.status == "succeeded", (record, fc.logs())
    out = record.result_json()
    assert out["event"]["events"][0]["oss"]["object"]["key"] == "firmware/acme/cam-2.0.0.bin"
    assert out["request_id"] == record.request_id
    assert out["function"] == "create-firmware"
    assert out["region"] == "cn-shanghai"
    assert fc.role_credential is not None
    assert out["ak"] == out["env_ak"] == fc.role_credential.access_key_id
    assert out["token"] == fc.role_credential.security_token
    assert fc.credentials.get(out["ak"]) == fc.role_credential
    assert out["env"] == {
        "OTA_NOTIFY_TOPIC": "ota-outcomes",
        "FC_FUNCTION_NAME": "create-firmware",
        "FC_REGION": "cn-shanghai",
        "LOCAL_OSS_ENDPOINT": "http://127.0.0.1:1",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
    }
    assert out["pythonpath"].split(os.pathsep) == [str(fc.code_dir), str(tmp_path / "src")]


BARRIER = """
# Each invocation checks in, then waits until all expected invocations are in at once:
# this can only finish if that many instances run simultaneously.
d = os.environ["BARRIER_DIR"]
open(os.path.join(d, context.request_id), "w").close()
deadline = time.monotonic() + 20
while len(os.listdir(d)) < int(os.environ["BARRIER_N"]):
    if time.monotonic() > deadline:
        raise RuntimeError("not enough concurrent invocations")
    time.sleep(0.01)
return json.dumps({"pid": os.getpid()})
"""


def test_async_events_run_on_several_instances_at_once(
    make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    # GIVEN four instances allowed and a handler that only returns when four run together
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    fc = make_fc(
        BARRIER,
        max_instances=4,
        env_overrides={"BARRIER_DIR": str(barrier), "BARRIER_N": "4"},
        template={"retries": 0},
    )

    # WHEN four uploads arrive
    fc.on_oss_event(oss_event(*(f"firmware/f{i}.bin" for i in range(4))))

    # THEN all four succeed, each on its own instance process
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 4
    assert len({r.result_json()["pid"] for r in fc.invocations}) == 4


def test_instances_are_reused_and_capped_at_max_instances(
    make_fc: Callable[..., LocalFunctionCompute],
) -> None:
    fc = make_fc("time.sleep(0.05)\nreturn json.dumps({'pid': os.getpid()})", max_instances=2)
    fc.on_oss_event(oss_event(*(f"firmware/f{i}.bin" for i in range(6))))
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 6
    assert len(fc.instance_pids) <= 2
    assert {r.result_json()["pid"] for r in fc.invocations} <= set(fc.instance_pids)


def test_failing_invocation_is_retried_then_sent_to_on_failure_topic(
    make_fc: Callable[..., LocalFunctionCompute], sink: FakeTopicSink
) -> None:
    # GIVEN a function that always raises and MaxAsyncRetryAttempts: 2
    fc = make_fc("raise ValueError('sidecar is broken')", template={"retries": 2})

    # WHEN one upload triggers it
    fc.on_oss_event(oss_event("firmware/cam.bin"))

    # THEN it is attempted 1 + 2 times under one request id ...
    assert fc.wait_idle(30)
    assert [(r.attempt, r.status) for r in fc.invocations] == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert len({r.request_id for r in fc.invocations}) == 1
    assert fc.invocations[0].error_message == "sidecar is broken"

    # ... and then one destination record reaches the OnFailure topic
    ((topic, body, tag),) = sink.messages
    assert topic == "ota-failures"
    assert tag is None
    assert body["requestContext"]["requestId"] == fc.invocations[0].request_id
    assert body["requestContext"]["approximateInvokeCount"] == 3
    assert body["requestContext"]["functionArn"] == (
        "acs:fc:cn-shanghai:1234567890:services/ota-release.LATEST/functions/create-firmware"
    )
    assert body["responseContext"]["functionError"] == "UnhandledInvocationError"
    assert (
        json.loads(body["requestPayload"])["events"][0]["oss"]["object"]["key"]
        == "firmware/cam.bin"
    )
    response = json.loads(body["responsePayload"])
    assert (response["errorType"], response["errorMessage"]) == ("ValueError", "sidecar is broken")


def test_invocation_that_succeeds_on_retry_sends_nothing_to_on_failure(
    make_fc: Callable[..., LocalFunctionCompute], sink: FakeTopicSink, tmp_path: Path
) -> None:
    marker = tmp_path / "attempted"
    fc = make_fc(
        f"""
marker = {str(marker)!r}
if not os.path.exists(marker):
    open(marker, "w").close()
    raise RuntimeError("transient")
return "done"
""",
        flavour="fun",
    )
    fc.on_oss_event(oss_event("firmware/cam.bin"))
    assert fc.wait_idle(30)
    assert [r.status for r in fc.invocations] == ["failed", "succeeded"]
    assert fc.invocations[-1].result == b"done"
    assert sink.messages == []


def test_timed_out_instance_is_killed_and_replaced(
    make_fc: Callable[..., LocalFunctionCompute],
) -> None:
    # GIVEN Timeout: 1 and a handler that hangs on its first call only
    fc = make_fc(
        """
if json.loads(event)["events"][0]["oss"]["object"]["key"].endswith("hang.bin"):
    time.sleep(60)
return str(os.getpid())
""",
        template={"timeout": 1, "retries": 0},
        max_instances=1,
    )

    # WHEN the hanging invocation is followed by a normal one
    fc.on_oss_event(oss_event("firmware/hang.bin"))
    assert fc.wait_idle(30)
    fc.on_oss_event(oss_event("firmware/ok.bin"))
    assert fc.wait_idle(30)

    # THEN the first timed out, its process is gone, and a new instance served the second
    first, second = fc.invocations
    assert first.status == "timeout"
    assert first.error_message == "Function timed out after 1 seconds"
    assert first.instance_pid is not None and process_group_gone(first.instance_pid)
    assert second.status == "succeeded"
    assert int(second.result) != first.instance_pid
    assert len(fc.instance_pids) == 2


def test_crashing_instance_counts_as_failure_and_is_replaced(
    make_fc: Callable[..., LocalFunctionCompute], sink: FakeTopicSink
) -> None:
    fc = make_fc("os._exit(3)", template={"retries": 1}, max_instances=1)
    fc.on_oss_event(oss_event("firmware/cam.bin"))
    assert fc.wait_idle(30)
    assert [r.status for r in fc.invocations] == ["crashed", "crashed"]
    assert len(fc.instance_pids) == 2
    assert len(sink.messages) == 1


def test_initializer_runs_once_per_instance_before_invocations(
    make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    fc = make_fc(
        "return json.dumps(STATE)",
        template={"initializer": "index.initialize"},
    )
    index = fc.code_dir / "index.py"
    index.write_text(
        index.read_text()
        + "\nSTATE = {}\n\n\ndef initialize(context):\n"
        + "    STATE['initialized_by'] = context.request_id\n"
    )
    record = fc.invoke_sync(b"{}")
    assert record.status == "succeeded"
    assert record.result_json()["initialized_by"]


def test_stop_ends_every_instance_even_mid_invocation(
    make_fc: Callable[..., LocalFunctionCompute],
) -> None:
    fc = make_fc("time.sleep(60)", template={"timeout": 120})
    fc.on_oss_event(oss_event("firmware/a.bin", "firmware/b.bin"))
    # wait until both instances exist, then stop while they are busy
    for _ in range(2000):
        if len(fc.instance_pids) == 2:
            break
        fc.wait_idle(0.01)
    assert len(fc.instance_pids) == 2
    fc.stop()
    assert all(process_group_gone(pid) for pid in fc.instance_pids)


@pytest.mark.parametrize(("flavour", "entry"), [("fun", "bootstrap"), ("s", "index.py")])
def test_real_function_code_serves_the_runtime_protocol(
    flavour: str, entry: str, tmp_path: Path
) -> None:
    if not (REAL_CODE_DIR / entry).is_file():
        pytest.skip(f"functions/create_firmware/{entry} is not written yet")
    # GIVEN the project's own entry point, with settings it validates at cold start
    spec = load_function_spec(write_template(tmp_path, retries=0, timeout=30))
    fc = LocalFunctionCompute(
        spec,
        code_dir=REAL_CODE_DIR,
        flavour=flavour,  # type: ignore[arg-type]
        credentials=CredentialStore(),
        extra_pythonpath=[REPO / "src"],
        env_overrides={
            "OTA_MNS_ENDPOINT": "http://127.0.0.1:9",
            "OTA_OSS_ENDPOINT": "http://127.0.0.1:9",
            "OTA_OSS_PUBLIC_ENDPOINT": "http://127.0.0.1:9",
            "OTA_IOT_ENDPOINT": "127.0.0.1:9",
            "OTA_IOT_PROTOCOL": "http",
        },
        serve_api=False,
    ).start()
    try:
        # WHEN it is invoked with an event that holds no records
        record = fc.invoke_sync(b'{"events": []}')
        logs = fc.logs()
    finally:
        fc.stop()
    # THEN the protocol round trip completed: a result or a reported function error, not a
    # crash or a timeout
    assert record.status in ("succeeded", "failed"), (record, logs)
    if record.status == "failed":
        assert "errorMessage" in json.loads(record.result)
    assert all(process_group_gone(pid) for pid in fc.instance_pids)
