"""Where the cloud-facing commands get credentials, region and endpoints.

Credentials, first match wins (the order of Alibaba Cloud's own default credential chain,
with the command line's ``--profile`` in front of it):

1. ``--profile NAME``: that profile of the aliyun CLI's ``~/.aliyun/config.json``;
2. ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (and
   ``ALIBABA_CLOUD_SECURITY_TOKEN`` for STS keys): when both are set, the aliyun CLI's
   configuration is not read at all;
3. the aliyun CLI's profile named by ``ALIBABA_CLOUD_PROFILE``, else its ``current`` one.

Only the profile modes that hold a key in the file are understood (``AK`` and
``StsToken``); anything else (RamRoleArn, EcsRamRole, OAuth, ...) is refused with a
message naming the mode, and only when that profile is the one that would be used. The
region comes from ``--region``, then ``ALIBABA_CLOUD_REGION_ID``, then the used profile's
``region_id``. Every endpoint can be given explicitly, which is how the commands are
pointed at ``localcloud``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from ota_release.adapters import CloudCredentials
from ota_release.cli.common import CommandFailed, UsageProblem

F = TypeVar("F", bound=Callable[..., Any])

PROFILE_MODES = ("AK", "StsToken")


def aliyun_config_path() -> Path:
    """The aliyun CLI's configuration file (``~/.aliyun/config.json``)."""
    return Path.home() / ".aliyun" / "config.json"


@dataclass(frozen=True)
class Profile:
    """The parts of an aliyun CLI profile the commands use."""

    name: str
    credentials: CloudCredentials | None
    region: str | None


def load_profile(
    name: str | None, path: Path | None = None, *, via: str = "--profile"
) -> Profile | None:
    """The named (or ``current``) profile; None when there is no file and no name was asked.

    A profile that was asked for by name (``via`` says how: ``--profile`` or
    ``ALIBABA_CLOUD_PROFILE``) but cannot be used is a usage problem: silently falling back
    to other credentials would act on the wrong account.
    """
    path = path or aliyun_config_path()
    if not path.is_file():
        if name:
            raise UsageProblem(f"profile {name!r} asked for ({via}), but {path} does not exist")
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"cannot read the aliyun CLI configuration {path}: {exc}") from exc
    profiles = config.get("profiles") if isinstance(config, dict) else None
    if not isinstance(profiles, list):
        raise UsageProblem(f"{path} has no 'profiles' list")
    wanted = name or config.get("current") or "default"
    how = f"asked for with {via}" if name else "the aliyun CLI's current profile"
    found = next((p for p in profiles if isinstance(p, dict) and p.get("name") == wanted), None)
    if found is None:
        if name:
            known = ", ".join(str(p.get("name")) for p in profiles if isinstance(p, dict))
            raise UsageProblem(
                f"no profile {name!r} ({how}) in {path} (profiles: {known or 'none'})"
            )
        return None
    mode = str(found.get("mode") or "AK")
    region = str(found.get("region_id") or "") or None
    if mode not in PROFILE_MODES:
        raise UsageProblem(
            f"profile {wanted!r} ({how}) uses mode {mode!r}, which ota-release cannot use: it "
            f"reads only {' and '.join(PROFILE_MODES)} profiles. Export "
            "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (plus "
            "ALIBABA_CLOUD_SECURITY_TOKEN for STS keys, e.g. from `aliyun sts AssumeRole`): "
            "they are used before any profile is read. Or pass --profile naming an AK or "
            "StsToken profile"
        )
    key_id = str(found.get("access_key_id") or "")
    secret = str(found.get("access_key_secret") or "")
    token = str(found.get("sts_token") or "") or None
    if not key_id or not secret:
        raise UsageProblem(f"profile {wanted!r} in {path} has no access_key_id/access_key_secret")
    if mode == "StsToken" and not token:
        raise UsageProblem(f"profile {wanted!r} is an StsToken profile without sts_token")
    return Profile(str(wanted), CloudCredentials(key_id, secret, token), region)


