"""Wiring for the FC entry points: settings, credentials, adapters, logging, the summary.

``functions/create_firmware/index.py`` (built-in runtime) and the custom-runtime bootstrap
both call :func:`handle`; it is the only place that knows about FC's context object.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ota_release import redact
from ota_release.adapters import CloudCredentials
from ota_release.defaults import is_defaults_key
from ota_release.errors import PlatformError
from ota_release.events import (
    MAX_RECORDS_PER_EVENT,
    Boundary,
    ObjectCreated,
    TooManyRecordsError,
    TriggerBatch,
    parse_trigger_event,
    screen_records,
)
from ota_release.pipeline import (
    Checkpoint,
    ReleaseConfig,
    ReleasePipeline,
    Result,
    no_checkpoint,
)
from ota_release.pipeline.quota import PackageCounter
from ota_release.ports import Notifier, OtaPlatform, OutcomeStore, PackageStaging, Storage
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import LOG_LEVELS, Settings, SettingsError

# Before any logger is used: every record of this process (ours and the SDKs') is scrubbed.
redact.install()


def _import_time_level(env: Mapping[str, str]) -> str:
    """The level to log at until settings are read: a bad value is reported by them, later."""
    level = (env.get("OTA_LOG_LEVEL") or "").strip().upper()
    return level if level in LOG_LEVELS else "INFO"


class RedactingFormatter(LambdaPowertoolsFormatter):
    """The function's JSON log lines, scrubbed after formatting (exceptions included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact.scrub(super().format(record))


logger = Logger(
    service="ota-release",
    level=_import_time_level(os.environ),
    logger_formatter=RedactingFormatter(),
)

#: Seconds kept back from the function timeout to publish and return cleanly.
DEADLINE_MARGIN = 5.0
DEFAULT_TIMEOUT = 60.0

_settings_cache: dict[str, Settings] = {}


def settings_for(env: Mapping[str, str], account_id: str | None) -> Settings:
    """Settings are validated on the first invocation of an instance, then reused."""
    key = account_id or ""
    if key not in _settings_cache:
        _settings_cache[key] = Settings.from_env(env, account_id=account_id)
    return _settings_cache[key]


def reset_settings_cache() -> None:
    _settings_cache.clear()


