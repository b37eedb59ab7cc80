"""One uploaded object in, one outcome out: the release pipeline's domain logic.

Talks only to the ports (:mod:`ota_release.ports`). The FirmwareName is the idempotency
key: before creating, the platform is asked for a package with that name; the same
content means the release is already registered, different content is a conflict, and a
package created *after* this upload is this upload's own earlier attempt (a retry), so
the outcome stays ``created`` and the notification keeps its id.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ota_release import rules
from ota_release.digest import Digest, StreamHasher, etag_fast_path, prefetched
from ota_release.errors import (
    DuplicateNameError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    PlatformError,
    TransientError,
)
from ota_release.events import ObjectCreated
from ota_release.notification import RELEASE_OUTCOMES, Notification, Outcome
from ota_release.pairing import Pairing, find_pair
from ota_release.ports import (
    CreatedFirmware,
    FirmwareRecord,
    Notifier,
    ObjectInfo,
    ObjectStore,
    OtaPlatform,
    PublishReceipt,
    UploadTicket,
)
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES, UrlMode
from ota_release.sidecar import MAX_SIDECAR_BYTES, ReleaseSpec, parse_sidecar

logger = logging.getLogger("ota_release.release")


def _load_crash_points() -> Any:
    """Test-only crash points (docs/reliability.md): None unless OTA_FAULT_CRASH_AT is set.

    Read once per process. The fault-injection code lives in ``localcloud`` (never shipped);
    it is imported only when the variable is set, which only the local cloud does.
    """
    if not os.environ.get("OTA_FAULT_CRASH_AT"):
        return None
    from localcloud.faults import CrashPoints

    return CrashPoints.from_env(os.environ)


_crash_points = _load_crash_points()


def _checkpoint(point: str, key: str) -> None:
    """A named point where a fault-injection run may kill the process (inert otherwise)."""
    if _crash_points is not None:
        _crash_points.reach(point, key)


#: OSS's error code when an If-Match (the ETag a release started from) no longer holds.
PRECONDITION_FAILED = "PreconditionFailed"
#: How long Function Compute may retry one asynchronous event: MaxAsyncEventAgeInSeconds
#: in template.yml and s.yaml (a test holds them equal).
FC_MAX_EVENT_AGE = timedelta(seconds=86400)


class ObjectChanged(Exception):
    """The firmware is no longer the object (ETag) its release started from."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


#: File suffixes GenerateOTAUploadURL accepts; anything else is staged as ``bin``.
STAGED_SUFFIXES = ("tar.gz", "gzip", "bin", "dav", "apk", "tar", "gz", "zip")


@dataclass(frozen=True)
class ReleaseConfig:
    """The settings the domain logic needs (a subset of :class:`Settings`)."""

    url_mode: UrlMode = UrlMode.STAGED
    signed_url_ttl: int = 0
    sidecar_suffixes: tuple[str, ...] = DEFAULT_SIDECAR_SUFFIXES
    product_key: str | None = None
    iot_instance_id: str | None = None
    #: Recompute OSS's CRC-64 over a streamed download. crcmod holds the GIL and runs
    #: slower than MD5, so it roughly halves digest throughput; the deployed function
    #: turns it off and relies on the exact length over TLS (docs/benchmarks.md).
    verify_crc64: bool = True
    #: A package created after the upload and at most this long ago is the upload's own
    #: earlier attempt (``created`` again, same id); older, it is ``already_registered``.
    retry_window: timedelta = FC_MAX_EVENT_AGE


@dataclass
class Result:
    """The outcome of one object and the notification published for it."""

    outcome: Outcome
    key: str
    message_id: str
    notification: Notification
    receipt: PublishReceipt | None = None


@dataclass
class _Run:
    """Facts gathered while processing one object, for the notification."""

    record: ObjectCreated
    key: str
    request_ids: dict[str, Any] = field(default_factory=dict)

    def note(self, service: str, request_id: str | None) -> None:
        if request_id:
            self.request_ids.setdefault(service, [])
            if request_id not in self.request_ids[service]:
                self.request_ids[service].append(request_id)