@dataclass(frozen=True)
class CloudTarget:
    """Resolved credentials, region and the endpoint overrides a command was given."""

    credentials: CloudCredentials
    region: str | None
    source: str  # where the credentials came from, for messages
    oss_endpoint: str | None = None
    iot_endpoint: str | None = None
    fc_endpoint: str | None = None
    account_id: str | None = None
    iot_instance_id: str | None = None
    iot_protocol: str | None = None  # http or https for an endpoint given without a scheme

    def need_region(self, what: str) -> str:
        if not self.region:
            raise UsageProblem(
                f"no region to build the {what} endpoint from: pass --region, set "
                f"ALIBABA_CLOUD_REGION_ID or region_id in the aliyun profile, or give the "
                f"endpoint explicitly"
            )
        return self.region

    def oss(self) -> str:
        """OSS endpoint; the public one by default, since the CLI runs outside the region."""
        if self.oss_endpoint:
            return _with_scheme(self.oss_endpoint)
        return f"https://oss-{self.need_region('OSS')}.aliyuncs.com"

    def iot(self) -> tuple[str, str]:
        """IoT endpoint as the Tea SDK wants it: (host[:port], protocol).

        An endpoint written with its scheme says the protocol; one without takes
        ``iot_protocol`` (``--iot-protocol`` / ``OTA_IOT_PROTOCOL``, as the function reads
        it), HTTPS when neither says. A scheme that contradicts an explicit protocol is a
        usage problem rather than a guess.
        """
        protocol = (self.iot_protocol or "").strip().lower() or None
        if protocol not in (None, "http", "https"):
            raise UsageProblem(
                f"--iot-protocol / OTA_IOT_PROTOCOL must be http or https, got {protocol!r}"
            )
        if self.iot_endpoint:
            text = self.iot_endpoint.strip().rstrip("/")
            if "://" not in text:
                return text, protocol or "https"
            parts = urlsplit(text)
            if protocol and parts.scheme != protocol:
                raise UsageProblem(
                    f"the IoT endpoint {text!r} says {parts.scheme} but --iot-protocol / "
                    f"OTA_IOT_PROTOCOL says {protocol}: drop one of them"
                )
            return parts.netloc, parts.scheme
        return f"iot.{self.need_region('IoT Platform')}.aliyuncs.com", protocol or "https"

    def iot_url(self) -> str:
        """The IoT endpoint as a URL, for messages."""
        host, protocol = self.iot()
        return f"{protocol}://{host}"

    def fc(self) -> str:
        """FC 2.0 API endpoint: explicit, or ``https://<account>.<region>.fc.aliyuncs.com``."""
        if self.fc_endpoint:
            return _with_scheme(self.fc_endpoint)
        if not self.account_id:
            raise UsageProblem(
                "no Function Compute endpoint: pass --fc-endpoint (OTA_FC_ENDPOINT) or "
                "--account-id (OTA_ACCOUNT_ID) to use https://<account>.<region>.fc.aliyuncs.com"
            )
        return f"https://{self.account_id}.{self.need_region('Function Compute')}.fc.aliyuncs.com"

    def sdk_region(self) -> str:
        """Region for SDK configs that require one even when the endpoint is explicit."""
        return self.region or "cn-shanghai"

    def fc_client(self, endpoint: str, timeout: int = 30) -> Any:
        """An ``fc2.Client`` for ``endpoint`` (see :meth:`fc`) with these credentials."""
        import fc2

        c = self.credentials
        return fc2.Client(
            endpoint=endpoint,
            accessKeyID=c.access_key_id,
            accessKeySecret=c.access_key_secret,
            securityToken=c.security_token or "",
            Timeout=timeout,
        )

    def fc3_client(self, endpoint: str, timeout: int = 30) -> Any:
        """A Tea OpenAPI client for the FC 3.0 (2023-03-30) API at ``endpoint``.

        FC 3.0 functions have no service, so fc2 (an FC 2.0 SDK) cannot name them. The FC
        3.0 SDK (alibabacloud-fc20230330) is a thin layer over this generic client, which
        the project already has: calls go out exactly as that SDK sends them (ROA style,
        ``ACS3-HMAC-SHA256`` signature).
        """
        from alibabacloud_tea_openapi import models as open_api_models
        from alibabacloud_tea_openapi.client import Client as OpenApiClient

        parts = urlsplit(endpoint)
        c = self.credentials
        config = open_api_models.Config(
            access_key_id=c.access_key_id,
            access_key_secret=c.access_key_secret,
            security_token=c.security_token,
            endpoint=parts.netloc,
            protocol=parts.scheme or "https",
            region_id=self.sdk_region(),
            read_timeout=timeout * 1000,
            connect_timeout=10_000,
        )
        return OpenApiClient(config)


