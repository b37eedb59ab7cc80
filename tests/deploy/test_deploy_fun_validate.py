"""template.yml passes Funcraft's own validator (`fun validate`, offline once installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUN = ["npx", "-y", "@alicloud/fun@3.6.24", "validate"]

pytestmark = pytest.mark.timeout(600)  # the first run installs fun into ~/.npm


def run_fun_validate(template: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("npx") is None:
        pytest.skip("node/npx not installed: cannot run `fun validate` (CI installs node)")
    return subprocess.run(
        [*FUN, "-t", str(template)],
        cwd=template.parent,
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )


def test_template_passes_fun_validate():
    proc = run_fun_validate(ROOT / "template.yml")

    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fun_validate_rejects_a_runtime_funcraft_does_not_know(tmp_path):
    # Evidence for docs/deploy.md: fun 3.6.24 refuses custom.debian10, hence `custom`.
    text = (
        (ROOT / "template.yml")
        .read_text()
        .replace("Runtime: custom\n", "Runtime: custom.debian10\n")
    )
    template = tmp_path / "template.yml"
    template.write_text(text)

    proc = run_fun_validate(template)

    assert proc.returncode != 0
    assert "Runtime" in proc.stdout + proc.stderr
