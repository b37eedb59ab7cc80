"""Adapters: the only modules that import cloud SDKs, each lazily.

A rejected sidecar never pays for importing the IoT SDK, and a ``waiting`` outcome never
pays for it either: the SDK is imported when the first IoT call is made.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloudCredentials:
    """An access key pair, with the STS token when it is temporary."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"CloudCredentials(access_key_id={self.access_key_id!r}, ...)"
