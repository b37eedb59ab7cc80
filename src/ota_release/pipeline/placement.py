"""Steps that read the firmware's bytes: hash them, and place them where IoT will fetch them.

The object is read at most once, pinned to the ETag the release started from: an ETag that
proves the MD5 needs no read at all; otherwise the staged copy is the read that yields the
digest, or (direct mode, or a package that already exists) one streamed GetObject.
"""

from __future__ import annotations

from dataclasses import dataclass

from ota_release import rules
from ota_release.digest import Digest, StreamHasher, etag_fast_path, prefetched
from ota_release.errors import TransientError
from ota_release.pipeline.context import ObjectChanged, Release
from ota_release.ports import ObjectInfo, StagedPackage
from ota_release.settings import UrlMode

#: ``rules.UPLOAD_FILE_SUFFIXES``, longest first so ``tar.gz`` wins over ``gz``; a key
#: ending in none of them is staged as ``bin``.
STAGED_SUFFIXES = tuple(sorted(rules.UPLOAD_FILE_SUFFIXES, key=len, reverse=True))


@dataclass(frozen=True)
class Placed:
    """Where IoT Platform will download the package, and the digest of the bytes there."""

    firmware_url: str
    digest: Digest


def read_digest(r: Release, info: ObjectInfo | None = None) -> Digest:
    """The digest from the ETag when it proves it, else one pinned streamed read.

    ``info`` is the object to read (a multi-file release's file); the firmware by default.
    """
    firmware, sign_method = info or r.firmware, r.release_spec.sign_method
    fast = etag_fast_path(firmware, sign_method)
    if fast is not None:
        return fast

    def stream_once() -> Digest:
        hasher = _hasher(r, firmware, sign_method)
        storage = r.ports.storage
        body = storage.open_stream(firmware.bucket, firmware.key, if_match=firmware.etag)
        r.request_ids.add("oss", body.request_id)
        try:
            for chunk in prefetched(body):
                hasher.update(chunk)
        finally:
            body.close()
        _raise_if_unlike(hasher, firmware, "GetObject")
        return hasher.result()

    return r.pinned(f"GetObject {firmware.key}", stream_once)


def place(r: Release, info: ObjectInfo | None = None) -> Placed:
    """The URL to register: a staged copy, or (direct mode) the object's own URL.

    ``info`` is the object to place (a multi-file release's file); the firmware by default.
    """
    if r.config.url_mode is UrlMode.DIRECT:
        return _direct(r, info or r.firmware)
    return _stage(r, info or r.firmware)


def _direct(r: Release, firmware: ObjectInfo) -> Placed:
    digest = read_digest(r, firmware)
    # Direct mode cannot pin its URL: check the object is still the one hashed.
    now = r.head(firmware.bucket, firmware.key)
    if now is None:
        raise ObjectChanged("the object has since been deleted")
    if now.etag != firmware.etag:
        raise ObjectChanged(f"ETag {now.etag} now")
    url = r.ports.storage.object_url(firmware.bucket, firmware.key, r.config.signed_url_ttl)
    return Placed(url, digest)


def _stage(r: Release, firmware: ObjectInfo) -> Placed:
    """Stage the object (one port operation) in one pinned read, hashing as it goes.

    Each attempt is a new ``stage``, which asks for its own upload ticket (valid for 60
    seconds): a retry never sends an expired policy, and gets a fresh hasher.
    """
    spec = r.release_spec
    suffix = staged_suffix(firmware.key)

    def attempt() -> tuple[StagedPackage, Digest]:
        hasher = _hasher(r, firmware, spec.sign_method)
        staged = r.ports.staging.stage(
            firmware, suffix, spec.iot_instance_id, hasher.update, r.request_ids.add
        )
        _raise_if_unlike(hasher, firmware, "PostObject")
        return staged, hasher.result()

    staged, digest = r.pinned(f"stage {firmware.key}", attempt)
    return Placed(staged.firmware_url, digest)


def staged_suffix(key: str) -> str:
    """The FileSuffix to ask GenerateOTAUploadURL for."""
    name = key.rsplit("/", 1)[-1].lower()
    for suffix in STAGED_SUFFIXES:
        if name.endswith("." + suffix):
            return suffix
    return "bin"


def _hasher(r: Release, firmware: ObjectInfo, sign_method: str) -> StreamHasher:
    return StreamHasher(
        sign_method,
        also_md5=etag_fast_path(firmware, "MD5") is not None,
        crc64=r.config.verify_crc64 and firmware.crc64 is not None,
    )


def _raise_if_unlike(hasher: StreamHasher, firmware: ObjectInfo, operation: str) -> None:
    """Bytes that disagree with the pinned HEAD were damaged in transit: read them again.

    The read is pinned with If-Match, so a replaced object fails the precondition instead
    of arriving here; a mismatch under the same ETag is the transport's fault.
    """
    problems = hasher.differences(firmware)
    if problems:
        raise TransientError("oss", operation, "IntegrityError", "; ".join(problems))
