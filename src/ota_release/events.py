"""Turn whatever Function Compute delivers for an OSS upload into a list of records.

One function, :func:`parse_trigger_event`, accepts every shape an "object created" trigger
can arrive in, so the handler and the tests never branch on how the function was wired:

1. Native OSS trigger: ``{"events": [record, ...]}`` (one or more classic OSS records).
2. EventBridge-based trigger, CloudEvents schema: an envelope with ``specversion``,
   ``source`` (``acs.oss``), ``type`` (``oss:ObjectCreated:PutObject``), ``subject`` and
   ``data`` holding one classic record; either one envelope or a JSON array of them when
   the trigger pushes in batches.
3. EventBridge-based trigger, ``RawData`` schema: the classic record alone (or, in batch
   mode, a JSON array of bare records; an array may mix both schemas).

The classic record and the CloudEvents envelope are pydantic models; they are validated
through the powertools parser with :class:`OssTriggerEnvelope`, which finds the records in
whichever shape arrived. Unknown fields are ignored so that new fields added by OSS or
EventBridge never break the function. Anything that is not one of the shapes above, or a
record that is clearly one of them but has a bad field, raises :class:`EventShapeError`
whose message names the path of the bad field (``events[0].oss.object.key: field
required``), because an operator reading the failure destination must see what to fix.

Events whose name is not ``ObjectCreated:*`` (deletes, restores, ...) are not errors: a
trigger configured with a wide event filter should not fail and be retried for events the
pipeline simply does not handle. They become :class:`SkippedEvent`, each logged on one
line. ``ObjectCreated:InitiateMultipartUpload``, ``UploadPart`` and ``UploadPartCopy`` are
skipped too: the object does not exist until ``CompleteMultipartUpload`` (which is kept)
is sent.

Key rule
--------
Function Compute's documentation examples use ``oss.object.key`` directly as the object
key, with no decoding, but no source settles whether OSS ever URL-encodes keys in trigger
events. So :attr:`ObjectCreated.key` is the key exactly as delivered and
:attr:`ObjectCreated.key_candidates` lists the keys worth trying against OSS, in order:

* the key as delivered, always first;
* the percent-decoded key, only when the delivered key contains a ``%XX`` escape (two hex
  digits), decoding it as UTF-8 succeeds (``urllib.parse.unquote(errors="strict")``) and
  the result differs. A ``%`` not followed by two hex digits is kept literally.

``+`` is never turned into a space: OSS does not form-encode keys. For the EventBridge
envelope the key is taken from ``data.oss.object.key``, never parsed out of ``subject``.

Limits
------
Function Compute caps an asynchronous invocation payload (the way OSS triggers invoke) at
128 KB, 256 KB on request; a synchronous one at 32 MB. Input larger than
:data:`MAX_EVENT_BYTES` (1 MiB) is rejected before JSON decoding so that a runaway or
hostile payload cannot cost memory and time; deeply nested JSON that exhausts the
recursion limit is reported as an :class:`EventShapeError` too.

Screening
---------
:func:`screen_records` (called by the handler once settings are read) keeps what this
function should process, in order:

* records outside the configured bucket(s) and prefix (``OTA_BUCKETS``, ``OTA_PREFIX``)
  are skipped and logged: nothing is read, registered or published for them;
* records whose key no OSS object can have (over OSS's 1023-byte key limit, not UTF-8,
  starting with ``/`` or ``\\``) or that is a folder marker ending in ``/`` are skipped
  the same way;
* a record that repeats an earlier one (same bucket, key, ETag, size, event time and OSS
  request id: one upload delivered twice) is dropped, so one event of 9,532 copies of
  one upload is processed once;
* more than :data:`MAX_RECORDS_PER_EVENT` (100) distinct records left raise
  :class:`TooManyRecordsError` before any is processed: one logged error, FC's retries
  and then the OnFailure destination, never hundreds of notifications or a run into the
  function's timeout. An OSS trigger delivers one record per event and an EventBridge
  batch window's documented example is 100 events, so a real event stays within it.

Building
--------
:func:`oss_trigger_record` writes the native record this module parses, the one place
the shape is written: the CLI's ``replay``, the local OSS and the test kits use it.
"""

