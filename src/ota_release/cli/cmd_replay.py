"""``ota-release replay``: invoke the deployed function again for objects already in OSS.

For when events were lost (the trigger was disabled, the function was broken past its
retries, the bucket was filled before the trigger existed). Each chosen object gets one
asynchronous invocation carrying a native OSS trigger event, the same shape as
``events/oss-put.json``.

What is replayed (one invocation per release, and every object still gets an answer):

* every sidecar: its invocation finds the firmware file and completes the pair (or
  reports ``waiting`` when the firmware file is missing);
* every firmware file *without* a sidecar: its invocation yields the ``waiting`` notice
  that names the missing sidecar;
* a firmware file *with* a sidecar is skipped, because the sidecar's invocation covers it
  (``--include-firmware`` replays it too, at the cost of an extra IoT lookup; the pipeline
  is idempotent, so it registers nothing twice).

``--since`` keeps releases of which either half was modified at or after the date.

The function is named either by ``--service`` and ``--function`` (FC 2.0 API, a
template.yml / Funcraft deployment, through fc2) or by ``--function`` alone (FC 3.0 API,
an s.yaml / fc3 deployment, whose functions have no service).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import click

from ota_release.cli.cloud import (
    CloudTarget,
    credential_options,
    fc2_logs_dropped,
    fc_endpoint_options,
    oss_endpoint_option,
)
from ota_release.cli.shared import shared_settings_options

REPLAY_RULE_ID = "ota-release-replay"
#: FC answers these for every invocation alike: stop instead of failing each object.
FATAL_STATUSES = (401, 403, 404)
#: The same for FC 3.0, whose gateway refuses a signature or key with 400.
FC3_FATAL_STATUSES = (400, 401, 403, 404)
FC3_API_VERSION = "2023-03-30"


@dataclass(frozen=True)
class Listed:
    """One object as ListObjectsV2 reports it."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class Decision:
    obj: Listed
    invoke: bool
    reason: str  # why it is (or is not) invoked


def plan_replay(
    objects: Iterable[Listed],
    suffixes: Sequence[str],
    *,
    since: datetime | None = None,
    include_firmware: bool = False,
) -> list[Decision]:
    """Decide, per object, whether to invoke the function for it (see the module doc)."""
    from ota_release.pairing import role_of

    groups: dict[str, list[tuple[Listed, bool]]] = defaultdict(list)
    decisions: list[Decision] = []
    for obj in objects:
        if obj.key.endswith("/"):
            decisions.append(Decision(obj, False, "folder marker"))
            continue
        role = role_of(obj.key, suffixes)
        groups[role.firmware_key].append((obj, role.is_sidecar))
    for members in groups.values():
        touched = since is None or any(o.last_modified >= since for o, _ in members)
        has_sidecar = any(is_sidecar for _, is_sidecar in members)
        has_firmware = any(not is_sidecar for _, is_sidecar in members)
        for obj, is_sidecar in members:
            if not touched:
                decisions.append(Decision(obj, False, "not modified since --since"))
            elif is_sidecar:
                reason = "sidecar" if has_firmware else "sidecar without firmware (waiting)"
                decisions.append(Decision(obj, True, reason))
            elif not has_sidecar:
                decisions.append(Decision(obj, True, "firmware without sidecar (waiting)"))
            elif include_firmware:
                decisions.append(Decision(obj, True, "firmware (--include-firmware)"))
            else:
                decisions.append(Decision(obj, False, "covered by its sidecar"))
    return sorted(decisions, key=lambda d: d.obj.key)


def replay_event(
    obj: Listed, *, bucket: str, region: str, account_id: str | None
) -> dict[str, Any]:
    """A native OSS trigger payload for ``obj``, as OSS would have sent it for a PutObject."""
    from ota_release.events import oss_trigger_record

    record = oss_trigger_record(
        bucket=bucket,
        key=obj.key,
        size=obj.size,
        etag=obj.etag,
        event_time=obj.last_modified,
        region=region,
        account_id=account_id or "",
        request_id=f"replay-{uuid.uuid4().hex}",
        rule_id=REPLAY_RULE_ID,
    )
    return {"events": [record]}


