"""The outcome message published on the MNS topic (schema in docs/notifications.md)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

SCHEMA = "ota-release/notification/v1"
#: MNS rejects message bodies over 64 KB; keep a margin for the XML envelope.
MAX_MESSAGE_BYTES = 64 * 1024 - 1024


class Outcome(str, Enum):
    """What happened to one uploaded object. Published as the MNS MessageTag."""

    CREATED = "created"
    ALREADY_REGISTERED = "already_registered"
    WAITING = "waiting"
    REJECTED = "rejected"
    CONFLICT = "conflict"
    FAILED = "failed"

    @property
    def tag(self) -> str:
        """The MNS MessageTag: the outcome, shortened where MNS's 16-character limit bites.

        MNS (and its SDK, before sending) refuses tags longer than 16 characters, so
        ``already_registered`` is tagged ``already_reg``; the body carries the full name.
        """
        return MESSAGE_TAGS.get(self.value, self.value)


#: Outcomes whose name is longer than the 16 characters a MessageTag may hold.
MESSAGE_TAGS = {"already_registered": "already_reg"}
MAX_TAG_LENGTH = 16


@dataclass
class Notification:
    """Everything a subscriber needs to act on one outcome."""

    outcome: Outcome
    summary: str
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    event_name: str | None = None
    event_time: str | None = None
    firmware_key: str | None = None
    sidecar_key: str | None = None
    spec: dict[str, Any] | None = None
    firmware: dict[str, Any] | None = None
    digest: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    request_ids: dict[str, Any] = field(default_factory=dict)
    identity: tuple[str, ...] = ()

    @property
    def message_id(self) -> str:
        """Deterministic: the same fact about the same upload always gets the same id.

        Built from the outcome, the objects (key and ETag) and, once registered, the
        firmware id, so a retried invocation re-publishes under the same id and a
        subscriber can drop the duplicate.
        """
        parts = (self.outcome.value, self.bucket, *self.identity)
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]

    def to_body(self, now: datetime | None = None) -> str:
        """The JSON body, trimmed to fit MNS's size limit."""
        now = now or datetime.now(timezone.utc)
        message: dict[str, Any] = {
            "schema": SCHEMA,
            "message_id": self.message_id,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "object": {
                "bucket": self.bucket,
                "key": self.key,
                "size": self.size,
                "etag": self.etag,
            },
            "event": {"name": self.event_name, "time": self.event_time},
            "firmware_key": self.firmware_key,
            "sidecar_key": self.sidecar_key,
            "spec": self.spec,
            "firmware": self.firmware,
            "digest": self.digest,
            "errors": list(self.errors),
            "errors_dropped": 0,
            "request_ids": self.request_ids,
            "published_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        return fit_message(message)


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)


def fit_message(message: dict[str, Any], limit: int = MAX_MESSAGE_BYTES) -> str:
    """Drop errors from the end (counting them) until the body fits in ``limit`` bytes.

    Long strings in the spec (a 4096-character Udi, say) are shortened as a last resort.
    """
    body = _dump(message)
    if len(body.encode("utf-8")) <= limit:
        return body
    errors: list[Any] = message["errors"]
    dropped = 0
    while errors and len(body.encode("utf-8")) > limit:
        cut = max(1, len(errors) // 4)
        del errors[-cut:]
        dropped += cut
        message["errors_dropped"] = dropped
        body = _dump(message)
    if len(body.encode("utf-8")) > limit and message.get("spec"):
        spec = dict(message["spec"])
        for k, v in spec.items():
            if isinstance(v, str) and len(v) > 256:
                spec[k] = v[:256] + f"... ({len(v)} characters, truncated)"
        message["spec"] = spec
        body = _dump(message)
    if len(body.encode("utf-8")) > limit:
        message["summary"] = message["summary"][:512]
        body = _dump(message)
    return body
