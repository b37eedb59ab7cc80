"""Steps that talk to IoT Platform's package list: find, judge, create.

The FirmwareName is the idempotency key: before creating, the platform is asked for a
package with that name; the same content means the release is already registered,
different content is a conflict, and a package created *after* this upload (within FC's
retry window) is this upload's own earlier attempt, so the outcome stays ``created`` and
the notification keeps its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn

from ota_release import rules
from ota_release.digest import Digest
from ota_release.errors import PermanentError
from ota_release.notification import ErrorItem, Outcome, PackageRef
from ota_release.pipeline.checks import check_declared
from ota_release.pipeline.context import Release, Stop
from ota_release.pipeline.placement import Placed, read_digest
from ota_release.ports import CreatedFirmware, FirmwareRequest, ListedPackage
from ota_release.sidecar import ReleaseSpec


def find_existing(r: Release, *, narrow: bool = True) -> ListedPackage | None:
    """The package already holding the release's name; ``narrow`` lists only its version."""
    spec = r.release_spec
    search = r.call(
        f"ListOTAFirmware {spec.name}",
        lambda: r.ports.platform.find_firmware(
            spec.name,
            spec.version if narrow else None,
            spec.product_key if narrow else None,
            spec.iot_instance_id,
        ),
    )
    for request_id in search.request_ids:
        r.request_ids.add("iot", request_id)
    return search.package


def settle_existing(r: Release) -> None:
    """When a package already holds the name, judge it: the release ends here."""
    existing = find_existing(r)
    if existing is not None:
        r.digest = read_digest(r)
        check_declared(r, r.digest)
        judge_existing(r, existing)


def create(r: Release, placed: Placed) -> PackageRef:
    """CreateOTAFirmware; a refusal is judged by the package that holds the name, if any."""
    spec = r.release_spec
    request = spec.firmware_request(placed.firmware_url, placed.digest.sign, placed.digest.size)
    return create_request(r, request)


def create_request(r: Release, request: FirmwareRequest) -> PackageRef:
    """Send ``request`` (a single- or multi-file package) after checking it by the rules."""
    spec = r.release_spec
    violations = rules.check_create_firmware(request.api_params())
    if violations:  # the sidecar check makes this unreachable unless rules change
        raise Stop(
            Outcome.REJECTED,
            "the request breaks API rules",
            [ErrorItem.of(v) for v in violations],
        )
    try:
        created: CreatedFirmware = r.call(
            f"CreateOTAFirmware {spec.name}", lambda: r.ports.platform.create_firmware(request)
        )
    except PermanentError as exc:
        _refused(r, exc)
    r.request_ids.add("iot", created.request_id)
    return PackageRef(created.firmware_id, spec.name, created.utc_create, r.config.url_mode.value)


def _refused(r: Release, exc: PermanentError) -> NoReturn:
    """CreateOTAFirmware said no: look the name up before believing the reason.

    Whatever code a taken name comes back with (a documented one or not), the package
    holding the name decides: a twin of this upload that won the race, or a package of
    other content. Only when no package has the name does the refusal stand (raised on,
    for :func:`ota_release.pipeline.outcome.stop_for` to word).
    """
    r.request_ids.add(exc.service, exc.request_id)
    existing = find_existing(r, narrow=False)
    if existing is not None:
        judge_existing(r, existing)
    # A DuplicateNameError with no package listed: the name is taken but not listed yet,
    # and is raised on for a later attempt to judge; any other refusal stands.
    raise exc


def judge_existing(r: Release, existing: ListedPackage) -> NoReturn:
    """Stop with what the existing package means for this release."""
    spec, digest = r.release_spec, r.digest
    assert digest is not None or spec.files is not None
    package = PackageRef(existing.firmware_id, existing.name, existing.utc_create)
    differences = _differences(spec, digest, existing, r.file_digests)
    if differences:
        raise Stop(
            Outcome.CONFLICT,
            f"{spec.name} is already registered as {existing.firmware_id} with different "
            "content; the existing package was left untouched",
            differences,
            package,
        )
    if _own_attempt(r, existing):
        # This upload's own earlier attempt registered it (FC retried us, or a twin
        # event raced us): report it exactly as that attempt would have.
        mode = r.config.url_mode.value
        raise Stop(
            Outcome.CREATED,
            f"registered {spec.name} {spec.version} as {existing.firmware_id}",
            package=PackageRef(package.id, package.name, package.utc_create, mode),
        )
    raise Stop(
        Outcome.ALREADY_REGISTERED,
        f"{spec.name} {spec.version} is already registered as {existing.firmware_id} "
        "with the same content",
        package=package,
    )


