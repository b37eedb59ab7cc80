"""The outcome message published on the MNS topic (schema in docs/notifications.md)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from ota_release.digest import Digest
from ota_release.timestamps import utc_millis

if TYPE_CHECKING:
    from ota_release.rules import Violation
    from ota_release.sidecar import ReleaseSpec

SCHEMA = "ota-release/notification/v1"
#: MNS rejects message bodies over 64 KB; keep a margin for the XML envelope.
MAX_MESSAGE_BYTES = 64 * 1024 - 1024


class Outcome(str, Enum):
    """What happened to one uploaded object. Published as the MNS MessageTag."""

    CREATED = "created"
    ALREADY_REGISTERED = "already_registered"
    WAITING = "waiting"
    REJECTED = "rejected"
    CONFLICT = "conflict"
    FAILED = "failed"

    @property
    def tag(self) -> str:
        """The MNS MessageTag: the outcome, shortened where MNS's 16-character limit bites.

        MNS (and its SDK, before sending) refuses tags longer than 16 characters, so
        ``already_registered`` is tagged ``already_reg``; the body carries the full name.
        """
        return MESSAGE_TAGS.get(self.value, self.value)


#: Outcomes that report a release (both halves' events agree on them), not one object.
RELEASE_OUTCOMES = frozenset(
    {Outcome.CREATED, Outcome.ALREADY_REGISTERED, Outcome.CONFLICT, Outcome.REJECTED}
)

#: Outcomes whose name is longer than the 16 characters a MessageTag may hold.
MESSAGE_TAGS = {"already_registered": "already_reg"}
MAX_TAG_LENGTH = 16


@dataclass(frozen=True)
class FileRef:
    """One of the release's two objects, by key and the ETag it had when it was read."""

    key: str
    etag: str


@dataclass(frozen=True)
class ReleaseFileRef:
    """One file of a multi-file release (body field ``files``): its name in the package,
    its key, and what is known of it (``None`` until it is stored, or digested)."""

    name: str
    key: str
    etag: str | None = None
    size: int | None = None
    sign: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "etag": self.etag,
            "size": self.size,
            "sign": self.sign,
        }


@dataclass(frozen=True)
class PackageRef:
    """The firmware package an outcome is about (body field ``firmware``)."""

    id: str
    name: str
    utc_create: str | None
    #: How the package's FirmwareUrl was made; only on ``created``.
    url_mode: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "utc_create": self.utc_create}
        if self.url_mode is not None:
            out["url_mode"] = self.url_mode
        return out


@dataclass(frozen=True)
class ErrorItem:
    """One entry of ``errors``: the field, the rule, and the value as the subscriber sees it.

    A broken API or sidecar rule arrives as a :class:`~ota_release.rules.Violation` and is
    shown as it shows itself (:meth:`of`); a fact the pipeline describes in words (an ETag
    that changed, the sidecars found) keeps its words.
    """

    field: str
    rule: str
    value: Any = None

    @classmethod
    def of(cls, violation: Violation) -> ErrorItem:
        shown = violation.as_dict()
        return cls(shown["field"], shown["rule"], shown["value"])

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "rule": self.rule, "value": self.value}


#: ``verification.status``: a job this release started, one that existed already (a retry
#: or the other half of the release started it), or a refusal of CreateOTAVerifyJob.
VERIFY_STARTED = "started"
VERIFY_EXISTING = "existing"
VERIFY_REFUSED = "refused"


@dataclass(frozen=True)
class Verification:
    """The verification job asked for by the sidecar's ``verify`` (body field ``verification``)."""

    status: str
    devices: tuple[str, ...]
    timeout_minutes: int | None = None
    job_id: str | None = None
    #: why CreateOTAVerifyJob refused (``refused`` only)
    error: ErrorItem | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "devices": list(self.devices),
            "timeout_minutes": self.timeout_minutes,
        }
        if self.error is not None:
            out["error"] = self.error.as_dict()
        return out

    def identity(self) -> dict[str, Any]:
        """What the message id covers: ``started`` and ``existing`` are one fact (a job
        exists) told by two deliveries, so the status is left out unless it is a refusal."""
        out = self.as_dict()
        if self.status != VERIFY_REFUSED:
            del out["status"]
        return out


