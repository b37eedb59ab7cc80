"""A cold start in a fresh process: import the handler, invoke it once, exit.

The parent (``benchmarks.run``, ColdStartBench) times the whole process, interpreter start
included, as FC bills a cold start; it runs this worker on CPython 3.10 with the unpacked
code and layer zips on the path, as FC lays them out. ``--eager`` first imports every SDK
the handler can use, which is what the handler would cost if it imported them at module
level; ``--no-invoke`` stops after the imports.
"""

from __future__ import annotations

import argparse
import json
import sys
from types import SimpleNamespace

#: Every SDK module the handler can reach, imported eagerly by ``--eager``. Not
#: ``mns.account`` (the MNS adapter builds its client and topic without it) nor the
#: parser's AWS envelopes: modules the handler never loads would flatter the ratio.
EAGER_SDK_MODULES = (
    "oss2",
    "requests",
    "mns.topic",
    "mns.mns_exception",
    "alibabacloud_iot20180120.client",
    "alibabacloud_iot20180120.models",
    "alibabacloud_tea_openapi.models",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.utilities.parser",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--no-invoke", action="store_true")
    parser.add_argument("--event", help="the trigger event (JSON) to invoke the handler with")
    args = parser.parse_args(argv)
    if args.eager:
        import importlib

        for name in EAGER_SDK_MODULES:
            importlib.import_module(name)
    import index  # from the unpacked code.zip, on PYTHONPATH as FC's /code

    if args.no_invoke:
        return 0
    context = SimpleNamespace(
        request_id="bench-cold-start",
        account_id=None,
        function=SimpleNamespace(name="create-firmware", timeout=60),
        credentials=None,
    )
    summary = json.loads(index.handler(args.event.encode(), context))
    outcomes = [result["outcome"] for result in summary["results"]]
    # Last line of stdout (the handler's logger writes JSON lines there too).
    print(json.dumps({"outcomes": outcomes, "modules": len(sys.modules)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