def _own_attempt(r: Release, existing: ListedPackage) -> bool:
    """True when the package can only be this upload's own earlier attempt.

    It must have been created after the upload, and Function Compute must still be
    able to be retrying that upload's event: FC drops an asynchronous event older than
    ``MaxAsyncEventAgeInSeconds`` (template.yml, s.yaml), so a package older than that
    was reported by an invocation that is over, and a later event for the same
    content (a replay, whose event time is the object's Last-Modified) is
    ``already_registered``. docs/notifications.md, "Replays".
    """
    created = _parse_time(existing.utc_create)
    if created is None or not _created_after_upload(r, created):
        return False
    return r.clock() - created <= r.config.retry_window


def _created_after_upload(r: Release, created: datetime) -> bool:
    """True when the package was created after this upload happened.

    The upload's moment is the trigger event's ``eventTime`` (millisecond resolution).
    Without one, the newer Last-Modified of the two objects stands in, compared at its
    one-second resolution.
    """
    uploaded = _parse_time(r.record.event_time)
    if uploaded is not None:
        return created >= uploaded
    pairing = r.pairing
    assert pairing is not None
    objects = (pairing.firmware, pairing.sidecar, *(info for _, info in pairing.files))
    stamps = [i.last_modified for i in objects if i is not None and i.last_modified is not None]
    if not stamps:
        return False
    newest = max(s if s.tzinfo else s.replace(tzinfo=timezone.utc) for s in stamps)
    return created.replace(microsecond=0) >= newest.replace(microsecond=0)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _differences(
    spec: ReleaseSpec,
    digest: Digest | None,
    existing: ListedPackage,
    file_digests: Mapping[str, Digest] | None = None,
) -> list[ErrorItem]:
    """Everything that makes a package, where the existing one differs from this release.

    The same judgement whichever search found the package (by version and product, or
    every package), so the two can never disagree. A field the platform did not report
    (None: a Udi nobody asked QueryOTAFirmware for, NeedToVerify without a Status) is not
    compared.
    """
    return [
        ErrorItem(
            name,
            "must match the registered package",
            f"this upload {ours!r}, registered {theirs!r}",
        )
        for name, ours, theirs in _package_fields(spec, digest, existing, file_digests or {})
        if theirs is not _UNKNOWN and ours != theirs
    ]


_UNKNOWN = object()


def _known(value: Any) -> Any:
    return _UNKNOWN if value is None else value


def _module(value: str | None) -> Any:
    """The registered ModuleName; an empty one is the default module."""
    return _UNKNOWN if value is None else (value or "default")


def _content_fields(
    spec: ReleaseSpec,
    digest: Digest | None,
    existing: ListedPackage,
    file_digests: Mapping[str, Digest],
    *,
    with_sign: bool,
) -> list[tuple[str, Any, Any]]:
    """The bytes: one file's sign and size, or a multi-file package's files (each name,
    size and sign, in name order). A package of the other kind differs in ``files``.
    Signs made by another method (``with_sign`` False) are not compared."""
    if spec.files is None and existing.files is None:
        assert digest is not None
        sign = [("sign", digest.sign, _known(existing.sign and existing.sign.lower()))]
        return [*(sign if with_sign else []), ("size", digest.size, _known(existing.size))]
    ours = None
    if spec.files is not None:
        ours = sorted(
            (f.name, file_digests[f.name].size, file_digests[f.name].sign if with_sign else None)
            for f in spec.files
        )
    if existing.files is not None:
        theirs: Any = sorted(
            (f.name, f.size, (f.sign or "").lower() or None if with_sign else None)
            for f in existing.files
        )
    elif existing.size is not None or existing.sign is not None:
        theirs = "a single-file package"
    else:
        theirs = _UNKNOWN
    return [("files", ours if ours is not None else "a single-file package", theirs)]


def _package_fields(
    spec: ReleaseSpec,
    digest: Digest | None,
    existing: ListedPackage,
    file_digests: Mapping[str, Digest],
) -> list[tuple[str, Any, Any]]:
    """(field, this release's value, the registered package's value) for every field."""
    fields: list[tuple[str, Any, Any]] = [
        ("name", spec.name, existing.name),
        ("version", spec.version, _known(existing.dest_version)),
        ("product_key", spec.product_key or None, existing.product_key or None),
        ("module", spec.module or "default", _module(existing.module)),
        ("type", spec.type, _known(existing.type)),
    ]
    registered_method = (existing.sign_method or "").upper()
    other_method = bool(registered_method) and registered_method != spec.sign_method
    if other_method:
        fields.append(("sign_method", spec.sign_method, registered_method))
    fields += _content_fields(spec, digest, existing, file_digests, with_sign=not other_method)
    fields += [
        ("description", spec.description or None, existing.description or None),
        ("need_to_verify", spec.need_to_verify is not False, _known(existing.need_to_verify)),
        ("udi", spec.udi or "", _known(existing.udi)),
    ]
    if spec.type == rules.TYPE_DIFF or existing.src_version:
        fields.append(("src_version", spec.src_version or None, existing.src_version or None))
    return fields
