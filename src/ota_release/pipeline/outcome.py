"""The one place where a release's end (a :class:`Stop`) becomes its notification."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ota_release.errors import (
    DuplicateNameError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    PlatformError,
)
from ota_release.notification import (
    ErrorItem,
    FileRef,
    Notification,
    Outcome,
    ReleaseFileRef,
)
from ota_release.pipeline.context import ObjectChanged, Release, Stop
from ota_release.pipeline.sidecar_read import missing
from ota_release.ports import ObjectInfo, PublishReceipt

logger = logging.getLogger("ota_release.pipeline")


@dataclass
class Result:
    """The outcome of one object and the notification published for it."""

    outcome: Outcome
    key: str
    message_id: str
    notification: Notification
    receipt: PublishReceipt | None = None
    #: the published body, as it went out
    body: str = ""
    #: the outcome object written for it (pipeline/results.py), if any
    outcome_key: str | None = None


def is_invalid_input(error: PlatformError) -> bool:
    """Platform errors that blame the request's content (a ``rejected`` outcome): the
    adapters decide which codes those are, and raise InvalidRequestError for them."""
    return isinstance(error, InvalidRequestError)


def stop_for(r: Release, exc: Exception) -> Stop:
    """The stop that a service's final answer means; anything else is raised on.

    Before the sidecar is read, a refusal is the object's (``refused``); after, it is the
    release's (``refused the release``), a 404 means the firmware went away and a failed
    If-Match means it was overwritten. A DuplicateNameError is raised on: the name is
    taken but not listed yet, and a later attempt can judge it.
    """
    if isinstance(exc, DuplicateNameError) or not isinstance(exc, PermanentError | ObjectChanged):
        raise exc
    if r.spec is None:
        assert isinstance(exc, PermanentError)
        r.request_ids.add(exc.service, exc.request_id)
        return _refusal(exc, f"{exc.service} {exc.operation} refused: {exc.code}")
    if isinstance(exc, ObjectChanged):
        firmware = r.firmware
        return Stop(
            Outcome.FAILED,
            f"{firmware.key} was overwritten while it was being released; nothing was "
            "registered for it. The newer upload is released by its own event.",
            [
                ErrorItem(
                    "firmware",
                    "must not change while its release runs",
                    f"ETag {firmware.etag} when the release started; {exc.detail}",
                )
            ],
        )
    if isinstance(exc, NotFoundError):
        firmware = r.firmware
        return Stop(
            Outcome.FAILED,
            missing(exc, firmware.bucket, firmware.key),
            [
                ErrorItem(
                    "object",
                    "must exist when the function runs",
                    f"{exc.code}: {firmware.bucket}/{firmware.key}",
                )
            ],
        )
    r.request_ids.add(exc.service, exc.request_id)
    return _refusal(exc, f"{exc.service} {exc.operation} refused the release: {exc.code}")


def _refusal(exc: PermanentError, summary: str) -> Stop:
    """Permission, quota, a missing instance: ``rejected`` when it blames the content."""
    outcome = Outcome.REJECTED if is_invalid_input(exc) else Outcome.FAILED
    return Stop(outcome, summary, [ErrorItem(exc.operation, exc.code, exc.message)])


def notification(r: Release, stop: Stop) -> Notification:
    """Everything the release learnt, and how it ended."""
    record, pairing = r.record, r.pairing
    return Notification(
        outcome=stop.outcome,
        summary=stop.summary,
        bucket=record.bucket,
        key=r.key,
        size=record.size,
        etag=record.etag,
        event_name=record.event_name,
        event_time=record.event_time,
        firmware_file=_ref(pairing.firmware if pairing else None),
        sidecar_file=_ref(pairing.sidecar if pairing else None),
        spec=r.spec,
        package=stop.package,
        digest=r.digest,
        errors=stop.errors,
        request_ids=r.request_ids,
        sources=r.sources,
        verification=r.verification,
        files=_files(r),
        quota=r.quota,
    )


def _files(r: Release) -> list[ReleaseFileRef] | None:
    """A multi-file release's files, each as far as it is known (stored, digested)."""
    pairing, spec = r.pairing, r.spec
    if pairing is None or not pairing.multi or spec is None or spec.files is None:
        return None
    stored = dict(pairing.files)
    out = []
    for entry in spec.files:
        info, digest = stored.get(entry.name), r.file_digests.get(entry.name)
        out.append(
            ReleaseFileRef(
                name=entry.name,
                key=f"{pairing.folder}/{entry.name}",
                etag=info.etag if info else None,
                size=digest.size if digest else (info.size if info else None),
                sign=digest.sign if digest else None,
            )
        )
    return out


def _ref(info: ObjectInfo | None) -> FileRef | None:
    return FileRef(info.key, info.etag) if info is not None else None


def publish(r: Release, note: Notification) -> Result:
    """Publish the notification (retried), between the ``*_notify`` checkpoints."""
    r.checkpoint("before_notify", r.key)
    body = note.to_body(r.clock())
    receipt = r.call("PublishMessage", lambda: r.ports.notifier.publish(body, note.outcome.tag))
    r.checkpoint("during_notify", r.key)
    logger.info(
        "outcome %s for %s",
        note.outcome.value,
        r.key,
        extra={"outcome": note.outcome.value, "object_key": r.key, "message_id": note.message_id},
    )
    return Result(note.outcome, r.key, note.message_id, note, receipt, body)
