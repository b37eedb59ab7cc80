"""``ota-release capacity``: cap the function's instances and check its IoT pacing against it.

The function paces its IoT Platform calls per instance (``OTA_IOT_QPS``), while IoT
Platform limits calls per account (10 per second per action by default). The pacing is
only right when at most ``account QPS / OTA_IOT_QPS`` instances run at once. Funcraft's
template.yml cannot cap instances; the FC 2.0 API can (PutOnDemandConfig
``maximumInstanceCount``), so this command sets or shows that cap and checks the
function's ``OTA_IOT_QPS`` against it:

* ``OTA_IOT_QPS x cap > account QPS``: bursts would be throttled. Exit 1 (so a deploy
  script notices) unless ``--no-check``.
* ``OTA_IOT_QPS x cap < account QPS``: part of the account's rate is never used (a note).
* no cap at all: FC may start many instances (a warning; exit 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import click

from ota_release.cli.cloud import credential_options, fc2_logs_dropped, fc_endpoint_options

#: IoT Platform's default per-account limit for one API action, in calls per second.
#: Purchased (Enterprise) IoT instances may have other limits: see ``--account-qps``.
ACCOUNT_IOT_QPS = 10.0
#: The function's own default when its environment has no OTA_IOT_QPS (settings.py).
DEFAULT_FUNCTION_QPS = 10.0
QPS_VARIABLE = "OTA_IOT_QPS"
#: GetOnDemandConfig answers 404 (code OnDemandConfigNotFound, as FC's SDKs expect) for a
#: function without a cap; these 404 codes mean the function itself is missing instead.
MISSING_FUNCTION_CODES = ("ServiceNotFound", "FunctionNotFound", "AliasNotFound")


@dataclass(frozen=True)
class FunctionPacing:
    """What GetFunction says about how fast one instance calls IoT Platform."""

    qps: float
    qps_set: bool  # False when OTA_IOT_QPS is absent and the function's default applies
    instance_concurrency: int | None


def _g(value: float) -> str:
    return f"{value:g}"


def _same_rate(a: float, b: float) -> bool:
    """Equal up to the rounding of a ``%g``-printed OTA_IOT_QPS (10/3 -> 3.33333)."""
    return math.isclose(a, b, rel_tol=1e-4)


def read_pacing(function_info: dict[str, Any]) -> FunctionPacing:
    """The function's OTA_IOT_QPS (default 10) and InstanceConcurrency from GetFunction."""
    from ota_release.cli.common import CommandFailed

    env = function_info.get("environmentVariables") or {}
    text = str(env.get(QPS_VARIABLE) or "").strip()
    reported = function_info.get("instanceConcurrency")
    concurrency = reported if isinstance(reported, int) and not isinstance(reported, bool) else None
    if not text:
        return FunctionPacing(DEFAULT_FUNCTION_QPS, False, concurrency)
    try:
        qps = float(text)
    except ValueError:
        qps = math.nan
    if not 0 < qps < math.inf:
        raise CommandFailed(
            f"the function's {QPS_VARIABLE}: must be a positive number of calls per second, "
            f"got {text!r} (the function refuses to start with it)"
        )
    return FunctionPacing(qps, True, concurrency)


def pacing_problem(cap: int, pacing: FunctionPacing, account_qps: float) -> str | None:
    """Why ``cap`` instances pacing at OTA_IOT_QPS would exceed the account, or None.

    Equal within rounding counts as consistent: ``10/3`` printed as ``3.33333`` is the
    advice this command itself gives.
    """
    total = pacing.qps * cap
    if total <= account_qps or _same_rate(total, account_qps):
        return None
    fixes = [f"set {QPS_VARIABLE}={_g(account_qps / cap)}"]
    fitting = math.floor(account_qps / pacing.qps + 1e-9)
    if fitting >= 1:
        fixes.append(f"--max-instances {fitting}")
    return (
        f"{QPS_VARIABLE}={_g(pacing.qps)} on each of up to {cap} instances allows "
        f"{_g(total)} IoT calls per second, more than the account's {_g(account_qps)}: "
        f"bursts would be throttled; {' or '.join(fixes)}"
    )


