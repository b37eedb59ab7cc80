"""An instance of FC's built-in Python runtime, as one local process.

The local FC starts this file as the instance process for functions that use a built-in
runtime (``python3.9``/``python3.10``, the Serverless Devs flavour "s"). It does not
implement the runtime itself: it runs ``runtime_server.py``, the stdlib-only runtime the
project ships in its code package for FC's custom runtime, with the handler and
initializer it is given. So both flavours answer the same way: the same ``context``
(``runtime_server.FCContext``), the same result encoding, and a failed invocation
reported as FC documents it (HTTP 404 with ``x-fc-status: 404`` and
``{"errorMessage", "errorType", "stackTrace"}``). Requests are served on threads, so one
instance runs several invocations at once when InstanceConcurrency allows it.

The runtime module is the code dir's own ``runtime_server.py`` when the code ships one
(as ``dist/code.zip`` does), else the project's ``functions/create_firmware`` copy (code
dirs that tests write hold only a handler).

Run as ``python localcloud/fc/builtin.py --code-dir DIR --handler index.handler``. It
imports nothing from ``localcloud`` on purpose: the function's import path must hold only
its code dir and its layer, as on FC.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

# Started by file path, Python puts this folder (localcloud/fc/) first on sys.path, where
# the stand-in's modules would shadow the function's imports.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

RUNTIME_FILE = "runtime_server.py"
#: The runtime the project ships, used when the code dir holds none.
PROJECT_RUNTIME = (
    Path(__file__).resolve().parents[2] / "functions" / "create_firmware" / RUNTIME_FILE
)
#: The name the runtime module is loaded under (never ``runtime_server``, so a function
#: that ships its own module of that name still imports its own).
MODULE_NAME = "_fc_builtin_runtime"


def runtime_path(code_dir: Path) -> Path:
    """The runtime module this code dir runs on (see the module docstring)."""
    shipped = code_dir / RUNTIME_FILE
    return shipped if shipped.is_file() else PROJECT_RUNTIME


def load_runtime(path: Path) -> ModuleType:
    """Import ``runtime_server.py`` from ``path`` without putting its folder on sys.path."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the runtime from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--initializer", default=None)
    parser.add_argument("--host", default=os.environ.get("FC_SERVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FC_SERVER_PORT", "9000")))
    args = parser.parse_args(argv)
    code_dir = Path(args.code_dir).resolve()
    os.chdir(code_dir)
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    runtime = load_runtime(runtime_path(code_dir))
    function = runtime.FunctionRuntime(handler=args.handler, initializer=args.initializer)
    server = runtime.make_server(args.host, args.port, function)
    print(f"fc builtin runtime: {runtime.__file__}", flush=True)
    return int(runtime.serve(server))


if __name__ == "__main__":
    raise SystemExit(main())
