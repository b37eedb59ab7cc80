"""After publishing: the same document into the release's outcome object (OTA_RESULTS_PREFIX).

Final outcomes and ``waiting`` go to two different keys (:mod:`ota_release.results`), so
a ``waiting`` published late (a firmware event that found no sidecar, retried after the
sidecar's event reported ``created``) never replaces the final outcome. A final outcome
replaces the one before it only while it still reports the objects that are stored: just
before writing, each object the outcome names is looked up again (HEAD), and an outcome
about an overwritten or deleted upload is not written; the newer upload's own event
writes its outcome. docs/notifications.md, "Outcome objects", says what is left open.
"""

from __future__ import annotations

import logging

from ota_release.errors import PermanentError
from ota_release.notification import Notification
from ota_release.pairing import sidecar_candidates
from ota_release.pipeline.context import Release
from ota_release.pipeline.outcome import Result
from ota_release.results import normal_etag, outcome_key

logger = logging.getLogger("ota_release.pipeline")


def store_outcome(r: Release, result: Result) -> str | None:
    """Write ``result``'s published body to its outcome object; the key written, or None.

    Retried like publishing: a transient failure that outlives the retries is raised, so
    FC retries the invocation (which publishes again under the same ``message_id``, then
    writes). A permanent refusal (a role without oss:PutObject on the results prefix, a
    missing bucket) is logged and the invocation ends: the notification is out, and no
    retry can grant a permission.
    """
    outcomes, prefix = r.ports.outcomes, r.config.results_prefix
    if outcomes is None or prefix is None:
        return None
    note = result.notification
    key = outcome_key(prefix, r.release_key, note.outcome.value)
    if key is None:
        logger.warning(
            "no outcome object for %s: its key would be longer than OSS allows", r.release_key
        )
        return None
    changed = _changed_objects(r, note)
    if changed is not None:
        logger.info("outcome object %s not written: %s", key, changed, extra={"object_key": key})
        return None
    body = result.body.encode("utf-8")
    try:
        r.call(f"PutObject {key}", lambda: outcomes.put_outcome(note.bucket, key, body))
    except PermanentError as exc:
        logger.error(
            "could not write the outcome object %s (%s); the notification was published",
            key,
            exc.code,
            extra={"object_key": key, "outcome": "error"},
        )
        return None
    return key


#: Keys asked for in the one listing that checks a single-file release: the firmware, its
#: sidecars (one per suffix) and room for a few more keys that start with the firmware's.
_LISTING_LIMIT = 10


def _changed_objects(r: Release, note: Notification) -> str | None:
    """Why the outcome no longer reports the stored upload, or None when it still does."""
    named = {ref.key: ref.etag for ref in (note.firmware_file, note.sidecar_file) if ref}
    named.update({f.key: f.etag for f in note.files or () if f.etag})
    if not named and note.etag:
        named = {note.key: note.etag}
    if not named:
        return "it names no object by ETag, so no upload can be told by it"
    listing = _listed(r, note, named)
    stored = dict(listing or {})
    if listing is None:  # not one listing's worth: each object is looked up
        for key in named:
            info = r.head(note.bucket, key)
            if info is not None:
                stored[key] = info.etag
    for key, etag in named.items():
        if key not in stored:
            return f"{key} no longer exists"
        if normal_etag(stored[key]) != normal_etag(etag):
            return f"{key} was overwritten since (ETag {normal_etag(stored[key])} now)"
    return _second_sidecar(r, note, listing)


def _listed(r: Release, note: Notification, named: dict[str, str]) -> dict[str, str] | None:
    """The firmware and its sidecars as one ListObjectsV2 sees them (their keys all start
    with the firmware's); None when that does not cover them (a multi-file release, a
    ``waiting`` about one object, a long listing, a role without oss:ListObjects)."""
    firmware = note.firmware_file
    if firmware is None or note.files or not all(k.startswith(firmware.key) for k in named):
        return None
    try:
        listing = r.call(
            f"ListObjects {firmware.key}",
            lambda: r.ports.storage.list_keys(note.bucket, firmware.key, _LISTING_LIMIT),
        )
    except PermanentError:
        return None
    r.request_ids.add("oss", listing.request_id)
    return None if listing.truncated else dict(listing.etags)


def _second_sidecar(r: Release, note: Notification, listing: dict[str, str] | None) -> str | None:
    """A sidecar stored since this release paired its firmware with another one.

    Its own event judges the firmware with both sidecars (``rejected``: one sidecar per
    firmware), and that is the current outcome; this one, about the earlier pair, must
    not replace it when it happens to be written last. A ``listing`` of the firmware's
    keys already shows them; without one each candidate is looked up.
    """
    pairing = r.pairing
    if pairing is None or pairing.multi or note.firmware_file is None or not note.sidecar_file:
        return None
    used = note.sidecar_file.key
    for key in sidecar_candidates(note.firmware_file.key, r.config.sidecar_suffixes):
        if key == used or key in pairing.ambiguous:
            continue
        stored = key in listing if listing is not None else r.head(note.bucket, key)
        if stored:
            return f"a second sidecar {key} is stored now; its event reports the release"
    return None
