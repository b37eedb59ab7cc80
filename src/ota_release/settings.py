"""Function settings: every ``OTA_*`` variable, read and validated together at cold start.

One pydantic model holds every setting the function reads (docs/configuration.md is its
table). Every missing or malformed setting is reported together in one
:class:`SettingsError`, each naming the variable, the rule and the value seen, so a
misconfigured deployment fails its first invocation with all its problems at once instead
of one per redeploy; nothing is silently replaced by a default.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ota_release import rules
from ota_release.retry import RetryPolicy

DEFAULT_SIDECAR_SUFFIXES = (".ota.json", ".ota.yaml", ".ota.yml")
#: Where outcome objects go when OTA_PREFIX is set and OTA_RESULTS_PREFIX is not.
DEFAULT_RESULTS_PREFIX = "ota-results/"
#: Longest OTA_RESULTS_PREFIX: it comes before every release key in an outcome's key.
MAX_RESULTS_PREFIX_BYTES = 128
SIGNED_URL_TTL_MIN = 60
SIGNED_URL_TTL_MAX = 7 * 24 * 3600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: MNS topic names: 1-256 characters, letters, digits and '-', starting with a letter.
TOPIC_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,255}$")
#: An Alibaba Cloud region id as it appears in the OSS V4 credential scope: ``cn-shanghai``,
#: ``ap-southeast-1``, ``cn-hangzhou-finance`` (the one definition; the OSS adapter uses it).
REGION_PATTERN = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")

#: What a missing required variable is told (the rule of the ``missing`` error).
_REQUIRED_RULES = {
    "OTA_REGION": "required (or ALIBABA_CLOUD_REGION / FC_REGION set by FC)",
    "OTA_NOTIFY_TOPIC": "required (the MNS topic for outcomes)",
    "OTA_MNS_ENDPOINT": "required when the account id is unknown "
    "(set OTA_MNS_ENDPOINT or OTA_ACCOUNT_ID)",
}


class UrlMode(str, Enum):
    """How the FirmwareUrl given to CreateOTAFirmware is obtained (see docs/firmware-url.md)."""

    STAGED = "staged"
    DIRECT = "direct"


class SettingsError(ValueError):
    """One or more settings are missing or invalid; ``problems`` lists each as text and
    ``errors`` as ``{field, rule, value}`` (value None when nothing was set)."""

    def __init__(self, problems: list[str], errors: list[dict[str, Any]] | None = None) -> None:
        self.problems = problems
        self.errors = errors or [{"field": None, "rule": p, "value": None} for p in problems]
        super().__init__("invalid function settings:\n" + "\n".join(f"  - {p}" for p in problems))


def _refuse(rule: str) -> PydanticCustomError:
    return PydanticCustomError("setting", "{rule}", {"rule": rule})


def _number(
    value: Any, kind: Callable[[str], float], rule: str, ok: Callable[[float], bool]
) -> Any:
    try:
        number = kind(str(value))
    except ValueError:
        raise _refuse(rule) from None
    if not math.isfinite(number) or not ok(number):
        raise _refuse(rule)
    return number


class Settings(BaseModel):
    """Validated configuration of the release function (one field per variable)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    region: str = Field(alias="OTA_REGION")
    notify_topic: str = Field(alias="OTA_NOTIFY_TOPIC")
    mns_endpoint: str = Field(alias="OTA_MNS_ENDPOINT")
    iot_endpoint: str = Field(alias="OTA_IOT_ENDPOINT")
    oss_endpoint: str = Field(alias="OTA_OSS_ENDPOINT")
    oss_public_endpoint: str = Field(alias="OTA_OSS_PUBLIC_ENDPOINT")
    iot_protocol: str = Field("https", alias="OTA_IOT_PROTOCOL")
    iot_instance_id: str | None = Field(None, alias="OTA_IOT_INSTANCE_ID")
    product_key: str | None = Field(None, alias="OTA_PRODUCT_KEY")
    url_mode: UrlMode = Field(UrlMode.STAGED, alias="OTA_FIRMWARE_URL_MODE")
    signed_url_ttl: int = Field(0, alias="OTA_SIGNED_URL_TTL")
    sidecar_suffixes: tuple[str, ...] = Field(
        DEFAULT_SIDECAR_SUFFIXES, alias="OTA_SIDECAR_SUFFIXES"
    )
    #: IoT calls per second per action that one instance allows itself (see
    #: docs/configuration.md): the account limit divided by the function's instance cap.
    iot_qps: float = Field(10.0, alias="OTA_IOT_QPS")
    log_level: str = Field("INFO", alias="OTA_LOG_LEVEL")
    #: Buckets the function handles (OTA_BUCKETS); empty: every bucket. Events for others
    #: are skipped and logged (events.screen_records).
    buckets: tuple[str, ...] = Field((), alias="OTA_BUCKETS")
    #: Key prefix the function handles (OTA_PREFIX); empty: every key.
    prefix: str = Field("", alias="OTA_PREFIX")
    #: Where each release's outcome document is written (OTA_RESULTS_PREFIX), in the
    #: bucket the upload came to; outside OTA_PREFIX, so the trigger never fires on it.
    #: None (the default without OTA_PREFIX): no outcome objects (docs/configuration.md).
    results_prefix: str | None = Field(None, alias="OTA_RESULTS_PREFIX")
    retry_base_seconds: float = Field(RetryPolicy.base, alias="OTA_RETRY_BASE_SECONDS")
    retry_throttle_base_seconds: float = Field(
        RetryPolicy.throttle_base, alias="OTA_RETRY_THROTTLE_BASE_SECONDS"
    )
    retry_cap_seconds: float = Field(RetryPolicy.cap, alias="OTA_RETRY_CAP_SECONDS")
    retry_max_attempts: int = Field(RetryPolicy.max_attempts, alias="OTA_RETRY_MAX_ATTEMPTS")
    #: Packages the account (or instance) may hold; IoT Platform's documented limit is 500.
    package_limit: int = Field(500, alias="OTA_PACKAGE_LIMIT")
    #: How old (seconds) the package count in a notification may be; 0: count every time.
    package_count_max_age: float = Field(10.0, alias="OTA_PACKAGE_COUNT_MAX_AGE")

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> Any:
        if not REGION_PATTERN.fullmatch(str(value)) or str(value).startswith("oss-"):
            # The region is signed into every OSS request (the V4 credential scope).
            raise _refuse("must be a region id such as cn-shanghai (no 'oss-' prefix, no endpoint)")
        return value

    @field_validator("notify_topic", mode="before")
    @classmethod
    def _topic(cls, value: Any) -> Any:
        if not TOPIC_PATTERN.fullmatch(str(value)):
            raise _refuse(
                "must be an MNS topic name: 1 to 256 letters, digits and '-', "
                "starting with a letter"
            )
        return value

    @field_validator("mns_endpoint", "oss_endpoint", "oss_public_endpoint", mode="before")
    @classmethod
    def _http_url(cls, value: Any) -> Any:
        if not str(value).startswith(("http://", "https://")):
            raise _refuse("must start with http:// or https://")
        return value

    @field_validator("iot_protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        if str(value).lower() not in ("http", "https"):
            raise _refuse("must be http or https")
        return str(value).lower()

    @field_validator("iot_instance_id", "product_key", mode="before")
    @classmethod
    def _identifier(cls, value: Any, info: ValidationInfo) -> Any:
        # The rules CreateOTAFirmware applies, so a typo fails at cold start, not later.
        api_name = {"iot_instance_id": "IotInstanceId", "product_key": "ProductKey"}
        params = {api_name[str(info.field_name)]: value}
        for violation in rules.check_create_firmware(params, required=()):
            raise _refuse(violation.rule)
        return value

    @field_validator("url_mode", mode="before")
    @classmethod
    def _url_mode(cls, value: Any) -> Any:
        if str(value).lower() not in {m.value for m in UrlMode}:
            raise _refuse("must be 'staged' or 'direct'")
        return UrlMode(str(value).lower())

    @field_validator("signed_url_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        ttl = _number(value, int, "must be an integer of seconds", lambda _: True)
        if ttl and not SIGNED_URL_TTL_MIN <= ttl <= SIGNED_URL_TTL_MAX:
            raise _refuse(
                f"must be 0 (unsigned URL) or between {SIGNED_URL_TTL_MIN} and "
                f"{SIGNED_URL_TTL_MAX} seconds"
            )
        return ttl

    @field_validator("sidecar_suffixes", mode="before")
    @classmethod
    def _suffixes(cls, value: Any) -> Any:
        if isinstance(value, tuple):
            return value
        suffixes = tuple(s.strip() for s in str(value).split(",") if s.strip())
        if not suffixes or any(not s.startswith(".") or "/" in s for s in suffixes):
            raise _refuse("comma-separated suffixes that start with '.'")
        return suffixes

    @field_validator("iot_qps", mode="before")
    @classmethod
    def _qps(cls, value: Any) -> Any:
        return _number(
            value, float, "must be a positive number of calls per second", lambda n: n > 0
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if str(value).upper() not in LOG_LEVELS:
            raise _refuse("must be " + ", ".join(LOG_LEVELS[:-1]) + " or " + LOG_LEVELS[-1])
        return str(value).upper()

    @field_validator(
        "retry_base_seconds", "retry_throttle_base_seconds", "retry_cap_seconds", mode="before"
    )
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return _number(value, float, "must be a number of seconds, 0 or more", lambda n: n >= 0)

    @field_validator("retry_max_attempts", mode="before")
    @classmethod
    def _attempts(cls, value: Any) -> Any:
        rule = "must be a whole number of attempts, 1 or more"
        return _number(value, int, rule, lambda n: n >= 1)

    @field_validator("package_limit", mode="before")
    @classmethod
    def _package_limit(cls, value: Any) -> Any:
        rule = "must be a whole number of packages, 1 or more"
        return _number(value, int, rule, lambda n: n >= 1)

    @field_validator("package_count_max_age", mode="before")
    @classmethod
    def _count_age(cls, value: Any) -> Any:
        return _number(value, float, "must be a number of seconds, 0 or more", lambda n: n >= 0)

    @field_validator("buckets", mode="before")
    @classmethod
    def _buckets(cls, value: Any) -> Any:
        if isinstance(value, tuple):
            return value
        buckets = tuple(b.strip() for b in str(value).split(",") if b.strip())
        if any(not _BUCKET_NAME.match(b) for b in buckets):
            raise _refuse(
                "comma-separated OSS bucket names (3-63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit)"
            )
        return buckets

    @field_validator("prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        prefix = str(value)
        if prefix.startswith("/") or len(prefix.encode("utf-8", "surrogatepass")) > 1023:
            raise _refuse("a key prefix, not starting with '/', at most 1023 bytes")
        return prefix

    @field_validator("results_prefix", mode="before")
    @classmethod
    def _results_prefix(cls, value: Any, info: ValidationInfo) -> Any:
        prefix = str(value)
        if prefix.startswith("/") or not prefix.endswith("/"):
            raise _refuse("a key prefix ending in '/', not starting with '/'")
        if len(prefix.encode("utf-8", "surrogatepass")) > MAX_RESULTS_PREFIX_BYTES:
            raise _refuse(f"at most {MAX_RESULTS_PREFIX_BYTES} bytes")
        watched = info.data.get("prefix")
        if watched is None:  # OTA_PREFIX itself was refused: reported on its own
            return prefix
        if not watched:
            raise _refuse(
                "needs OTA_PREFIX: without it the function handles every key, its own "
                "outcome objects included"
            )
        if prefix.startswith(watched) or watched.startswith(prefix):
            raise _refuse(
                f"must lie outside OTA_PREFIX ({watched!r}), or the trigger would fire on "
                "the function's own outcome objects"
            )
        return prefix

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, account_id: str | None = None
    ) -> Settings:
        """Read and validate the ``OTA_*`` variables (see docs/configuration.md)."""
        env = os.environ if env is None else env
        values = _resolved(env, account_id)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            errors = [_as_error(e, values) for e in exc.errors()]
            raise SettingsError([_problem(e) for e in errors], errors) from None

    def retry_policy(self) -> RetryPolicy:
        """The in-function backoff these settings describe."""
        return RetryPolicy(
            base=self.retry_base_seconds,
            cap=self.retry_cap_seconds,
            max_attempts=self.retry_max_attempts,
            throttle_base=self.retry_throttle_base_seconds,
        )


def _resolved(env: Mapping[str, str], account_id: str | None) -> dict[str, str]:
    """The ``OTA_*`` values as set (blank = unset), with FC's fallbacks and derived defaults."""

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    values = {name: v for name in env if name.startswith("OTA_") and (v := get(name))}
    region = get("OTA_REGION") or get("ALIBABA_CLOUD_REGION") or get("FC_REGION")
    if region:
        values["OTA_REGION"] = region
    # Defaults derived from the region; a missing region is reported on its own.
    at = region if region and REGION_PATTERN.fullmatch(region) else "cn-shanghai"
    account = get("OTA_ACCOUNT_ID") or get("FC_ACCOUNT_ID") or account_id
    if account:
        values.setdefault("OTA_MNS_ENDPOINT", f"https://{account}.mns.{at}.aliyuncs.com")
    values.setdefault("OTA_IOT_ENDPOINT", f"iot.{at}.aliyuncs.com")
    values.setdefault("OTA_OSS_ENDPOINT", f"https://oss-{at}-internal.aliyuncs.com")
    values.setdefault("OTA_OSS_PUBLIC_ENDPOINT", f"https://oss-{at}.aliyuncs.com")
    # Outcome objects need a watched prefix to lie outside of (docs/configuration.md).
    if get("OTA_PREFIX"):
        values.setdefault("OTA_RESULTS_PREFIX", DEFAULT_RESULTS_PREFIX)
    return values


def _as_error(error: Any, values: Mapping[str, str]) -> dict[str, Any]:
    name = str(error["loc"][0]) if error["loc"] else "settings"
    if error["type"] == "missing":
        return {"field": name, "rule": _REQUIRED_RULES.get(name, "required"), "value": None}
    return {"field": name, "rule": error["msg"], "value": values.get(name)}


def _problem(error: Mapping[str, Any]) -> str:
    seen = "nothing" if error["value"] is None else repr(error["value"])
    return f"{error['field']}: {error['rule']}, got {seen}"


_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
