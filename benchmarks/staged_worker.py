"""One side of the staged-release figure in a fresh process, reported as JSON on stdout.

``--mode plain`` reads the object once with oss2 (GetObject, 1 MiB reads, bytes dropped):
the floor any staged release must pay. ``--mode release`` invokes the handler once with a
trigger event for the release's sidecar and times the invocation from its first HEAD to
its ``created`` notification (GenerateOTAUploadURL, the one-pass pinned copy with its
digest, CreateOTAFirmware, PublishMessage). Both sides import their modules before the
clock starts, so only the work is timed.

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


def plain(endpoint: str, bucket_name: str, key: str) -> dict[str, object]:
    from ota_release.adapters import CloudCredentials
    from ota_release.adapters.oss import oss_bucket

    e = os.environ
    creds = CloudCredentials(
        e["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        e["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        e["ALIBABA_CLOUD_SECURITY_TOKEN"],
    )
    # Signed as the function signs (V4): the local OSS refuses V1 as OSS does today.
    bucket = oss_bucket(creds, endpoint, bucket_name, region=e["OTA_REGION"], enable_crc=False)
    started = time.perf_counter()
    body = bucket.get_object(key)
    size = 0
    while chunk := body.read(CHUNK):
        size += len(chunk)
    return {"seconds": time.perf_counter() - started, "size": size}


def post(size: int) -> dict[str, object]:
    """One PostObject of ``size`` bytes (generated, not read) to a fresh upload ticket.

    Not part of the figure: the detail column shows it so the reader can see how much of
    the release is the stand-in's own upload speed (the local OSS hashes and writes to
    disk far slower than it serves a file).
    """
    import requests

    from ota_release.adapters import CloudCredentials
    from ota_release.adapters.iot import IotOtaPlatform
    from ota_release.adapters.oss import _form_fields, _MultipartForm

    e = os.environ
    creds = CloudCredentials(
        e["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        e["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        e["ALIBABA_CLOUD_SECURITY_TOKEN"],
    )
    iot = IotOtaPlatform(creds, e["OTA_IOT_ENDPOINT"], e["OTA_REGION"], protocol="http")
    ticket = iot.generate_upload_url("bin", None)
    block = b"\xa5" * CHUNK
    chunks = (block[: min(CHUNK, size - offset)] for offset in range(0, size, CHUNK))
    form = _MultipartForm(_form_fields(ticket), "post.bin", chunks, size)
    started = time.perf_counter()
    response = requests.post(
        ticket.host, data=form, headers={"Content-Type": form.content_type}, timeout=600
    )
    response.raise_for_status()
    return {"seconds": time.perf_counter() - started, "size": size}


def release(event: str) -> dict[str, object]:
    import index  # functions/create_firmware, on PYTHONPATH as in FC
    import oss2  # noqa: F401 - loaded before the clock starts, as in a warm instance
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
    """Best-of-``repeat`` seconds of both sides for one ``size``-byte object (in the parent).

    The release and the plain stream alternate, so a noisy neighbour hurts both alike;
    every release is a new package (a new name) staged from the same object.
    """
    assert cloud.fc is not None
    env = cloud.fc.instance_env()
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root), str(root / "functions" / "create_firmware"), str(root / "src")]
    )
    key = f"{cloud.prefix}bench/staged/firmware.bin"
    cloud.oss.put_object(cloud.bucket, key, pattern(size, key.encode()), notify=False)
    plain_runs, release_runs, post_runs, outcomes = [], [], [], []
    for _ in range(repeat):
        sidecar = {"version": "1.0.0", "name": f"staged-{uuid.uuid4().hex[:10]}"}
        cloud.oss.put_object(
            cloud.bucket, key + ".ota.json", json.dumps(sidecar).encode(), notify=False
        )
        out = _run(env, "--mode", "release", "--event", _event(cloud.bucket, key + ".ota.json"))
        release_runs.append(out["seconds"])
        outcomes += out["outcomes"]
        out = _run(
            env,
            "--mode",
            "plain",
            "--endpoint",
            cloud.endpoints.oss,
            "--bucket",
            cloud.bucket,
            "--key",
            key,
        )
        if out["size"] != size:
            raise RuntimeError(f"plain stream read {out['size']} of {size} bytes")
        plain_runs.append(out["seconds"])
        post_runs.append(_run(env, "--mode", "post", "--size", str(size))["seconds"])
    cloud.oss.delete_object(cloud.bucket, key)
    return {
        "plain": min(plain_runs),
        "release": min(release_runs),
        "post": min(post_runs),
        "outcomes": outcomes,
    }


def _event(bucket: str, key: str) -> str:
    record = {
        "eventName": "ObjectCreated:PutObject",
        "eventSource": "acs:oss",
        "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "region": "cn-shanghai",
        "oss": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1, "eTag": "x"}},
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
    parser.add_argument("--mode", choices=["plain", "release", "post"], required=True)
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket")
    parser.add_argument("--key")
    parser.add_argument("--event")
    args = parser.parse_args(argv)
    if args.mode == "plain":
        out = plain(args.endpoint, args.bucket, args.key)
    elif args.mode == "post":
        out = post(args.size)
    else:
        out = release(args.event)
    # Last line of stdout (the handler's logger writes JSON lines there too).
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
