"""Multi-file releases: a folder of files plus the sidecar named after it.

``firmware/acme/cam-2.0.0.ota.json`` with a ``files`` list describes the files stored
under ``firmware/acme/cam-2.0.0/``. The release completes when the sidecar and every
listed file are stored, in any order; every file is then checked, digested and placed
(one upload ticket each) and the package is registered in one CreateOTAFirmware call with
MultiFiles. Nothing is registered unless every file got that far (docs/sidecar.md,
"Multi-file releases").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from ota_release import rules
from ota_release.digest import Digest, etag_fast_path
from ota_release.errors import NotFoundError
from ota_release.firmware_request import MultiFile
from ota_release.notification import ErrorItem, Outcome, PackageRef
from ota_release.pairing import Pairing, sidecar_candidates
from ota_release.pipeline.checks import direct_url_key_problem
from ota_release.pipeline.context import ObjectChanged, Release, Stop
from ota_release.pipeline.placement import Placed, place, read_digest
from ota_release.pipeline.registry import create_request, find_existing, judge_existing
from ota_release.pipeline.sidecar_read import read_sidecar_bytes, valid_spec
from ota_release.ports import ObjectInfo
from ota_release.rules import MULTI_FILES
from ota_release.settings import UrlMode
from ota_release.sidecar import (
    FILES_KEY,
    ReleaseSpec,
    load_document,
    sidecar_format,
)

T = TypeVar("T")


# Pairing the folder ----------------------------------------------------------------------------


def pair_folder(r: Release, found: Pairing) -> Pairing:
    """Read the folder's sidecar; for a multi-file one, look up every file it lists.

    ``found`` is a sidecar whose stem is no object, or a file with no sidecar of its own
    and a sidecar for its folder. A sidecar without ``files`` is a single-file one, and
    ``found`` stands as it was (waiting for its firmware, or for the file's own sidecar).
    """
    assert found.folder is not None
    if found.firmware is not None and len(found.folder_sidecars) > 1:
        _ambiguous(found.folder, [i.key for i in found.folder_sidecars])
    sidecar = found.sidecar if found.firmware is None else found.folder_sidecars[0]
    assert sidecar is not None
    r.pairing = replace(found, sidecar=sidecar)
    try:
        raw = read_sidecar_bytes(r, sidecar)
        doc, problems = load_document(raw, sidecar_format(sidecar.key))
    except Stop as stop:
        if found.firmware is None and stop.outcome is Outcome.REJECTED:
            return replace(found, folder=None)  # too large: as unreadable, below
        raise
    if problems and found.firmware is None:
        # The sidecar's own event: unreadable, it is taken for a single-file sidecar that
        # waits for its firmware (whose event reports the problems), as before.
        return replace(found, folder=None)
    if problems:
        raise Stop(
            Outcome.REJECTED,
            f"the sidecar {sidecar.key} cannot be read as a release",
            [ErrorItem.of(v) for v in problems],
        )
    if FILES_KEY not in doc and MULTI_FILES not in doc:  # (MultiFiles: refused, naming it)
        return replace(found, folder=None, folder_sidecars=())
    r.spec = valid_spec(r, raw, sidecar, found.folder)
    return _gather(r, found, sidecar, found.folder, r.spec)


def _ambiguous(folder: str, keys: list[str]) -> None:
    raise Stop(
        Outcome.REJECTED,
        f"the release folder {folder}/ has more than one sidecar; keep exactly one",
        [ErrorItem("sidecar", "exactly one sidecar per release folder", keys)],
    )


def _gather(
    r: Release, found: Pairing, sidecar: ObjectInfo, folder: str, spec: ReleaseSpec
) -> Pairing:
    """The multi-file pairing: which listed files are stored, which are still missing."""
    assert spec.files is not None
    trigger = found.firmware
    names = [f.name for f in spec.files]
    if trigger is not None and trigger.key[len(folder) + 1 :] not in names:
        _not_listed(trigger, sidecar)
    if trigger is None:  # the sidecar's event: are there other sidecars for the folder?
        others = sidecar_candidates(folder, r.config.sidecar_suffixes)
        present = [sidecar if k == sidecar.key else r.head(sidecar.bucket, k) for k in others]
        keys = [i.key for i in present if i is not None]
        if len(keys) > 1:
            _ambiguous(folder, keys)
    stored: list[tuple[str, ObjectInfo]] = []
    missing: list[str] = []
    for name in names:
        key = f"{folder}/{name}"
        info = (
            trigger if trigger is not None and trigger.key == key else r.head(sidecar.bucket, key)
        )
        if info is None:
            missing.append(key)
        else:
            stored.append((name, info))
    return Pairing(
        None, sidecar, missing=tuple(missing), folder=folder, files=tuple(stored), multi=True
    )


def _not_listed(trigger: ObjectInfo, sidecar: ObjectInfo) -> None:
    raise Stop(
        Outcome.REJECTED,
        f"{trigger.key} is in a release folder whose sidecar {sidecar.key} does not list it; "
        "nothing was registered for it",
        [
            ErrorItem(
                FILES_KEY,
                f"every file stored in the release folder must be listed in {sidecar.key}",
                trigger.key.rpartition("/")[2],
            )
        ],
    )


# Releasing ---------------------------------------------------------------------------------------


def release_files(r: Release) -> Stop:
    """The multi-file release's steps, in order; the return value is how it ends."""
    spec = r.release_spec
    check_file_sizes(r)
    check_file_keys(r)
    check_files_declared(r, _etag_digests(r))
    settle_existing_files(r)
    placed = {name: _on_file(r, info, _placing(r, info)) for name, info in _files(r)}
    r.file_digests = {name: p.digest for name, p in placed.items()}
    r.checkpoint("after_digest", r.key)
    check_files_declared(r, r.file_digests)
    package = create_files(r, placed)
    r.checkpoint("after_create", r.key)
    return Stop(
        Outcome.CREATED,
        # worded as registry.judge_existing words the release's own earlier attempt, so
        # both report it under one message id
        f"registered {spec.name} {spec.version} as {package.id}",
        package=package,
    )


def _files(r: Release) -> tuple[tuple[str, ObjectInfo], ...]:
    assert r.pairing is not None
    return r.pairing.files


def _placing(r: Release, info: ObjectInfo) -> Callable[[], Placed]:
    return lambda: place(r, info)


def _reading(r: Release, info: ObjectInfo) -> Callable[[], Digest]:
    return lambda: read_digest(r, info)


def _on_file(r: Release, info: ObjectInfo, fn: Callable[[], T]) -> T:
    """``fn`` on one file; its deletion or overwrite ends the release naming the file."""
    try:
        return fn()
    except ObjectChanged as exc:
        raise Stop(
            Outcome.FAILED,
            f"{info.key} was overwritten while its release was running; nothing was "
            "registered. The newer upload is released by its own event.",
            [ErrorItem(info.key, "must not change while its release runs", exc.detail)],
        ) from exc
    except NotFoundError as exc:
        raise Stop(
            Outcome.FAILED,
            f"{info.key} no longer exists; it was deleted before the release could finish",
            [ErrorItem(info.key, "must exist until the release is registered", exc.code)],
        ) from exc


def check_file_sizes(r: Release) -> None:
    """Each file within IoT Platform's size limits, decided by its HEAD."""
    errors = [
        ErrorItem(f"{FILES_KEY}[{index}].size", violation.rule, f"{info.size} bytes ({name})")
        for index, (name, info) in enumerate(_files(r))
        for violation in rules.check_size(info.size)
    ]
    if errors:
        raise Stop(
            Outcome.REJECTED,
            f"{len(errors)} file(s) of the release are outside 1 to "
            f"{rules.FIRMWARE_SIZE_MAX} bytes",
            errors,
        )


def check_file_keys(r: Release) -> None:
    """Direct mode registers each object's own URL: each key must name its object."""
    if r.config.url_mode is not UrlMode.DIRECT:
        return
    errors = [
        ErrorItem("firmware_key", problem, info.key)
        for _, info in _files(r)
        if (problem := direct_url_key_problem(info.key)) is not None
    ]
    if errors:
        raise Stop(Outcome.REJECTED, "files of the release cannot be served by their URL", errors)


def _etag_digests(r: Release) -> dict[str, Digest]:
    method = r.release_spec.sign_method
    found = {name: etag_fast_path(info, method) for name, info in _files(r)}
    return {name: digest for name, digest in found.items() if digest is not None}


def check_files_declared(r: Release, digests: dict[str, Digest]) -> None:
    """Each file's bytes must be what its entry declares (size, sign)."""
    spec = r.release_spec
    assert spec.files is not None
    errors: list[ErrorItem] = []
    for index, entry in enumerate(spec.files):
        digest = digests.get(entry.name)
        if digest is None:
            continue
        if entry.size is not None and entry.size != digest.size:
            rule = "must equal the file's size"
            seen = f"declared {entry.size}, {entry.name} has {digest.size}"
            errors.append(ErrorItem(f"{FILES_KEY}[{index}].size", rule, seen))
        if entry.sign is not None and entry.sign != digest.sign:
            rule = f"must equal the {spec.sign_method} digest of the file"
            seen = f"declared {entry.sign}, {entry.name} has {digest.sign}"
            errors.append(ErrorItem(f"{FILES_KEY}[{index}].sign", rule, seen))
    if errors:
        r.file_digests = {**digests}
        raise Stop(
            Outcome.REJECTED,
            f"files of {r.release_key} do not match what its sidecar declares",
            errors,
        )


def settle_existing_files(r: Release) -> None:
    """When a package already holds the name, judge it over its files: the release ends."""
    existing = find_existing(r)
    if existing is None:
        return
    r.file_digests = {name: _on_file(r, info, _reading(r, info)) for name, info in _files(r)}
    check_files_declared(r, r.file_digests)
    judge_existing(r, existing)


def create_files(r: Release, placed: dict[str, Placed]) -> PackageRef:
    """One CreateOTAFirmware with MultiFiles, every file placed; a refusal is judged."""
    spec = r.release_spec
    assert spec.files is not None
    entries = tuple(
        MultiFile(
            name=entry.name,
            url=placed[entry.name].firmware_url,
            size=placed[entry.name].digest.size,
            sign_value=placed[entry.name].digest.sign,
            file_md_5=placed[entry.name].digest.sign if spec.sign_method == "MD5" else None,
        )
        for entry in spec.files
    )
    return create_request(r, spec.multi_file_request(entries))
