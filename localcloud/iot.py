"""A local IoT Platform (API version 2018-01-20) serving the OTA package calls over real RPC.

The real SDK (alibabacloud-iot20180120 on alibabacloud-tea-openapi) talks to it unchanged:
``Config(endpoint="127.0.0.1:<port>", protocol="http", ...)``. Both signature schemes are
verified (see :mod:`localcloud.rpc_auth`), and CreateOTAFirmware is validated by
:mod:`ota_release.rules`, the one module that holds those rules.

Error shapes (what a client must cope with):

- Gateway errors (signature, keys, STS token, clock skew, nonce reuse, throttling, unknown
  action or version): HTTP 4xx with JSON ``{RequestId, HostId, Code, Message, Recommend}``.
  The Tea SDK raises ``ClientException`` carrying ``code``; throttling raises
  ``ThrottlingException`` only when the stand-in is told to send ``x-acs-retry-after``.
- Business errors (every IoT rule): HTTP 200 with ``{RequestId, Success: false, Code,
  ErrorMessage}``. The SDK raises nothing; the caller must read ``body.success``. The real
  status of IoT business errors is unconfirmed; 200 is the harder case for a client, so the
  stand-in uses it.

Codes taken from the IoT error-code reference: ``iot.system.IllegalRequest``,
``iot.system.InstanceNotFound``, ``iot.common.InvalidPageParams``, ``iot.ota.FirmwareNotFound``.
Codes the docs do not name, chosen here and kept in :class:`IotCode`:
``iot.ota.FirmwareNameExisted``, ``iot.ota.FirmwareCountExceed``, ``iot.ota.FirmwareUrlInvalid``,
``iot.ota.FirmwareVerifyNotAllowed``. Clients should branch on them through these constants.

Simplifications, on purpose: MultiFiles packages are not modelled; uploads made through
GenerateOTAUploadURL are not cleaned up after 60 minutes; a declared FirmwareSign or
FirmwareSize is stored as given, not compared with the object (the platform's behaviour
there is unconfirmed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import string
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from localcloud.contracts import FaultHook, ObjectLookup
from localcloud.credentials import Credential, CredentialStore
from localcloud.rpc_auth import AuthError, RpcVerifier
from ota_release import rules
from ota_release.timestamps import utc_millis

API_VERSION = "2018-01-20"
HOST_ID = "iot.cn-shanghai.aliyuncs.com"
DEFAULT_OTA_BUCKET = "iotx-ota"
#: GenerateOTAUploadURL's PostObject policy is valid this long.
UPLOAD_POLICY_TTL = timedelta(seconds=60)
FILE_SUFFIXES = rules.UPLOAD_FILE_SUFFIXES
LIST_PAGE_SIZE_MAX = 100
#: Documented QPS of each action relative to the 10-QPS ones (CreateOTAFirmware,
#: GenerateOTAUploadURL, ListOTAFirmware, DeleteOTAFirmware, CreateOTAVerifyJob): the
#: QueryOTAFirmware reference gives 20 QPS per account. The limiter scales ``qps`` by it.
QPS_FACTOR = {"QueryOTAFirmware": 2}
VERIFY_DEVICES_MAX = 10
VERIFY_TIMEOUT_RANGE = (1, 1440)

# Firmware status values, as QueryOTAFirmware reports them. ListOTAFirmware documents only
# 0-3, so its entries leave Status out for a package that needs no verification (-1).
STATUS_NO_VERIFY = -1
STATUS_UNVERIFIED = 0
STATUS_VERIFIED = 1
STATUS_VERIFYING = 2
STATUS_VERIFY_FAILED = 3


class IotCode:
    """Business error codes the stand-in returns (see the module docstring for provenance)."""

    ILLEGAL_REQUEST = "iot.system.IllegalRequest"
    INSTANCE_NOT_FOUND = "iot.system.InstanceNotFound"
    INVALID_PAGE_PARAMS = "iot.common.InvalidPageParams"
    FIRMWARE_NOT_FOUND = "iot.ota.FirmwareNotFound"
    FIRMWARE_NAME_EXISTED = "iot.ota.FirmwareNameExisted"
    FIRMWARE_COUNT_EXCEED = "iot.ota.FirmwareCountExceed"
    FIRMWARE_URL_INVALID = "iot.ota.FirmwareUrlInvalid"
    VERIFY_NOT_ALLOWED = "iot.ota.FirmwareVerifyNotAllowed"


@dataclass(frozen=True)
class FirmwareRecord:
    """One OTA update package, with the fields QueryOTAFirmware reports."""

    firmware_id: str
    firmware_name: str
    dest_version: str
    src_version: str | None
    module_name: str
    type: int
    sign_method: str
    firmware_sign: str
    firmware_size: int
    firmware_desc: str | None
    product_key: str | None
    firmware_url: str
    status: int
    udi: str | None
    utc_create: str
    utc_modified: str
    sequence: int = field(repr=False, default=0)

    def as_simple_info(self) -> dict[str, Any]:
        """The ListOTAFirmware ``SimpleFirmwareInfo`` entry.

        Its Status is documented as 0-3 only; -1 (no verification needed) is a
        QueryOTAFirmware value, so a no-verify package is listed without a Status.
        """
        info = self._common_info()
        if self.status == STATUS_NO_VERIFY:
            del info["Status"]
        return info

    def _common_info(self) -> dict[str, Any]:
        info = {
            "FirmwareId": self.firmware_id,
            "FirmwareName": self.firmware_name,
            "DestVersion": self.dest_version,
            "SrcVersion": self.src_version,
            "ModuleName": self.module_name,
            "Type": self.type,
            "SignMethod": self.sign_method,
            "FirmwareSign": self.firmware_sign,
            "FirmwareSize": self.firmware_size,
            "FirmwareDesc": self.firmware_desc,
            "ProductKey": self.product_key,
            "ProductName": self.product_key,
            "Status": self.status,
            "UtcCreate": self.utc_create,
            "UtcModified": self.utc_modified,
        }
        return {k: v for k, v in info.items() if v is not None}

    def as_info(self) -> dict[str, Any]:
        """The QueryOTAFirmware ``FirmwareInfo`` object (Status -1 to 3)."""
        info = self._common_info()
        info["FirmwareUrl"] = self.firmware_url
        if self.udi is not None:
            info["Udi"] = self.udi
        info["VerifyProgress"] = 100 if self.status == STATUS_VERIFIED else 0
        return info


class _BusinessError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SlidingWindowLimiter:
    """At most ``limit`` calls per key in any window of ``window`` seconds.

    A sliding log rather than a token bucket: it never lets a burst of 2x the limit through
    across a window boundary, which is how a client's own rate limiter is best tested.
    """

    def __init__(
        self, limit: int, window: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, key: str, limit: int | None = None) -> float | None:
        """Take a slot; None when allowed, else the seconds until the next slot frees.

        ``limit`` overrides the limiter's own for this key (actions differ in their QPS).
        """
        now = self.clock()
        allowed = self.limit if limit is None else limit
        with self._lock:
            log = self._calls.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= allowed:
                return log[0] + self.window - now
            log.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso_ms(moment: datetime) -> str:
    return utc_millis(moment)


_ID_ALPHABET = string.ascii_letters + string.digits


class LocalIot:
    """The IoT Platform RPC endpoint as a WSGI app, with Python accessors for tests.

    ``objects`` resolves a FirmwareUrl to a stored object (the local OSS implements it).
    ``oss_base_url`` and ``ota_bucket`` say where GenerateOTAUploadURL sends uploads; the
    internal OSS key that signs those upload policies is registered in ``credentials`` so
    the local OSS accepts the PostObject. ``oss_base_url`` may be set after construction,
    once the OSS server has a port.

    Throttling: every action has its own sliding one-second window of ``qps`` calls shared
    by all keys of the account (the docs give the QPS limit per operation and account;
    RAM users share it); QueryOTAFirmware, documented at twice the others' rate, gets
    ``2 * qps`` (see :data:`QPS_FACTOR`). ``qps=None`` turns it off. With
    ``retry_after_header`` the 429/400 answer also carries ``x-acs-retry-after``
    (milliseconds), which makes the Tea SDK raise ``ThrottlingException`` instead of
    ``ClientException``; off by default because the real gateway's use of the header for
    IoT is unconfirmed.

    ``auto_verify``: the stand-in has no devices, so CreateOTAVerifyJob marks the package
    verified (status 1) at once; with ``auto_verify=False`` it stays verifying (2) until
    :meth:`complete_verification`.
    """

    def __init__(
        self,
        credentials: CredentialStore,
        objects: ObjectLookup,
        *,
        oss_base_url: str = "http://127.0.0.1",
        ota_bucket: str = DEFAULT_OTA_BUCKET,
        oss_access_key_id: str = "LTAI-local-iotx-ota",
        iot_instance_id: str | None = None,
        package_quota: int = rules.PACKAGE_QUOTA,
        qps: int | None = rules.ACCOUNT_QPS,
        throttle_status: int = 400,
        retry_after_header: bool = False,
        auto_verify: bool = True,
        faults: FaultHook | None = None,
        now: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.objects = objects
        self.oss_base_url = oss_base_url.rstrip("/")
        self.ota_bucket = ota_bucket
        self.oss_credential: Credential = credentials.add(
            oss_access_key_id, secrets.token_urlsafe(24)
        )
        self.iot_instance_id = iot_instance_id
        self.package_quota = package_quota
        self.throttle_status = throttle_status
        self.retry_after_header = retry_after_header
        self.auto_verify = auto_verify
        self.faults = faults
        self.now = now
        self.limiter = SlidingWindowLimiter(qps, clock=monotonic) if qps else None
        self.verifier = RpcVerifier(credentials)
        self._lock = threading.RLock()
        self._firmwares: dict[str, FirmwareRecord] = {}
        self._sequence = 0
        self._calls: Counter[str] = Counter()
        self._handlers: dict[str, Callable[[Mapping[str, str]], dict[str, Any]]] = {
            "GenerateOTAUploadURL": self._generate_upload_url,
            "CreateOTAFirmware": self._create_firmware,
            "ListOTAFirmware": self._list_firmware,
            "QueryOTAFirmware": self._query_firmware,
            "DeleteOTAFirmware": self._delete_firmware,
            "CreateOTAVerifyJob": self._create_verify_job,
        }

    # Python accessors ----------------------------------------------------------------------

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    @property
    def calls(self) -> Counter[str]:
        """Authenticated calls per action (including ones later throttled or rejected)."""
        with self._lock:
            return Counter(self._calls)

    def firmwares(self) -> list[FirmwareRecord]:
        """Every stored package, oldest first."""
        with self._lock:
            return sorted(self._firmwares.values(), key=lambda f: f.sequence)

    def reset(self) -> None:
        """Forget packages, call counts, throttling windows and used nonces."""
        with self._lock:
            self._firmwares.clear()
            self._calls.clear()
            self._sequence = 0
        if self.limiter is not None:
            self.limiter.reset()
        self.verifier.nonces.clear()

    def complete_verification(self, firmware_id: str, *, ok: bool = True) -> FirmwareRecord:
        """Finish a verification started with ``auto_verify=False``."""
        with self._lock:
            record = self._firmwares[firmware_id]
            updated = replace(
                record,
                status=STATUS_VERIFIED if ok else STATUS_VERIFY_FAILED,
                utc_modified=_iso_ms(self.now()),
            )
            self._firmwares[firmware_id] = updated
            return updated

    # WSGI ----------------------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The one dispatch path: authenticate, count, fault seam, throttle, run the action."""
        request_id = str(uuid.uuid4()).upper()
        if request.method not in ("GET", "POST"):
            return self._gateway_error(
                request_id, AuthError(405, "UnsupportedHTTPMethod", "Use GET or POST.")
            )
        query = dict(request.args.items())
        body = request.get_data(cache=True)
        form: dict[str, str] = {}
        if request.mimetype == "application/x-www-form-urlencoded":
            form = dict(request.form.items())
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            auth = self.verifier.verify(
                method=request.method,
                path=request.path,
                query=query,
                headers=headers,
                body=body,
                body_params=form,
                now=self.now(),
            )
        except AuthError as error:
            return self._gateway_error(request_id, error)

        if auth.version != API_VERSION:
            return self._gateway_error(
                request_id,
                AuthError(
                    400,
                    "InvalidVersion",
                    f"Specified parameter Version {auth.version!r} is not valid.",
                ),
            )
        handler = self._handlers.get(auth.action)
        if handler is None:
            return self._gateway_error(
                request_id,
                AuthError(
                    404,
                    "InvalidAction.NotFound",
                    f"Specified api {auth.action!r} is not found, "
                    "please check your url and method.",
                ),
            )
        with self._lock:
            self._calls[auth.action] += 1

        if self.faults is not None:
            injected = self.faults.before("iot", auth.action)
            if injected is not None:
                return injected

        if self.limiter is not None:
            limit = self.limiter.limit * QPS_FACTOR.get(auth.action, 1)
            wait = self.limiter.acquire(auth.action, limit)
            if wait is not None:
                return self._throttled(request_id, wait)

        params = {**form, **query}
        try:
            self._check_instance(params.get("IotInstanceId"))
            data = handler(params)
        except _BusinessError as error:
            return _json(
                200,
                request_id,
                {
                    "RequestId": request_id,
                    "Success": False,
                    "Code": error.code,
                    "ErrorMessage": error.message,
                },
            )
        return _json(200, request_id, {"RequestId": request_id, "Success": True, **data})

    def _gateway_error(self, request_id: str, error: AuthError) -> Response:
        return _json(
            error.status,
            request_id,
            {
                "RequestId": request_id,
                "HostId": HOST_ID,
                "Code": error.code,
                "Message": error.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}"
                f"&product=Iot&requestId={request_id}",
            },
        )

    def _throttled(self, request_id: str, wait_seconds: float) -> Response:
        response = self._gateway_error(
            request_id,
            AuthError(
                self.throttle_status,
                "Throttling.User",
                "Request was denied due to user flow control.",
            ),
        )
        if self.retry_after_header:
            response.headers["x-acs-retry-after"] = str(max(1, math.ceil(wait_seconds * 1000)))
        return response

    def _check_instance(self, requested: str | None) -> None:
        # Purchased instances must be named; the public instance must not be.
        if self.iot_instance_id is None:
            if requested:
                raise _BusinessError(
                    IotCode.INSTANCE_NOT_FOUND, f"IotInstanceId {requested!r} does not exist."
                )
            return
        if not requested:
            raise _BusinessError(
                IotCode.ILLEGAL_REQUEST, "IotInstanceId: is required for this instance."
            )
        if requested != self.iot_instance_id:
            raise _BusinessError(
                IotCode.INSTANCE_NOT_FOUND, f"IotInstanceId {requested!r} does not exist."
            )

    # Actions -------------------------------------------------------------------------------

    def _generate_upload_url(self, params: Mapping[str, str]) -> dict[str, Any]:
        suffix = params.get("FileSuffix") or "bin"
        if suffix not in FILE_SUFFIXES:
            raise _BusinessError(
                IotCode.ILLEGAL_REQUEST,
                f"FileSuffix: must be one of {', '.join(FILE_SUFFIXES)} (got {suffix!r})",
            )
        now = self.now()
        key = f"ota/{uuid.uuid4().hex}/{uuid.uuid4().hex.upper()}.{suffix}"
        policy_doc = {
            "expiration": utc_millis((now + UPLOAD_POLICY_TTL).replace(microsecond=0)),
            "conditions": [
                ["content-length-range", 0, rules.FIRMWARE_SIZE_MAX],
                {"bucket": self.ota_bucket},
                ["eq", "$key", key],
            ],
        }
        policy = base64.b64encode(json.dumps(policy_doc, separators=(",", ":")).encode()).decode()
        signature = base64.b64encode(
            hmac.new(
                self.oss_credential.access_key_secret.encode(), policy.encode(), hashlib.sha1
            ).digest()
        ).decode()
        host = f"{self.oss_base_url}/{self.ota_bucket}"
        return {
            "Data": {
                "FirmwareUrl": f"{host}/{quote(key, safe='/')}",
                "Host": host,
                "Key": key,
                "OSSAccessKeyId": self.oss_credential.access_key_id,
                "Policy": policy,
                "Signature": signature,
                "ObjectStorage": "OSS",
                "UtcCreate": _iso_ms(now),
            }
        }

    def _create_firmware(self, params: Mapping[str, str]) -> dict[str, Any]:
        request = {k: params[k] for k in rules.API_PARAMETERS if k in params}
        violations = rules.check_create_firmware(request)
        if violations:
            raise _BusinessError(IotCode.ILLEGAL_REQUEST, "; ".join(str(v) for v in violations))
        name = request["FirmwareName"]
        url = request["FirmwareUrl"]
        with self._lock:
            if any(f.firmware_name == name for f in self._firmwares.values()):
                raise _BusinessError(
                    IotCode.FIRMWARE_NAME_EXISTED,
                    f"FirmwareName: {name!r} already exists in this account.",
                )
            facts = self.objects.lookup_url(url)
            if facts is None:
                raise _BusinessError(
                    IotCode.FIRMWARE_URL_INVALID,
                    f"FirmwareUrl: no package file found at {url!r}.",
                )
            if len(self._firmwares) >= self.package_quota:
                raise _BusinessError(
                    IotCode.FIRMWARE_COUNT_EXCEED,
                    f"The account already has {len(self._firmwares)} update packages; "
                    f"the limit is {self.package_quota}.",
                )
            sign_method = request.get("SignMethod", "MD5")
            sign = request.get("FirmwareSign")
            if sign is None:
                # Documented default: the MD5 of the file in OSS. With SHA256 and no sign the
                # platform's behaviour is undocumented; the MD5 would be wrong, so refuse.
                if sign_method != "MD5":
                    raise _BusinessError(
                        IotCode.ILLEGAL_REQUEST,
                        "FirmwareSign: is required when SignMethod is not MD5",
                    )
                sign = facts.md5_hex
            size = rules.parse_query_int(request.get("FirmwareSize"))
            need_to_verify = rules.parse_query_bool(request.get("NeedToVerify", "true"))
            created = _iso_ms(self.now())
            self._sequence += 1
            record = FirmwareRecord(
                firmware_id=self._new_firmware_id(),
                firmware_name=name,
                dest_version=request["DestVersion"],
                src_version=request.get("SrcVersion"),
                module_name=request.get("ModuleName", "default"),
                type=rules.parse_query_int(request.get("Type", "0")) or 0,
                sign_method=sign_method,
                firmware_sign=sign,
                firmware_size=size if size is not None else facts.size,
                firmware_desc=request.get("FirmwareDesc"),
                product_key=request.get("ProductKey"),
                firmware_url=url,
                status=STATUS_UNVERIFIED if need_to_verify else STATUS_NO_VERIFY,
                udi=request.get("Udi"),
                utc_create=created,
                utc_modified=created,
                sequence=self._sequence,
            )
            self._firmwares[record.firmware_id] = record
        return {"Data": {"FirmwareId": record.firmware_id, "UtcCreate": record.utc_create}}

    def _new_firmware_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))
            if candidate not in self._firmwares:
                return candidate

    def _list_firmware(self, params: Mapping[str, str]) -> dict[str, Any]:
        page = _page_param(params, "CurrentPage", 1, None)
        size = _page_param(params, "PageSize", 10, LIST_PAGE_SIZE_MAX)
        dest = params.get("DestVersion")
        product_key = params.get("ProductKey")
        # Newest first, as the console lists them.
        matching = [
            f
            for f in reversed(self.firmwares())
            if (dest is None or f.dest_version == dest)
            and (product_key is None or f.product_key == product_key)
        ]
        chunk = matching[(page - 1) * size : page * size]
        return {
            "FirmwareInfo": {"SimpleFirmwareInfo": [f.as_simple_info() for f in chunk]},
            "Total": len(matching),
            "PageSize": size,
            "PageCount": math.ceil(len(matching) / size),
            "CurrentPage": page,
        }

    def _query_firmware(self, params: Mapping[str, str]) -> dict[str, Any]:
        return {"FirmwareInfo": self._firmware(params).as_info()}

    def _delete_firmware(self, params: Mapping[str, str]) -> dict[str, Any]:
        record = self._firmware(params)
        with self._lock:
            self._firmwares.pop(record.firmware_id, None)
        return {}

    def _create_verify_job(self, params: Mapping[str, str]) -> dict[str, Any]:
        record = self._firmware(params)
        problems: list[str] = []
        product_key = params.get("ProductKey")
        if not product_key:
            problems.append("ProductKey: is required")
        elif record.product_key is not None and product_key != record.product_key:
            problems.append(
                f"ProductKey: {product_key!r} is not the package's product {record.product_key!r}"
            )
        devices = _indexed(params, "TargetDeviceName")
        if not 1 <= len(devices) <= VERIFY_DEVICES_MAX:
            problems.append(
                f"TargetDeviceName: must list 1 to {VERIFY_DEVICES_MAX} devices "
                f"(got {len(devices)})"
            )
        timeout = rules.parse_query_int(params.get("TimeoutInMinutes"))
        low, high = VERIFY_TIMEOUT_RANGE
        if timeout is None or not low <= timeout <= high:
            problems.append(
                f"TimeoutInMinutes: must be {low} to {high} "
                f"(got {params.get('TimeoutInMinutes')!r})"
            )
        if problems:
            raise _BusinessError(IotCode.ILLEGAL_REQUEST, "; ".join(problems))
        if record.status not in (STATUS_UNVERIFIED, STATUS_VERIFY_FAILED):
            raise _BusinessError(
                IotCode.VERIFY_NOT_ALLOWED,
                f"Package {record.firmware_id} has status {record.status}; only unverified (0) "
                "or failed (3) packages can be verified.",
            )
        now = _iso_ms(self.now())
        with self._lock:
            self._firmwares[record.firmware_id] = replace(
                record,
                status=STATUS_VERIFIED if self.auto_verify else STATUS_VERIFYING,
                utc_modified=now,
            )
        job_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(26))
        return {"Data": {"JobId": job_id, "UtcCreate": now}}

    def _firmware(self, params: Mapping[str, str]) -> FirmwareRecord:
        firmware_id = params.get("FirmwareId")
        if not firmware_id:
            raise _BusinessError(IotCode.ILLEGAL_REQUEST, "FirmwareId: is required")
        with self._lock:
            record = self._firmwares.get(firmware_id)
        if record is None:
            raise _BusinessError(
                IotCode.FIRMWARE_NOT_FOUND, f"FirmwareId: package {firmware_id!r} does not exist."
            )
        return record


def _page_param(params: Mapping[str, str], name: str, default: int, maximum: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    value = rules.parse_query_int(raw)
    if value is None or value < 1 or (maximum is not None and value > maximum):
        bound = f"1 to {maximum}" if maximum is not None else "at least 1"
        raise _BusinessError(IotCode.INVALID_PAGE_PARAMS, f"{name}: must be {bound} (got {raw!r})")
    return value


def _indexed(params: Mapping[str, str], prefix: str) -> list[str]:
    """A repeat-list parameter as the SDK flattens it: ``Name.1``, ``Name.2``, ..."""
    found: list[tuple[int, str]] = []
    for key, value in params.items():
        head, _, index = key.partition(".")
        if head == prefix and index.isdigit():
            found.append((int(index), value))
    return [value for _, value in sorted(found)]


def _json(status: int, request_id: str, payload: Mapping[str, Any]) -> Response:
    return Response(
        json.dumps(payload, ensure_ascii=False),
        status=status,
        content_type="application/json;charset=utf-8",
        headers={"x-acs-request-id": request_id},
    )