@click.command(
    short_help="Cap the function's instances; check OTA_IOT_QPS against the cap.",
    epilog="""\b
Examples:
  ota-release capacity --service ota-release --function create-firmware \\
      --account-id 1938475610293847 --max-instances 1
  ota-release capacity --service ota-release --function create-firmware \\
      --fc-endpoint http://127.0.0.1:9200

Exit status: 0 done and OTA_IOT_QPS x cap fits --account-qps, 1 a call failed or
OTA_IOT_QPS x cap exceeds --account-qps (unless --no-check), 2 usage error.
""",
)
@click.option(
    "--service",
    envvar="OTA_FC_SERVICE",
    required=True,
    help="FC service name [env OTA_FC_SERVICE].",
)
@click.option(
    "--function",
    "function",
    envvar="OTA_FC_FUNCTION",
    required=True,
    help="FC function name [env OTA_FC_FUNCTION].",
)
@click.option(
    "--qualifier",
    default="LATEST",
    show_default=True,
    help="Alias (or LATEST) whose on-demand config is set or shown.",
)
@click.option(
    "--max-instances",
    type=click.IntRange(min=0),
    metavar="N",
    help="Set the cap (PutOnDemandConfig maximumInstanceCount; 0 stops the function). "
    "Without it, show the current cap.",
)
@click.option(
    "--account-qps",
    type=click.FloatRange(min=0, min_open=True),
    default=ACCOUNT_IOT_QPS,
    show_default=True,
    help="IoT Platform calls per second per action the account may make (purchased "
    "instances may differ).",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Exit 0 even when OTA_IOT_QPS x cap exceeds --account-qps (still warns).",
)
@credential_options
@fc_endpoint_options
def capacity(
    service: str,
    function: str,
    qualifier: str,
    max_instances: int | None,
    account_qps: float,
    no_check: bool,
    profile: str | None,
    region: str | None,
    fc_endpoint: str | None,
    account_id: str | None,
) -> None:
    """Set or show the function's instance cap and check its IoT pacing against it."""

    from ota_release.cli.cloud import resolve_target
    from ota_release.cli.common import escape, stdout_console

    qualifier = qualifier.strip()
    if not qualifier:
        raise click.BadParameter("must not be empty", param_hint="--qualifier")
    target = resolve_target(
        profile=profile, region=region, fc_endpoint=fc_endpoint, account_id=account_id
    )
    endpoint = target.fc()  # usage problems before any call
    client = target.fc_client(endpoint)
    resource = f"{service}.{qualifier}/{function}"
    out = stdout_console()

    with fc2_logs_dropped():
        cap: int | None
        if max_instances is not None:
            doing = f"setting the instance cap of {resource}"
            try:
                data = client.put_on_demand_config(service, qualifier, function, max_instances).data
            except Exception as exc:
                raise _call_failed(exc, target, "PutOnDemandConfig", doing) from exc
            cap = _cap_in(data, doing)
            out.print(f"instance cap of {escape(resource)} set to {cap}")
        else:
            cap = _current_cap(client, target, service, qualifier, function, resource)
            shown = "no cap set" if cap is None else str(cap)
            out.print(f"instance cap of {escape(resource)}: {shown}")
        if cap == 0:
            out.print("no instance may start: every invocation is throttled until it is raised")
            return
        if cap is not None:
            out.print(
                f"each instance may call IoT at {_g(account_qps)}/{cap} per second: "
                f"set {QPS_VARIABLE}={_g(account_qps / cap)}"
            )
        try:
            info = client.get_function(service, function, qualifier=qualifier).data
        except Exception as exc:
            raise _call_failed(
                exc, target, "GetFunction", f"reading the function {resource}"
            ) from exc

    _check(read_pacing(info if isinstance(info, dict) else {}), cap, account_qps, no_check)


