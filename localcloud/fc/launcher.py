"""How the local FC starts an instance process and what it tells it.

An instance runs either the code's ``bootstrap`` (flavour "fun": FC's custom runtime, as
Funcraft deploys template.yml) or :mod:`localcloud.fc.builtin` (flavour "s": the built-in
python runtime, as s.yaml deploys it), on the interpreter the stand-in is given. It gets
FC's environment, never the host's (which may hold real cloud keys), and every request
carries FC's ``x-fc-*`` headers (:meth:`InstanceLauncher.headers`).
"""

from __future__ import annotations

import http.client
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from localcloud.contracts import CRASH_ENV
from localcloud.credentials import Credential
from localcloud.fc.pool import LOOPBACK, Instance, InstanceStartError, error_message, failed_reply
from localcloud.fc.template import FunctionSpec

Flavour = Literal["fun", "s"]

BUILTIN_RUNTIME = Path(__file__).with_name("builtin.py")

#: Run instead of the function's handler when crash points are configured (test only).
CRASH_HANDLER = "localcloud.crash_handler.handler"
#: The folder holding the ``localcloud`` package (the repository root). localcloud is not
#: in the function's wheel or code: only an instance running :data:`CRASH_HANDLER` gets
#: it on its path, so the function's own handler cannot import the stand-ins by accident.
LOCALCLOUD_ROOT = Path(__file__).resolve().parents[2]

# Only these host variables reach an instance: the function must see FC's environment,
# not the developer's (which may hold real cloud keys).
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


class InstanceLauncher:
    """Starts instance processes of one function (the pool's ``start_instance``)."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        code_dir: Path,
        flavour: Flavour,
        python: str,
        env_overrides: Mapping[str, str],
        extra_pythonpath: Sequence[Path],
        region: str,
        account_id: str,
        startup_timeout: float,
        log_dir: Path,
    ) -> None:
        self.spec = spec
        self.code_dir = code_dir
        self.flavour: Flavour = flavour
        self.python = python
        self.env_overrides = env_overrides
        self.extra_pythonpath = list(extra_pythonpath)
        self.region = region
        self.account_id = account_id
        self.startup_timeout = startup_timeout
        self.log_dir = log_dir
        #: The service role's temporary key, minted by the stand-in at start.
        self.credential: Credential | None = None
        self.instance_pids: list[int] = []  # every instance ever started, for leak checks
        self._lock = threading.Lock()

    def handler(self) -> str:
        """The handler an instance runs: the function's, or with crash points its wrapper."""
        if {**self.spec.env, **self.env_overrides}.get(CRASH_ENV):
            return CRASH_HANDLER
        return self.spec.handler

    def environment(self) -> dict[str, str]:
        """The environment an instance process starts with (FC's, not the host's)."""
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
        env.update(self.spec.env)
        env.update(self.env_overrides)
        cred = self.credential
        assert cred is not None, "start() mints the credential"
        env.update(
            {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": cred.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cred.access_key_secret,
                "ALIBABA_CLOUD_SECURITY_TOKEN": cred.security_token or "",
                "FC_FUNCTION_NAME": self.spec.name,
                "FC_SERVICE_NAME": self.spec.service,
                "FC_FUNCTION_HANDLER": self.spec.handler,
                "FC_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
                "FC_FUNC_CODE_PATH": str(self.code_dir),
                "FC_REGION": self.region,
                "FC_ACCOUNT_ID": self.account_id,
                "FC_QUALIFIER": "LATEST",
                "FC_RUNTIME": self.spec.runtime,
                # Not FC variables: ask the runtimes to bind loopback instead of 0.0.0.0
                # (FC_SERVER_HOST for the built-in runtime, OTA_RUNTIME_HOST for the
                # project's runtime_server.py behind bootstrap).
                "FC_SERVER_HOST": LOOPBACK,
                "OTA_RUNTIME_HOST": LOOPBACK,
                "OTA_RUNTIME_PYTHON": self.python,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(str(p) for p in self.pythonpath()),
            }
        )
        if self.handler() != self.spec.handler:
            # The project's custom runtime (runtime_server.py) runs this handler instead.
            env["OTA_RUNTIME_HANDLER"] = self.handler()
        return env

    def pythonpath(self) -> list[Path]:
        """An instance's PYTHONPATH: the code, the extra folders, and with crash points
        the repository root (where :data:`CRASH_HANDLER`'s ``localcloud`` lives)."""
        path = [self.code_dir, *self.extra_pythonpath]
        if self.handler() == CRASH_HANDLER and LOCALCLOUD_ROOT not in path:
            path.append(LOCALCLOUD_ROOT)
        return path

    def argv(self) -> list[str]:
        """The instance's command line: the built-in runtime ("s") or ``bootstrap`` ("fun")."""
        if self.flavour == "s":
            argv = [
                self.python,
                str(BUILTIN_RUNTIME),
                "--code-dir",
                str(self.code_dir),
                "--handler",
                self.handler(),
            ]
            if self.spec.initializer:
                argv += ["--initializer", self.spec.initializer]
            return argv
        bootstrap = self.code_dir / "bootstrap"
        if not bootstrap.is_file():
            raise InstanceStartError(f"custom runtime needs {bootstrap}")
        if os.access(bootstrap, os.X_OK):
            return [str(bootstrap)]
        return ["/bin/sh", str(bootstrap)]

    def start(self) -> Instance:
        """Start one instance process and run the initializer on it (the pool calls this)."""
        argv = self.argv()
        with self._lock:
            log = self.log_dir / f"instance-{len(self.instance_pids) + 1}.log"
        inst = Instance(argv, self.environment(), self.code_dir, log, self.startup_timeout)
        with self._lock:
            self.instance_pids.append(inst.pid)
        if self.spec.initializer:
            self._initialize(inst)
        return inst

    def _initialize(self, inst: Instance) -> None:
        headers = self.headers(f"{uuid.uuid4()}", "LATEST", "/initialize")
        try:
            status, reply, body = inst.post(
                "/initialize", b"", headers, float(self.spec.initialization_timeout or 3)
            )
        except (OSError, http.client.HTTPException) as exc:
            inst.stop(grace=0.5)
            raise InstanceStartError(f"initializer failed: {exc}") from exc
        if failed_reply(status, reply):
            inst.stop(grace=0.5)
            raise InstanceStartError(f"initializer failed: {error_message(body)}")

    def headers(self, request_id: str, qualifier: str, control_path: str) -> dict[str, str]:
        """FC's custom-runtime request headers for one request."""
        cred = self.credential
        assert cred is not None, "start() mints the credential"
        return {
            "Content-Type": "application/octet-stream",
            "x-fc-request-id": request_id,
            "x-fc-access-key-id": cred.access_key_id,
            "x-fc-access-key-secret": cred.access_key_secret,
            "x-fc-security-token": cred.security_token or "",
            "x-fc-function-name": self.spec.name,
            "x-fc-function-handler": self.spec.handler,
            "x-fc-function-memory": str(self.spec.memory),
            "x-fc-function-timeout": str(self.spec.timeout),
            "x-fc-function-initializer": self.spec.initializer or "",
            "x-fc-initialization-timeout": str(self.spec.initialization_timeout or 0),
            "x-fc-service-name": self.spec.service,
            "x-fc-service-logproject": self.spec.log_project,
            "x-fc-service-logstore": self.spec.log_store,
            "x-fc-region": self.region,
            "x-fc-account-id": self.account_id,
            "x-fc-qualifier": qualifier,
            "x-fc-version-id": "",
            "x-fc-control-path": control_path,
        }
