"""The IoT Platform's RPC endpoint as a WSGI app: the gateway in front of the actions.

One dispatch path for every request: authenticate (both RPC signature schemes, see
:mod:`localcloud.rpc_auth`), check the API version, find the action in
:data:`localcloud.iot.routes.ACTIONS`, count it, give the fault seam its chance, throttle,
check the instance, run the handler against the :class:`~localcloud.iot.backend.IotBackend`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from threading import Lock
from typing import Any

from werkzeug.wrappers import Request, Response

from localcloud.contracts import FaultHook, ObjectLookup
from localcloud.credentials import Credential, CredentialStore
from localcloud.iot.backend import DEFAULT_OTA_BUCKET, IotBackend, StoredPackage, utcnow
from localcloud.iot.errors import (
    BusinessError,
    business_error_response,
    gateway_error_response,
    success_response,
    throttled_response,
)
from localcloud.iot.jobs import StoredJob
from localcloud.iot.routes import ACTIONS, API_VERSION
from localcloud.iot.throttle import SlidingWindowLimiter
from localcloud.rpc_auth import AuthError, RpcVerifier
from ota_release import rules


class LocalIot:
    """The IoT Platform RPC endpoint as a WSGI app; its state and Python API are ``backend``.

    ``objects`` resolves a FirmwareUrl to a stored object (the local OSS implements it).
    ``oss_base_url`` and ``ota_bucket`` say where GenerateOTAUploadURL sends uploads; the
    internal OSS key that signs those upload policies is registered in ``credentials`` so
    the local OSS accepts the PostObject. ``oss_base_url`` may be set after construction,
    once the OSS server has a port.

    Throttling: every action has its own sliding one-second window of ``qps`` calls shared
    by all keys of the account (the docs give the QPS limit per operation and account;
    RAM users share it); QueryOTAFirmware, documented at twice the others' rate, gets
    ``2 * qps`` (see :data:`localcloud.iot.throttle.QPS_FACTOR`). ``qps=None`` turns it off.
    With ``retry_after_header`` the 429/400 answer also carries ``x-acs-retry-after``
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
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self.backend = IotBackend(
            objects,
            credentials.add(oss_access_key_id, secrets.token_urlsafe(24)),
            oss_base_url=oss_base_url,
            ota_bucket=ota_bucket,
            iot_instance_id=iot_instance_id,
            package_quota=package_quota,
            auto_verify=auto_verify,
            now=now,
        )
        self.throttle_status = throttle_status
        self.retry_after_header = retry_after_header
        self.faults = faults
        self.limiter = SlidingWindowLimiter(qps, clock=monotonic) if qps else None
        self.verifier = RpcVerifier(credentials)
        self._calls: Counter[str] = Counter()
        self._calls_lock = Lock()

    # Python API (the backend's, plus what the gateway counts) -------------------------------

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(ACTIONS)

    @property
    def calls(self) -> Counter[str]:
        """Authenticated calls per action (including ones later throttled or rejected)."""
        with self._calls_lock:
            return Counter(self._calls)

    def firmwares(self) -> list[StoredPackage]:
        """Every stored package, oldest first."""
        return self.backend.firmwares()

    def complete_verification(self, firmware_id: str, *, ok: bool = True) -> StoredPackage:
        """Finish a verification started with ``auto_verify=False``."""
        return self.backend.complete_verification(firmware_id, ok=ok)

    def seed_packages(self, count: int, **options: Any) -> list[StoredPackage]:
        """Store ``count`` packages at once (see :meth:`IotBackend.seed_packages`)."""
        return self.backend.seed_packages(count, **options)

    def add_upgrade_job(self, firmware_id: str, **options: Any) -> StoredJob:
        """Record an upgrade batch on a package (see :meth:`IotBackend.add_upgrade_job`)."""
        return self.backend.add_upgrade_job(firmware_id, **options)

    def reset(self) -> None:
        """Forget packages, jobs, call counts, throttling windows and used nonces."""
        self.backend.reset()
        with self._calls_lock:
            self._calls.clear()
        if self.limiter is not None:
            self.limiter.reset()
        self.verifier.nonces.clear()

    # Settings tests and the local cloud change after construction.

    @property
    def now(self) -> Callable[[], datetime]:
        return self.backend.now

    @now.setter
    def now(self, clock: Callable[[], datetime]) -> None:
        self.backend.now = clock

    @property
    def package_quota(self) -> int:
        return self.backend.package_quota

    @package_quota.setter
    def package_quota(self, quota: int) -> None:
        self.backend.package_quota = quota

    @property
    def oss_base_url(self) -> str:
        return self.backend.oss_base_url

    @oss_base_url.setter
    def oss_base_url(self, url: str) -> None:
        self.backend.oss_base_url = url.rstrip("/")

    @property
    def ota_bucket(self) -> str:
        return self.backend.ota_bucket

    @property
    def oss_credential(self) -> Credential:
        return self.backend.oss_credential

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
            return _gateway_error(
                request_id, AuthError(405, "UnsupportedHTTPMethod", "Use GET or POST.")
            )
        query = dict(request.args.items())
        body = request.get_data(cache=True)  # before the form is parsed, which consumes it
        form: dict[str, str] = {}
        if request.mimetype == "application/x-www-form-urlencoded":
            form = dict(request.form.items())
        try:
            action = self._authenticate(request, query, form, body)
        except AuthError as error:
            return _gateway_error(request_id, error)
        with self._calls_lock:
            self._calls[action] += 1

        if self.faults is not None:
            injected = self.faults.before("iot", action)
            if injected is not None:
                return injected

        if self.limiter is not None:
            wait = self.limiter.acquire_action(action)
            if wait is not None:
                return throttled_response(
                    request_id,
                    self.throttle_status,
                    wait,
                    retry_after_header=self.retry_after_header,
                )

        params = {**form, **query}
        try:
            self.backend.check_instance(params.get("IotInstanceId"))
            data = ACTIONS[action](self.backend, params)
        except BusinessError as error:
            return business_error_response(request_id, error)
        return success_response(request_id, data)

    def _authenticate(
        self, request: Request, query: dict[str, str], form: dict[str, str], body: bytes
    ) -> str:
        """The action a correctly signed request names; :class:`AuthError` otherwise."""
        auth = self.verifier.verify(
            method=request.method,
            path=request.path,
            query=query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            body_params=form,
            now=self.backend.now(),
        )
        if auth.version != API_VERSION:
            raise AuthError(
                400, "InvalidVersion", f"Specified parameter Version {auth.version!r} is not valid."
            )
        if auth.action not in ACTIONS:
            raise AuthError(
                404,
                "InvalidAction.NotFound",
                f"Specified api {auth.action!r} is not found, please check your url and method.",
            )
        return auth.action


def _gateway_error(request_id: str, error: AuthError) -> Response:
    return gateway_error_response(request_id, error.status, error.code, error.message)
