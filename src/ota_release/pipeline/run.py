"""One uploaded object in, one outcome out: the release as a sequence of steps.

:meth:`ReleasePipeline.release` reads top to bottom as the release happens; each line is a
step in :mod:`~ota_release.pipeline.locate`, :mod:`~ota_release.pipeline.checks`,
:mod:`~ota_release.pipeline.placement` or :mod:`~ota_release.pipeline.registry`. A step
either returns what the next ones need or raises :class:`Stop`; either way
:mod:`~ota_release.pipeline.outcome` turns the end into the one notification.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from ota_release.errors import PermanentError
from ota_release.events import ObjectCreated
from ota_release.notification import Outcome, RequestIds
from ota_release.pipeline.checks import (
    check_declared,
    check_direct_key,
    check_etag_digest,
    check_size,
)
from ota_release.pipeline.context import (
    Checkpoint,
    ObjectChanged,
    Ports,
    Release,
    ReleaseConfig,
    Stop,
    no_checkpoint,
)
from ota_release.pipeline.defaults_upload import check_defaults_upload
from ota_release.pipeline.files import release_files
from ota_release.pipeline.locate import find_trigger, pair, read_sidecar
from ota_release.pipeline.outcome import Result, notification, publish, stop_for
from ota_release.pipeline.placement import place
from ota_release.pipeline.quota import PackageCounter, count_for, quota_full
from ota_release.pipeline.registry import create, settle_existing
from ota_release.pipeline.results import store_outcome
from ota_release.pipeline.verify import verify
from ota_release.ports import Notifier, OtaPlatform, OutcomeStore, PackageStaging, Storage
from ota_release.retry import Deadline, RetryPolicy


def release(r: Release) -> Stop:
    """The steps, in order; the return value is how a successful release ends."""
    trigger = find_trigger(r)
    pairing = pair(r, trigger)
    assert pairing.sidecar is not None  # pair() stops unless both halves are there
    if pairing.multi:  # a folder of files, its sidecar already read (pipeline/files.py)
        return release_files(r)
    spec = read_sidecar(r, pairing.sidecar)
    check_size(r)
    check_direct_key(r)
    check_etag_digest(r)
    settle_existing(r)
    placed = place(r)
    r.digest = placed.digest
    r.checkpoint("after_digest", r.key)
    check_declared(r, placed.digest)
    package = create(r, placed)
    r.checkpoint("after_create", r.key)
    return Stop(
        Outcome.CREATED, f"registered {spec.name} {spec.version} as {package.id}", package=package
    )


class ReleasePipeline:
    """Processes object-created records against the ports."""

    def __init__(
        self,
        storage: Storage,
        platform: OtaPlatform,
        notifier: Notifier,
        config: ReleaseConfig | None = None,
        retry: RetryPolicy | None = None,
        fc_request_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        checkpoint: Checkpoint = no_checkpoint,
        *,
        staging: PackageStaging,
        counter: PackageCounter | None = None,
        outcomes: OutcomeStore | None = None,
    ) -> None:
        self.ports = Ports(storage, platform, notifier, staging, outcomes)
        self.config = config or ReleaseConfig()
        self.retry = retry or RetryPolicy()
        self.fc_request_id = fc_request_id
        self.clock = clock
        self.checkpoint = checkpoint
        #: the package counts (pipeline/quota.py); a fresh one asks IoT for every release
        #: unless shared (the function shares one per process)
        self.counter = counter or PackageCounter(max_age=0)

    def process(self, record: ObjectCreated, deadline: Deadline) -> Result:
        """Take one uploaded object to an outcome and publish it.

        Transient failures that outlive the retry budget propagate (as RetriesExhausted)
        without a notification, so Function Compute retries the invocation; so does a
        DuplicateNameError whose package is not listed yet. Everything else ends in
        exactly one published outcome, then written to the release's outcome object
        (pipeline/results.py) when the deployment has a results prefix. A ``created``
        release whose sidecar asks for verification gets its job first
        (:func:`~ota_release.pipeline.verify.verify`).
        """
        r = self._release(record, deadline)
        try:
            end = release(r)
            self.counter.created(r.release_spec.iot_instance_id)
        except Stop as stop:
            end = stop
        except (PermanentError, ObjectChanged) as exc:
            end = quota_full(r, exc, self.counter) or stop_for(r, exc)
        if end.outcome is Outcome.CREATED and end.package is not None:
            # Whichever way it was reached (created now, or found as this upload's own
            # earlier attempt), a created package gets the verification its sidecar asks for.
            verify(r, end.package)
        r.quota = r.quota or count_for(r, end, self.counter)
        result = publish(r, notification(r, end))
        result.outcome_key = store_outcome(r, result)
        return result

    def process_defaults(self, record: ObjectCreated, deadline: Deadline) -> Result | str:
        """Judge an uploaded folder defaults file (``defaults.is_defaults_key``).

        A bad one is published as ``rejected`` naming each key; a valid one publishes
        nothing and returns the line to log (docs/sidecar.md, "Folder defaults"). No release
        is re-run either way.
        """
        r = self._release(record, deadline)
        try:
            return check_defaults_upload(r)
        except Stop as stop:
            end = stop
        except (PermanentError, ObjectChanged) as exc:
            end = stop_for(r, exc)
        return publish(r, notification(r, end))

    def _release(self, record: ObjectCreated, deadline: Deadline) -> Release:
        return Release(
            record,
            self.ports,
            self.config,
            self.retry,
            deadline,
            self.clock,
            self.checkpoint,
            request_ids=RequestIds(fc=self.fc_request_id, oss_event=record.oss_request_id),
        )
