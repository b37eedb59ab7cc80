"""Suite-wide guards: nothing a test starts may outlive it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) >= 2 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True, scope="module")
def _no_leaked_processes() -> Iterator[None]:
    """Fail the module whose tests left a child process (an FC instance, a server) running."""
    before = set(_children(os.getpid()))
    yield
    leaked = set(_children(os.getpid())) - before
    assert not leaked, f"processes left running by this module: {sorted(leaked)}"
