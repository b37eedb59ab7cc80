"""``ota-release status``: what IoT Platform knows about a firmware package, or the
outcome the function stored for a release key (its outcome objects)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ota_release.cli.cloud import (
    credential_options,
    iot_endpoint_option,
    iot_instance_option,
    oss_endpoint_option,
)
from ota_release.settings import DEFAULT_RESULTS_PREFIX

if TYPE_CHECKING:
    from ota_release.adapters.iot import IotOtaPlatform

#: Rows shown by the human output, in order (API field name, label).
FIELDS = (
    ("FirmwareId", "id"),
    ("FirmwareName", "name"),
    ("DestVersion", "version"),
    ("SrcVersion", "source version"),
    ("Type", "type"),
    ("ModuleName", "module"),
    ("ProductKey", "product key"),
    ("FirmwareDesc", "description"),
    ("SignMethod", "sign method"),
    ("FirmwareSign", "sign"),
    ("FirmwareSize", "size"),
    ("FirmwareUrl", "url"),
    ("Status", "status"),
    ("VerifyProgress", "verify progress"),
    ("UtcCreate", "created"),
    ("UtcModified", "modified"),
)


@click.command(
    short_help="Show a firmware package, or the stored outcome of a release key.",
    epilog="""\b
Examples:
  ota-release status --id Xk3o1Yp0dD8lWJ2G3mLq9Fh0aB
  ota-release status --name cam-2_0_0 --version 2.0.0 --region cn-shanghai
  ota-release status --name cam-2_0_0 --json --iot-endpoint http://127.0.0.1:9101
  ota-release status firmware/acme/cam-2.0.0.bin --bucket acme-firmware

