"""Installing and running Alibaba's official Node.js clients for the conformance suite.

The clients are pinned in ``tests/conformance/package.json`` and locked by the committed
``package-lock.json``; :func:`ensure_installed` runs ``npm ci`` into
``tests/conformance/node_modules`` when that directory is missing or was installed from
another lock file. Nothing is skipped: without node or npm the suite fails with a message
that says how to get them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE_JSON = HERE / "package.json"
PACKAGE_LOCK = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
CHECKS_JS = HERE / "checks.js"
# Written after a successful `npm ci`: the lock file's digest it was installed from.
STAMP = NODE_MODULES / ".ota-release-lock.sha256"
MIN_NODE_MAJOR = 18
INSTALL_TIMEOUT_S = 600
CHECK_TIMEOUT_S = 120


class NodeSetupError(RuntimeError):
    """Node, npm or the pinned clients are not available; the message says what to do."""


def _lock_digest() -> str:
    return hashlib.sha256(PACKAGE_LOCK.read_bytes()).hexdigest()


def _node_env() -> dict[str, str]:
    # Only what node needs: no proxies, no credentials from the caller's environment.
    keep = ("PATH", "HOME", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["NO_UPDATE_NOTIFIER"] = "1"
    env["npm_config_update_notifier"] = "false"
    return env


def pinned_versions() -> dict[str, str]:
    dependencies: dict[str, str] = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    return dependencies


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise NodeSetupError(
            "node is not on PATH: the conformance suite runs Alibaba's official Node.js "
            "clients and cannot be skipped. Install Node.js >= "
            f"{MIN_NODE_MAJOR} and npm (`make node` does it on Debian/Ubuntu)."
        )
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < MIN_NODE_MAJOR:
        raise NodeSetupError(
            f"node {version or '(unknown version)'} is too old: the pinned clients need "
            f"Node.js >= {MIN_NODE_MAJOR}."
        )
    return node


def _version_mismatches() -> list[str]:
    """Pinned packages missing from node_modules or installed at another version."""
    found = []
    for name, version in pinned_versions().items():
        manifest = NODE_MODULES / name / "package.json"
        installed = json.loads(manifest.read_text())["version"] if manifest.is_file() else None
        if installed != version:
            found.append(f"{name} {installed or '(missing)'} (package.json pins {version})")
    return found


def _npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise NodeSetupError(
            "npm is not on PATH, so the pinned Node.js clients cannot be installed into "
            f"{NODE_MODULES}. Install npm (`make node`)."
        )
    # --ignore-scripts: none of the pinned packages needs an install script.
    done = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=HERE,
        env=_node_env(),
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise NodeSetupError(
            f"`npm ci` in {HERE} failed (exit {done.returncode}); the registry may be "
            f"unreachable.\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    STAMP.write_text(_lock_digest() + "\n")


def ensure_installed() -> str:
    """Install the pinned clients if needed (``npm ci``); return the node executable."""
    node = node_executable()
    current = STAMP.is_file() and STAMP.read_text().strip() == _lock_digest()
    if not current or _version_mismatches():
        _npm_ci()
    mismatches = _version_mismatches()
    if mismatches:
        raise NodeSetupError(
            f"after `npm ci` in {HERE} these clients are not as pinned: {'; '.join(mismatches)}"
        )
    return node


@dataclass(frozen=True)
class CheckResult:
    """What one run of ``checks.js`` reported."""

    check: str
    style: str | None
    exit_code: int
    ok: bool
    verdict: str  # "passed", "failed" (the check's own judgement) or "error" (an exception)
    reason: str
    seen: Any
    output: str

    def describe(self) -> str:
        return f"{self.check}[{self.style}] exit {self.exit_code}: {self.reason}\n{self.output}"


def run_check(node: str, check: str, style: str | None, target: dict[str, Any]) -> CheckResult:
    """Run one check against ``target`` (see ``checks.js`` for its fields)."""
    args = [node, str(CHECKS_JS), check] + ([style] if style else [])
    env = {**_node_env(), "CONFORMANCE_TARGET": json.dumps(target)}
    done = subprocess.run(
        args,
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
        check=False,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return CheckResult(
            check, style, done.returncode, False, "error", "no result line", None, output
        )
    report = json.loads(lines[-1])
    return CheckResult(
        check=report.get("check", ""),
        style=report.get("style"),
        exit_code=done.returncode,
        ok=bool(report.get("ok")),
        verdict=str(report.get("verdict", "")),
        reason=str(report.get("reason", "")),
        seen=report.get("seen"),
        output=output,
    )
