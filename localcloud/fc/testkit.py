"""Builders for exercising the local FC without the real function: templates, code, events.

Used by the local FC's own tests and handy for any test that needs a throw-away function
(write a template and an ``index.py`` to a temporary directory, run them, check records).
"""

from __future__ import annotations

import os
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ota_release.events import oss_trigger_record

SERVICE = "ota-release"
FUNCTION = "create-firmware"


def write_template(
    directory: Path,
    *,
    runtime: str = "custom",
    timeout: int = 10,
    retries: int | None = 3,
    prefix: str = "firmware/",
    suffix: str = "",
    events: tuple[str, ...] = ("oss:ObjectCreated:PutObject", "oss:ObjectCreated:PostObject"),
    initializer: str | None = None,
    destination: str = "OnFailure",
) -> Path:
    """A Funcraft template for one function with an OSS trigger and a destination topic.

    ``destination`` is which AsyncConfiguration destination names the topic
    (``OnFailure`` or ``OnSuccess``).

    Intrinsics are written in their long form (``{Ref: X}``, ``Fn::Sub:``): Funcraft 3.6
    reads template.yml with js-yaml's safeLoad, which rejects every ``!Tag``.
    """
    async_lines = ["        AsyncConfiguration:"]
    if retries is not None:
        async_lines.append(f"          MaxAsyncRetryAttempts: {retries}")
    async_lines += [
        "          Destination:",
        f"            {destination}:",
        "              Fn::Sub: 'acs:mns:${ALIYUN::Region}:${ALIYUN::AccountId}"
        ":/topics/${FailureTopic}/messages'",
    ]
    init_lines = (
        [f"        Initializer: {initializer}", "        InitializationTimeout: 5"]
        if initializer
        else []
    )
    event_list = ", ".join(f"'{e}'" for e in events)
    text = "\n".join(
        [
            "ROSTemplateFormatVersion: '2015-09-01'",
            "Transform: 'Aliyun::Serverless-2018-04-03'",
            "Parameters:",
            "  BucketName: {Type: String, Default: firmware-bucket}",
            f"  WatchedPrefix: {{Type: String, Default: '{prefix}'}}",
            "  FailureTopic: {Type: String, Default: ota-failures}",
            "Resources:",
            f"  {SERVICE}:",
            "    Type: 'Aliyun::Serverless::Service'",
            "    Properties:",
            "      Role:",
            "        Fn::Sub: 'acs:ram::${ALIYUN::AccountId}:role/ota-release'",
            "      LogConfig: {Project: ota-logs, Logstore: fc}",
            f"    {FUNCTION}:",
            "      Type: 'Aliyun::Serverless::Function'",
            "      Properties:",
            "        Handler: index.handler",
            f"        Runtime: {runtime}",
            "        CodeUri: ./functions/create_firmware",
            "        MemorySize: 256",
            f"        Timeout: {timeout}",
            *init_lines,
            "        EnvironmentVariables:",
            "          OTA_NOTIFY_TOPIC: ota-outcomes",
            "          OTA_REGION: {Ref: 'ALIYUN::Region'}",
            "          WATCHED_BUCKET: {Ref: BucketName}",
            *async_lines,
            "      Events:",
            "        upload:",
            "          Type: OSS",
            "          Properties:",
            "            BucketName: {Ref: BucketName}",
            f"            Events: [{event_list}]",
            "            Filter:",
            "              Key:",
            "                Prefix: {Ref: WatchedPrefix}",
            f"                Suffix: '{suffix}'",
            "",
        ]
    )
    path = directory / "template.yml"
    path.write_text(text, encoding="utf-8")
    return path


def write_handler(code_dir: Path, body: str) -> Path:
    """Write ``index.py`` whose ``handler(event, context)`` has the given body."""
    code_dir.mkdir(parents=True, exist_ok=True)
    source = (
        "import json, os, sys, time\n\n\ndef handler(event, context):\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n"
    )
    path = code_dir / "index.py"
    path.write_text(source, encoding="utf-8")
    return path


_TINY_SERVER = '''\
"""A minimal custom runtime: serves FC's /invoke protocol and calls index.handler."""
import json, os, sys, traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        h = self.headers
        ctx = SimpleNamespace(
            request_id=h.get("x-fc-request-id"),
            credentials=SimpleNamespace(access_key_id=h.get("x-fc-access-key-id"),
                                        access_key_secret=h.get("x-fc-access-key-secret"),
                                        security_token=h.get("x-fc-security-token")),
            function=SimpleNamespace(name=h.get("x-fc-function-name")),
            region=h.get("x-fc-region"), account_id=h.get("x-fc-account-id"))
        try:
            import index
            out = index.handler(body, ctx)
            data, status = (out if isinstance(out, bytes) else str(out).encode()), 200
        except Exception as exc:
            data = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__,
                               "stackTrace": traceback.format_exc().splitlines()}).encode()
            status = 404  # this runtime reports errors by status code, not x-fc-status
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


host = os.environ.get("FC_SERVER_HOST", "0.0.0.0")
HTTPServer((host, int(os.environ.get("FC_SERVER_PORT", "9000"))), Handler).serve_forever()
'''


def write_tiny_bootstrap(code_dir: Path) -> Path:
    """A stand-in custom-runtime ``bootstrap`` (until the project's real one exists)."""
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / "tiny_runtime.py").write_text(_TINY_SERVER, encoding="utf-8")
    bootstrap = code_dir / "bootstrap"
    bootstrap.write_text(
        '#!/bin/sh\nexec "${OTA_RUNTIME_PYTHON:-python3}" "$(dirname "$0")/tiny_runtime.py"\n',
        encoding="utf-8",
    )
    bootstrap.chmod(0o755)
    return bootstrap


def oss_record(
    key: str,
    *,
    bucket: str = "firmware-bucket",
    event_name: str = "ObjectCreated:PutObject",
    region: str = "cn-shanghai",
    size: int = 4,
) -> dict[str, Any]:
    """One native OSS trigger record, written by the function's own builder."""
    return oss_trigger_record(
        bucket=bucket,
        key=key,
        size=size,
        etag="0" * 32,
        event_time=datetime(2024, 5, 1, tzinfo=timezone.utc),
        region=region,
        account_id="1234567890",
        request_id="local-request",
        rule_id="local",
        event_name=event_name,
    )


def oss_event(*keys: str, **kwargs: Any) -> dict[str, Any]:
    """The native OSS trigger payload ``{"events": [...]}`` for the given keys."""
    return {"events": [oss_record(k, **kwargs) for k in keys]}


def process_group_gone(pid: int) -> bool:
    """Whether no process of the group led by ``pid`` is left (signal 0 only probes)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
