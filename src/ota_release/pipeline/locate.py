"""Steps that find the release's two objects and read its sidecar."""

from __future__ import annotations

from ota_release.defaults import is_defaults_key
from ota_release.errors import NotFoundError
from ota_release.notification import ErrorItem, Outcome
from ota_release.pairing import Pairing, find_pair, role_of
from ota_release.pipeline.context import Release, Stop
from ota_release.pipeline.files import pair_folder
from ota_release.pipeline.sidecar_read import missing, read_sidecar_bytes, valid_spec
from ota_release.ports import ObjectInfo
from ota_release.sidecar import FILES_KEY, ReleaseSpec


def find_trigger(r: Release) -> ObjectInfo:
    """HEAD the object the event names (as delivered, then percent-decoded)."""
    record = r.record
    try:
        for candidate in record.key_candidates:
            trigger = r.head(record.bucket, candidate)
            if trigger is not None:
                r.key = candidate
                check_not_superseded(r, trigger)
                return trigger
    except NotFoundError as exc:  # the bucket itself is missing (NoSuchBucket)
        raise Stop(
            Outcome.FAILED,
            missing(exc, record.bucket, record.key),
            [ErrorItem("bucket", "must exist", record.bucket)],
        ) from exc
    raise Stop(
        Outcome.FAILED,
        f"{record.key} no longer exists; it was deleted before it could be processed",
        [ErrorItem("object", "must exist when the function runs", record.key)],
    )


def _etag(value: str) -> str:
    return value.strip().strip('"').upper()


def check_not_superseded(r: Release, trigger: ObjectInfo) -> None:
    """Stop when the object now holds another upload than the one this event reports.

    OSS delivers events asynchronously: an event can arrive after its object was
    overwritten. Releasing what is there now would report the newer bytes under the older
    upload's event; instead the older upload ends here, said so, and the newer one is
    released by its own event. An event without an ETag is judged as of now.
    """
    reported = r.record.etag
    if not reported or not trigger.etag or _etag(reported) == _etag(trigger.etag):
        return
    raise Stop(
        Outcome.FAILED,
        f"{r.key} was overwritten before this event was processed; nothing was registered "
        "for the upload it reports. The newer upload is released by its own event.",
        [
            ErrorItem(
                "object",
                "must still hold the upload the event reports",
                f"ETag {_etag(reported)} in the event; {_etag(trigger.etag)} now",
            )
        ],
    )


def pair(r: Release, trigger: ObjectInfo) -> Pairing:
    """Find the other half; stop unless both halves, and only one sidecar, are there."""
    _refuse_defaults_as_firmware(r)
    bucket = r.record.bucket
    r.pairing = found = find_pair(
        lambda key: r.head(bucket, key), trigger, r.config.sidecar_suffixes
    )
    if found.folder is not None and found.refusal is None:
        # A sidecar whose stem is no object, or a file with only its folder's sidecar:
        # the sidecar says whether this is a multi-file release.
        r.pairing = found = pair_folder(r, found)
    if found.refusal is not None:
        raise Stop(
            Outcome.REJECTED,
            f"{r.key} can never be paired: {found.refusal['rule']}",
            [ErrorItem(**found.refusal)],
        )
    if found.ambiguous:
        firmware_key = found.firmware.key if found.firmware else r.key
        raise Stop(
            Outcome.REJECTED,
            f"{firmware_key} has more than one sidecar; keep exactly one",
            [ErrorItem("sidecar", "exactly one sidecar per firmware file", list(found.ambiguous))],
        )
    if not found.complete:
        raise Stop(
            Outcome.WAITING,
            f"{r.key} is stored; waiting for {_describe_missing(found)} to complete the release",
        )
    return found


def _refuse_defaults_as_firmware(r: Release) -> None:
    """A sidecar naming a folder defaults file as its firmware could never be released:
    that file's own events judge it as defaults (docs/sidecar.md, "Folder defaults")."""
    role = role_of(r.key, r.config.sidecar_suffixes)
    if role.is_sidecar and is_defaults_key(role.firmware_key):
        rule = "a sidecar must not name a folder defaults file (.ota-defaults.*) as its firmware"
        raise Stop(
            Outcome.REJECTED,
            f"{r.key} can never be paired: {rule}",
            [ErrorItem("key", rule, r.key)],
        )


def read_sidecar(r: Release, sidecar: ObjectInfo) -> ReleaseSpec:
    """The sidecar read and validated; a missing, oversized or invalid one stops here."""
    firmware = r.firmware
    # The sidecar over its folder defaults (none: the sidecar alone), by the CLI's rules.
    spec = valid_spec(r, read_sidecar_bytes(r, sidecar), sidecar, firmware.key)
    if spec.files is not None:
        raise Stop(
            Outcome.REJECTED,
            f"the sidecar {sidecar.key} lists files, but {firmware.key} is an object",
            [
                ErrorItem(
                    FILES_KEY,
                    "a multi-file release is a folder: no object may be named like its "
                    "sidecar's stem (remove the object, or the files list)",
                    firmware.key,
                )
            ],
        )
    r.spec = spec
    return spec


def _describe_missing(pairing: Pairing) -> str:
    """``its sidecar p/cam.bin.ota.json (or .ota.yaml, .ota.yml)`` / ``its firmware p/cam.bin``."""
    if pairing.multi:
        listed = len(pairing.missing) + len(pairing.files)
        return (
            f"{len(pairing.missing)} of the {listed} files of the release {pairing.folder} "
            f"({', '.join(pairing.missing)})"
        )
    if pairing.firmware is None:
        return f"its firmware {pairing.missing[0]}"
    first, *rest = pairing.missing
    others = [key[len(pairing.firmware.key) :] for key in rest]
    folder = pairing.firmware.key.rpartition("/")[0]
    # A file may also be one of a multi-file release's, whose sidecar is its folder's.
    release = f", or its release folder's sidecar {folder}{first[len(pairing.firmware.key) :]}"
    return (
        f"its sidecar {first}"
        + (f" (or {', '.join(others)})" if others else "")
        + (release + " listing it" if folder else "")
    )
