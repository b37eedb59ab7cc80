"""The local Function Compute: template reading, trigger filter, async runs, retries, instances.

Every stand-in is built through the ``make_fc`` fixture, whose teardown stops it and checks
that no instance process (or anything in its process group) outlived the test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloud import LocalCloud
from localcloud.credentials import CredentialStore
from localcloud.fc import InvocationRecord, LocalFunctionCompute
from localcloud.fc.template import (
    OssTriggerSpec,
    TemplateError,
    event_name_matches,
    load_function_spec,
    mns_topic_from_arn,
)
from localcloud.fc.testkit import (
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
        bootstrap: str = "tiny",
        **kwargs: Any,
    ) -> LocalFunctionCompute:
        code_dir = tmp_path / "functions" / "create_firmware"
        write_handler(code_dir, handler_body)
        if flavour == "fun" and bootstrap == "project":
            # The tiny bootstrap serves one request at a time; the project's own custom
            # runtime serves them on threads, as instance concurrency needs.
            for name in ("bootstrap", "runtime_server.py"):
                shutil.copy2(REAL_CODE_DIR / name, code_dir / name)
        elif flavour == "fun":
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


@pytest.mark.parametrize("retries", [0, 8])
def test_retry_setting_accepts_fcs_range_of_zero_to_eight(tmp_path: Path, retries: int) -> None:
    spec = load_function_spec(write_template(tmp_path, retries=retries))
    assert spec.max_async_retry_attempts == retries


@pytest.mark.parametrize("retries", [-1, 9])
def test_retry_setting_outside_zero_to_eight_is_refused_naming_field_rule_and_value(
    tmp_path: Path, retries: int
) -> None:
    with pytest.raises(
        TemplateError, match=rf"MaxAsyncRetryAttempts: must be between 0 and 8.*got {retries}"
    ):
        load_function_spec(write_template(tmp_path, retries=retries))


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


RAISE_OR_DESCRIBE_CONTEXT = """
if event == b"boom":
    raise ValueError("boom from the handler")