#: From this share of the package limit on, a notification warns: at 450 of 500 a tenth
#: of the quota is left, about as many as a nightly pipeline spends in two months.
QUOTA_WARNING_SHARE = 0.9


@dataclass(frozen=True)
class QuotaUsage:
    """How many OTA packages the account (or instance) holds, against its limit.

    ``packages`` is None when they could not be counted (``error`` says why).
    ``counted_at`` is when IoT Platform was asked; packages this function instance
    created since are included. A delivery-time fact: never part of the message id.
    """

    packages: int | None
    limit: int
    counted_at: str | None = None
    error: str | None = None

    @property
    def full(self) -> bool:
        return self.packages is not None and self.packages >= self.limit

    @property
    def near_full(self) -> bool:
        """At least :data:`QUOTA_WARNING_SHARE` of the limit is used."""
        return self.packages is not None and self.packages >= self.limit * QUOTA_WARNING_SHARE

    @property
    def warning(self) -> str | None:
        if not self.near_full:
            return None
        assert self.packages is not None
        left = max(0, self.limit - self.packages)
        return (
            f"the package quota is almost full: {self.packages} of {self.limit} packages "
            f"({left} left); free some with `ota-release prune --keep N` (DeleteOTAFirmware)"
        )

    @property
    def summary_line(self) -> str:
        """What the summary adds: the warning, or that the count is unknown; else nothing."""
        if self.packages is None:
            return f"Package count unknown ({self.error or 'not counted'})."
        warning = self.warning
        return f"Warning: {warning}." if warning else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "packages": self.packages,
            "limit": self.limit,
            "warning": self.warning,
            "counted_at": self.counted_at,
            "error": self.error,
        }


#: Shorter "request ids" are not masked: they could match ordinary words by chance.
MIN_MASKED_REQUEST_ID = 8


@dataclass
class RequestIds:
    """The request ids of the calls behind one outcome, so an operator can ask the provider.

    Published as ``{"fc": ..., "oss_event": ..., "oss": [...], "iot": [...]}``: FC's
    invocation and OSS's event request id as strings, then each service's calls in the
    order they were first made.
    """

    fc: str | None = None
    oss_event: str | None = None
    calls: dict[str, list[str]] = field(default_factory=dict)

    def add(self, service: str, request_id: str | None) -> None:
        if request_id and request_id not in self.calls.setdefault(service, []):
            self.calls[service].append(request_id)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.fc:
            out["fc"] = self.fc
        if self.oss_event:
            out["oss_event"] = self.oss_event
        out.update({service: list(ids) for service, ids in self.calls.items() if ids})
        return out

    def values(self) -> list[str]:
        """Every id worth masking in text (long enough not to match a word), longest first."""
        found = {self.fc, self.oss_event, *(i for ids in self.calls.values() for i in ids)}
        return sorted(
            {i for i in found if i and len(i) >= MIN_MASKED_REQUEST_ID}, key=len, reverse=True
        )


