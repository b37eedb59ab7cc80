"""What every step shares: the configuration, the ports, and the facts of one release.

A step is a function of a :class:`Release`. It returns what it found (a typed value) or
ends the release by raising :class:`Stop` with the outcome and the reasons; the facts it
learns on the way (the pair, the spec, the digest, request ids) are kept on the
:class:`Release`, where :mod:`ota_release.pipeline.outcome` reads them for the notification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from ota_release.digest import Digest
from ota_release.errors import PermanentError
from ota_release.events import ObjectCreated
from ota_release.notification import (
    ErrorItem,
    Outcome,
    PackageRef,
    QuotaUsage,
    RequestIds,
    Verification,
)
from ota_release.pairing import Pairing
from ota_release.ports import (
    Notifier,
    ObjectInfo,
    OtaPlatform,
    OutcomeStore,
    PackageStaging,
    Storage,
)
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES, UrlMode
from ota_release.sidecar import ReleaseSpec

T = TypeVar("T")

#: A named point in the release (``after_digest``, ``after_create``, ``before_notify``,
#: ``during_notify``) and the object's key. The product passes a no-op; a test harness
#: may pass one that ends the process there (docs/reliability.md, crash points).
Checkpoint = Callable[[str, str], None]


def no_checkpoint(point: str, key: str) -> None:
    """The production checkpoint: nothing happens."""


#: How long Function Compute may retry one asynchronous event: MaxAsyncEventAgeInSeconds
#: in template.yml and s.yaml (a test holds them equal).
FC_MAX_EVENT_AGE = timedelta(seconds=86400)
#: OSS's error code when an If-Match (the ETag a release started from) no longer holds.
PRECONDITION_FAILED = "PreconditionFailed"


@dataclass(frozen=True)
class ReleaseConfig:
    """The settings the release needs (a subset of :class:`Settings`)."""

    url_mode: UrlMode = UrlMode.STAGED
    signed_url_ttl: int = 0
    sidecar_suffixes: tuple[str, ...] = DEFAULT_SIDECAR_SUFFIXES
    product_key: str | None = None
    iot_instance_id: str | None = None
    #: The watched key prefix (OTA_PREFIX): folder defaults are read from it downwards.
    prefix: str = ""
    #: Recompute OSS's CRC-64 over a streamed download. crcmod holds the GIL and runs
    #: slower than MD5, so it roughly halves digest throughput; the deployed function
    #: leaves it off and relies on the exact length over TLS (docs/benchmarks.md).
    verify_crc64: bool = False
    #: A package created after the upload and at most this long ago is the upload's own
    #: earlier attempt (``created`` again, same id); older, it is ``already_registered``.
    retry_window: timedelta = FC_MAX_EVENT_AGE
    #: OTA_PACKAGE_LIMIT: packages the account (instance) may hold (pipeline/quota.py).
    package_limit: int = 500
    #: Where outcome objects go (OTA_RESULTS_PREFIX); None: none are written.
    results_prefix: str | None = None


@dataclass(frozen=True)
class Ports:
    """The ports a release talks to."""

    storage: Storage
    platform: OtaPlatform
    notifier: Notifier
    staging: PackageStaging
    #: where outcome objects are written; None: nowhere
    outcomes: OutcomeStore | None = None


class Stop(Exception):
    """Ends the release with ``outcome``: the summary and the reasons (``errors``).

    ``package`` is the firmware package the outcome is about, when there is one.
    """

    def __init__(
        self,
        outcome: Outcome,
        summary: str,
        errors: Sequence[ErrorItem] = (),
        package: PackageRef | None = None,
    ) -> None:
        super().__init__(summary)
        self.outcome = outcome
        self.summary = summary
        self.errors = list(errors)
        self.package = package


class ObjectChanged(Exception):
    """The firmware is no longer the object (ETag) its release started from."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class Release:
    """One object's way through the pipeline: what it talks to and what it has learnt."""

    record: ObjectCreated
    ports: Ports
    config: ReleaseConfig
    retry: RetryPolicy
    deadline: Deadline
    clock: Callable[[], datetime]
    checkpoint: Checkpoint = no_checkpoint
    #: the key that exists in OSS (the event's, or its percent-decoded form)
    key: str = ""
    request_ids: RequestIds = field(default_factory=RequestIds)
    pairing: Pairing | None = None
    spec: ReleaseSpec | None = None
    digest: Digest | None = None
    #: where each effective sidecar value came from, when folder defaults apply
    sources: dict[str, str] | None = None
    #: the verification job started (or found, or refused) after ``created``
    verification: Verification | None = None
    #: a multi-file release's digests, by file name (``digest`` stays None)
    file_digests: dict[str, Digest] = field(default_factory=dict)
    #: the package count against the limit, when the outcome reports it (pipeline/quota.py)
    quota: QuotaUsage | None = None

    def __post_init__(self) -> None:
        self.key = self.key or self.record.key

    @property
    def release_key(self) -> str:
        """The key that names the release (its outcome object, for one): a multi-file
        release's folder (its sidecar's stem), else the firmware key the pairing knows (the
        firmware's own, or the one a sidecar names), else the triggering object's key."""
        pairing = self.pairing
        if pairing is not None and pairing.multi and pairing.folder is not None:
            return pairing.folder
        if pairing is not None and pairing.firmware is not None:
            return pairing.firmware.key
        if pairing is not None and pairing.missing:
            return pairing.missing[0]  # a sidecar whose firmware has not arrived
        return self.key

    @property
    def firmware(self) -> ObjectInfo:
        """The firmware object's HEAD (only once the pair is complete)."""
        assert self.pairing is not None and self.pairing.firmware is not None
        return self.pairing.firmware

    @property
    def release_spec(self) -> ReleaseSpec:
        """The validated sidecar (only once it has been read)."""
        assert self.spec is not None
        return self.spec

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` under the retry policy and the invocation's deadline."""
        result: T = self.retry.call(fn, self.deadline, what)
        return result

    def pinned(self, what: str, fn: Callable[[], T]) -> T:
        """A retried call on the pinned object: a failed If-Match means it was replaced."""
        try:
            return self.call(what, fn)
        except PermanentError as exc:
            if exc.code == PRECONDITION_FAILED:
                raise ObjectChanged("OSS refused the pinned read (If-Match failed)") from exc
            raise

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """HEAD an object (None when it does not exist), keeping the call's request id."""
        info = self.call(f"HeadObject {key}", lambda: self.ports.storage.head(bucket, key))
        if info is not None:
            self.request_ids.add("oss", info.request_id)
        return info