from __future__ import annotations

import json
import logging
import re
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, cast
from urllib.parse import unquote

from aws_lambda_powertools.utilities.parser import parse
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
)

from ota_release.timestamps import utc_millis

_M = TypeVar("_M", bound=BaseModel)

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_RECORDS_PER_EVENT",
    "OSS_MAX_KEY_BYTES",
    "Boundary",
    "EventShapeError",
    "ObjectCreated",
    "OssTriggerEnvelope",
    "SkippedEvent",
    "TooManyRecordsError",
    "TriggerBatch",
    "key_bytes",
    "oss_trigger_record",
    "parse_trigger_event",
    "screen_records",
]

logger = logging.getLogger("ota_release.events")

MAX_EVENT_BYTES = 1024 * 1024
"""Largest event accepted, in bytes of JSON (UTF-8 for ``str`` input)."""

MAX_RECORDS_PER_EVENT = 100
"""Most distinct object-created records one invocation processes (module doc, Limits)."""

#: OSS object keys are 1 to 1023 bytes of UTF-8.
OSS_MAX_KEY_BYTES = 1023

_OBJECT_CREATED_PREFIX = "ObjectCreated:"
# These fire while a multipart upload is in progress; the object is not readable yet.
_INCOMPLETE_UPLOAD_EVENTS = frozenset(
    {
        "ObjectCreated:InitiateMultipartUpload",
        "ObjectCreated:UploadPart",
        "ObjectCreated:UploadPartCopy",
    }
)
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_MAX_PROBLEMS = 10
_MAX_MESSAGE_CHARS = 2000

# reprlib keeps error messages short and cannot recurse without bound on hostile input.
# (Attributes, not constructor arguments: the keyword form needs Python 3.12.)
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 4
_short.maxdict = 6
_short.maxlevel = 2


class EventShapeError(ValueError):
    """The event is none of the accepted trigger shapes, or a record in it is malformed.

    ``problems`` lists each finding (path and rule) so a caller can report them separately;
    the message joins them, truncated so that a hostile event cannot flood the logs.
    """

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.problems = tuple(problems)
        message = summary
        if self.problems:
            message += ": " + "; ".join(self.problems)
        if len(message) > _MAX_MESSAGE_CHARS:
            message = message[: _MAX_MESSAGE_CHARS - 15] + "... (truncated)"
        super().__init__(message)


@dataclass(frozen=True)
class ObjectCreated:
    """One object-created notification, normalised across trigger shapes."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    event_name: str
    region: str | None
    event_time: str | None
    oss_request_id: str | None
    source: str

    @property
    def key_candidates(self) -> tuple[str, ...]:
        """Keys to try against OSS, in order: as delivered, then percent-decoded (module doc)."""
        if not _PERCENT_ESCAPE.search(self.key):
            return (self.key,)
        try:
            decoded = unquote(self.key, encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            # The escapes are not UTF-8, so they cannot be an encoding of a real OSS key
            # (OSS keys are UTF-8); the key can only be meant literally.
            return (self.key,)
        if decoded == self.key:
            return (self.key,)
        return (self.key, decoded)


@dataclass(frozen=True)
class SkippedEvent:
    """A record that was understood but is not for this pipeline (e.g. a delete)."""

    event_name: str
    bucket: str | None
    key: str | None
    reason: str


@dataclass(frozen=True)
class TriggerBatch:
    """Everything one invocation delivered: records to process and records skipped."""

    records: list[ObjectCreated]
    skipped: list[SkippedEvent]
    #: records dropped by :func:`screen_records` as repeats of an earlier record
    duplicates: int = 0


class TooManyRecordsError(EventShapeError):
    """More distinct records than :data:`MAX_RECORDS_PER_EVENT`: none is processed."""


@dataclass(frozen=True)
class Boundary:
    """The bucket(s) and key prefix the function handles (``OTA_BUCKETS``, ``OTA_PREFIX``).

    An empty ``buckets`` accepts every bucket, an empty ``prefix`` every key.
    """

    buckets: frozenset[str] = frozenset()
    prefix: str = ""

    def reason_to_skip(self, record: ObjectCreated) -> str | None:
        """Why ``record`` is outside this function's boundary, or None."""
        if self.buckets and record.bucket not in self.buckets:
            return (
                f"bucket {_short.repr(record.bucket)} is not one this function handles "
                f"(OTA_BUCKETS: {', '.join(sorted(self.buckets))})"
            )
        if self.prefix and not any(k.startswith(self.prefix) for k in record.key_candidates):
            return f"key is outside the watched prefix (OTA_PREFIX: {self.prefix!r})"
        return None


