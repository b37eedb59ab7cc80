"""How the ``status`` command words IoT Platform's OTA answers.

The queries themselves are the function's own adapter's public methods
(``IotOtaPlatform.find_firmware`` and ``IotOtaPlatform.query_firmware``), so the CLI
shares its client, error classification and Success=false handling.
"""

from __future__ import annotations

from typing import Any

#: QueryOTAFirmware's Status values, in words.
STATUS_WORDS = {
    -1: "no verification needed",
    0: "unverified",
    1: "verified",
    2: "verifying",
    3: "verification failed",
}
TYPE_WORDS = {0: "full", 1: "differential"}


def status_words(status: Any) -> str:
    try:
        return STATUS_WORDS.get(int(status), f"unknown status {status}")
    except (TypeError, ValueError):
        return "unknown"
