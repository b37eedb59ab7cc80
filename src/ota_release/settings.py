"""Function settings, read from environment variables once per cold start.

Every missing or malformed setting is reported together in one :class:`SettingsError`, so
a misconfigured deployment fails its first invocation with a message that lists all of
them instead of one per redeploy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from ota_release import rules
from ota_release.adapters.oss_reads import REGION_ID

DEFAULT_SIDECAR_SUFFIXES = (".ota.json", ".ota.yaml", ".ota.yml")
SIGNED_URL_TTL_MIN = 60
SIGNED_URL_TTL_MAX = 7 * 24 * 3600


class UrlMode(str, Enum):
    """How the FirmwareUrl given to CreateOTAFirmware is obtained (see docs/firmware-url.md)."""

    STAGED = "staged"
    DIRECT = "direct"


class SettingsError(ValueError):
    """One or more settings are missing or invalid; ``problems`` lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid function settings:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    """Validated configuration of the release function."""

    region: str
    notify_topic: str
    mns_endpoint: str
    iot_endpoint: str
    oss_endpoint: str
    oss_public_endpoint: str
    iot_instance_id: str | None = None
    url_mode: UrlMode = UrlMode.STAGED
    signed_url_ttl: int = 0
    sidecar_suffixes: tuple[str, ...] = DEFAULT_SIDECAR_SUFFIXES
    product_key: str | None = None
    log_level: str = "INFO"
    iot_protocol: str = "https"
    #: IoT calls per second per action that one instance allows itself (see
    #: docs/configuration.md): the account limit divided by the function's instance cap.
    iot_qps: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, account_id: str | None = None
    ) -> Settings:
        """Read and validate the ``OTA_*`` variables (see docs/configuration.md)."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        region = get("OTA_REGION") or get("ALIBABA_CLOUD_REGION") or get("FC_REGION")
        if not region:
            problems.append(
                "OTA_REGION: required (or ALIBABA_CLOUD_REGION / FC_REGION set by FC), got nothing"
            )
        elif not REGION_ID.fullmatch(region) or region.startswith("oss-"):
            # The region is signed into every OSS request (V4 credential scope).
            problems.append(
                "OTA_REGION: must be a region id such as cn-shanghai (lower case, no 'oss-' "
                f"prefix, no endpoint), got {region!r}"
            )
        region = region or "cn-shanghai"

        topic = get("OTA_NOTIFY_TOPIC")
        if not topic:
            problems.append("OTA_NOTIFY_TOPIC: required (the MNS topic for outcomes), got nothing")

        account = get("OTA_ACCOUNT_ID") or get("FC_ACCOUNT_ID") or account_id
        mns_endpoint = get("OTA_MNS_ENDPOINT")
        if not mns_endpoint:
            if account:
                mns_endpoint = f"https://{account}.mns.{region}.aliyuncs.com"
            else:
                problems.append(
                    "OTA_MNS_ENDPOINT: required when the account id is unknown "
                    "(set OTA_MNS_ENDPOINT or OTA_ACCOUNT_ID), got nothing"
                )
        for name, value in (("OTA_MNS_ENDPOINT", mns_endpoint),):
            if value and not value.startswith(("http://", "https://")):
                problems.append(f"{name}: must start with http:// or https://, got {value!r}")

        iot_endpoint = get("OTA_IOT_ENDPOINT") or f"iot.{region}.aliyuncs.com"
        oss_endpoint = get("OTA_OSS_ENDPOINT") or f"https://oss-{region}-internal.aliyuncs.com"
        oss_public = get("OTA_OSS_PUBLIC_ENDPOINT") or f"https://oss-{region}.aliyuncs.com"
        for name, value in (
            ("OTA_OSS_ENDPOINT", oss_endpoint),
            ("OTA_OSS_PUBLIC_ENDPOINT", oss_public),
        ):
            if not value.startswith(("http://", "https://")):
                problems.append(f"{name}: must start with http:// or https://, got {value!r}")

        iot_protocol = (get("OTA_IOT_PROTOCOL") or "https").lower()
        if iot_protocol not in ("http", "https"):
            problems.append(f"OTA_IOT_PROTOCOL: must be http or https, got {iot_protocol!r}")

        mode_text = (get("OTA_FIRMWARE_URL_MODE") or UrlMode.STAGED.value).lower()
        try:
            url_mode = UrlMode(mode_text)
        except ValueError:
            problems.append(
                f"OTA_FIRMWARE_URL_MODE: must be 'staged' or 'direct', got {mode_text!r}"
            )
            url_mode = UrlMode.STAGED

        ttl_text = get("OTA_SIGNED_URL_TTL") or "0"
        ttl = 0
        try:
            ttl = int(ttl_text)
        except ValueError:
            problems.append(f"OTA_SIGNED_URL_TTL: must be an integer of seconds, got {ttl_text!r}")
        if ttl and not SIGNED_URL_TTL_MIN <= ttl <= SIGNED_URL_TTL_MAX:
            problems.append(
                f"OTA_SIGNED_URL_TTL: must be 0 (unsigned URL) or between {SIGNED_URL_TTL_MIN} "
                f"and {SIGNED_URL_TTL_MAX} seconds, got {ttl}"
            )

        suffix_text = get("OTA_SIDECAR_SUFFIXES")
        suffixes: tuple[str, ...] = DEFAULT_SIDECAR_SUFFIXES
        if suffix_text:
            suffixes = tuple(s.strip() for s in suffix_text.split(",") if s.strip())
            bad = [s for s in suffixes if not s.startswith(".") or "/" in s]
            if not suffixes or bad:
                problems.append(
                    "OTA_SIDECAR_SUFFIXES: comma-separated suffixes that start with '.', "
                    f"got {suffix_text!r}"
                )
                suffixes = DEFAULT_SIDECAR_SUFFIXES

        qps_text = get("OTA_IOT_QPS") or "10"
        try:
            iot_qps = float(qps_text)
        except ValueError:
            iot_qps = 0.0
        if not 0 < iot_qps < float("inf"):
            problems.append(
                f"OTA_IOT_QPS: must be a positive number of calls per second, got {qps_text!r}"
            )
            iot_qps = 10.0

        # The same rules CreateOTAFirmware applies, so a typo fails at cold start, not at
        # the first release.
        for name, api_name in (
            ("OTA_IOT_INSTANCE_ID", "IotInstanceId"),
            ("OTA_PRODUCT_KEY", "ProductKey"),
        ):
            value = get(name)
            if value is not None:
                problems.extend(
                    f"{name}: {v.rule}, got {value!r}"
                    for v in rules.check_create_firmware({api_name: value}, required=())
                )

        log_level = (get("OTA_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(
                f"OTA_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
            )

        if problems:
            raise SettingsError(problems)
        assert topic is not None and mns_endpoint is not None
        return cls(
            region=region,
            notify_topic=topic,
            mns_endpoint=mns_endpoint,
            iot_endpoint=iot_endpoint,
            oss_endpoint=oss_endpoint,
            oss_public_endpoint=oss_public,
            iot_instance_id=get("OTA_IOT_INSTANCE_ID"),
            url_mode=url_mode,
            signed_url_ttl=ttl,
            sidecar_suffixes=suffixes,
            product_key=get("OTA_PRODUCT_KEY"),
            log_level=log_level,
            iot_protocol=iot_protocol,
            iot_qps=iot_qps,
        )