def key_bytes(key: str) -> int:
    """The length OSS measures a key by: its UTF-8 bytes (a lone surrogate counts as 3)."""
    return len(key.encode("utf-8", "surrogatepass"))


def _key_problem(record: ObjectCreated) -> str | None:
    """Why no OSS object can have the record's key (so nothing is looked up), or None."""
    usable = [k for k in record.key_candidates if _is_utf8(k)]
    if not usable:
        return "key is not valid UTF-8 text (it holds a lone surrogate); OSS keys are UTF-8"
    if all(key_bytes(k) > OSS_MAX_KEY_BYTES for k in usable):
        return (
            f"key is {key_bytes(usable[-1])} bytes; OSS keys are at most "
            f"{OSS_MAX_KEY_BYTES} bytes, so no such object exists"
        )
    if all(k.startswith(("/", "\\")) for k in usable):
        return "key starts with '/' or '\\'; OSS keys never do"
    if record.key.endswith("/"):
        return "key ends in '/': a folder marker, not a file"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _delivery_identity(record: ObjectCreated) -> tuple[object, ...]:
    """What makes two records the same upload delivered twice (OSS has no sequencer)."""
    return (
        record.bucket,
        record.key,
        record.etag,
        record.size,
        record.event_time,
        record.oss_request_id,
    )


def screen_records(
    batch: TriggerBatch, boundary: Boundary = Boundary(), limit: int = MAX_RECORDS_PER_EVENT
) -> TriggerBatch:
    """Keep the records this function should process: in bounds, valid keys, each once.

    A record outside ``boundary`` or with a key no OSS object can have is skipped with a
    reason; a repeat of an earlier record (same bucket, key, ETag, size, event time and
    OSS request id) is dropped and counted. More than ``limit`` records left raise
    :class:`TooManyRecordsError` before anything is processed.
    """
    kept: list[ObjectCreated] = []
    skipped = list(batch.skipped)
    seen: set[tuple[object, ...]] = set()
    duplicates = batch.duplicates
    for record in batch.records:
        reason = boundary.reason_to_skip(record) or _key_problem(record)
        identity = _delivery_identity(record)
        if reason is not None:
            skipped.append(SkippedEvent(record.event_name, record.bucket, record.key, reason))
        elif identity in seen:
            duplicates += 1
        else:
            seen.add(identity)
            kept.append(record)
    if len(kept) > limit:
        raise TooManyRecordsError(
            f"the event holds {len(kept)} distinct object-created records; at most {limit} "
            "are processed per invocation, so none was: the event goes to the OnFailure "
            "destination after FC's retries (re-run its objects with `ota-release replay`)",
            [f"first keys: {_short.repr([r.key for r in kept[:3]])}"],
        )
    return TriggerBatch(records=kept, skipped=skipped, duplicates=duplicates)


# --------------------------------------------------------------------------- models


