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


#: Outcomes that report a release (both halves' events agree on them), not one object.
RELEASE_OUTCOMES = frozenset(
    {Outcome.CREATED, Outcome.ALREADY_REGISTERED, Outcome.CONFLICT, Outcome.REJECTED}
)

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
        """Deterministic: equal :meth:`identity_content` gives an equal id, and only then.

        A retried invocation or the other half of a release re-publishes the same fact
        under the same id, so a subscriber can drop the duplicate; two notifications that
        say different things never share one (docs/notifications.md, "Message identity").
        """
        text = json.dumps(self.identity_content(), sort_keys=True, ensure_ascii=True, default=str)
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]

    def identity_content(self) -> dict[str, Any]:
        """What the id is a digest of: the body without the facts of one delivery.

        Left out: ``message_id``, ``published_at``, ``request_ids`` (and any of them
        quoted in an error or the summary), ``errors_dropped`` (derived), the ``event``,
        the object's ``size``, the digest's ``source`` and the package's ``utc_create``
        (CreateOTAFirmware and ListOTAFirmware may spell it differently). ``identity``
        names what the fact is about: for a release-level outcome, both objects' keys and
        ETags instead of the triggering object, so both halves' events agree.
        """
        rids = _request_id_values(self.request_ids)
        content: dict[str, Any] = {
            "schema": SCHEMA,
            "outcome": self.outcome.value,
            "bucket": self.bucket,
            "about": list(self.identity) or [self.key, self.etag or ""],
            # SDK messages quote the request id of the refused call: mask them here.
            "summary": _mask_request_ids(self.summary, rids),
            "firmware_key": self.firmware_key,
            "sidecar_key": self.sidecar_key,
            "spec": self.spec,
            "firmware": _without(self.firmware, "utc_create"),
            # How the digest was learnt (a stream, or an ETag) is not part of the fact: a
            # crash-retry that finds its own package reads the ETag where the first try
            # streamed, and must publish under the same id.
            "digest": _without(self.digest, "source"),
            "errors": _mask_request_ids(self.errors, rids),
        }
        return content

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


def _without(value: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    return None if value is None else {k: v for k, v in value.items() if k != name}


#: Shorter "request ids" are not masked: they could match ordinary words by chance.
MIN_MASKED_REQUEST_ID = 8


def _request_id_values(request_ids: dict[str, Any]) -> list[str]:
    """Every request id in ``request_ids`` (values are strings or lists of them)."""
    found: list[str] = []
    for value in request_ids.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and len(item) >= MIN_MASKED_REQUEST_ID:
                found.append(item)
    return sorted(set(found), key=len, reverse=True)


def _mask_request_ids(value: Any, ids: list[str]) -> Any:
    """``value`` with each of ``ids`` replaced in every string (SDK messages quote them)."""
    if not ids:
        return value
    if isinstance(value, str):
        for rid in ids:
            value = value.replace(rid, "<request-id>")
        return value
    if isinstance(value, list):
        return [_mask_request_ids(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _mask_request_ids(v, ids) for k, v in value.items()}
    return value


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
