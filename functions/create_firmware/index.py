"""Function Compute entry point (built-in Python runtime: handler ``index.handler``).

Thin on purpose: everything a test wants to reach lives in ``ota_release.function``.
"""

from __future__ import annotations

from typing import Any

from ota_release.function import handle_json


def handler(event: bytes, context: Any) -> str:
    """Turn an OSS object-created event into registered firmware and notifications."""
    return handle_json(event, context)