def is_invalid_input(error: PlatformError) -> bool:
    """Platform errors that blame the request's content (a ``rejected`` outcome): the
    adapters decide which codes those are, and raise InvalidRequestError for them."""
    return isinstance(error, InvalidRequestError)


class ReleasePipeline:
    """Processes object-created records against the three ports."""

    def __init__(
        self,
        store: ObjectStore,
        platform: OtaPlatform,
        notifier: Notifier,
        config: ReleaseConfig | None = None,
        retry: RetryPolicy | None = None,
        fc_request_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.store = store
        self.platform = platform
        self.notifier = notifier
        self.config = config or ReleaseConfig()
        self.retry = retry or RetryPolicy()
        self.fc_request_id = fc_request_id
        self.clock = clock

    # The pipeline -----------------------------------------------------------------------

    def process(self, record: ObjectCreated, deadline: Deadline) -> Result:
        """Take one uploaded object to an outcome and publish it.

        Transient failures that outlive the retry budget propagate (as RetriesExhausted)
        without a notification, so Function Compute retries the invocation; everything
        else ends in exactly one published outcome.
        """
        run = _Run(record, record.key)
        if self.fc_request_id:
            run.request_ids["fc"] = self.fc_request_id
        if record.oss_request_id:
            run.request_ids["oss_event"] = record.oss_request_id
        try:
            note = self._decide(run, deadline)
        except DuplicateNameError:
            raise  # the name is taken but not listed yet: a later attempt can judge it
        except PermanentError as exc:
            # Permission, quota, a missing instance, AccessDenied on the bucket: no retry
            # can fix these, so they end in one notification instead of FC's retries.
            run.note(exc.service, exc.request_id)
            note = self._note(
                run,
                Outcome.REJECTED if is_invalid_input(exc) else Outcome.FAILED,
                f"{exc.service} {exc.operation} refused: {exc.code}",
                errors=[{"field": exc.operation, "rule": exc.code, "value": exc.message}],
            )
        return self._publish(note, run, deadline)

    def _call(self, deadline: Deadline, what: str, fn: Callable[[], Any]) -> Any:
        return self.retry.call(fn, deadline, what)

    def _head(self, run: _Run, bucket: str, key: str, deadline: Deadline) -> ObjectInfo | None:
        info: ObjectInfo | None = self._call(
            deadline, f"HeadObject {key}", lambda: self.store.head(bucket, key)
        )
        if info is not None:
            run.note("oss", info.request_id)
        return info

    def _decide(self, run: _Run, deadline: Deadline) -> Notification:
        record = run.record
        bucket = record.bucket
        trigger: ObjectInfo | None = None
        try:
            for candidate in record.key_candidates:
                trigger = self._head(run, bucket, candidate, deadline)
                if trigger is not None:
                    run.key = candidate
                    break
        except NotFoundError as exc:  # the bucket itself is missing (NoSuchBucket)
            return self._note(
                run,
                Outcome.FAILED,
                _missing(exc, record.bucket, record.key),
                errors=[{"field": "bucket", "rule": "must exist", "value": record.bucket}],
            )
        if trigger is None:
            return self._note(
                run,
                Outcome.FAILED,
                f"{record.key} no longer exists; it was deleted before it could be processed",
                errors=[
                    {
                        "field": "object",
                        "rule": "must exist when the function runs",
                        "value": record.key,
                    }
                ],
            )
        pairing = find_pair(
            lambda key: self._head(run, bucket, key, deadline),
            trigger,
            self.config.sidecar_suffixes,
        )
        if pairing.refusal is not None:
            return self._note(
                run,
                Outcome.REJECTED,
                f"{run.key} can never be paired: {pairing.refusal['rule']}",
                pairing=pairing,
                errors=[pairing.refusal],
            )
        if pairing.ambiguous:
            return self._note(
                run,
                Outcome.REJECTED,
                f"{pairing.firmware.key if pairing.firmware else run.key} has more than one "
                "sidecar; keep exactly one",
                pairing=pairing,
                errors=[
                    {
                        "field": "sidecar",
                        "rule": "exactly one sidecar per firmware file",
                        "value": list(pairing.ambiguous),
                    }
                ],
            )
        if not pairing.complete:
            return self._note(
                run,
                Outcome.WAITING,
                f"{run.key} is stored; waiting for {_describe_missing(pairing)} to complete "
                "the release",
                pairing=pairing,
            )
        assert pairing.firmware is not None and pairing.sidecar is not None
        return self._release(run, pairing, pairing.firmware, pairing.sidecar, deadline)

    def _release(
        self,
        run: _Run,
        pairing: Pairing,
        firmware: ObjectInfo,
        sidecar: ObjectInfo,
        deadline: Deadline,
    ) -> Notification:
        spec = self._read_spec(run, pairing, firmware, sidecar, deadline)
        if isinstance(spec, Notification):
            return spec
        refusal = self._refuse_early(run, pairing, firmware, spec)
        if refusal is not None:
            return refusal
        try:
            return self._register(run, pairing, firmware, spec, deadline)
        except NotFoundError as exc:
            return self._gone(run, pairing, spec, firmware, exc)
        except ObjectChanged as exc:
            return self._changed(run, pairing, spec, firmware, exc)
        except DuplicateNameError:
            raise  # the name is taken but not listed yet: a later attempt can judge it
        except PermanentError as exc:  # e.g. GenerateOTAUploadURL or PostObject refused
            return self._refusal(run, pairing, spec, None, exc)

    def _read_spec(
        self,
        run: _Run,
        pairing: Pairing,
        firmware: ObjectInfo,
        sidecar: ObjectInfo,
        deadline: Deadline,
    ) -> ReleaseSpec | Notification:
        """The sidecar read and validated, or the notification saying why it cannot be."""
        bucket = firmware.bucket
        try:
            raw = self._call(
                deadline,
                f"GetObject {sidecar.key}",
                lambda: self.store.read_small(bucket, sidecar.key, MAX_SIDECAR_BYTES),
            )
        except NotFoundError as exc:
            return self._note(
                run,
                Outcome.FAILED,
                _missing(exc, bucket, f"the sidecar {sidecar.key}"),
                pairing=pairing,
            )
        except ValueError:
            return self._note(
                run,
                Outcome.REJECTED,
                "the sidecar is too large",
                pairing=pairing,
                errors=[
                    {
                        "field": "sidecar",
                        "rule": f"must be at most {MAX_SIDECAR_BYTES} bytes",
                        "value": f"{sidecar.size} bytes",
                    }
                ],
            )
        parsed = parse_sidecar(
            raw,
            sidecar_key=sidecar.key,
            firmware_key=firmware.key,
            default_product_key=self.config.product_key,
            default_iot_instance_id=self.config.iot_instance_id,
        )
        if parsed.spec is None:
            return self._note(
                run,
                Outcome.REJECTED,
                f"the sidecar {sidecar.key} has {len(parsed.errors)} problem(s)",
                pairing=pairing,
                errors=[v.as_dict() for v in parsed.errors],
            )
        return parsed.spec

    def _refuse_early(
        self, run: _Run, pairing: Pairing, firmware: ObjectInfo, spec: ReleaseSpec
    ) -> Notification | None:
        """Rules the HEAD alone decides, checked before anything is read, staged or spent."""
        violations = rules.check_size(firmware.size)
        if violations:
            return self._note(
                run,
                Outcome.REJECTED,
                f"{firmware.key} is {firmware.size} bytes; IoT Platform accepts "
                f"1 to {rules.FIRMWARE_SIZE_MAX} bytes",
                pairing=pairing,
                spec=spec,
                errors=[v.as_dict() for v in violations],
            )
        if self.config.url_mode is UrlMode.DIRECT:
            problem = direct_url_key_problem(firmware.key)
            if problem is not None:
                return self._note(
                    run,
                    Outcome.REJECTED,
                    f"{firmware.key} cannot be served by its own URL: {problem}",
                    pairing=pairing,
                    spec=spec,
                    errors=[{"field": "firmware_key", "rule": problem, "value": firmware.key}],
                )
        return None

    def _register(
        self,
        run: _Run,
        pairing: Pairing,
        firmware: ObjectInfo,
        spec: ReleaseSpec,
        deadline: Deadline,
    ) -> Notification:
        """Judge an existing package, or place the bytes and create one.

        The object is read at most once: an ETag that proves the MD5 needs no read at all
        before the decision; otherwise the staged copy is the read that yields the digest.
        """
        fast = etag_fast_path(firmware, spec.sign_method)
        if fast is not None:
            mismatch = self._mismatch(run, pairing, spec, fast, firmware)
            if mismatch is not None:
                return mismatch
        existing = self._find_existing(run, spec, deadline)
        if existing is not None:
            digest = fast or self._digest(run, firmware, spec.sign_method, deadline)
            mismatch = self._mismatch(run, pairing, spec, digest, firmware)
            return mismatch or self._judge_existing(run, pairing, spec, digest, existing)
        firmware_url, digest = self._place(run, firmware, spec, fast, deadline)
        _checkpoint("after_digest", run.key)
        mismatch = self._mismatch(run, pairing, spec, digest, firmware)
        if mismatch is not None:
            return mismatch
        return self._create(run, pairing, spec, digest, firmware_url, deadline)

    def _mismatch(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        digest: Digest,
        firmware: ObjectInfo,
    ) -> Notification | None:
        """A rejection when the bytes are not what the sidecar declares."""
        mismatches = []
        if spec.size is not None and spec.size != digest.size:
            mismatches.append(
                {
                    "field": "size",
                    "rule": "must equal the firmware file's size",
                    "value": f"declared {spec.size}, file has {digest.size}",
                }
            )
        if spec.sign is not None and spec.sign != digest.sign:
            mismatches.append(
                {
                    "field": "sign",
                    "rule": f"must equal the {spec.sign_method} digest of the firmware file",
                    "value": f"declared {spec.sign}, file has {digest.sign}",
                }
            )
        if not mismatches:
            return None
        return self._note(
            run,
            Outcome.REJECTED,
            f"{firmware.key} does not match what its sidecar declares",
            pairing=pairing,
            spec=spec,
            digest=digest,
            errors=mismatches,
        )

    def _create(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        digest: Digest,
        firmware_url: str,
        deadline: Deadline,
    ) -> Notification:
        params = spec.api_params(firmware_url, digest.sign, digest.size)
        violations = rules.check_create_firmware(params)
        if violations:  # the sidecar check makes this unreachable unless rules change
            return self._note(
                run,
                Outcome.REJECTED,
                "the request breaks API rules",
                pairing=pairing,
                spec=spec,
                digest=digest,
                errors=[v.as_dict() for v in violations],
            )
        try:
            created: CreatedFirmware = self._call(
                deadline,
                f"CreateOTAFirmware {spec.name}",
                lambda: self.platform.create_firmware(params),
            )
        except PermanentError as exc:
            return self._refused(run, pairing, spec, digest, exc, deadline)
        _checkpoint("after_create", run.key)
        run.note("iot", created.request_id)
        return self._note(
            run,
            Outcome.CREATED,
            f"registered {spec.name} {spec.version} as {created.firmware_id}",
            pairing=pairing,
            spec=spec,
            digest=digest,
            firmware={
                "id": created.firmware_id,
                "name": spec.name,
                "utc_create": created.utc_create,
                "url_mode": self.config.url_mode.value,
            },
        )

    def _refused(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        digest: Digest,
        exc: PermanentError,
        deadline: Deadline,
    ) -> Notification:
        """CreateOTAFirmware said no: look the name up before believing the reason.

        Whatever code a taken name comes back with (a documented one or not), the package
        holding the name decides: a twin of this upload that won the race, or a package of
        other content. Only when no package has the name does the refusal stand.
        """
        run.note(exc.service, exc.request_id)
        existing = self._find_existing(run, spec, deadline, narrow=False)
        if existing is not None:
            return self._judge_existing(run, pairing, spec, digest, existing)
        if isinstance(exc, DuplicateNameError):
            raise exc  # the name is taken but not listed yet: a later attempt can judge it
        return self._refusal(run, pairing, spec, digest, exc)

    def _refusal(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        digest: Digest | None,
        exc: PermanentError,
    ) -> Notification:
        """A service said no for good: ``rejected`` when it blames the request's content."""
        run.note(exc.service, exc.request_id)
        return self._note(
            run,
            Outcome.REJECTED if is_invalid_input(exc) else Outcome.FAILED,
            f"{exc.service} {exc.operation} refused the release: {exc.code}",
            pairing=pairing,
            spec=spec,
            digest=digest,
            errors=[{"field": exc.operation, "rule": exc.code, "value": exc.message}],
        )

    def _gone(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        firmware: ObjectInfo,
        exc: NotFoundError,
    ) -> Notification:
        return self._note(
            run,
            Outcome.FAILED,
            _missing(exc, firmware.bucket, firmware.key),
            pairing=pairing,
            spec=spec,
            errors=[
                {
                    "field": "object",
                    "rule": "must exist when the function runs",
                    "value": f"{exc.code}: {firmware.bucket}/{firmware.key}",
                }
            ],
        )

    def _changed(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        firmware: ObjectInfo,
        exc: ObjectChanged,
    ) -> Notification:
        return self._note(
            run,
            Outcome.FAILED,
            f"{firmware.key} was overwritten while it was being released; nothing was "
            "registered for it. The newer upload is released by its own event.",
            pairing=pairing,
            spec=spec,
            errors=[
                {
                    "field": "firmware",
                    "rule": "must not change while its release runs",
                    "value": f"ETag {firmware.etag} when the release started; {exc.detail}",
                }
            ],
        )

    # Steps ------------------------------------------------------------------------------

    def _digest(
        self, run: _Run, firmware: ObjectInfo, sign_method: str, deadline: Deadline
    ) -> Digest:
        """Read the object once, pinned to the ETag the release started from, and hash it."""
        fast = etag_fast_path(firmware, sign_method)
        if fast is not None:
            return fast

        def stream_once() -> Digest:
            hasher = self._hasher(firmware, sign_method)
            body = self.store.open_stream(firmware.bucket, firmware.key, if_match=firmware.etag)
            try:
                for chunk in prefetched(body):
                    hasher.update(chunk)
            finally:
                body.close()
            _raise_if_unlike(hasher, firmware, "GetObject")
            return hasher.result()

        result: Digest = self._pinned(deadline, f"GetObject {firmware.key}", stream_once)
        return result

    def _hasher(self, firmware: ObjectInfo, sign_method: str) -> StreamHasher:
        return StreamHasher(
            sign_method,
            also_md5=etag_fast_path(firmware, "MD5") is not None,
            crc64=self.config.verify_crc64 and firmware.crc64 is not None,
        )

    def _pinned(self, deadline: Deadline, what: str, fn: Callable[[], Any]) -> Any:
        """A retried call on the pinned object: a failed If-Match means it was replaced."""
        try:
            return self._call(deadline, what, fn)
        except PermanentError as exc:
            if exc.code == PRECONDITION_FAILED:
                raise ObjectChanged("OSS refused the pinned read (If-Match failed)") from exc
            raise

    def _place(
        self,
        run: _Run,
        firmware: ObjectInfo,
        spec: ReleaseSpec,
        fast: Digest | None,
        deadline: Deadline,
    ) -> tuple[str, Digest]:
        """The FirmwareUrl to register and the digest of the bytes behind it."""
        if self.config.url_mode is UrlMode.DIRECT:
            digest = fast or self._digest(run, firmware, spec.sign_method, deadline)
            self._still_same(run, firmware, deadline)
            url = self.store.object_url(firmware.bucket, firmware.key, self.config.signed_url_ttl)
            return url, digest
        return self._stage(run, firmware, spec, deadline)

    def _still_same(self, run: _Run, firmware: ObjectInfo, deadline: Deadline) -> None:
        """Direct mode cannot pin its URL: check the object is still the one hashed."""
        now = self._head(run, firmware.bucket, firmware.key, deadline)
        if now is None:
            raise ObjectChanged("the object has since been deleted")
        if now.etag != firmware.etag:
            raise ObjectChanged(f"ETag {now.etag} now")

    def _stage(
        self, run: _Run, firmware: ObjectInfo, spec: ReleaseSpec, deadline: Deadline
    ) -> tuple[str, Digest]:
        """Copy the object to a fresh upload ticket in one pinned read, hashing as it goes.

        GenerateOTAUploadURL's form is valid for 60 seconds, so every attempt asks for its
        own ticket right before it posts: a retry never sends an expired policy.
        """
        suffix = _staged_suffix(firmware.key)
        filename = firmware.key.rsplit("/", 1)[-1]

        def attempt() -> tuple[UploadTicket, Digest]:
            ticket = self.platform.generate_upload_url(suffix, spec.iot_instance_id)
            run.note("iot", ticket.request_id)
            hasher = self._hasher(firmware, spec.sign_method)
            self.store.stage_copy(firmware, ticket, filename, hasher.update)
            _raise_if_unlike(hasher, firmware, "PostObject")
            return ticket, hasher.result()

        ticket, digest = self._pinned(deadline, f"stage {firmware.key}", attempt)
        return str(ticket.firmware_url), digest

    def _find_existing(
        self, run: _Run, spec: ReleaseSpec, deadline: Deadline, *, narrow: bool = True
    ) -> FirmwareRecord | None:
        """The package already holding ``spec.name``; ``narrow`` lists only its version."""
        record: FirmwareRecord | None = self._call(
            deadline,
            f"ListOTAFirmware {spec.name}",
            lambda: self.platform.find_firmware(
                spec.name,
                spec.version if narrow else None,
                spec.product_key if narrow else None,
                spec.iot_instance_id,
            ),
        )
        return record

    def _judge_existing(
        self,
        run: _Run,
        pairing: Pairing,
        spec: ReleaseSpec,
        digest: Digest,
        existing: FirmwareRecord,
    ) -> Notification:
        differences = _differences(spec, digest, existing)
        firmware = {
            "id": existing.firmware_id,
            "name": existing.name,
            "utc_create": existing.utc_create,
        }
        if differences:
            return self._note(
                run,
                Outcome.CONFLICT,
                f"{spec.name} is already registered as {existing.firmware_id} with different "
                "content; the existing package was left untouched",
                pairing=pairing,
                spec=spec,
                digest=digest,
                firmware=firmware,
                errors=differences,
            )
        if self._own_attempt(existing, pairing, run.record.event_time):
            # This upload's own earlier attempt registered it (FC retried us, or a twin
            # event raced us): report it exactly as that attempt would have.
            return self._note(
                run,
                Outcome.CREATED,
                f"registered {spec.name} {spec.version} as {existing.firmware_id}",
                pairing=pairing,
                spec=spec,
                digest=digest,
                firmware={**firmware, "url_mode": self.config.url_mode.value},
            )
        return self._note(
            run,
            Outcome.ALREADY_REGISTERED,
            f"{spec.name} {spec.version} is already registered as {existing.firmware_id} "
            "with the same content",
            pairing=pairing,
            spec=spec,
            digest=digest,
            firmware=firmware,
        )

    def _own_attempt(
        self, existing: FirmwareRecord, pairing: Pairing, event_time: str | None
    ) -> bool:
        """True when the package can only be this upload's own earlier attempt.

        It must have been created after the upload, and Function Compute must still be
        able to be retrying that upload's event: FC drops an asynchronous event older than
        ``MaxAsyncEventAgeInSeconds`` (template.yml, s.yaml), so a package older than that
        was reported by an invocation that is over, and a later event for the same
        content (a replay, whose event time is the object's Last-Modified) is
        ``already_registered``. docs/notifications.md, "Replays".
        """
        if not _created_after_upload(existing, pairing, event_time):
            return False
        created = _parse_time(existing.utc_create)
        assert created is not None  # _created_after_upload parsed it
        return self.clock() - created <= self.config.retry_window

    # Notification -----------------------------------------------------------------------

    def _note(
        self,
        run: _Run,
        outcome: Outcome,
        summary: str,
        *,
        pairing: Pairing | None = None,
        spec: ReleaseSpec | None = None,
        digest: Digest | None = None,
        firmware: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> Notification:
        record = run.record
        fw = pairing.firmware if pairing else None
        sc = pairing.sidecar if pairing else None
        identity: list[str] = [run.key, record.etag or ""]
        if (fw or sc) and outcome in RELEASE_OUTCOMES:
            # The release, not the triggering half, is the fact being reported: both
            # halves' events must produce the same id (notification.message_id).
            identity = [
                fw.key if fw else "",
                fw.etag if fw else "",
                sc.key if sc else "",
                sc.etag if sc else "",
            ]
        return Notification(
            outcome=outcome,
            summary=_scrub(summary),
            bucket=record.bucket,
            key=run.key,
            size=record.size,
            etag=record.etag,
            event_name=record.event_name,
            event_time=record.event_time,
            firmware_key=fw.key if fw else None,
            sidecar_key=sc.key if sc else None,
            spec=_scrub(spec.model_dump(exclude_none=True)) if spec else None,
            firmware=firmware,
            digest=(
                {
                    "sign_method": digest.sign_method,
                    "sign": digest.sign,
                    "size": digest.size,
                    "source": digest.source,
                }
                if digest
                else None
            ),
            errors=_scrub(errors or []),
            request_ids=run.request_ids,
            identity=tuple(identity),
        )

    def _publish(self, note: Notification, run: _Run, deadline: Deadline) -> Result:
        _checkpoint("before_notify", run.key)
        body = note.to_body(self.clock())
        receipt: PublishReceipt = self._call(
            deadline,
            "PublishMessage",
            lambda: self.notifier.publish(body, note.outcome.tag),
        )
        _checkpoint("during_notify", run.key)
        logger.info(
            "outcome %s for %s",
            note.outcome.value,
            run.key,
            extra={
                "outcome": note.outcome.value,
                "object_key": run.key,
                "message_id": note.message_id,
            },
        )
        return Result(note.outcome, run.key, note.message_id, note, receipt)


def _scrub(value: Any) -> Any:
    """Replace lone surrogates in strings, recursively, so the message can be UTF-8.

    A YAML sidecar may spell ``"\\ud800"``: the value (and the error quoting it) then holds
    a character UTF-8 cannot encode, and the rejection could never be published.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _missing(exc: NotFoundError, bucket: str, what: str) -> str:
    """What a 404 means, by its code: the bucket and the object are different stories."""
    if exc.code == "NoSuchBucket":
        return (
            f"the bucket {bucket} does not exist (NoSuchBucket), so {what} cannot be read; "
            "check the trigger's bucket and the function's OSS endpoint and region"
        )
    return f"{what} no longer exists; it was deleted before it could be processed"


def _raise_if_unlike(hasher: StreamHasher, firmware: ObjectInfo, operation: str) -> None:
    """Bytes that disagree with the pinned HEAD were damaged in transit: read them again.

    The read is pinned with If-Match, so a replaced object fails the precondition instead
    of arriving here; a mismatch under the same ETag is the transport's fault.
    """
    problems = hasher.differences(firmware)
    if problems:
        raise TransientError("oss", operation, "IntegrityError", "; ".join(problems))


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


def _describe_missing(pairing: Pairing) -> str:
    """``its sidecar p/cam.bin.ota.json (or .ota.yaml, .ota.yml)`` / ``its firmware p/cam.bin``."""
    if pairing.firmware is None:
        return f"its firmware {pairing.missing[0]}"
    first, *rest = pairing.missing
    others = [key[len(pairing.firmware.key) :] for key in rest]
    return f"its sidecar {first}" + (f" (or {', '.join(others)})" if others else "")


def _staged_suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    for suffix in STAGED_SUFFIXES:
        if name.endswith("." + suffix):
            return suffix
    return "bin"


def _differences(
    spec: ReleaseSpec, digest: Digest, existing: FirmwareRecord
) -> list[dict[str, Any]]:
    """Everything that makes a package, where the existing one differs from this release.

    The same judgement whichever search found the package (by version and product, or
    every package), so the two can never disagree. A field the platform did not report
    (None: a Udi nobody asked QueryOTAFirmware for, NeedToVerify without a Status) is not
    compared.
    """
    out: list[dict[str, Any]] = []
    for name, ours, theirs in _package_fields(spec, digest, existing):
        if theirs is _UNKNOWN or ours == theirs:
            continue
        out.append(
            {
                "field": name,
                "rule": "must match the registered package",
                "value": f"this upload {ours!r}, registered {theirs!r}",
            }
        )
    return out


_UNKNOWN = object()


def _known(value: Any) -> Any:
    return _UNKNOWN if value is None else value


def _module(value: str | None) -> Any:
    """The registered ModuleName; an empty one is the default module."""
    return _UNKNOWN if value is None else (value or "default")


def _package_fields(
    spec: ReleaseSpec, digest: Digest, existing: FirmwareRecord
) -> list[tuple[str, Any, Any]]:
    """(field, this release's value, the registered package's value) for every field."""
    fields: list[tuple[str, Any, Any]] = [
        ("name", spec.name, existing.name),
        ("version", spec.version, _known(existing.dest_version)),
        ("product_key", spec.product_key or None, existing.product_key or None),
        ("module", spec.module or "default", _module(existing.module)),
        ("type", spec.type, _known(existing.type)),
    ]
    if existing.sign_method and existing.sign_method.upper() != spec.sign_method:
        fields.append(("sign_method", spec.sign_method, existing.sign_method.upper()))
    else:
        fields.append(("sign", digest.sign, _known(existing.sign and existing.sign.lower())))
    fields += [
        ("size", digest.size, _known(existing.size)),
        ("description", spec.description or None, existing.description or None),
        ("need_to_verify", spec.need_to_verify is not False, _known(existing.need_to_verify)),
        ("udi", spec.udi or "", _known(existing.udi)),
    ]
    if spec.type == rules.TYPE_DIFF or existing.src_version:
        fields.append(("src_version", spec.src_version or None, existing.src_version or None))
    return fields


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _created_after_upload(
    existing: FirmwareRecord, pairing: Pairing, event_time: str | None
) -> bool:
    """True when the package was created after this upload happened.

    The upload's moment is the trigger event's ``eventTime`` (millisecond resolution).
    Without one, the newer Last-Modified of the two objects stands in, compared at its
    one-second resolution.
    """
    created = _parse_time(existing.utc_create)
    if created is None:
        return False
    uploaded = _parse_time(event_time)
    if uploaded is not None:
        return created >= uploaded
    stamps = [
        i.last_modified
        for i in (pairing.firmware, pairing.sidecar)
        if i is not None and i.last_modified is not None
    ]
    if not stamps:
        return False
    newest = max(s if s.tzinfo else s.replace(tzinfo=timezone.utc) for s in stamps)
    return created.replace(microsecond=0) >= newest.replace(microsecond=0)
