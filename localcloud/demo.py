"""`make demo`: the release pipeline end to end on the local cloud.

Uploads sample firmware with the real oss2 SDK — folder defaults for the acme folder, the
sidecar first for one release (which asks for a verification job on two devices), the
firmware first for another, one broken sidecar, an identical re-upload, and a multi-file
release (three files in a folder, its sidecar arriving between them) — lets the OSS
trigger run the function, then shows what ListOTAFirmware returns, every notification the
topic received, the multi-file release's files and the verification job that was started.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from localcloud.cloud import REGION, LocalCloud
from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

console = Console(width=None if sys.stdout.isatty() else 140)

DEMO_PRODUCT_KEY = "a1AcmeCam"
DEMO_DEVICES = ("cam-lab-01", "cam-lab-02")


def _firmware(name: str, size: int) -> bytes:
    """Deterministic pseudo-firmware bytes."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def _steps(prefix: str) -> list[tuple[str, str, bytes]]:
    cam = _firmware("cam", 300_000)
    lamp = _firmware("lamp", 120_000)
    door = _firmware("door", 50_000)
    # Folder defaults: every release under acme/ belongs to this product.
    defaults = json.dumps({"product_key": DEMO_PRODUCT_KEY}).encode()
    cam_sidecar = json.dumps(
        {
            "$schema": "https://ota-release.dev/schemas/sidecar.schema.json",
            "version": "2.0.0",
            "module": "camera",
            "description": "Night mode and a faster boot",
            "sign": hashlib.md5(cam).hexdigest(),
            "size": len(cam),
            "verify": {"devices": list(DEMO_DEVICES), "timeout_minutes": 60},
        },
        indent=2,
    ).encode()
    lamp_sidecar = (
        'version: "1.4.0"\ntype: diff\nsrc_version: "1.3.2"\n'
        "sign_method: SHA256\nneed_to_verify: false\n"
        "description: 灯光固件\n"
    ).encode()
    door_sidecar = json.dumps(
        {
            "version": "3.0.0",
            "type": "diff",
            "name": "door-controller-firmware-for-the-north-gate",
            "verison": "3.0.1",
            "sign_method": "CRC32",
        }
    ).encode()
    return [
        ("folder defaults", f"{prefix}acme/.ota-defaults.json", defaults),
        ("sidecar first", f"{prefix}acme/cam-2.0.0.bin.ota.json", cam_sidecar),
        ("then its firmware", f"{prefix}acme/cam-2.0.0.bin", cam),
        ("firmware first", f"{prefix}acme/lamp-1.4.0.bin", lamp),
        ("then its YAML sidecar", f"{prefix}acme/lamp-1.4.0.bin.ota.yaml", lamp_sidecar),
        ("a firmware", f"{prefix}acme/door-3.0.0.bin", door),
        ("with a broken sidecar", f"{prefix}acme/door-3.0.0.bin.ota.json", door_sidecar),
        ("an identical re-upload", f"{prefix}acme/cam-2.0.0.bin.ota.json", cam_sidecar),
        *_multi_file_steps(prefix),
    ]


#: The multi-file release: a folder of three files and the sidecar named after it.
HUB_FILES = {
    "app.bin": _firmware("hub-app", 80_000),
    "boot.img": _firmware("hub-boot", 16_000),
    "config.json": b'{"region": "cn-shanghai", "night_mode": true}\n',
}


def _multi_file_steps(prefix: str) -> list[tuple[str, str, bytes]]:
    folder = f"{prefix}acme/hub-5.1.0"
    sidecar = json.dumps(
        {
            "version": "5.1.0",
            "description": "Hub firmware with its bootloader and configuration",
            "files": [
                "app.bin",
                {"name": "boot.img", "size": len(HUB_FILES["boot.img"])},
                "config.json",
            ],
        },
        indent=2,
    ).encode()
    return [
        ("multi-file: a file", f"{folder}/app.bin", HUB_FILES["app.bin"]),
        ("then the release sidecar", f"{folder}.ota.json", sidecar),
        ("then the second file", f"{folder}/boot.img", HUB_FILES["boot.img"]),
        ("and the last", f"{folder}/config.json", HUB_FILES["config.json"]),
    ]


def _list_firmware(cloud: LocalCloud) -> list[Any]:
    from alibabacloud_iot20180120 import models
    from alibabacloud_iot20180120.client import Client
    from alibabacloud_tea_openapi import models as openapi

    client = Client(
        openapi.Config(
            access_key_id=DEFAULT_ACCESS_KEY_ID,
            access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
            endpoint=cloud.endpoints.iot,
            protocol="http",
            region_id=REGION,
        )
    )
    body = client.list_otafirmware(
        models.ListOTAFirmwareRequest(current_page=1, page_size=100)
    ).body
    return list(body.firmware_info.simple_firmware_info or []) if body.firmware_info else []


