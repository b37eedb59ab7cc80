"""One side of the staged-release figure in a fresh process, reported as JSON on stdout.

``--mode release`` invokes the handler once with a trigger event for the release's sidecar
and times the invocation from its first HEAD to its ``created`` notification
(GenerateOTAUploadURL, the one-pass pinned copy with its digest, CreateOTAFirmware,
PublishMessage). The other modes are what it is compared with (docs/benchmarks.md,
"Staged release"):

- ``--mode plain``: one oss2 GetObject of the object, read to the end in 1 MiB reads, as a
  user calls it: oss2's defaults, so oss2 computes the CRC-64 of what it reads, which is
  then compared with the server's ``x-oss-hash-crc64ecma``. ``--no-crc`` turns that off
  (``enable_crc=False``): a bare read.
- ``--mode copy``: the floor of any one-pass staged copy: one oss2 GetObject (no CRC)
  piped into one PostObject to a fresh upload ticket, every chunk hashed with hashlib's
  MD5 on the way; the ticket is fetched before the clock starts.

Every side imports its modules before the clock starts, so only the work is timed.
Run by benchmarks.run (``--only staged``) with the function's own environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

CHUNK = 1024 * 1024


def _credentials() -> Any:
    from ota_release.adapters import CloudCredentials

    e = os.environ
    return CloudCredentials(
        e["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        e["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        e["ALIBABA_CLOUD_SECURITY_TOKEN"],
    )


def _source(endpoint: str, bucket_name: str, crc: bool) -> Any:
    from ota_release.adapters.oss import oss_bucket

    # Signed as the function signs (V4): the local OSS refuses V1 as OSS does today.
    return oss_bucket(
        _credentials(), endpoint, bucket_name, region=os.environ["OTA_REGION"], enable_crc=crc
    )


def plain(endpoint: str, bucket_name: str, key: str, crc: bool) -> dict[str, object]:
    bucket = _source(endpoint, bucket_name, crc)
    started = time.perf_counter()
    body = bucket.get_object(key)
    size = 0
    while chunk := body.read(CHUNK):
        size += len(chunk)
    # oss2 computes the CRC-64 as it reads; the caller compares it with the server's.
    if crc and body.client_crc != body.server_crc:
        raise RuntimeError(f"CRC-64 {body.client_crc} differs from OSS's {body.server_crc}")
    return {"seconds": time.perf_counter() - started, "size": size}


def copy(endpoint: str, bucket_name: str, key: str) -> dict[str, object]:
    """One GET piped into one PostObject, MD5 of every chunk: a one-pass copy, nothing else."""
    import hashlib

    import requests

    from ota_release.adapters.iot import IotOtaPlatform
    from ota_release.adapters.oss import _form_fields, _MultipartForm

    e = os.environ
    iot = IotOtaPlatform(_credentials(), e["OTA_IOT_ENDPOINT"], e["OTA_REGION"], protocol="http")
    ticket = iot.generate_upload_url("bin", None)
    bucket = _source(endpoint, bucket_name, False)
    started = time.perf_counter()
    body = bucket.get_object(key)
    md5 = hashlib.md5(usedforsecurity=False)  # the firmware digest IoT records

    def chunks() -> Any:
        while chunk := body.read(CHUNK):
            md5.update(chunk)
            yield chunk

    form = _MultipartForm(_form_fields(ticket), "copy.bin", chunks(), body.content_length)
    response = requests.post(
        ticket.host, data=form, headers={"Content-Type": form.content_type}, timeout=600
    )
    response.raise_for_status()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "size": body.content_length, "md5": md5.hexdigest()}


def release(event: str) -> dict[str, object]:
    # Loaded before the clock starts, as in a warm instance: the SDKs the handler imports
    # on first use (the IoT SDK alone takes ~0.5 s; figures 4-5 measure cold starts).
    import alibabacloud_iot20180120.client
    import alibabacloud_iot20180120.models  # noqa: F401
    import alibabacloud_tea_openapi.models  # noqa: F401
    import index  # functions/create_firmware, on PYTHONPATH as in FC
    import mns.mns_client
    import mns.topic  # noqa: F401
    import oss2  # noqa: F401
    import requests  # noqa: F401

    context = SimpleNamespace(
        request_id="bench-staged",
        account_id=None,
        function=SimpleNamespace(name="create-firmware", timeout=600),
        credentials=None,
    )
    started = time.perf_counter()
    summary = json.loads(index.handler(event.encode(), context))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "outcomes": [r["outcome"] for r in summary["results"]]}


def measure(cloud: Any, size: int, repeat: int, pattern: Any) -> dict[str, Any]:
    """Best-of-``repeat`` seconds of every side for one ``size``-byte object (in the parent).

    Each round runs the release, the plain stream (oss2 defaults), the bare read and the
    copy floor, each in a fresh process, starting one side later than the round before, so
    a noisy neighbour or the disk's write-back after an upload hurts every side alike. The
    staged copies are deleted after each round, so dirty pages do not pile up from round
    to round. Every release is a new package (a new name) staged from the same object.
    """
    assert cloud.fc is not None
    env = cloud.fc.instance_env()
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root), str(root / "functions" / "create_firmware"), str(root / "src")]
    )
    key = f"{cloud.prefix}bench/staged/firmware.bin"
    record = cloud.oss.put_object(cloud.bucket, key, pattern(size, key.encode()), notify=False)
    source = ["--endpoint", cloud.endpoints.oss, "--bucket", cloud.bucket, "--key", key]
    runs: dict[str, list[float]] = {"release": [], "plain": [], "bare": [], "copy": []}
    outcomes: list[str] = []

    def release_side() -> float:
        sidecar = {"version": "1.0.0", "name": f"staged-{uuid.uuid4().hex[:10]}"}
        cloud.oss.put_object(
            cloud.bucket, key + ".ota.json", json.dumps(sidecar).encode(), notify=False
        )
        out = _run(env, "--mode", "release", "--event", _event(cloud.bucket, key + ".ota.json"))
        outcomes.extend(out["outcomes"])
        return float(out["seconds"])

    def read_side(*flags: str) -> float:
        out = _run(env, "--mode", "plain", *source, *flags)
        if out["size"] != size:
            raise RuntimeError(f"plain stream read {out['size']} of {size} bytes")
        return float(out["seconds"])

    def copy_side() -> float:
        out = _run(env, "--mode", "copy", *source)
        if out["size"] != size or out["md5"] != record.md5_hex.lower():
            raise RuntimeError(f"the copy floor posted {out['size']} bytes, MD5 {out['md5']}")
        return float(out["seconds"])

    sides: list[tuple[str, Any]] = [
        ("release", release_side),
        ("plain", read_side),
        ("bare", lambda: read_side("--no-crc")),
        ("copy", copy_side),
    ]
    for round_ in range(repeat):
        for name, side in sides[round_ % 4 :] + sides[: round_ % 4]:
            runs[name].append(side())
        for staged in cloud.oss.list_keys(cloud.iot.ota_bucket):
            cloud.oss.delete_object(cloud.iot.ota_bucket, staged)
    cloud.oss.delete_object(cloud.bucket, key)
    return {name: min(seconds) for name, seconds in runs.items()} | {"outcomes": outcomes}


def _event(bucket: str, key: str) -> str:
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "region": "cn-shanghai",
        "oss": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}},
    }
    return json.dumps({"events": [record]})


def _run(env: dict[str, str], *args: str) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    argv = [sys.executable, "-m", "benchmarks.staged_worker", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=root, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"staged worker {args[:2]} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["plain", "release", "copy"], required=True)
    parser.add_argument("--no-crc", action="store_true", help="plain: enable_crc=False")
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket")
    parser.add_argument("--key")
    parser.add_argument("--event")
    args = parser.parse_args(argv)
    if args.mode == "plain":
        out = plain(args.endpoint, args.bucket, args.key, crc=not args.no_crc)
    elif args.mode == "copy":
        out = copy(args.endpoint, args.bucket, args.key)
    else:
        out = release(args.event)
    # Last line of stdout (the handler's logger writes JSON lines there too).
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
