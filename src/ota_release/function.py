"""Wiring for the FC entry points: settings, credentials, adapters, logging, the summary.

``functions/create_firmware/index.py`` (built-in runtime) and the custom-runtime bootstrap
both call :func:`handle`; it is the only place that knows about FC's context object.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.logging import Logger

from ota_release.adapters import CloudCredentials
from ota_release.events import TriggerBatch, parse_trigger_event
from ota_release.release import ReleaseConfig, ReleasePipeline, Result
from ota_release.retry import Deadline, RetryPolicy
from ota_release.settings import Settings, SettingsError

logger = Logger(service="ota-release", level=os.environ.get("OTA_LOG_LEVEL", "INFO"))

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
        return CloudCredentials(
            creds.access_key_id,
            creds.access_key_secret,
            getattr(creds, "security_token", None) or None,
        )
    ak = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not ak or not secret:
        raise SettingsError(
            [
                "credentials: none in the FC context and ALIBABA_CLOUD_ACCESS_KEY_ID / "
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set (does the service have a role?)"
            ]
        )
    return CloudCredentials(ak, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)


@dataclass
class Adapters:
    """The three ports, built for one invocation's credentials."""

    store: Any
    platform: Any
    notifier: Any


def build_adapters(settings: Settings, credentials: CloudCredentials) -> Adapters:
    from ota_release.adapters.iot import IotOtaPlatform, shared_pacer
    from ota_release.adapters.mns import MnsNotifier
    from ota_release.adapters.oss import OssObjectStore

    return Adapters(
        store=OssObjectStore(
            credentials,
            settings.oss_endpoint,
            settings.oss_public_endpoint,
            region=settings.region,
        ),
        platform=IotOtaPlatform(
            credentials,
            settings.iot_endpoint,
            settings.region,
            protocol=settings.iot_protocol,
            pacer=shared_pacer(settings.iot_qps),
        ),
        notifier=MnsNotifier(credentials, settings.mns_endpoint, settings.notify_topic),
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
    for skipped in batch.skipped:
        logger.info(
            "skipped %s: %s",
            skipped.event_name,
            skipped.reason,
            extra={"object_key": skipped.key, "outcome": "skipped"},
        )
    summary: dict[str, Any] = {
        "request_id": request_id,
        "results": [],
        "skipped": [{"key": s.key, "event": s.event_name} for s in batch.skipped],
    }
    if not batch.records:
        return summary

    settings = settings_for(env, account_id)
    logger.setLevel(settings.log_level)
    if adapters is None:
        adapters = build_adapters(settings, credentials_from(context, env))
    pipeline = ReleasePipeline(
        adapters.store,
        adapters.platform,
        adapters.notifier,
        ReleaseConfig(
            url_mode=settings.url_mode,
            signed_url_ttl=settings.signed_url_ttl,
            sidecar_suffixes=settings.sidecar_suffixes,
            product_key=settings.product_key,
            iot_instance_id=settings.iot_instance_id,
            # Length + TLS guard the download; CRC-64 would halve throughput (benchmarks.md).
            verify_crc64=False,
        ),
        retry=retry,
        fc_request_id=request_id,
    )
    failures: list[BaseException] = []
    for record in batch.records:
        logger.thread_safe_append_keys(object_key=record.key, outcome="processing")
        try:
            result: Result = pipeline.process(record, deadline)
        except Exception as exc:
            logger.exception(
                "could not finish %s; FC will retry", record.key, extra={"outcome": "error"}
            )
            failures.append(exc)
            summary["results"].append(
                {"key": record.key, "outcome": "error", "error": type(exc).__name__}
            )
            continue
        logger.thread_safe_append_keys(outcome=result.outcome.value)
        logger.info(result.notification.summary, extra={"message_id": result.message_id})
        summary["results"].append(
            {"key": result.key, "outcome": result.outcome.value, "message_id": result.message_id}
        )
    logger.thread_safe_clear_keys()
    if failures:
        raise failures[0]
    return summary


def handle_json(event: Any, context: Any) -> str:
    """``handle`` with the summary serialised, as FC returns it to async callers."""
    return json.dumps(handle(event, context), ensure_ascii=False)