def _print_verifications(cloud: LocalCloud) -> None:
    """The verification jobs the created notifications name (ListOTAJobByFirmware's view)."""
    for message in cloud.mns.messages(cloud.notify_topic):
        body = json.loads(message.body)
        verification = body.get("verification")
        if body["outcome"] != "created" or not verification:
            continue
        jobs = cloud.iot.backend.jobs_of(body["firmware"]["id"])
        console.print(
            f"verification job [bold]{verification['job_id']}[/] ({verification['status']}) "
            f"for {body['firmware']['name']} on {', '.join(verification['devices'])}; "
            f"the package has {len(jobs)} job(s): "
            + ", ".join(f"{j.job_type} {j.job_status}" for j in jobs)
        )
        if body.get("sources"):
            console.print(f"  where each value came from (sources): {json.dumps(body['sources'])}")


def run(flavour: str = "fun") -> int:
    os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")

    started = time.monotonic()
    console.rule("[bold]ota-release demo: the local cloud")
    with LocalCloud(flavour=flavour) as cloud:  # type: ignore[arg-type]
        e = cloud.endpoints
        console.print(f"OSS {e.oss}   IoT {e.iot}   MNS {e.mns}   FC {e.fc}")
        console.print(
            f"function [bold]{cloud.spec.service}/{cloud.spec.name}[/] "
            f"({cloud.spec.runtime}, {flavour} flavour) watching "
            f"oss://{cloud.bucket}/{cloud.prefix}*"
        )
        bucket = cloud.sdk_bucket()
        for what, key, data in _steps(cloud.prefix):
            bucket.put_object(key, data)
            console.print(f"  uploaded {what:<24} [cyan]{key}[/] ({len(data)} bytes)")
            if not cloud.wait_idle(30):
                console.print("[red]the function did not finish within 30 s[/]")
                return 1

        firmware = _list_firmware(cloud)
        table = Table(title="ListOTAFirmware", show_lines=False)
        for column in (
            "FirmwareName",
            "DestVersion",
            "FirmwareId",
            "Size",
            "SignMethod",
            "Sign",
            "Status",
        ):
            table.add_column(column)
        for f in firmware:
            table.add_row(
                f.firmware_name,
                f.dest_version,
                f.firmware_id,
                # a multi-file package has no one size or sign: see its files below
                "-" if f.firmware_size is None else str(f.firmware_size),
                f.sign_method,
                (f.firmware_sign or "")[:16] + "…" if f.firmware_sign else "(files)",
                # ListOTAFirmware documents Status 0-3 only; a package that needs no
                # verification (QueryOTAFirmware's -1) is listed without one.
                "-" if f.status is None else str(f.status),
            )
        console.print(table)

        notes = Table(title=f"Notifications on topic {cloud.notify_topic}")
        for column in ("#", "outcome (MessageTag)", "object", "summary / errors", "message_id"):
            notes.add_column(column, overflow="fold")
        for i, message in enumerate(cloud.mns.messages(cloud.notify_topic), 1):
            body = json.loads(message.body)
            detail = body["summary"]
            for err in body.get("errors", []):
                detail += f"\n  • {err['field']}: {err['rule']} (got {err['value']})"
            outcome = body["outcome"]
            if message.tag != outcome:
                outcome += f" ({message.tag})"
            notes.add_row(
                str(i),
                outcome,
                body["object"]["key"].rsplit("/", 1)[-1],
                detail,
                body["message_id"][:12],
            )
        console.print(notes)
        _print_verifications(cloud)
        _print_multi_file_releases(cloud)
        failures = cloud.mns.messages(cloud.failure_topic) if cloud.failure_topic else []
        console.print(
            f"{len(firmware)} firmware registered, "
            f"{len(cloud.mns.messages(cloud.notify_topic))} notifications, "
            f"{len(failures)} on the failure topic, "
            f"{len(cloud.fc.invocations) if cloud.fc else 0} invocations"
        )
    console.print(f"stopped everything in {time.monotonic() - started:.1f} s total")
    return 0


def _print_multi_file_releases(cloud: LocalCloud) -> None:
    """Each ``created`` multi-file release with the files its notification lists."""
    for message in cloud.mns.messages(cloud.notify_topic):
        body = json.loads(message.body)
        if body["outcome"] != "created" or "files" not in body:
            continue
        package = body["firmware"]
        table = Table(
            title=f"created {package['name']} ({package['id']}): {len(body['files'])} files"
        )
        for column in ("name", "key", "size", "sign (MD5)"):
            table.add_column(column, overflow="fold")
        for f in body["files"]:
            table.add_row(f["name"], f["key"], str(f["size"]), f["sign"])
        console.print(table)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else "fun"))