@dataclass
class Notification:
    """Everything a subscriber needs to act on one outcome."""

    outcome: Outcome
    summary: str
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    event_name: str | None = None
    event_time: str | None = None
    firmware_file: FileRef | None = None
    sidecar_file: FileRef | None = None
    spec: ReleaseSpec | None = None
    package: PackageRef | None = None
    digest: Digest | None = None
    errors: list[ErrorItem] = field(default_factory=list)
    request_ids: RequestIds = field(default_factory=RequestIds)
    #: friendly key -> the file (or setting) its effective value came from; only when a
    #: folder defaults file applies to the release (docs/sidecar.md, "Folder defaults")
    sources: dict[str, str] | None = None
    #: the verification job the sidecar asked for, after ``created``
    verification: Verification | None = None
    #: a multi-file release's files; None (and absent from the body) for one file
    files: list[ReleaseFileRef] | None = None
    #: the package count and limit (created, already_registered, a full quota); the body
    #: leaves the key out when None. Not part of the message id: it is a delivery's fact.
    quota: QuotaUsage | None = None

    def __post_init__(self) -> None:
        self.summary = scrub(self.summary)

    @property
    def published_summary(self) -> str:
        """The summary as published: the outcome's, then the quota's line when it has one."""
        line = self.quota.summary_line if self.quota is not None else ""
        return f"{self.summary} {line}" if line else self.summary

    @property
    def about(self) -> list[str]:
        """What the fact is about: the triggering object, or for a release both halves.

        A release-level outcome (:data:`RELEASE_OUTCOMES`) that knows either half names
        both objects' keys and ETags, so the firmware's and the sidecar's events agree.
        """
        fw, sc = self.firmware_file, self.sidecar_file
        if (fw or sc) and self.outcome in RELEASE_OUTCOMES:
            return [
                fw.key if fw else "",
                fw.etag if fw else "",
                sc.key if sc else "",
                sc.etag if sc else "",
            ]
        return [self.key, self.etag or ""]

    @property
    def message_id(self) -> str:
        """Deterministic: equal :meth:`identity_content` gives an equal id, and only then.

        A retried invocation or the other half of a release re-publishes the same fact
        under the same id, so a subscriber can drop the duplicate; two notifications that
        say different things never share one (docs/notifications.md, "Message identity").
        """
        text = json.dumps(self.identity_content(), sort_keys=True, ensure_ascii=True, default=str)
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:32]

    def identity_content(self) -> dict[str, Any]:
        """What the id is a digest of: the body without the facts of one delivery.

        Left out: ``message_id``, ``published_at``, ``request_ids`` (and any of them
        quoted in an error or the summary), ``quota`` (and its line in the summary: the
        package count changes between deliveries), ``errors_dropped`` (derived), the ``event``,
        the object's ``size``, the package's ``utc_create`` (CreateOTAFirmware and
        ListOTAFirmware may spell it differently) and the digest's ``source`` (a staged
        copy hashes the stream, a later judgement of the same package may take the ETag).
        ``about`` names what the fact is about (:attr:`about`).
        """
        rids = self.request_ids.values()
        return self._files_field() | {
            "schema": SCHEMA,
            "outcome": self.outcome.value,
            "bucket": self.bucket,
            "about": self.about,
            # SDK messages quote the request id of the refused call: mask them here.
            "summary": _mask_request_ids(self.summary, rids),
            "firmware_key": self.firmware_file.key if self.firmware_file else None,
            "sidecar_key": self.sidecar_file.key if self.sidecar_file else None,
            **self._etags(),
            "spec": self._spec(),
            "firmware": _without(self._package(), "utc_create"),
            "digest": _without(self._digest(), "source"),
            "errors": _mask_request_ids(self._errors(), rids),
            **_mask_request_ids(self._optional(identity=True), rids),
        }

    def _optional(self, *, identity: bool = False) -> dict[str, Any]:
        """The fields present only when they apply (``sources``, ``verification``)."""
        out: dict[str, Any] = {}
        if self.sources is not None:
            out["sources"] = scrub(dict(sorted(self.sources.items())))
        if self.verification is not None:
            v = self.verification
            out["verification"] = scrub(v.identity() if identity else v.as_dict())
        return out

    def to_body(self, now: datetime | None = None) -> str:
        """The JSON body, trimmed to fit MNS's size limit."""
        now = now or datetime.now(timezone.utc)
        message: dict[str, Any] = {
            "schema": SCHEMA,
            "message_id": self.message_id,
            "outcome": self.outcome.value,
            "summary": self.published_summary,
            "object": {
                "bucket": self.bucket,
                "key": self.key,
                "size": self.size,
                "etag": self.etag,
            },
            "event": {"name": self.event_name, "time": self.event_time},
            "firmware_key": self.firmware_file.key if self.firmware_file else None,
            "sidecar_key": self.sidecar_file.key if self.sidecar_file else None,
            **self._etags(),
            "spec": self._spec(),
            "firmware": self._package(),
            "digest": self._digest(),
            "errors": self._errors(),
            **self._optional(),
            **self._files_field(),
            "errors_dropped": 0,
            "request_ids": self.request_ids.as_dict(),
            "published_at": utc_millis(now),
        }
        if self.quota is not None:
            message["quota"] = self.quota.as_dict()
        return fit_message(message)

    def _etags(self) -> dict[str, str | None]:
        """Each half's ETag as it was read: how an uploader tells its upload's outcome."""
        fw, sc = self.firmware_file, self.sidecar_file
        return {"firmware_etag": fw.etag if fw else None, "sidecar_etag": sc.etag if sc else None}

    def _spec(self) -> dict[str, Any] | None:
        if self.spec is None:
            return None
        shown: dict[str, Any] = scrub(self.spec.model_dump(exclude_none=True))
        return shown

    def _files_field(self) -> dict[str, Any]:
        """``{"files": [...]}`` for a multi-file release, else nothing (the key is absent)."""
        if self.files is None:
            return {}
        return {"files": [f.as_dict() for f in self.files]}

    def _package(self) -> dict[str, Any] | None:
        return self.package.as_dict() if self.package else None

    def _digest(self) -> dict[str, Any] | None:
        d = self.digest
        if d is None:
            return None
        return {"sign_method": d.sign_method, "sign": d.sign, "size": d.size, "source": d.source}

    def _errors(self) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = scrub([e.as_dict() for e in self.errors])
        return shown