def _with_scheme(endpoint: str) -> str:
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def resolve_target(
    *,
    profile: str | None,
    region: str | None,
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    **endpoints: str | None,
) -> CloudTarget:
    """Pick credentials and region by the documented precedence; usage problem if none."""
    env = os.environ if env is None else env
    # No SDK may ever fall through to the ECS metadata service from a developer machine.
    os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    chosen: Profile | None = None
    credentials: CloudCredentials | None = None
    source = ""
    key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "").strip()
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "").strip()
    if profile:
        chosen = load_profile(profile, config_path)
        assert chosen is not None
        credentials, source = chosen.credentials, f"aliyun CLI profile {chosen.name!r}"
    elif key_id and secret:
        # The environment wins: the aliyun CLI's file is not even read, so a profile this
        # command cannot use (RamRoleArn, ...) never stands in the way of exported keys.
        token = env.get("ALIBABA_CLOUD_SECURITY_TOKEN", "").strip() or None
        credentials = CloudCredentials(key_id, secret, token)
        source = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    elif key_id or secret:
        missing = "ALIBABA_CLOUD_ACCESS_KEY_SECRET" if key_id else "ALIBABA_CLOUD_ACCESS_KEY_ID"
        raise UsageProblem(
            f"{missing} is not set: set both ALIBABA_CLOUD_ACCESS_KEY_ID and "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET, or neither to use the aliyun CLI's profile"
        )
    else:
        named = env.get("ALIBABA_CLOUD_PROFILE", "").strip() or None
        chosen = load_profile(named, config_path, via="ALIBABA_CLOUD_PROFILE")
        if chosen is not None:
            credentials, source = chosen.credentials, f"aliyun CLI profile {chosen.name!r}"
    if credentials is None:
        raise UsageProblem(
            "no credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET "
            "(plus ALIBABA_CLOUD_SECURITY_TOKEN for STS keys), or configure the aliyun CLI "
            "(`aliyun configure`) and pass --profile"
        )
    resolved_region = (
        region or env.get("ALIBABA_CLOUD_REGION_ID", "").strip() or (chosen and chosen.region)
    )
    return CloudTarget(
        credentials=credentials,
        region=resolved_region or None,
        source=source,
        **{
            k: (v.strip() if isinstance(v, str) and v.strip() else None)
            for k, v in endpoints.items()
        },
    )


# Shared options -------------------------------------------------------------------------------


def credential_options(func: F) -> F:
    """``--profile`` and ``--region``, shared by every command that talks to the cloud."""
    func = click.option(
        "--region",
        envvar="ALIBABA_CLOUD_REGION_ID",
        metavar="REGION",
        help="Region id, e.g. cn-shanghai [env ALIBABA_CLOUD_REGION_ID; else the profile's].",
    )(func)
    func = click.option(
        "--profile",
        metavar="NAME",
        help="aliyun CLI profile (~/.aliyun/config.json, mode AK or StsToken) to use instead "
        "of the default chain: ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET, then the profile named "
        "by ALIBABA_CLOUD_PROFILE, then the current profile.",
    )(func)
    return func


def oss_endpoint_option(func: F) -> F:
    return click.option(
        "--oss-endpoint",
        envvar="OTA_OSS_ENDPOINT",
        metavar="URL",
        help="OSS endpoint [env OTA_OSS_ENDPOINT; default https://oss-<region>.aliyuncs.com].",
    )(func)


def iot_endpoint_option(func: F) -> F:
    """``--iot-endpoint`` and ``--iot-protocol``, read like the function reads them."""
    func = click.option(
        "--iot-protocol",
        envvar="OTA_IOT_PROTOCOL",
        type=click.Choice(["http", "https"], case_sensitive=False),
        help="Protocol for an --iot-endpoint given without a scheme "
        "[env OTA_IOT_PROTOCOL; default https].",
    )(func)
    func = click.option(
        "--iot-endpoint",
        envvar="OTA_IOT_ENDPOINT",
        metavar="URL",
        help="IoT Platform endpoint, host[:port] or a URL whose scheme sets the protocol "
        "[env OTA_IOT_ENDPOINT; default iot.<region>.aliyuncs.com over HTTPS].",
    )(func)
    return func


def iot_instance_option(func: F) -> F:
    """``--iot-instance-id``, read like the function reads ``OTA_IOT_INSTANCE_ID``."""
    return click.option(
        "--iot-instance-id",
        envvar="OTA_IOT_INSTANCE_ID",
        metavar="ID",
        help="IoT instance id (purchased instances) [env OTA_IOT_INSTANCE_ID].",
    )(func)


def fc_endpoint_options(func: F) -> F:
    func = click.option(
        "--account-id",
        envvar="OTA_ACCOUNT_ID",
        metavar="ID",
        help="Alibaba Cloud account id; builds the FC endpoint and the replayed events' "
        "owner [env OTA_ACCOUNT_ID].",
    )(func)
    func = click.option(
        "--fc-endpoint",
        envvar="OTA_FC_ENDPOINT",
        metavar="URL",
        help="Function Compute API endpoint "
        "[env OTA_FC_ENDPOINT; default https://<account>.<region>.fc.aliyuncs.com].",
    )(func)
    return func


