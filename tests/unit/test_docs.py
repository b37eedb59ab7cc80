"""The docs quote the rules module, so a changed rule must change docs/sidecar.md too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ota_release.rules import RULES_TABLE

SIDECAR_DOC = Path(__file__).resolve().parents[2] / "docs" / "sidecar.md"


@pytest.mark.parametrize("api_name", sorted(RULES_TABLE))
def test_every_rule_is_stated_in_the_sidecar_reference(api_name: str) -> None:
    text = SIDECAR_DOC.read_text(encoding="utf-8")
    row = f"| `{api_name}` | {RULES_TABLE[api_name]} |"
    assert row in text, f"docs/sidecar.md lacks the current rule for {api_name}: {row}"