def _cap_in(data: Any, doing: str) -> int:
    """``maximumInstanceCount`` from an on-demand config answer."""
    from ota_release.cli.common import CommandFailed

    count = data.get("maximumInstanceCount") if isinstance(data, dict) else None
    if isinstance(count, bool) or not isinstance(count, int):
        raise CommandFailed(
            f"{doing}: the answer's maximumInstanceCount must be an integer, got {count!r}"
        )
    return count


def _current_cap(
    client: Any, target: Any, service: str, qualifier: str, function: str, resource: str
) -> int | None:
    """GetOnDemandConfig's cap, or None when the function has no on-demand config."""
    from fc2.fc_exceptions import FcError

    doing = f"reading the instance cap of {resource}"
    try:
        data = client.get_on_demand_config(service, qualifier, function).data
    except FcError as exc:
        # A 404 for the function (or service, alias) itself is a failure, not "no cap".
        if exc.status_code == 404 and exc.err_code not in MISSING_FUNCTION_CODES:
            return None
        raise _call_failed(exc, target, "GetOnDemandConfig", doing) from exc
    except Exception as exc:
        raise _call_failed(exc, target, "GetOnDemandConfig", doing) from exc
    return _cap_in(data, doing)


def _check(pacing: FunctionPacing, cap: int | None, account_qps: float, no_check: bool) -> None:
    """Print the function's pacing against the cap; exit 1 if it exceeds the account."""
    from ota_release.cli.common import CommandFailed, escape, stderr_console, stdout_console

    out, err = stdout_console(), stderr_console()
    default_note = "" if pacing.qps_set else " (not set: the function's default)"
    out.print(f"function {QPS_VARIABLE}: {_g(pacing.qps)}{default_note}")
    if pacing.instance_concurrency is not None:
        out.print(
            f"function InstanceConcurrency: {pacing.instance_concurrency} invocations share "
            "each instance's pace"
        )
    if cap is None:
        fitting = math.floor(account_qps / pacing.qps + 1e-9)
        advice = (
            f"--max-instances {fitting}"
            if fitting >= 1
            else f"--max-instances 1 and set {QPS_VARIABLE}={_g(account_qps)}"
        )
        err.print(
            f"[yellow]warning:[/yellow] no instance cap: FC may start as many instances as the "
            f"load asks for, each calling IoT at {QPS_VARIABLE}={_g(pacing.qps)} per second "
            f"against the account's {_g(account_qps)}; cap it with {advice}"
        )
        return
    problem = pacing_problem(cap, pacing, account_qps)
    if problem is not None:
        if not no_check:
            raise CommandFailed(f"{problem} (--no-check to accept)")
        err.print(f"[yellow]warning:[/yellow] {escape(problem)}")
        return
    total = pacing.qps * cap
    if _same_rate(total, account_qps):
        out.print(
            f"consistent: {QPS_VARIABLE}={_g(pacing.qps)} x {cap} instances = the account's "
            f"{_g(account_qps)} per second"
        )
    else:
        out.print(
            f"note: {QPS_VARIABLE}={_g(pacing.qps)} x {cap} instances = {_g(total)} per second "
            f"leaves {_g(account_qps - total)} of the account's {_g(account_qps)} unused"
        )


def _call_failed(exc: Exception, target: Any, operation: str, doing: str) -> click.ClickException:
    """An fc2 failure as the exit-1 error the other commands give (with their hints)."""
    import json

    from fc2.fc_exceptions import FcError

    from ota_release.cli.cloud import failure
    from ota_release.errors import PermanentError

    if not isinstance(exc, FcError):  # connection refused, timeout: failure() says so
        return failure(exc, target, doing, target.fc())
    try:
        body = json.loads(exc.message)
    except (TypeError, ValueError):
        body = None
    message = str(exc.message)
    if isinstance(body, dict):
        message = str(body.get("ErrorMessage") or message)
    error = PermanentError(
        "fc",
        operation,
        exc.err_code or f"HTTP {exc.status_code}",
        message,
        request_id=exc.request_id if exc.request_id not in ("", "unknown") else None,
        status=exc.status_code,
    )
    return failure(error, target, doing)