# Errors -----------------------------------------------------------------------------------------

_CREDENTIAL_CODES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeyID",
    "SignatureDoesNotMatch",
    "SignatureNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "SecurityTokenExpired",
    "InvalidSecurityToken.Expired",
)


def failure(
    error: Exception, target: CloudTarget, doing: str, endpoint: str | None = None
) -> CommandFailed:
    """A readable exit-1 error for a failed cloud call, with a hint when one is obvious.

    A call that got no answer at all (connection refused, timeout, TLS spoken to a plain
    HTTP server, unknown host) is one line naming the endpoint and the reason, never the
    SDK's own exception text. Never includes the secret or the token; the access key id
    is shown to say which key was refused.
    """
    from ota_release.errors import PlatformError

    reason = network_problem(error)
    if reason is not None:
        where = f" at {endpoint}" if endpoint else ""
        return CommandFailed(
            f"{doing} failed: no answer{where}: {reason}; check the endpoint and the network"
        )
    if isinstance(error, PlatformError):
        detail = f"{error.service.upper()} {error.operation}: {error.code}: {error.message}"
        if error.request_id:
            detail += f" (request id {error.request_id})"
        code = error.code or ""
    else:
        detail, code = f"{type(error).__name__}: {error}", ""
    hint = ""
    if any(code.startswith(c) for c in _CREDENTIAL_CODES):
        hint = (
            f"\nthe credentials were refused (key {target.credentials.access_key_id} from "
            f"{target.source}); check the key pair, its STS token and the endpoint's region"
        )
    elif code in ("AccessDenied", "Forbidden") or "PermissionDeny" in code:
        hint = "\nthe key is valid but not allowed to do this; check its RAM policy"
    elif code in ("NoSuchBucket",):
        hint = "\ncheck --bucket and that the endpoint is the bucket's region"
    elif not code:
        hint = "\nthe answer was not one the SDK could read; check the endpoint"
    return CommandFailed(f"{doing} failed: {detail}{hint}")


#: Text of the network failures the SDKs wrap (requests/urllib3 messages, OS errors), in
#: the order they are looked for, with what the user is told.
_NETWORK_MARKERS = (
    (
        ("WRONG_VERSION_NUMBER", "SSLError", "SSL:", "CERTIFICATE_VERIFY_FAILED"),
        "the TLS handshake failed (a plain-HTTP server answering an https:// endpoint? "
        "then give the endpoint as http://... or set OTA_IOT_PROTOCOL=http for IoT)",
    ),
    (("Connection refused", "ConnectionRefused"), "connection refused"),
    (
        (
            "Name or service not known",
            "nodename nor servname",
            "getaddrinfo failed",
            "NameResolution",
            "Temporary failure in name resolution",
        ),
        "the host name does not resolve",
    ),
    (("timed out", "Timeout", "timeout"), "the connection timed out"),
    (
        (
            "Connection reset",
            "Connection aborted",
            "RemoteDisconnected",
            "ConnectionError",
            "NewConnectionError",
            "Max retries exceeded",
            "BadStatusLine",
        ),
        "the connection failed",
    ),
)


def network_problem(error: BaseException) -> str | None:
    """Why a call got no answer, when that is what happened; None for a real answer.

    Looks through the error, what it was raised from, and the SDKs' wrappers
    (``inner_exception`` of the Tea SDK), so it holds for oss2, the Tea SDKs and fc2 alike.
    """
    seen: set[int] = set()
    texts: list[str] = []
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts.append(f"{type(current).__name__} {current}")
        inner = getattr(current, "inner_exception", None)
        stack.extend(
            [
                current.__cause__,
                current.__context__,
                inner if isinstance(inner, BaseException) else None,
            ]
        )
    status = getattr(error, "status", None) or getattr(error, "status_code", None)
    if isinstance(status, int) and status > 0:
        return None  # the service answered with an HTTP status
    joined = "\n".join(texts)
    for markers, reason in _NETWORK_MARKERS:
        if any(marker in joined for marker in markers):
            return reason
    return None


@contextlib.contextmanager
def fc2_logs_dropped() -> Iterator[None]:
    """Drop the log records fc2 emits while the block runs.

    fc2 logs every request, Authorization header included, through the root logger
    (logging.debug/error at module level); failures are reported by this command instead.
    Without a handler on the root logger, Python's last-resort handler would print them to
    stderr, so it gets a silent one.
    """
    import logging

    import fc2

    package_dir = str(Path(fc2.__file__).resolve().parent)

    def keep(record: logging.LogRecord) -> bool:
        return not str(Path(record.pathname).resolve()).startswith(package_dir)

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
