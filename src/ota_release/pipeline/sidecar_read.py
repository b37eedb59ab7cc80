"""Reading a release's sidecar: its bytes, and its spec with the folder defaults applied.

One place for both kinds of release: a single-file sidecar (:mod:`.locate`) and a release
folder's (:mod:`.files`) are read, refused and validated alike.
"""

from __future__ import annotations

from ota_release.errors import NotFoundError
from ota_release.notification import ErrorItem, Outcome
from ota_release.pipeline.context import Release, Stop
from ota_release.pipeline.folder_defaults import effective_sidecar
from ota_release.ports import ObjectInfo, ObjectTooLarge
from ota_release.sidecar import MAX_SIDECAR_BYTES, ReleaseSpec


def read_sidecar_bytes(r: Release, sidecar: ObjectInfo) -> bytes:
    """The sidecar's bytes; a deleted one ends ``failed``, an oversized one ``rejected``."""
    bucket = sidecar.bucket
    try:
        read = r.call(
            f"GetObject {sidecar.key}",
            lambda: r.ports.storage.read_small(bucket, sidecar.key, MAX_SIDECAR_BYTES),
        )
    except NotFoundError as exc:
        raise Stop(
            Outcome.FAILED,
            missing(exc, bucket, f"the sidecar {sidecar.key}"),
            [ErrorItem("sidecar", "must exist when the function runs", sidecar.key)],
        ) from exc
    except ObjectTooLarge as exc:
        rule = f"must be at most {MAX_SIDECAR_BYTES} bytes"
        raise Stop(
            Outcome.REJECTED,
            "the sidecar is too large",
            [ErrorItem("sidecar", rule, f"{sidecar.size} bytes")],
        ) from exc
    r.request_ids.add("oss", read.request_id)
    return read.data


def valid_spec(r: Release, raw: bytes, sidecar: ObjectInfo, firmware_key: str) -> ReleaseSpec:
    """The sidecar over its folder defaults, validated; ``rejected`` with every problem."""
    parsed = effective_sidecar(r, raw, sidecar.key, firmware_key)
    if parsed.spec is None:
        raise Stop(
            Outcome.REJECTED,
            f"the sidecar {sidecar.key} has {len(parsed.errors)} problem(s)",
            [ErrorItem.of(v) for v in parsed.errors],
        )
    return parsed.spec


def missing(exc: NotFoundError, bucket: str, what: str) -> str:
    """What a 404 means, by its code: the bucket and the object are different stories."""
    if exc.code == "NoSuchBucket":
        return (
            f"the bucket {bucket} does not exist (NoSuchBucket), so {what} cannot be read; "
            "check the trigger's bucket and the function's OSS endpoint and region"
        )
    return f"{what} no longer exists; it was deleted before it could be processed"