def parse_since(value: str) -> datetime:
    """``2025-11-20`` (midnight UTC) or an ISO 8601 time; naive times are UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{value!r} is not a date (2025-11-20) or ISO time (2025-11-20T08:00:00Z)"
            ) from exc
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class _Since(click.ParamType):
    name = "date"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_since(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


@click.command(
    short_help="Invoke the function again for objects already uploaded.",
    epilog="""\b
Examples:
  ota-release replay --bucket acme-firmware --prefix firmware/ --since 2025-11-20 \\
      --service ota-release --function create-firmware --account-id 1938475610293847 --dry-run
  ota-release replay --bucket acme-firmware --prefix firmware/ \\
      --function ota-release-create-firmware --account-id 1938475610293847   # s.yaml (FC 3.0)
  ota-release replay --bucket b --prefix firmware/acme/ --service ota-release \\
      --function create-firmware --fc-endpoint http://127.0.0.1:9200 --json

Exit status: 0 every chosen object was handed to FC, 1 some invocation failed (or
listing failed), 2 usage error.
""",
)
@click.option(
    "--bucket", envvar="OTA_BUCKET", required=True, help="The watched bucket [env OTA_BUCKET]."
)
@click.option(
    "--prefix",
    envvar="OTA_PREFIX",
    default="firmware/",
    show_default=True,
    help="Only keys under it [env OTA_PREFIX].",
)
@click.option(
    "--since",
    type=_Since(),
    metavar="DATE",
    help="Only releases modified at/after this date or ISO time (UTC unless stated).",
)
@click.option("--dry-run", is_flag=True, help="List what would be invoked; invoke nothing.")
@click.option(
    "--service",
    envvar="OTA_FC_SERVICE",
    help="FC 2.0 service name (template.yml deployments); leave out for an FC 3.0 function "
    "(s.yaml deployments) [env OTA_FC_SERVICE].",
)
@click.option(
    "--function",
    "function",
    envvar="OTA_FC_FUNCTION",
    help="FC function name, required unless --dry-run [env OTA_FC_FUNCTION].",
)
@click.option("--qualifier", help="Version or alias to invoke (default LATEST).")
@click.option(
    "--include-firmware",
    is_flag=True,
    help="Also invoke for firmware files that have a sidecar (normally covered by it).",
)
@shared_settings_options(product_key=False)
@click.option("--json", "as_json", is_flag=True, help="Print the plan/summary as JSON.")
@credential_options
@oss_endpoint_option
@fc_endpoint_options
def replay(
    bucket: str,
    prefix: str,
    since: datetime | None,
    dry_run: bool,
    service: str | None,
    function: str | None,
    qualifier: str | None,
    include_firmware: bool,
    sidecar_suffixes: str | None,
    as_json: bool,
    profile: str | None,
    region: str | None,
    oss_endpoint: str | None,
    fc_endpoint: str | None,
    account_id: str | None,
) -> None:
    """Invoke the function asynchronously for uploads already in the bucket."""
    if not dry_run and not function:
        raise click.UsageError(
            "--function (with --service for an FC 2.0 service, without for an FC 3.0 "
            "function) is required unless --dry-run"
        )

    from ota_release.cli.cloud import resolve_target
    from ota_release.cli.cmd_upload import normalise_prefix
    from ota_release.cli.shared import shared_settings

    suffixes = shared_settings(sidecar_suffixes=sidecar_suffixes).sidecar_suffixes

    target = resolve_target(
        profile=profile,
        region=region,
        oss_endpoint=oss_endpoint,
        fc_endpoint=fc_endpoint,
        account_id=account_id,
    )
    prefix = normalise_prefix(prefix)
    fc_endpoint_url = None if dry_run else target.fc()  # usage problems before any call
    listed = _listing(target, bucket, prefix)
    plan = plan_replay(listed, suffixes, since=since, include_firmware=include_firmware)
    chosen = [d for d in plan if d.invoke]
    outcome: Invocations = ([], [], None)
    if not dry_run and chosen:
        assert fc_endpoint_url is not None and function
        outcome = _invoke_all(
            target,
            fc_endpoint_url,
            service,
            function,
            qualifier,
            chosen,
            bucket,
            target.sdk_region(),
        )
    _conclude(bucket, prefix, dry_run, plan, outcome, as_json)


#: What invoking gave: the invocations accepted, those refused, and why it stopped early.
Invocations = tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]


def _conclude(
    bucket: str,
    prefix: str,
    dry_run: bool,
    plan: list[Decision],
    outcome: Invocations,
    as_json: bool,
) -> None:
    """Print the summary; exit non-zero when an invocation failed."""
    from ota_release.cli.common import CommandFailed, emit_json

    chosen = [d for d in plan if d.invoke]
    invoked, failed, fatal = outcome
    summary = {
        "bucket": bucket,
        "prefix": prefix,
        "dry_run": dry_run,
        "planned": [{"key": d.obj.key, "reason": d.reason} for d in chosen],
        "invoked": invoked,
        "failed": failed,
        "skipped": [{"key": d.obj.key, "reason": d.reason} for d in plan if not d.invoke],
    }
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary, chosen, dry_run)
    if fatal:
        raise CommandFailed(fatal)
    if summary["failed"]:
        raise click.exceptions.Exit(1)


def _listing(target: CloudTarget, bucket: str, prefix: str) -> list[Listed]:
    """Every object under ``prefix`` (ListObjectsV2, all pages)."""
    from ota_release.cli.cloud import failure
    from ota_release.cli.cmd_upload import oss_bucket

    oss = oss_bucket(target, bucket, enable_crc=False)
    try:
        return list(_list_objects(oss, prefix))
    except Exception as exc:
        from ota_release.adapters.oss import classify_oss_error

        raise failure(
            classify_oss_error(exc, "ListObjectsV2"), target, f"listing {bucket}", target.oss()
        ) from exc


def _list_objects(oss: Any, prefix: str) -> Iterable[Listed]:
    import oss2

    for info in oss2.ObjectIteratorV2(oss, prefix=prefix):
        if info.is_prefix():
            continue
        yield Listed(
            key=info.key,
            size=int(info.size),
            etag=str(info.etag or "").strip('"'),
            last_modified=datetime.fromtimestamp(int(info.last_modified), timezone.utc),
        )


class InvokeRefused(Exception):
    """FC answered an invocation with an error; ``fatal`` when every call would get it."""

    def __init__(self, text: str, *, fatal: bool) -> None:
        super().__init__(text)
        self.text = text
        self.fatal = fatal


class Fc2Invoker:
    """Asynchronous InvokeFunction through the FC 2.0 API (a service and a function)."""

    def __init__(
        self,
        target: CloudTarget,
        endpoint: str,
        service: str,
        function: str,
        qualifier: str | None,
    ) -> None:
        self.client = target.fc_client(endpoint)
        self.endpoint = endpoint
        self.account_id = target.account_id
        self.qualifier = qualifier
        self.service = service
        self.function = function
        self.name = f"{service}/{function}"

    def invoke(self, payload: bytes) -> str | None:
        """Hand one event to FC; the request id it answers with."""
        from fc2.fc_exceptions import FcError

        try:
            response = self.client.invoke_function(
                self.service,
                self.function,
                payload=payload,
                headers={"x-fc-invocation-type": "Async"},
                qualifier=self.qualifier,
            )
        except FcError as exc:
            raise InvokeRefused(
                _fc_error_text(exc), fatal=exc.status_code in FATAL_STATUSES
            ) from exc
        headers = response.headers
        return headers.get("X-Fc-Request-Id") or headers.get("x-fc-request-id")


class Fc3Invoker:
    """Asynchronous InvokeFunction through the FC 3.0 API (functions without a service).

    The request is the one alibabacloud-fc20230330's ``invoke_function`` sends:
    ``POST /2023-03-30/functions/{name}/invocations``, the qualifier as a query parameter,
    the event as an octet-stream body, ``x-fc-invocation-type: Async``.
    """

    def __init__(
        self, target: CloudTarget, endpoint: str, function: str, qualifier: str | None
    ) -> None:
        self.client = target.fc3_client(endpoint)
        self.endpoint = endpoint
        self.account_id = target.account_id
        self.qualifier = qualifier
        self.function = function
        self.name = function

    def invoke(self, payload: bytes) -> str | None:
        import io
        from urllib.parse import quote

        from alibabacloud_tea_openapi import models as open_api_models
        from alibabacloud_tea_util import models as util_models

        params = open_api_models.Params(
            action="InvokeFunction",
            version=FC3_API_VERSION,
            protocol=(urlsplit(self.endpoint).scheme or "https").upper(),
            pathname=f"/{FC3_API_VERSION}/functions/{quote(self.function, safe='')}/invocations",
            method="POST",
            auth_type="AK",
            style="ROA",
            req_body_type="json",
            body_type="binary",
        )
        request = open_api_models.OpenApiRequest(
            headers={"x-fc-invocation-type": "Async"},
            query={"qualifier": self.qualifier} if self.qualifier else {},
            stream=io.BytesIO(payload),
        )
        runtime = util_models.RuntimeOptions(autoretry=False)
        try:
            answer = self.client.call_api(params, request, runtime)
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
            code = getattr(exc, "code", None)
            if not isinstance(status, int) or not code:
                raise  # no answer: the caller says why
            message = str(getattr(exc, "message", "") or exc)
            raise InvokeRefused(
                f"HTTP {status} {code}: {message}", fatal=status in FC3_FATAL_STATUSES
            ) from exc
        headers = {str(k).lower(): str(v) for k, v in (answer.get("headers") or {}).items()}
        return headers.get("x-fc-request-id")


def _invoke_all(
    target: CloudTarget,
    endpoint: str,
    service: str | None,
    function: str,
    qualifier: str | None,
    chosen: Sequence[Decision],
    bucket: str,
    region: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """Invoke once per decision; stop early when FC refuses the caller or the function.

    With a service, through the FC 2.0 API; without, through the FC 3.0 API.
    """
    from ota_release.cli.cloud import network_problem
    from ota_release.cli.common import count_progress

    invoker: Fc2Invoker | Fc3Invoker = (
        Fc2Invoker(target, endpoint, service, function, qualifier)
        if service
        else Fc3Invoker(target, endpoint, function, qualifier)
    )

    invoked: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    fatal: str | None = None
    with fc2_logs_dropped(), count_progress("invoke", len(chosen)) as progress:
        for decision in chosen:
            payload = json.dumps(
                replay_event(
                    decision.obj, bucket=bucket, region=region, account_id=invoker.account_id
                )
            ).encode("utf-8")
            try:
                request_id = invoker.invoke(payload)
            except InvokeRefused as exc:
                failed.append({"key": decision.obj.key, "error": exc.text})
                if exc.fatal:
                    fatal = (
                        f"Function Compute refused the invocation of {invoker.name}: "
                        f"{exc.text}; stopped after {len(invoked) + len(failed)} of {len(chosen)}"
                    )
                    break
            except Exception as exc:  # connection refused, timeouts: the same for every call
                reason = network_problem(exc) or f"{type(exc).__name__}: {exc}"
                failed.append({"key": decision.obj.key, "error": reason})
                fatal = (
                    f"invoking {invoker.name} failed: no answer at {invoker.endpoint}: {reason}; "
                    "check the endpoint and the network"
                )
                break
            else:
                invoked.append({"key": decision.obj.key, "request_id": request_id})
            progress.advance()
    return invoked, failed, fatal


def _fc_error_text(exc: Any) -> str:
    message = exc.message
    try:
        body = json.loads(message) if isinstance(message, (str, bytes)) else message
    except ValueError:
        body = message
    if isinstance(body, dict):
        code = body.get("ErrorCode") or exc.err_code or ""
        text = body.get("ErrorMessage") or json.dumps(body)
        return f"HTTP {exc.status_code} {code}: {text}".strip()
    return f"HTTP {exc.status_code}: {message}"


def _print_summary(summary: dict[str, Any], chosen: Sequence[Decision], dry_run: bool) -> None:
    from rich.table import Table

    from ota_release.cli.common import escape, stdout_console

    console = stdout_console()
    if dry_run:
        table = Table("key", "size", "modified", "why", title="would invoke", title_justify="left")
        for d in chosen:
            table.add_row(
                escape(d.obj.key),
                str(d.obj.size),
                d.obj.last_modified.isoformat(timespec="seconds"),
                escape(d.reason),
            )
        if chosen:
            console.print(table)
        console.print(
            f"dry run: would invoke {len(chosen)}, skip {len(summary['skipped'])} "
            f"(bucket {escape(summary['bucket'])}, prefix {escape(summary['prefix']) or '(root)'})"
        )
        return
    for item in summary["failed"]:
        console.print(f"[red]failed[/red] {escape(item['key'])}: {escape(item['error'])}")
    console.print(
        f"invoked {len(summary['invoked'])}, failed {len(summary['failed'])}, "
        f"skipped {len(summary['skipped'])}"
    )
