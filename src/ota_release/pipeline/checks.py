"""Steps that refuse a release on what is already known, before anything is spent."""

from __future__ import annotations

from ota_release import rules
from ota_release.digest import Digest, etag_fast_path
from ota_release.notification import ErrorItem, Outcome
from ota_release.pipeline.context import Release, Stop
from ota_release.settings import UrlMode


def check_size(r: Release) -> None:
    """IoT Platform's size limits, decided by the HEAD alone."""
    firmware = r.firmware
    violations = rules.check_size(firmware.size)
    if violations:
        raise Stop(
            Outcome.REJECTED,
            f"{firmware.key} is {firmware.size} bytes; IoT Platform accepts "
            f"1 to {rules.FIRMWARE_SIZE_MAX} bytes",
            [ErrorItem.of(v) for v in violations],
        )


def check_direct_key(r: Release) -> None:
    """In direct mode the object's own URL is registered: it must name this object."""
    if r.config.url_mode is not UrlMode.DIRECT:
        return
    key = r.firmware.key
    problem = direct_url_key_problem(key)
    if problem is not None:
        raise Stop(
            Outcome.REJECTED,
            f"{key} cannot be served by its own URL: {problem}",
            [ErrorItem("firmware_key", problem, key)],
        )


def check_etag_digest(r: Release) -> None:
    """When the ETag proves the MD5 (a plain upload), check the declaration with no read."""
    fast = etag_fast_path(r.firmware, r.release_spec.sign_method)
    if fast is not None:
        check_declared(r, fast)


def check_declared(r: Release, digest: Digest) -> None:
    """The bytes must be what the sidecar declares (size, sign).

    A rejection carries the digest it compared; otherwise the caller decides when the
    digest becomes the release's (``Release.digest``).
    """
    spec = r.release_spec
    mismatches = []
    if spec.size is not None and spec.size != digest.size:
        mismatches.append(
            ErrorItem(
                "size",
                "must equal the firmware file's size",
                f"declared {spec.size}, file has {digest.size}",
            )
        )
    if spec.sign is not None and spec.sign != digest.sign:
        mismatches.append(
            ErrorItem(
                "sign",
                f"must equal the {spec.sign_method} digest of the firmware file",
                f"declared {spec.sign}, file has {digest.sign}",
            )
        )
    if mismatches:
        r.digest = digest
        raise Stop(
            Outcome.REJECTED,
            f"{r.firmware.key} does not match what its sidecar declares",
            mismatches,
        )


def direct_url_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be handed to IoT as its own URL, or None.

    A ``.`` or ``..`` path segment is removed by every URL normaliser (RFC 3986 section
    5.2.4), so devices would download another object than the one hashed. Percent-encoding
    the dots does not help: RFC 3986 section 6.2.2.2 lets clients decode unreserved
    characters before normalising. Such keys are refused (docs/firmware-url.md).
    """
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "no '.' or '..' path segment (URL clients would normalise it to another object)"
    return None
