"""``ota-release prune``: free the package quota by deleting old packages no job uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ota_release.cli.cloud import credential_options, iot_endpoint_option, iot_instance_option

if TYPE_CHECKING:
    from ota_release.cli.prune_plan import PruneReport, Selection
    from ota_release.ports import ListedPackage

#: Calls per second per IoT action the command allows itself: the account's limit.
PRUNE_QPS = 10.0


@click.command(
    short_help="Delete old packages (oldest first) that no job uses, keeping the newest N.",
    epilog="""\b
Examples:
  ota-release prune --keep 5                          # list what would be deleted
  ota-release prune --keep 5 --product-key a1Cam --module default --older-than 30d
  ota-release prune --keep 5 --yes                    # delete them

Per product and module, the newest N packages (by creation time) are kept; of the older
ones, a package any upgrade or verification job still uses (ListOTAJobByFirmware: a job
not COMPLETED or CANCELED) is kept too. Without --yes nothing is deleted.
Exit status: 0 done (or listed), 1 a call or a deletion failed, 2 usage error.
""",
)
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    required=True,
    metavar="N",
    help="Newest packages to keep per product and module (1 or more).",
)
@click.option("--product-key", metavar="KEY", help="Only this product's packages.")
@click.option("--module", metavar="NAME", help="Only this module's packages (ModuleName).")
@click.option(
    "--older-than",
    metavar="AGE",
    help="Only packages created longer ago than AGE: a number and s, m, h, d or w (30d).",
)
@click.option("--yes", is_flag=True, help="Delete (DeleteOTAFirmware); without it, only list.")
@iot_instance_option
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@credential_options
@iot_endpoint_option
def prune(
    keep: int,
    product_key: str | None,
    module: str | None,
    older_than: str | None,
    yes: bool,
    iot_instance_id: str | None,
    as_json: bool,
    profile: str | None,
    region: str | None,
    iot_endpoint: str | None,
    iot_protocol: str | None,
) -> None:
    """List, then (with --yes) delete, the oldest packages beyond the newest N."""
    from datetime import datetime, timezone

    from ota_release.cli.cloud import failure, resolve_target
    from ota_release.cli.common import CommandFailed
    from ota_release.cli.prune_plan import parse_age, run, select
    from ota_release.errors import PlatformError

    try:
        age = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    target = resolve_target(
        profile=profile, region=region, iot_endpoint=iot_endpoint, iot_protocol=iot_protocol
    )
    iot = _platform(target)
    call = _caller()
    try:
        packages: Any = call(
            "ListOTAFirmware", lambda: iot.list_packages(product_key, iot_instance_id)
        )
    except PlatformError as exc:
        raise failure(exc, target, "listing packages", target.iot_url()) from exc
    chosen = select(packages, keep, module=module, older_than=age, now=datetime.now(timezone.utc))
    printer = _Printer(as_json)
    report = run(
        iot,
        chosen.candidates,
        delete=yes,
        iot_instance_id=iot_instance_id,
        call=call,
        heard=printer.heard,
    )
    printer.done(chosen, report, keep, yes)
    if report.failed:
        raise CommandFailed(f"{len(report.failed)} package(s) could not be checked or deleted")


def _platform(target: Any) -> Any:
    from ota_release.adapters.iot import IotOtaPlatform
    from ota_release.adapters.pacing import ActionPacer

    endpoint, protocol = target.iot()
    return IotOtaPlatform(
        target.credentials,
        endpoint,
        target.sdk_region(),
        protocol=protocol,
        pacer=ActionPacer(PRUNE_QPS),
    )


def _caller() -> Any:
    """Each call under the retry policy: throttled or failed-in-transit calls are retried."""
    from ota_release.retry import Deadline, RetryPolicy

    policy = RetryPolicy()

    def call(what: str, fn: Any) -> Any:
        return policy.call(fn, Deadline(300), what)

    return call


def _line(package: ListedPackage) -> str:
    return (
        f"{package.firmware_id}  {package.name}  {package.dest_version}  "
        f"{package.utc_create or '?'}  ({package.product_key or '-'}/{package.module or 'default'})"
    )


class _Printer:
    """One line per verdict as it happens (human), or one JSON document at the end."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def heard(self, verdict: str, package: ListedPackage, detail: str) -> None:
        if self.as_json:
            return
        from ota_release.cli.common import escape, stdout_console

        note = f"  [{escape(detail)}]" if detail else ""
        stdout_console().print(f"{verdict:<13} {escape(_line(package))}{note}")

    def done(self, chosen: Selection, report: PruneReport, keep: int, deleting: bool) -> None:
        if self.as_json:
            from ota_release.cli.common import emit_json

            emit_json(_as_json(chosen, report, keep, deleting))
            return
        from ota_release.cli.common import stdout_console

        kept = len(chosen.newest) + len(chosen.too_recent) + len(chosen.undated)
        head = (
            f"deleted {len(report.deleted)}"
            if deleting
            else f"would delete {len(report.would_delete)} (run again with --yes to delete)"
        )
        stdout_console().print(
            f"{head}; kept {len(report.in_use)} in use, {kept} newest or recent "
            f"(--keep {keep}); {len(report.gone)} gone meanwhile; {len(report.failed)} failed"
        )


def _as_json(chosen: Selection, report: PruneReport, keep: int, deleting: bool) -> dict[str, Any]:
    def ids(packages: list[ListedPackage]) -> list[str]:
        return [p.firmware_id for p in packages]

    return {
        "keep": keep,
        "deleting": deleting,
        "deleted": [{"id": p.firmware_id, "request_id": rid} for p, rid in report.deleted],
        "would_delete": ids(report.would_delete),
        "in_use": [
            {"id": p.firmware_id, "jobs": [[j.job_id, j.job_type, j.job_status] for j in jobs]}
            for p, jobs in report.in_use
        ],
        "gone": ids(report.gone),
        "failed": [{"id": p.firmware_id, "error": why} for p, why in report.failed],
        "kept_newest": ids(chosen.newest),
        "kept_recent": ids(chosen.too_recent),
        "kept_undated": ids(chosen.undated),
    }