def credentials_from(context: Any, env: Mapping[str, str]) -> CloudCredentials:
    """The function role's STS credentials: context on python3.9/3.10, env on 3.12."""
    creds = getattr(context, "credentials", None)
    if creds is not None and getattr(creds, "access_key_id", None):
        found = CloudCredentials(
            creds.access_key_id,
            creds.access_key_secret,
            getattr(creds, "security_token", None) or None,
        )
    else:
        ak = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not ak or not secret:
            raise SettingsError(
                [
                    "credentials: none in the FC context and ALIBABA_CLOUD_ACCESS_KEY_ID / "
                    "ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set (does the service have a role?)"
                ]
            )
        found = CloudCredentials(ak, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    # The function knows its secrets: scrub them by value from every log line from now on.
    redact.remember(found.access_key_secret, found.security_token)
    return found


@dataclass
class Adapters:
    """The ports, built for one invocation's credentials.

    ``staging`` left None stages through ``platform`` and ``store``
    (:class:`~ota_release.adapters.staging.TicketedStaging`).
    """

    store: Storage
    platform: OtaPlatform
    notifier: Notifier
    staging: PackageStaging | None = None
    #: where outcome objects are written (when OTA_RESULTS_PREFIX is in effect)
    outcomes: OutcomeStore | None = None


def build_adapters(settings: Settings, credentials: CloudCredentials) -> Adapters:
    from ota_release.adapters.iot import IotOtaPlatform, shared_pacer
    from ota_release.adapters.mns import MnsNotifier
    from ota_release.adapters.oss import OssObjectStore
    from ota_release.adapters.staging import TicketedStaging

    store = OssObjectStore(
        credentials,
        settings.oss_endpoint,
        settings.oss_public_endpoint,
        region=settings.region,
    )
    platform = IotOtaPlatform(
        credentials,
        settings.iot_endpoint,
        settings.region,
        protocol=settings.iot_protocol,
        pacer=shared_pacer(settings.iot_qps),
    )
    return Adapters(
        store=store,
        platform=platform,
        notifier=MnsNotifier(credentials, settings.mns_endpoint, settings.notify_topic),
        staging=TicketedStaging(platform, store),
        outcomes=store,
    )


def _timeout_of(context: Any) -> float:
    function = getattr(context, "function", None)
    timeout = getattr(function, "timeout", None)
    try:
        return float(timeout) if timeout else DEFAULT_TIMEOUT
    except (TypeError, ValueError):
        return DEFAULT_TIMEOUT


def handle(
    event: Any,
    context: Any,
    env: Mapping[str, str] | None = None,
    adapters: Adapters | None = None,
    retry: RetryPolicy | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> dict[str, Any]:
    """Process one FC invocation; return the summary of outcomes.

    Raises when a record could not be taken to an outcome (settings broken, a transient
    failure that outlived its retries, an unexpected bug), so FC retries the invocation
    and, after the last attempt, hands the event to the OnFailure destination. Records
    already done are idempotent on the retry.
    """
    env = os.environ if env is None else env
    request_id = getattr(context, "request_id", None)
    # Keys live in the invocation's own context, not on the shared Logger: with
    # InstanceConcurrency > 1 several invocations log from one process at once.
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(correlation_id=request_id)
    account_id = getattr(context, "account_id", None)
    deadline = Deadline(max(1.0, _timeout_of(context) - DEADLINE_MARGIN))

    batch: TriggerBatch = parse_trigger_event(event)
    summary: dict[str, Any] = {"request_id": request_id, "results": [], "skipped": []}
    if not batch.records:
        return _summarise_skips(summary, batch)

    settings = settings_for(env, account_id)
    logger.setLevel(settings.log_level)
    try:
        batch = screen_records(batch, Boundary(frozenset(settings.buckets), settings.prefix))
    except TooManyRecordsError as exc:
        logger.error(str(exc), extra={"outcome": "error"})
        raise
    _summarise_skips(summary, batch)
    if not batch.records:
        return summary
    # Counts are reused across invocations only against the settings' own IoT endpoint.
    shared = adapters is None
    if adapters is None:
        adapters = build_adapters(settings, credentials_from(context, env))
    pipeline = _pipeline(settings, adapters, retry or settings.retry_policy(), request_id)
    if not shared:
        pipeline.counter = PackageCounter(settings.package_count_max_age)
    pipeline.checkpoint = checkpoint  # crash points of a fault-injection run, else a no-op
    failures = _process_records(pipeline, batch, deadline, summary)
    logger.thread_safe_clear_keys()
    if failures:
        raise _for_the_runtime(failures[0])
    return summary


def _pipeline(
    settings: Settings, adapters: Adapters, retry: RetryPolicy, request_id: str | None
) -> ReleasePipeline:
    """The release pipeline these settings describe, over these adapters."""
    from ota_release.adapters.staging import TicketedStaging
    from ota_release.pipeline.quota import shared_counter

    staging = adapters.staging or TicketedStaging(adapters.platform, adapters.store)
    return ReleasePipeline(
        adapters.store,
        adapters.platform,
        adapters.notifier,
        ReleaseConfig(
            url_mode=settings.url_mode,
            signed_url_ttl=settings.signed_url_ttl,
            sidecar_suffixes=settings.sidecar_suffixes,
            product_key=settings.product_key,
            iot_instance_id=settings.iot_instance_id,
            prefix=settings.prefix,
            package_limit=settings.package_limit,
            results_prefix=settings.results_prefix,
        ),
        retry=retry,
        fc_request_id=request_id,
        staging=staging,
        counter=shared_counter(settings.iot_endpoint, settings.package_count_max_age),
        outcomes=adapters.outcomes,
    )


def _process_records(
    pipeline: ReleasePipeline, batch: TriggerBatch, deadline: Deadline, summary: dict[str, Any]
) -> list[BaseException]:
    """Take every record to an outcome; the failures FC must retry the invocation for."""
    failures: list[BaseException] = []
    for record in batch.records:
        logger.thread_safe_append_keys(object_key=record.key, outcome="processing")
        try:
            result = _process_one(pipeline, record, deadline)
        except Exception as exc:
            logger.exception(
                "could not finish %s; FC will retry", record.key, extra={"outcome": "error"}
            )
            failures.append(exc)
            summary["results"].append(
                {"key": record.key, "outcome": "error", "error": type(exc).__name__}
            )
            continue
        if isinstance(result, str):  # a valid folder defaults file: nothing to publish
            logger.info(result, extra={"outcome": "skipped"})
            summary["skipped"].append(
                {"key": record.key, "event": record.event_name, "reason": result}
            )
            continue
        logger.thread_safe_append_keys(outcome=result.outcome.value)
        logger.info(result.notification.summary, extra={"message_id": result.message_id})
        summary["results"].append(
            {"key": result.key, "outcome": result.outcome.value, "message_id": result.message_id}
        )
    return failures


def _process_one(
    pipeline: ReleasePipeline, record: ObjectCreated, deadline: Deadline
) -> Result | str:
    """A release's object to its outcome; a folder defaults file to its judgement (a
    ``rejected`` Result, or the line saying it is valid)."""
    if is_defaults_key(record.key):
        return pipeline.process_defaults(record, deadline)
    return pipeline.process(record, deadline)


#: Skipped records logged one line each per invocation; the rest are counted in one line.
MAX_LOGGED_SKIPS = 20


def _summarise_skips(summary: dict[str, Any], batch: TriggerBatch) -> dict[str, Any]:
    """Log and list the skipped records (bounded) and the dropped duplicates."""
    for skipped in batch.skipped[:MAX_LOGGED_SKIPS]:
        logger.info(
            "skipped %s: %s",
            skipped.event_name,
            skipped.reason,
            extra={"object_key": skipped.key, "outcome": "skipped"},
        )
    if len(batch.skipped) > MAX_LOGGED_SKIPS:
        logger.info(
            "skipped %d more records (not logged one by one)",
            len(batch.skipped) - MAX_LOGGED_SKIPS,
            extra={"outcome": "skipped"},
        )
    if batch.duplicates:
        logger.info(
            "dropped %d repeated records (the same upload delivered more than once)",
            batch.duplicates,
            extra={"outcome": "duplicate"},
        )
        summary["duplicates"] = batch.duplicates
    summary["skipped"] = [
        {"key": s.key, "event": s.event_name} for s in batch.skipped[:MAX_RECORDS_PER_EVENT]
    ]
    if len(batch.skipped) > MAX_RECORDS_PER_EVENT:
        summary["skipped_total"] = len(batch.skipped)
    return summary


def _for_the_runtime(exc: BaseException) -> BaseException:
    """The exception handed to FC, which prints it (with its chain) and keeps its message.

    The whole chain is in the (scrubbed) log line above; FC gets the exception alone, cut
    from its causes, whose text (an SDK's request line, say) may hold a signed URL.
    """
    if not isinstance(exc, PlatformError) and redact.scrub(str(exc)) != str(exc):
        exc = RuntimeError(f"{type(exc).__name__}: {redact.scrub(str(exc))}")
    exc.__cause__ = None
    exc.__suppress_context__ = True
    return exc


def handle_json(event: Any, context: Any, checkpoint: Checkpoint = no_checkpoint) -> str:
    """``handle`` with the summary serialised, as FC returns it to async callers."""
    return json.dumps(handle(event, context, checkpoint=checkpoint), ensure_ascii=False)
