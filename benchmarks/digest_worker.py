"""One digest in a fresh process, reported as JSON on stdout (used by benchmarks.digest).

A separate process gives each measurement its own peak RSS and keeps the OSS server (in
the parent) from competing with the digest for one interpreter's GIL, as a remote OSS
would not.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from ota_release.adapters import CloudCredentials
from ota_release.adapters.oss import OssObjectStore
from ota_release.digest import digest_stream, etag_fast_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="cn-shanghai", help="the bucket's region (V4)")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--sign-method", default="MD5", choices=["MD5", "SHA256"])
    parser.add_argument(
        "--path",
        default="stream",
        choices=["stream", "etag"],
        help="stream: GetObject + digest_stream; etag: HEAD + the ETag fast path",
    )
    parser.add_argument(
        "--verify-crc64",
        action="store_true",
        help="also recompute OSS's CRC-64 (off in the deployed function, as here by default)",
    )
    args = parser.parse_args(argv)
    store = OssObjectStore(
        CloudCredentials(args.access_key_id, args.access_key_secret),
        args.endpoint,
        args.endpoint,
        region=args.region,
    )
    info = store.head(args.bucket, args.key)
    if info is None:
        print(f"no such object {args.key}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if args.path == "etag":
        info = store.head(args.bucket, args.key)  # the fast path pays for its own HEAD
        assert info is not None
        digest = etag_fast_path(info, args.sign_method)
        if digest is None:
            print("the ETag fast path does not apply", file=sys.stderr)
            return 3
    else:
        body = store.open_stream(args.bucket, args.key)
        try:
            digest = digest_stream(
                body,
                args.sign_method,
                expected_size=info.size,
                expected_crc64=info.crc64 if args.verify_crc64 else None,
            )
        finally:
            body.close()
    elapsed = time.perf_counter() - started
    json.dump(
        {
            "seconds": elapsed,
            "size": digest.size,
            "sign": digest.sign,
            "source": digest.source,
            "max_rss_kib": peak_rss_kib(),
        },
        sys.stdout,
    )
    return 0


def peak_rss_kib() -> int:
    """This process's peak RSS (VmHWM).

    Not ``getrusage``: Linux carries ``ru_maxrss`` across ``execve`` from the forking
    parent, so a worker started by a parent that once held 1 GiB would report 1 GiB.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


if __name__ == "__main__":
    raise SystemExit(main())