def scrub(value: Any) -> Any:
    """Replace lone surrogates in strings, recursively, so the message can be UTF-8.

    A YAML sidecar may spell ``"\\ud800"``: the value (and the error quoting it) then holds
    a character UTF-8 cannot encode, and the rejection could never be published.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def _without(value: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    return None if value is None else {k: v for k, v in value.items() if k != name}


def _mask_request_ids(value: Any, ids: list[str]) -> Any:
    """``value`` with each of ``ids`` replaced in every string (SDK messages quote them)."""
    if not ids:
        return value
    if isinstance(value, str):
        for rid in ids:
            value = value.replace(rid, "<request-id>")
        return value
    if isinstance(value, list):
        return [_mask_request_ids(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _mask_request_ids(v, ids) for k, v in value.items()}
    return value


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)


def fit_message(message: dict[str, Any], limit: int = MAX_MESSAGE_BYTES) -> str:
    """Drop errors from the end (counting them) until the body fits in ``limit`` bytes.

    Long strings in the spec (a 4096-character Udi, say) are shortened as a last resort.
    """
    body = _dump(message)
    if len(body.encode("utf-8")) <= limit:
        return body
    errors: list[Any] = message["errors"]
    dropped = 0
    while errors and len(body.encode("utf-8")) > limit:
        cut = max(1, len(errors) // 4)
        del errors[-cut:]
        dropped += cut
        message["errors_dropped"] = dropped
        body = _dump(message)
    if len(body.encode("utf-8")) > limit and message.get("spec"):
        spec = dict(message["spec"])
        for k, v in spec.items():
            if isinstance(v, str) and len(v) > 256:
                spec[k] = v[:256] + f"... ({len(v)} characters, truncated)"
        message["spec"] = spec
        body = _dump(message)
    if len(body.encode("utf-8")) > limit:
        message["summary"] = message["summary"][:512]
        body = _dump(message)
    return body