cls = type(context)
return json.dumps({"context": cls.__qualname__, "runtime": sys.modules[cls.__module__].__file__})
"""


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_both_flavours_run_the_shipped_runtime_and_report_failure_as_fc_documents(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute]
) -> None:
    # GIVEN a function on the built-in runtime ("s") or on the project's custom runtime
    fc = make_fc(RAISE_OR_DESCRIBE_CONTEXT, flavour=flavour, bootstrap="project")

    # WHEN it is invoked once successfully and once with a handler that raises
    ok = fc.invoke_sync(b"{}")
    failed = fc.invoke_sync(b"boom")

    # THEN the handler's context is runtime_server.py's FCContext: one runtime for both
    assert ok.status == "succeeded", (ok, fc.logs())
    described = ok.result_json()
    assert described["context"] == "FCContext"
    assert Path(described["runtime"]).name == "runtime_server.py"
    # AND the failure carries the runtime's error JSON, its stack as frames
    assert failed.status == "failed", (failed, fc.logs())
    assert failed.error_message == "boom from the handler"
    error = failed.result_json()
    assert error["errorType"] == "ValueError"
    # (as FC's Python "Error handling" page shows: the function's own frames only)
    ((file, line, function, source),) = error["stackTrace"]
    assert file == f'File "{fc.code_dir / "index.py"}"'
    assert (line[: len("line ")], function) == ("line ", "in handler"), error
    assert source == 'raise ValueError("boom from the handler")'
    # AND the instance itself answers a failed invocation with HTTP 404 and x-fc-status 404
    (instance,) = fc.pool.instances()
    status, headers, _ = instance.post(
        "/invoke", b"boom", {"x-fc-request-id": "raw", "x-fc-control-path": "/invoke"}, 30.0
    )
    assert (status, headers["x-fc-status"]) == (404, "404")


INTERPRETER_ECHO = """
import platform
return json.dumps({"version": platform.python_version(), "prefix": sys.prefix})
"""


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_instances_run_the_function_on_the_interpreter_the_stand_in_is_given(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute]
) -> None:
    # GIVEN the interpreter this run gives the function: $OTA_FUNCTION_PYTHON (make test's
    # CPython 3.10 pass) or, without it, the one running the tests
    python = os.environ.get("OTA_FUNCTION_PYTHON") or sys.executable
    probe = subprocess.run(
        [python, "-c", "import platform, sys; print(platform.python_version(), sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    version, prefix = probe.stdout.split()
    fc = make_fc(INTERPRETER_ECHO, flavour=flavour, bootstrap="project")

    # WHEN an event runs the function
    fc.on_oss_event(oss_event("firmware/acme/cam.bin"))

    # THEN the handler ran on that interpreter, and the instance log names it
    assert fc.wait_idle(30)
    (record,) = fc.invocations
    assert record.status == "succeeded", (record, fc.logs())
    assert record.result_json() == {"version": version, "prefix": prefix}
    assert f" {version} (" in fc.logs()


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
    queued_at = time.time()
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

    # ... and then one destination record reaches the OnFailure topic, shaped as FC's
    # "result callback" document shows it (epoch-millisecond timestamp, FC 3.0 ARN for
    # the built-in runtime flavour)
    ((topic, body, tag),) = sink.messages
    assert topic == "ota-failures"
    assert tag is None
    assert set(body) == {
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert isinstance(body["timestamp"], int)
    # (when FC took the request: after it was sent, before its first attempt started)
    assert int(queued_at * 1000) <= body["timestamp"] <= int(fc.invocations[0].started_at * 1000)
    assert set(body["requestContext"]) == {
        "requestId",
        "functionArn",
        "condition",
        "approximateInvokeCount",
    }
    assert body["requestContext"]["requestId"] == fc.invocations[0].request_id
    assert body["requestContext"]["approximateInvokeCount"] == 3
    assert body["requestContext"]["functionArn"] == (
        "acs:fc:cn-shanghai:1234567890:functions/create-firmware"
    )
    assert body["responseContext"]["functionError"] == "UnhandledInvocationError"
    assert (
        json.loads(body["requestPayload"])["events"][0]["oss"]["object"]["key"]
        == "firmware/cam.bin"
    )
    response = json.loads(body["responsePayload"])
    assert (response["errorType"], response["errorMessage"]) == ("ValueError", "sidecar is broken")


def test_destination_function_arn_has_the_fc2_form_for_funcraft_and_fc3_form_for_s(
    tmp_path: Path,
) -> None:
    # GIVEN the same function run as FC 2.0 (template.yml, "fun") and FC 3.0 ("s")
    spec = load_function_spec(write_template(tmp_path))

    def arn(flavour: str) -> str:
        fc = LocalFunctionCompute(
            spec,
            code_dir=tmp_path,
            flavour=flavour,  # type: ignore[arg-type]
            credentials=CredentialStore(),
            serve_api=False,
            region="cn-hangzhou",
            account_id="555",
        )
        return fc.function_arn()

    # THEN each names the function the way FC's result-callback document does
    assert arn("fun") == "acs:fc:::services/ota-release/functions/create-firmware"
    assert arn("s") == "acs:fc:cn-hangzhou:555:functions/create-firmware"


def test_successful_invocation_sends_its_record_to_on_success(
    make_fc: Callable[..., LocalFunctionCompute], sink: FakeTopicSink, tmp_path: Path
) -> None:
    # GIVEN a template whose destination is OnSuccess and a handler that works
    spec = load_function_spec(write_template(tmp_path, destination="OnSuccess"))
    assert spec.on_failure is None
    assert spec.on_success == "acs:mns:cn-shanghai:1234567890:/topics/ota-failures/messages"
    fc = make_fc("return 'done'", template={"destination": "OnSuccess"})

    # WHEN one upload triggers it
    fc.on_oss_event(oss_event("firmware/ok.bin"))

    # THEN one record, with the function's result, reaches the OnSuccess topic
    assert fc.wait_idle(30)
    ((topic, body, _),) = sink.messages
    assert topic == "ota-failures"
    assert body["requestContext"]["approximateInvokeCount"] == 1
    assert body["responsePayload"] == "done"
    assert body["responseContext"]["functionError"] == ""
    assert isinstance(body["timestamp"], int)


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
        bound = {listen_address(inst.port) for inst in fc.pool.instances()}
    finally:
        fc.stop()
    # THEN the protocol round trip completed: a result or a reported function error, not a
    # crash or a timeout
    assert record.status in ("succeeded", "failed"), (record, logs)
    # AND the runtime listened on loopback only, never on every interface
    assert bound == {"127.0.0.1"}
    if record.status == "failed":
        assert "errorMessage" in json.loads(record.result)
    assert all(process_group_gone(pid) for pid in fc.instance_pids)


def listen_address(port: int) -> str | None:
    """The IPv4 address a listening TCP socket on ``port`` is bound to (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    return None


# --------------------------------------------------------------------------- instance concurrency


SPAN = """
# Reports where and when it ran. Given a barrier, it first waits until that many
# invocations have checked in there, which can only happen if they run at the same time.
started = time.time()
ask = json.loads(event)
if "barrier" in ask:
    d, n = ask["barrier"]
    open(os.path.join(d, context.request_id), "w").close()
    deadline = time.monotonic() + 20
    while len(os.listdir(d)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("not enough concurrent invocations")
        time.sleep(0.01)
time.sleep(ask.get("hold_s", 0))
return json.dumps({"pid": os.getpid(), "start": started, "end": time.time()})
"""


def _span_calls(
    fc: LocalFunctionCompute, count: int, *, barrier: Path | None = None, hold_s: float = 0
) -> None:
    """Queue ``count`` async SPAN invocations, all meeting at ``barrier`` if given."""
    ask: dict[str, Any] = {"hold_s": hold_s}
    if barrier is not None:
        barrier.mkdir()
        ask["barrier"] = [str(barrier), count]
    for _ in range(count):
        fc.invoke_async(json.dumps(ask).encode())


def _spans_by_pid(records: list[InvocationRecord]) -> dict[int, list[tuple[float, float]]]:
    """The handler-reported (start, end) of each invocation, grouped by instance pid."""
    spans: dict[int, list[tuple[float, float]]] = {}
    for record in records:
        out = record.result_json()
        spans.setdefault(out["pid"], []).append((out["start"], out["end"]))
    return {pid: sorted(found) for pid, found in spans.items()}


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_one_instance_serves_up_to_instance_concurrency_invocations_at_once(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    # GIVEN one instance allowed and InstanceConcurrency 4
    fc = make_fc(
        SPAN,
        flavour=flavour,
        bootstrap="project",
        max_instances=1,
        instance_concurrency=4,
        template={"retries": 0},
    )

    # WHEN four invocations arrive at once, each of which gets past its barrier only when
    # all four run together (and then holds a little longer)
    _span_calls(fc, 4, barrier=tmp_path / "barrier", hold_s=0.2)

    # THEN all four ran on the same instance process, overlapping in time
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 4, fc.logs()
    spans = _spans_by_pid(fc.invocations)
    assert list(spans) == fc.instance_pids
    ((pid, runs),) = spans.items()
    assert max(start for start, _ in runs) < min(end for _, end in runs)
    # ... and every slot it took was given back
    assert fc.instance_load() == {pid: 0}


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_default_instance_concurrency_never_overlaps_invocations_on_one_instance(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute]
) -> None:
    # GIVEN the template's default concurrency (1), two instances, and a runtime that could
    # serve requests in parallel if it were sent them
    fc = make_fc(
        SPAN, flavour=flavour, bootstrap="project", max_instances=2, template={"retries": 0}
    )
    assert fc.instance_concurrency == 1

    # WHEN more invocations arrive at once than there are instances
    _span_calls(fc, 5, hold_s=0.1)

    # THEN on each instance every invocation started after the previous one had ended
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 5, fc.logs()
    for runs in _spans_by_pid(fc.invocations).values():
        for (_, previous_end), (start, _) in pairwise(runs):
            assert start >= previous_end


@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_new_instance_starts_only_when_existing_ones_are_full(
    flavour: str, make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    # GIVEN InstanceConcurrency 2 and room for three instances
    fc = make_fc(
        SPAN,
        flavour=flavour,
        bootstrap="project",
        max_instances=3,
        instance_concurrency=2,
        template={"retries": 0},
    )

    # WHEN four invocations arrive at once, which only return once all four run together
    _span_calls(fc, 4, barrier=tmp_path / "barrier")

    # THEN two full instances served them: the third allowed one was never started
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 4, fc.logs()
    assert len(fc.instance_pids) == 2
    assert sorted(len(runs) for runs in _spans_by_pid(fc.invocations).values()) == [2, 2]
    assert fc.instance_load() == dict.fromkeys(fc.instance_pids, 0)


def test_invocations_pack_onto_the_busiest_instance_with_a_free_slot(
    make_fc: Callable[..., LocalFunctionCompute], tmp_path: Path
) -> None:
    # GIVEN two idle instances of concurrency 2 (warmed up by four overlapping calls)
    fc = make_fc(SPAN, max_instances=2, instance_concurrency=2, template={"retries": 0})
    _span_calls(fc, 4, barrier=tmp_path / "warm-up")
    assert fc.wait_idle(40)
    assert len(fc.instance_pids) == 2
    fc.invocations.clear()

    # WHEN two invocations then run at the same time
    _span_calls(fc, 2, barrier=tmp_path / "pair")

    # THEN both went to one instance, as FC fills an instance before using another
    assert fc.wait_idle(40)
    assert [r.status for r in fc.invocations] == ["succeeded"] * 2, fc.logs()
    assert len(_spans_by_pid(fc.invocations)) == 1


FAULT_ON_SHARED_INSTANCE = """
state = os.environ["STATE_DIR"]
if os.path.exists(os.path.join(state, "faulted")):
    return json.dumps({"pid": os.getpid()})
# First round: check in, then wait until all N invocations run together on this instance.
open(os.path.join(state, "in-" + context.request_id), "w").close()
deadline = time.monotonic() + 20
while len([n for n in os.listdir(state) if n.startswith("in-")]) < int(os.environ["N"]):
    if time.monotonic() > deadline:
        raise RuntimeError("invocations did not overlap")
    time.sleep(0.01)
if json.loads(event)["events"][0]["oss"]["object"]["key"].endswith("fault.bin"):
    open(os.path.join(state, "faulted"), "w").close()
    if os.environ["FAULT"] == "crash":
        os._exit(3)
# Stay busy: these end only when the instance is stopped under them (or time out).
time.sleep(60)
"""


@pytest.mark.parametrize("fault", ["crash", "timeout"])
@pytest.mark.parametrize("flavour", ["s", "fun"])
def test_fault_on_a_shared_instance_retries_the_invocations_it_was_serving(
    flavour: str,
    fault: str,
    make_fc: Callable[..., LocalFunctionCompute],
    sink: FakeTopicSink,
    tmp_path: Path,
) -> None:
    # GIVEN one instance serving three invocations at once, one of which crashes the
    # instance or hangs past the function Timeout once they all run
    state = tmp_path / "state"
    state.mkdir()
    fc = make_fc(
        FAULT_ON_SHARED_INSTANCE,
        flavour=flavour,
        bootstrap="project",
        max_instances=1,
        instance_concurrency=3,
        env_overrides={"STATE_DIR": str(state), "N": "3", "FAULT": fault},
        template={"retries": 2, "timeout": 2 if fault == "timeout" else 30},
    )

    # WHEN the three uploads arrive together
    fc.on_oss_event(oss_event("firmware/fault.bin", "firmware/a.bin", "firmware/b.bin"))

    # THEN all three first attempts failed with that shared instance ...
    assert fc.wait_idle(40)
    attempts: dict[str, list[InvocationRecord]] = {}
    for record in fc.invocations:
        attempts.setdefault(record.request_id, []).append(record)
    assert len(attempts) == 3
    firsts = [runs[0] for runs in attempts.values()]
    (shared_pid,) = {r.instance_pid for r in firsts}
    statuses = {r.status for r in firsts}
    if fault == "crash":
        assert statuses == {"crashed"}, fc.logs()
    else:
        # The first to fail can only have timed out; the others timed out too or lost
        # their connection when the instance was killed.
        assert "timeout" in statuses and statuses <= {"timeout", "crashed"}, fc.logs()

    # ... the instance was stopped, and each invocation succeeded on its retry on a new one
    assert shared_pid is not None and process_group_gone(shared_pid)
    assert [[r.status for r in runs[1:]] for runs in attempts.values()] == [["succeeded"]] * 3
    (new_pid,) = {r.result_json()["pid"] for runs in attempts.values() for r in runs[1:]}
    assert new_pid != shared_pid
    assert fc.instance_pids == [shared_pid, new_pid]
    assert sink.messages == []

    # ... and the pool keeps working, with no slot left taken
    assert fc.instance_load() == {new_pid: 0}
    record = fc.invoke_sync(json.dumps(oss_event("firmware/later.bin")).encode())
    assert record.status == "succeeded"
    assert record.result_json()["pid"] == new_pid
    assert fc.instance_load() == {new_pid: 0}


def test_instance_concurrency_comes_from_the_template_unless_overridden(tmp_path: Path) -> None:
    spec = replace(load_function_spec(write_template(tmp_path)), instance_concurrency=3)

    def build(**kwargs: Any) -> LocalFunctionCompute:
        return LocalFunctionCompute(
            spec, code_dir=tmp_path, credentials=CredentialStore(), log_dir=tmp_path, **kwargs
        )

    assert build().instance_concurrency == 3
    assert build(instance_concurrency=5).instance_concurrency == 5
    with pytest.raises(ValueError, match="instance_concurrency must be at least 1, not 0"):
        build(instance_concurrency=0)
    spec = replace(spec, instance_concurrency=0)
    with pytest.raises(ValueError, match="InstanceConcurrency must be at least 1"):
        build()


def test_local_cloud_passes_instance_concurrency_to_its_function() -> None:
    with LocalCloud(instance_concurrency=3) as cloud:
        assert cloud.fc is not None
        assert cloud.fc.instance_concurrency == 3
    with LocalCloud() as cloud:
        assert cloud.fc is not None
        assert cloud.fc.instance_concurrency == cloud.spec.instance_concurrency
