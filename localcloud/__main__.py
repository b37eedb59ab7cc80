"""`python -m localcloud up` starts the local cloud; `python -m localcloud demo` runs the demo."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

#: How often the idle main thread wakes so a pending Ctrl-C / SIGTERM handler can run.
SIGNAL_POLL_SECONDS = 0.2


def _up(args: argparse.Namespace) -> int:
    from localcloud.cloud import LocalCloud

    ports = {
        name: value
        for name, value in (
            ("oss", args.oss_port),
            ("iot", args.iot_port),
            ("mns", args.mns_port),
            ("fc", args.fc_port),
        )
        if value
    }
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    data_dir = Path(args.data_dir) if args.data_dir else None
    with LocalCloud(
        flavour=args.flavour, data_dir=data_dir, ports=ports, allow_v1=args.allow_v1
    ) as cloud:
        e = cloud.endpoints
        print("localcloud is up (Ctrl-C stops it)")
        print(f"  OSS  {e.oss}   bucket {cloud.bucket}, trigger prefix {cloud.prefix!r}")
        print(f"  IoT  http://{e.iot}")
        print(f"  MNS  {e.mns}   topics {', '.join(cloud.topics())}")
        print(f"       messages: {e.mns}/_localcloud/topics/{cloud.notify_topic}/messages")
        print(f"  FC   {e.fc}   function {cloud.spec.service}/{cloud.spec.name} ({args.flavour})")
        print("\n# environment for the SDKs and the ota-release CLI:")
        for key, value in cloud.client_env().items():
            print(f"export {key}={shlex.quote(value)}")
        sys.stdout.flush()
        # A timed wait, not stop.wait(): the kernel may hand SIGINT to any thread of the
        # process (the servers' and FC's threads included). Python then only notes it and
        # runs the handler when the main thread next executes bytecode, which a main thread
        # blocked in an untimed lock wait never does: `up` ignored Ctrl-C under load.
        while not stop.wait(SIGNAL_POLL_SECONDS):
            pass
        print("\nstopping localcloud ...")
    print("stopped")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from localcloud.demo import run

    return run(args.flavour)


def build_parser() -> argparse.ArgumentParser:
    """The command line (README.md "The local cloud" lists its options; a test compares)."""
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start OSS, IoT, MNS and FC on 127.0.0.1 until Ctrl-C")
    up.add_argument(
        "--flavour",
        choices=("fun", "s"),
        default="fun",
        help="run the function through bootstrap (fun) or the built-in runtime (s)",
    )
    up.add_argument("--data-dir", help="keep object data here (default: a temporary folder)")
    up.add_argument(
        "--allow-v1",
        action="store_true",
        help="let the local OSS accept V1 signatures, as OSS does only for legacy accounts "
        "and buckets (default: refused with 403, as for a bucket created today)",
    )
    for name in ("oss", "iot", "mns", "fc"):
        up.add_argument(f"--{name}-port", type=int, default=0, help=f"{name} port (0 = any)")
    up.set_defaults(func=_up)
    demo = sub.add_parser("demo", help="upload sample releases and show the outcomes")
    demo.add_argument("--flavour", choices=("fun", "s"), default="fun")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
