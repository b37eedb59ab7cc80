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
from datetime import datetime, timezone
from typing import Any

from ota_release import rules
from ota_release.digest import Digest, IntegrityError, digest_stream, etag_fast_path
from ota_release.errors import (
    DuplicateNameError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    PlatformError,
    TransientError,
)
from ota_release.events import ObjectCreated
from ota_release.notification import Notification, Outcome
from ota_release.pairing import Pairing, find_pair
from ota_release.ports import (
    CreatedFirmware,
    FirmwareRecord,
    Notifier,
    ObjectInfo,
    ObjectStore,
    OtaPlatform,
    PublishReceipt,
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
        for candidate in record.key_candidates:
            trigger = self._head(run, bucket, candidate, deadline)
            if trigger is not None:
                run.key = candidate
                break
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
        bucket = firmware.bucket
        try:
            raw = self._call(
                deadline,
                f"GetObject {sidecar.key}",
                lambda: self.store.read_small(bucket, sidecar.key, MAX_SIDECAR_BYTES),
            )
        except NotFoundError:
            return self._note(
                run, Outcome.FAILED, "the sidecar was deleted before it was read", pairing=pairing
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
        spec = parsed.spec

        if firmware.size > rules.FIRMWARE_SIZE_MAX:
            return self._note(
                run,
                Outcome.REJECTED,
                f"{firmware.key} is larger than IoT Platform accepts",
                pairing=pairing,
                spec=spec,
                errors=[
                    rules.Violation(
                        "FirmwareSize", rules.RULES_TABLE["FirmwareSize"], firmware.size
                    ).as_dict()
                ],
            )

        try:
            digest = self._digest(run, firmware, spec.sign_method, deadline)
        except NotFoundError:
            return self._note(
                run,
                Outcome.FAILED,
                f"{firmware.key} was deleted before it could be read",
                pairing=pairing,
                spec=spec,
            )

        _checkpoint("after_digest", run.key)
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
        if mismatches:
            return self._note(
                run,
                Outcome.REJECTED,
                f"{firmware.key} does not match what its sidecar declares",
                pairing=pairing,
                spec=spec,
                digest=digest,
                errors=mismatches,
            )

        existing = self._find_existing(run, spec, deadline)
        if existing is not None:
            return self._judge_existing(run, pairing, spec, digest, existing)

        try:
            firmware_url = self._firmware_url(run, firmware, digest, deadline)
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
            created: CreatedFirmware = self._call(
                deadline,
                f"CreateOTAFirmware {spec.name}",
                lambda: self.platform.create_firmware(params),
            )
        except DuplicateNameError:
            # The name is taken: by a twin of this upload that won the race, or by a
            # package of another version or product. Search everything and judge it.
            existing = self._find_existing(run, spec, deadline, narrow=False)
            if existing is None:
                raise
            return self._judge_existing(run, pairing, spec, digest, existing)
        except PermanentError as exc:
            run.note("iot" if exc.service == "iot" else exc.service, exc.request_id)
            outcome = Outcome.REJECTED if is_invalid_input(exc) else Outcome.FAILED
            return self._note(
                run,
                outcome,
                f"{exc.service} {exc.operation} refused the release: {exc.code}",
                pairing=pairing,
                spec=spec,
                digest=digest,
                errors=[{"field": exc.operation, "rule": exc.code, "value": exc.message}],
            )
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

    # Steps ------------------------------------------------------------------------------

    def _digest(
        self, run: _Run, firmware: ObjectInfo, sign_method: str, deadline: Deadline
    ) -> Digest:
        fast = etag_fast_path(firmware, sign_method)
        if fast is not None:
            return fast

        def stream_once() -> Digest:
            body = self.store.open_stream(firmware.bucket, firmware.key)
            try:
                return digest_stream(
                    body,
                    sign_method,
                    expected_size=firmware.size,
                    expected_crc64=firmware.crc64 if self.config.verify_crc64 else None,
                )
            except IntegrityError as exc:
                # A short or corrupted read is the transport's fault: read it again.
                raise TransientError("oss", "GetObject", "IntegrityError", str(exc)) from exc
            finally:
                body.close()

        result: Digest = self._call(deadline, f"GetObject {firmware.key}", stream_once)
        return result

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
        if _created_after_upload(existing, pairing, run.record.event_time):
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

    def _firmware_url(
        self, run: _Run, firmware: ObjectInfo, digest: Digest, deadline: Deadline
    ) -> str:
        if self.config.url_mode is UrlMode.DIRECT:
            return self.store.object_url(firmware.bucket, firmware.key, self.config.signed_url_ttl)
        suffix = _staged_suffix(firmware.key)
        ticket = self._call(
            deadline,
            "GenerateOTAUploadURL",
            lambda: self.platform.generate_upload_url(suffix, self.config.iot_instance_id),
        )
        run.note("iot", ticket.request_id)
        filename = firmware.key.rsplit("/", 1)[-1]

        def upload() -> None:
            body = self.store.open_stream(firmware.bucket, firmware.key)
            try:
                self.store.post_object(ticket, body, digest.size, filename)
            finally:
                body.close()

        self._call(deadline, f"PostObject {ticket.key}", upload)
        return str(ticket.firmware_url)

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
        if outcome in (
            Outcome.CREATED,
            Outcome.ALREADY_REGISTERED,
            Outcome.CONFLICT,
            Outcome.REJECTED,
        ):
            # The release, not the triggering half, is the fact being reported: both
            # halves' events must produce the same id.
            identity = [
                fw.key if fw else "",
                fw.etag if fw else "",
                sc.key if sc else "",
                sc.etag if sc else "",
            ]
        if firmware and outcome in (Outcome.CREATED, Outcome.ALREADY_REGISTERED):
            identity.append(str(firmware.get("id")))
        if outcome is Outcome.REJECTED and errors:
            identity.append(str(sorted(str(e.get("field")) for e in errors)))
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
    """Where an existing package with our name differs from this release."""
    out = []

    def differ(field: str, ours: Any, theirs: Any) -> None:
        if theirs is not None and ours != theirs:
            out.append(
                {
                    "field": field,
                    "rule": "must match the registered package",
                    "value": f"this upload {ours!r}, registered {theirs!r}",
                }
            )

    differ("version", spec.version, existing.dest_version)
    if existing.sign_method and existing.sign_method.upper() != spec.sign_method:
        differ("sign_method", spec.sign_method, existing.sign_method)
    else:
        differ("sign", digest.sign, existing.sign.lower() if existing.sign else None)
    differ("size", digest.size, existing.size)
    differ(
        "module",
        spec.module or "default",
        existing.module or "default" if existing.module is not None else None,
    )
    differ("type", spec.type, existing.type)
    if spec.type == rules.TYPE_DIFF:
        differ("src_version", spec.src_version, existing.src_version)
    return out


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