class _Lenient(BaseModel):
    """Base for wire models: OSS and EventBridge add fields over time; ignore unknown ones."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _OssBucket(_Lenient):
    name: StrictStr = Field(min_length=1)
    arn: str | None = None


class _OssObject(_Lenient):
    key: StrictStr = Field(min_length=1)
    size: StrictInt | None = Field(default=None, ge=0)
    etag: str | None = Field(default=None, alias="eTag")


class _OssSection(_Lenient):
    bucket: _OssBucket
    object_: _OssObject = Field(alias="object")


class _ResponseElements(_Lenient):
    request_id: str | None = Field(default=None, alias="requestId")


class _CreatedRecord(_Lenient):
    """A classic OSS record for an ObjectCreated event: bucket and key are required."""

    event_name: StrictStr = Field(alias="eventName")
    event_source: str | None = Field(default=None, alias="eventSource")
    event_time: str | None = Field(default=None, alias="eventTime")
    region: str | None = None
    oss: _OssSection
    response_elements: _ResponseElements | None = Field(default=None, alias="responseElements")


class _LooseBucket(_Lenient):
    name: str | None = None


class _LooseObject(_Lenient):
    key: str | None = None


class _LooseSection(_Lenient):
    bucket: _LooseBucket | None = None
    object_: _LooseObject | None = Field(default=None, alias="object")


class _OtherRecord(_Lenient):
    """Any other OSS record: only its name matters, since it will be skipped."""

    event_name: StrictStr = Field(alias="eventName")
    oss: _LooseSection | None = None


def _record_kind(value: Any) -> str:
    """Pick the record model by event name, so only records we process are held to it."""
    name = value.get("eventName") if isinstance(value, Mapping) else None
    if isinstance(name, str) and name.startswith(_OBJECT_CREATED_PREFIX):
        return "created"
    return "other"


_OssRecord = Annotated[
    Annotated[_CreatedRecord, Tag("created")] | Annotated[_OtherRecord, Tag("other")],
    Discriminator(_record_kind),
]
_RECORD_TAGS = ("created", "other")


class _DeliveredRecord(_Lenient):
    """One record as the envelope found it, with what the delivery says about it."""

    source: Literal["oss", "eventbridge"]
    path: str
    envelope_region: str | None = None
    envelope_time: str | None = None
    record: _OssRecord


class _NativeTrigger(_Lenient):
    """The native OSS trigger wrapper ``{"events": [...]}``."""

    events: list[Any] = Field(min_length=1)


class _CloudEvent(_Lenient):
    """The EventBridge CloudEvents envelope; ``data`` is one classic OSS record."""

    id: StrictStr
    source: StrictStr
    specversion: StrictStr
    type: StrictStr
    subject: str | None = None
    time: str | None = None
    aliyunregionid: str | None = None
    data: dict[str, Any]


# ------------------------------------------------------------------------- envelope


class OssTriggerEnvelope:
    """Finds the OSS records in a native trigger event or an EventBridge delivery.

    ``parse`` returns one ``model`` per record, validated from a dict with the keys
    ``source``, ``path``, ``envelope_region``, ``envelope_time`` and ``record``; any
    validation failure is raised as :class:`EventShapeError` naming the field's path.

    It honours the powertools envelope contract (``parse(data, model)``, which is all
    ``parser.parse`` calls) without subclassing ``BaseEnvelope``: importing that class runs
    ``parser.envelopes/__init__``, which builds every AWS envelope's pydantic models, about
    65 ms of each cold start for a base class we use nothing of (docs/benchmarks.md).
    """

    def parse(self, data: dict[str, Any] | Any | None, model: type[_M]) -> list[_M | None]:
        """Validate the envelope, then each record it carries against ``model``."""
        if isinstance(data, Mapping):
            deliveries = self._from_object(data, path="", in_array=False)
        elif isinstance(data, list):
            if not data:
                raise EventShapeError("empty JSON array: expected one or more EventBridge events")
            deliveries = []
            for index, item in enumerate(data):
                path = f"[{index}]"
                if not isinstance(item, Mapping):
                    raise EventShapeError(
                        f"{path}: expected an EventBridge event (JSON object), "
                        f"got {_json_type(item)}"
                    )
                deliveries.extend(self._from_object(item, path=path, in_array=True))
        else:
            raise EventShapeError(
                f"expected a JSON object or array as the trigger event, got {_json_type(data)}"
            )
        parsed: list[_M | None] = []
        for delivery in deliveries:
            try:
                parsed.append(model.model_validate(delivery))
            except ValidationError as exc:
                raise EventShapeError(
                    "invalid OSS record", _problems(exc, delivery["path"], skip_delivery=True)
                ) from None
        return parsed

    def _from_object(
        self, data: Mapping[str, Any], *, path: str, in_array: bool
    ) -> list[dict[str, Any]]:
        """Classify one JSON object and return the record deliveries it holds."""
        if "events" in data and not in_array:
            native = _validate(_NativeTrigger, data, path, "invalid OSS trigger event")
            return [
                {"source": "oss", "path": _join(path, f"events[{i}]"), "record": record}
                for i, record in enumerate(native.events)
            ]
        if "specversion" in data or "data" in data:
            event = _validate(_CloudEvent, data, path, "invalid EventBridge event")
            return [
                {
                    "source": "eventbridge",
                    "path": _join(path, "data"),
                    "envelope_region": event.aliyunregionid,
                    "envelope_time": event.time,
                    "record": event.data,
                }
            ]
        if "eventName" in data or "oss" in data:
            return [{"source": "eventbridge", "path": path, "record": dict(data)}]
        raise EventShapeError(
            f"{path + ': ' if path else ''}unrecognised event shape: expected "
            + ("" if in_array else '{"events": [...]} (OSS trigger), ')
            + 'a CloudEvent with "specversion" and "data" (EventBridge) or an OSS record '
            f'with "eventName" and "oss" (EventBridge RawData); got an object with keys '
            f"{_short.repr(sorted(map(str, data)))}"
        )


# --------------------------------------------------------------------------- public


def parse_trigger_event(
    event: bytes | bytearray | str | dict[str, Any] | list[Any],
) -> TriggerBatch:
    """Parse an OSS object-created trigger event in any accepted shape (see module doc).

    Raises :class:`EventShapeError` for anything else; never another exception type for
    bad input, so the handler can turn every rejection into one clear outcome.
    """
    try:
        decoded = _decode(event)
        # parse() is annotated for dict events only; our envelope also takes arrays.
        parsed = parse(
            event=cast("dict[str, Any]", decoded),
            model=_DeliveredRecord,
            # A duck-typed envelope (see OssTriggerEnvelope); parse() only calls it.
            envelope=cast(Any, OssTriggerEnvelope),
        )
    except RecursionError:
        raise EventShapeError("event is nested too deeply to be an OSS trigger event") from None
    records: list[ObjectCreated] = []
    skipped: list[SkippedEvent] = []
    for delivery in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(delivery, _DeliveredRecord):  # pragma: no cover - envelope contract
            raise EventShapeError(f"internal: envelope returned {type(delivery).__name__}")
        outcome = _to_outcome(delivery)
        if isinstance(outcome, SkippedEvent):
            logger.info(
                "skipped OSS event %s bucket=%r key=%r: %s",
                outcome.event_name,
                outcome.bucket,
                outcome.key,
                outcome.reason,
            )
            skipped.append(outcome)
        else:
            records.append(outcome)
    return TriggerBatch(records=records, skipped=skipped)


def oss_trigger_record(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    event_time: datetime,
    region: str,
    account_id: str,
    request_id: str,
    rule_id: str,
    event_name: str = "ObjectCreated:PutObject",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """One native OSS trigger record, as FC's OSS trigger event format documents it.

    The key is written as stored, not URL-encoded, as in the documentation's examples; the
    ETag without quotes; ``event_time`` in :func:`~ota_release.timestamps.utc_millis` form.
    Wrap records as ``{"events": [record, ...]}`` for the native trigger payload.
    """
    return {
        "eventName": event_name,
        "eventSource": "acs:oss",
        "eventTime": utc_millis(event_time),
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{region}:{account_id}:{bucket}",
                "name": bucket,
                "ownerIdentity": account_id,
                "virtualBucket": "",
            },
            "object": {"deltaSize": size, "eTag": etag.strip('"'), "key": key, "size": size},
            "ossSchemaVersion": "1.0",
            "ruleId": rule_id,
        },
        "region": region,
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"requestId": request_id},
        "userIdentity": {"principalId": account_id},
    }


# -------------------------------------------------------------------------- helpers


def _decode(event: object) -> dict[str, Any] | list[Any]:
    """Bytes or text to JSON, size-checked first; already-decoded values pass through."""
    if isinstance(event, (bytes, bytearray)):
        if len(event) > MAX_EVENT_BYTES:
            raise EventShapeError(_too_large(len(event)))
        try:
            text = bytes(event).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventShapeError(
                f"event is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
        return _loads(text)
    if isinstance(event, str):
        # Characters never outnumber UTF-8 bytes, so the exact count is needed only near the cap.
        if len(event) > MAX_EVENT_BYTES or (
            len(event) * 4 > MAX_EVENT_BYTES
            and len(event.encode("utf-8", "surrogatepass")) > MAX_EVENT_BYTES
        ):
            raise EventShapeError(_too_large(len(event.encode("utf-8", "surrogatepass"))))
        return _loads(event)
    if isinstance(event, (dict, list)):
        return event
    raise EventShapeError(
        f"unsupported event type {type(event).__name__}: expected bytes, str, dict or list"
    )


def _loads(text: str) -> dict[str, Any] | list[Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and int parsing limits
        raise EventShapeError(f"event is not valid JSON ({exc})") from None
    if not isinstance(value, (dict, list)):
        raise EventShapeError(
            f"expected a JSON object or array as the trigger event, got {_json_type(value)}"
        )
    return value


def _too_large(size: int) -> str:
    return (
        f"event is {size} bytes, larger than the {MAX_EVENT_BYTES} bytes accepted "
        "(an OSS trigger event is a few KB)"
    )


def _validate(model: type[_Lenient], data: Any, path: str, summary: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise EventShapeError(summary, _problems(exc, path, skip_delivery=False)) from None


def _to_outcome(delivery: _DeliveredRecord) -> ObjectCreated | SkippedEvent:
    record = delivery.record
    if isinstance(record, _OtherRecord):
        section = record.oss
        bucket = section.bucket.name if section and section.bucket else None
        key = section.object_.key if section and section.object_ else None
        return SkippedEvent(
            event_name=record.event_name,
            bucket=bucket,
            key=key,
            reason=f"{record.event_name} is not an object-created event",
        )
    oss = record.oss
    if record.event_name in _INCOMPLETE_UPLOAD_EVENTS:
        return SkippedEvent(
            event_name=record.event_name,
            bucket=oss.bucket.name,
            key=oss.object_.key,
            reason="multipart upload still in progress; CompleteMultipartUpload will follow",
        )
    etag = oss.object_.etag
    if etag is not None:
        etag = etag.strip('"') or None
    return ObjectCreated(
        bucket=oss.bucket.name,
        key=oss.object_.key,
        size=oss.object_.size,
        etag=etag,
        event_name=record.event_name,
        region=record.region or delivery.envelope_region,
        event_time=record.event_time or delivery.envelope_time,
        oss_request_id=record.response_elements.request_id if record.response_elements else None,
        source=delivery.source,
    )


def _problems(exc: ValidationError, prefix: str, *, skip_delivery: bool) -> list[str]:
    """Pydantic errors as ``path: rule (got value)`` lines with wire field names."""
    problems: list[str] = []
    errors = exc.errors(include_url=False, include_context=False)
    for error in errors[:_MAX_PROBLEMS]:
        loc = list(error["loc"])
        if skip_delivery and loc and loc[0] == "record":
            loc = loc[2:] if len(loc) > 1 and loc[1] in _RECORD_TAGS else loc[1:]
        path = prefix
        for part in loc:
            path = f"{path}[{part}]" if isinstance(part, int) else _join(path, str(part))
        problems.append(f"{path or '(root)'}: {_describe(error)}")
    if len(errors) > _MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - _MAX_PROBLEMS} more")
    return problems


def _describe(error: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return "field required"
    if kind == "too_short":
        return "must not be empty"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"expected a JSON object, got {_json_type(value)}"
    message = str(error["msg"])
    return f"{message[:1].lower()}{message[1:]} (got {_short.repr(value)})"


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    for kind, name in names.items():
        if type(value) is kind:
            return name
    if isinstance(value, (int, float)):
        return f"number {_short.repr(value)}"
    return type(value).__name__