Status: -1 no verification needed, 0 unverified, 1 verified, 2 verifying, 3 failed.
KEY (a firmware key, or its sidecar's) shows the outcome the function stored for it under
--results-prefix, and a newer upload's `waiting` if there is one.
Exit status: 0 found, 1 not found or the call failed, 2 usage error.
""",
)
@click.argument("key", required=False)
@click.option(
    "--bucket",
    envvar="OTA_BUCKET",
    help="With KEY: the bucket it was uploaded to [env OTA_BUCKET].",
)
@click.option(
    "--results-prefix",
    envvar="OTA_RESULTS_PREFIX",
    default=DEFAULT_RESULTS_PREFIX,
    show_default=True,
    help="With KEY: the function's OTA_RESULTS_PREFIX [env OTA_RESULTS_PREFIX].",
)
@click.option("--id", "firmware_id", metavar="FIRMWARE_ID", help="FirmwareId to query.")
@click.option("--name", metavar="NAME", help="FirmwareName to look up (unique per account).")
@click.option("--version", "version", metavar="V", help="DestVersion; narrows a --name search.")
@click.option("--product-key", metavar="KEY", help="ProductKey; narrows a --name search.")
@iot_instance_option
@click.option("--json", "as_json", is_flag=True, help="Print the package as JSON.")
@credential_options
@iot_endpoint_option
@oss_endpoint_option
def status(
    key: str | None,
    bucket: str | None,
    results_prefix: str,
    firmware_id: str | None,
    name: str | None,
    version: str | None,
    product_key: str | None,
    iot_instance_id: str | None,
    as_json: bool,
    profile: str | None,
    region: str | None,
    iot_endpoint: str | None,
    iot_protocol: str | None,
    oss_endpoint: str | None,
) -> None:
    """Show a firmware package as IoT Platform reports it, verification status included;
    or, given KEY, the outcome the function stored for that release."""
    if key is not None:
        if firmware_id or name or version or product_key:
            raise click.UsageError("give KEY, or --id / --name, not both")
        if not bucket:
            raise click.UsageError("KEY needs --bucket (or OTA_BUCKET)")
        _stored_outcome(key, bucket, results_prefix, as_json, profile, region, oss_endpoint)
        return
    if bool(firmware_id) == bool(name):
        raise click.UsageError("give exactly one of --id or --name (or a KEY)")
    if firmware_id and (version or product_key):
        raise click.UsageError("--version and --product-key narrow a --name search only")

    from ota_release.adapters.iot import IotOtaPlatform
    from ota_release.cli.cloud import failure, resolve_target
    from ota_release.errors import PlatformError

    target = resolve_target(
        profile=profile, region=region, iot_endpoint=iot_endpoint, iot_protocol=iot_protocol
    )
    endpoint, protocol = target.iot()
    iot = IotOtaPlatform(target.credentials, endpoint, target.sdk_region(), protocol=protocol)
    try:
        info = _query(iot, firmware_id, name, version, product_key, iot_instance_id)
    except PlatformError as exc:
        raise failure(exc, target, "querying IoT Platform", target.iot_url()) from exc
    _show(info, as_json)


def _query(
    iot: IotOtaPlatform,
    firmware_id: str | None,
    name: str | None,
    version: str | None,
    product_key: str | None,
    iot_instance_id: str | None,
) -> dict[str, Any]:
    """QueryOTAFirmware for the id, or for the package a ListOTAFirmware finds by name."""
    from ota_release.cli.common import CommandFailed
    from ota_release.errors import NotFoundError

    try:
        if name:
            found = iot.find_firmware(name, version, product_key, iot_instance_id).package
            if found is None:
                narrowed = f" version {version}" if version else ""
                raise CommandFailed(f"IoT Platform has no firmware named {name!r}{narrowed}")
            firmware_id = found.firmware_id
        assert firmware_id is not None
        return iot.query_firmware(firmware_id, iot_instance_id).fields
    except NotFoundError as exc:
        raise CommandFailed(f"IoT Platform has no firmware with id {firmware_id!r}") from exc


def _show(info: dict[str, Any], as_json: bool) -> None:
    from ota_release.cli.common import emit_json, escape, stdout_console
    from ota_release.cli.iot_query import status_words

    if as_json:
        emit_json(
            {
                **info,
                "StatusText": status_words(info.get("Status")),
                "TypeText": _type_words(info.get("Type")),
            }
        )
        return
    console = stdout_console()
    for key, label in FIELDS:
        value: Any = info.get(key)
        if value is None or value == "":
            continue
        if key == "Status":
            value = f"{status_words(value)} ({value})"
        elif key == "Type":
            value = _type_words(value) or value
        elif key == "VerifyProgress":
            value = f"{value}%"
        console.print(f"{label:>16}  {escape(value)}")


def _type_words(value: Any) -> str | None:
    from ota_release.cli.iot_query import TYPE_WORDS

    try:
        return TYPE_WORDS.get(int(value))
    except (TypeError, ValueError):
        return None


def _stored_outcome(
    key: str,
    bucket: str,
    results_prefix: str,
    as_json: bool,
    profile: str | None,
    region: str | None,
    oss_endpoint: str | None,
) -> None:
    """The release's final outcome object, and its waiting one when that is newer."""
    from ota_release.cli.cloud import failure, resolve_target
    from ota_release.cli.cmd_upload import oss_bucket
    from ota_release.cli.common import CommandFailed
    from ota_release.cli.wait import oss_reader
    from ota_release.errors import PlatformError
    from ota_release.pairing import role_of
    from ota_release.results import final_key, refs, waiting_key
    from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES

    release_key = role_of(key, DEFAULT_SIDECAR_SUFFIXES).firmware_key
    target = resolve_target(profile=profile, region=region, oss_endpoint=oss_endpoint)
    read = oss_reader(oss_bucket(target, bucket, enable_crc=False))
    try:
        final = read(final_key(results_prefix, release_key))
        waiting = read(waiting_key(results_prefix, release_key))
    except PlatformError as exc:
        raise failure(exc, target, "reading the outcome", target.oss()) from exc
    if waiting is not None and final is not None and refs(waiting).items() <= refs(final).items():
        waiting = None  # a late waiting of the upload the final outcome reports
    if final is None and waiting is None:
        raise CommandFailed(
            f"no outcome stored for {release_key} under {results_prefix} in {bucket}"
        )
    _show_outcome(release_key, final, waiting, as_json)


def _show_outcome(
    key: str, final: dict[str, Any] | None, waiting: dict[str, Any] | None, as_json: bool
) -> None:
    from ota_release.cli.common import emit_json, escape, stdout_console
    from ota_release.cli.wait import outcome_lines

    if as_json:
        emit_json({"key": key, "outcome": final, "waiting": waiting})
        return
    console = stdout_console()
    if final is not None:
        console.print(escape(f"{key}: published {final.get('published_at')}"))
        for line in outcome_lines(final):
            console.print(escape(f"  {line}"))
    if waiting is not None:
        newer = "a newer upload " if final is not None else ""
        console.print(escape(f"{key}: {newer}waiting: {waiting.get('summary')}"))
