"""Folder defaults in the pipeline: read them from OSS for a release, and judge an
uploaded defaults file (docs/sidecar.md, "Folder defaults").

The resolution itself is :mod:`ota_release.defaults`, shared with the CLI; this module
only gives it a reader of the watched bucket. Defaults are read only when a release's
sidecar is read (never for ``waiting``), one GetObject per defaults file name and folder
from the watched prefix down to the sidecar's folder; the request ids of the reads that
found a file are kept with the release's. An uploaded defaults file is judged by
:mod:`ota_release.pipeline.defaults_upload`.
"""

from __future__ import annotations

from collections.abc import Collection

from ota_release.defaults import DEFAULTS_NAMES, NamesIn, Reader, effective_spec, resolve
from ota_release.errors import NotFoundError, PermanentError
from ota_release.pipeline.context import Release
from ota_release.sidecar import MAX_SIDECAR_BYTES, SidecarResult


def storage_reader(r: Release) -> Reader:
    """Read a key of the release's bucket: its bytes, or None when there is no such object."""
    bucket = r.record.bucket

    def read(key: str) -> bytes | None:
        try:
            found = r.call(
                f"GetObject {key}",
                lambda: r.ports.storage.read_small(bucket, key, MAX_SIDECAR_BYTES),
            )
        except NotFoundError as exc:
            if exc.code == "NoSuchBucket":
                raise
            return None
        r.request_ids.add("oss", found.request_id)
        return found.data

    return read


#: The defaults file names share this start, so one listing per folder finds them all.
_DEFAULTS_STEM = ".ota-defaults."


def storage_names(r: Release) -> NamesIn:
    """The defaults file names a folder of the release's bucket holds: one ListObjectsV2.

    A listing OSS refuses (a role without oss:ListObjects) is no reason to fail a
    release: the names are then read one by one, as before listings were used.
    """
    bucket = r.record.bucket

    def names_in(folder: str) -> Collection[str] | None:
        prefix = folder + _DEFAULTS_STEM
        try:
            listed = r.call(
                f"ListObjects {prefix}",
                lambda: r.ports.storage.list_keys(bucket, prefix, len(DEFAULTS_NAMES) + 1),
            )
        except PermanentError as exc:
            if exc.code == "NoSuchBucket":
                raise
            return None
        r.request_ids.add("oss", listed.request_id)
        return {key[len(folder) :] for key in listed.etags}

    return names_in


def effective_sidecar(r: Release, raw: bytes, sidecar_key: str, firmware_key: str) -> SidecarResult:
    """The sidecar with its folder defaults applied; ``r.sources`` says where each value
    came from (only when a defaults file applies)."""
    found = resolve(storage_reader(r), sidecar_key, r.config.prefix, storage_names(r))
    effective = effective_spec(
        raw,
        sidecar_key=sidecar_key,
        firmware_key=firmware_key,
        defaults=found,
        default_product_key=r.config.product_key,
        default_iot_instance_id=r.config.iot_instance_id,
    )
    if found.files or found.errors:
        r.sources = effective.sources
    return effective.result
