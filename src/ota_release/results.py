"""Outcome objects: where the function leaves each release's outcome for its uploader.

After publishing a notification the function writes the same JSON document into the
bucket the upload came to, under ``OTA_RESULTS_PREFIX`` (outside the watched prefix, so
the trigger never fires on it). One key per release holds its current final outcome, a
second one its ``waiting`` progress, so a ``waiting`` can never replace a final outcome
(docs/notifications.md, "Outcome objects"):

* ``<results prefix><release key>.json``: ``created``, ``already_registered``,
  ``rejected``, ``conflict``, ``failed``;
* ``<results prefix><release key>.waiting``: ``waiting``.

A final key always ends in ``.json`` and a waiting key in ``.waiting``, so no release's
final key is another release's waiting key, whatever the keys are.

The uploader tells *its* upload's outcome from an older one of the same key by the
ETags its PutObject calls answered (:func:`is_about_upload`). The function, the CLI and
the soak all use this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ota_release.events import OSS_MAX_KEY_BYTES, key_bytes

FINAL_SUFFIX = ".json"
WAITING_SUFFIX = ".waiting"
#: Outcomes that end a release for its uploader (the others: ``waiting``).
FINAL_OUTCOMES = frozenset({"created", "already_registered", "rejected", "conflict", "failed"})
#: Final outcomes that mean the release is registered (``upload --wait`` exits 0 on them).
SUCCESS_OUTCOMES = frozenset({"created", "already_registered"})
#: How far an event's time may lie before the uploader's own clock reading of its upload
#: (OSS's Date header has whole seconds; eventTime has milliseconds).
EVENT_TIME_SLACK = timedelta(seconds=2)


def final_key(results_prefix: str, release_key: str) -> str:
    """Where a release's final outcome is kept."""
    return f"{results_prefix}{release_key}{FINAL_SUFFIX}"


def waiting_key(results_prefix: str, release_key: str) -> str:
    """Where a release's ``waiting`` progress is kept."""
    return f"{results_prefix}{release_key}{WAITING_SUFFIX}"


def outcome_key(results_prefix: str, release_key: str, outcome: str) -> str | None:
    """The key this outcome goes to; None when it would be longer than OSS allows."""
    if outcome in FINAL_OUTCOMES:
        key = final_key(results_prefix, release_key)
    else:
        key = waiting_key(results_prefix, release_key)
    return key if key_bytes(key) <= OSS_MAX_KEY_BYTES else None


def fits(results_prefix: str, release_key: str) -> bool:
    """Whether both outcome keys of a release fit OSS's key limit."""
    longest = max(FINAL_SUFFIX, WAITING_SUFFIX, key=len)
    return key_bytes(f"{results_prefix}{release_key}{longest}") <= OSS_MAX_KEY_BYTES


def normal_etag(value: object) -> str:
    """An ETag as compared here: without quotes, upper case."""
    return str(value or "").strip().strip('"').upper()


@dataclass(frozen=True)
class Upload:
    """What the uploader knows of its upload: each object's key and ETag, the request ids
    OSS answered its uploads with, and when."""

    etags: Mapping[str, str]
    #: x-oss-request-id of each upload's answer; OSS's event for an upload carries it
    #: (``responseElements.requestId``), and the notification as ``request_ids.oss_event``
    request_ids: frozenset[str] = frozenset()
    #: the earliest time (OSS's clock, the PutObject answer's Date) of the upload, or None
    not_before: datetime | None = None


def refs(doc: Mapping[str, Any]) -> dict[str, str]:
    """The objects (key -> ETag) an outcome document names, as far as it knows them."""
    found: dict[str, str] = {}
    obj = doc.get("object") or {}
    if obj.get("key") and obj.get("etag"):
        found[str(obj["key"])] = normal_etag(obj["etag"])
    for half in ("firmware", "sidecar"):
        key, etag = doc.get(f"{half}_key"), doc.get(f"{half}_etag")
        if key and etag:
            found[str(key)] = normal_etag(etag)
    for entry in doc.get("files") or ():  # a multi-file release's files
        if isinstance(entry, Mapping) and entry.get("key") and entry.get("etag"):
            found[str(entry["key"])] = normal_etag(entry["etag"])
    return found


def is_about_upload(doc: Mapping[str, Any], upload: Upload) -> bool:
    """Whether ``doc`` reports this upload (not an older one of the same keys).

    Every object the document names with an ETag must be one of the upload's, with the
    upload's ETag, and it must name at least one. An identical re-upload has the same
    ETags as the original, so the event the document answers must also be one of this
    upload's: by its OSS request id when both sides know it, else by not being older
    than the upload.
    """
    named = refs(doc)
    mine = {key: normal_etag(etag) for key, etag in upload.etags.items()}
    if not named or any(mine.get(key) != etag for key, etag in named.items()):
        return False
    event_request = (doc.get("request_ids") or {}).get("oss_event")
    if upload.request_ids and event_request:
        return event_request in upload.request_ids
    if upload.not_before is None:
        return True
    event_time = _parse_time((doc.get("event") or {}).get("time"))
    return event_time is None or event_time >= upload.not_before - EVENT_TIME_SLACK


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
