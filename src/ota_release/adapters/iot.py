"""OtaPlatform on IoT Platform through alibabacloud-iot20180120 (imported on first use)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ota_release.adapters import CloudCredentials
from ota_release.adapters.pacing import ActionPacer, shared_pacer

__all__ = ["ActionPacer", "IotOtaPlatform", "classify_sdk_error", "shared_pacer"]
from ota_release.errors import (
    AuthError,
    DuplicateNameError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    PlatformError,
    TransientError,
)
from ota_release.ports import (
    CreatedFirmware,
    FirmwareRequest,
    FirmwareSearch,
    ListedFile,
    ListedPackage,
    OtaJob,
    UploadTicket,
)

PAGE_SIZE = 100
#: ListOTAJobByFirmware's largest page (its reference: PageSize at most 200).
JOB_PAGE_SIZE = 200
#: Actions only the operator's CLI calls (``ota-release prune``), never the function: its
#: RAM role is not granted them (tests/deploy/test_deploy_least_privilege.py holds the
#: function's code to that). ListOTAJobByFirmware is not one: the verify step looks a
#: package's jobs up before it starts a verification.
OPERATOR_ACTIONS = frozenset({"DeleteOTAFirmware"})
#: Codes worth a retry whatever HTTP status carried them: the public IoT error list's
#: ``iot.system.SystemException`` ("retry later") and the gateway's throttling codes
#: (``Throttling``, ``Throttling.User``, ``Throttling.Api``: HTTP 400, sometimes 429).
TRANSIENT_CODES = frozenset(
    {
        "iot.system.SystemException",
        "iot.system.SystemBusy",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "Throttling.Concurrency",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
    }
)
#: Keys, STS token, signature, clock or RAM permission refused: the deployment is at fault
#: (``failed``), never the upload. Exact codes, then the families they belong to.
AUTH_CODES = frozenset(
    {
        "iot.common.RamActionPermissionDeny",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "SignatureNonceUsed",
        "Forbidden",
        "NoPermission",
    }
)
AUTH_CODE_PREFIXES = (
    "InvalidAccessKeyId",  # .NotFound, .Inactive
    "InvalidSecurityToken",  # .Expired, .Malformed, .MismatchWithAccessKey
    "InvalidTimeStamp",  # .Expired, .Format: the clock, not the request
    "Forbidden.",  # Forbidden.RAM, Forbidden.AccessKeyDisabled, ...
    "SignatureDoesNotMatch",
)
#: Codes that blame the request's content (a ``rejected`` release, fixed by uploading
#: again): the public IoT list's IllegalRequest, and the gateway's parameter codes.
INVALID_REQUEST_CODES = frozenset(
    {"iot.system.IllegalRequest", "InvalidParameter", "MissingParameter"}
)
INVALID_REQUEST_PREFIXES = ("InvalidParameter.", "MissingParameter.", "iot.system.IllegalRequest.")
#: "A package with this FirmwareName exists": NOT in any public source (the stand-in's
#: spelling and guesses). A hint only: after any refused CreateOTAFirmware the pipeline
#: looks the name up, so nothing depends on the platform using one of these.
DUPLICATE_NAME_CODES = frozenset(
    {
        "iot.ota.FirmwareNameExisted",
        "iot.ota.FirmwareNameExists",
        "iot.ota.RepeatedFirmwareName",
    }
)
NOT_FOUND_CODES = frozenset({"iot.ota.FirmwareNotFound"})
#: Known permanent codes that blame neither the upload nor the keys (``failed``), kept
#: permanent even when an HTTP 5xx carries them.
PERMANENT_CODES = frozenset({"iot.system.InstanceNotFound", "iot.common.InvalidPageParams"})
#: Class names of errors raised before anything was sent: the request could not be built.
LOCAL_ERROR_NAMES = frozenset({"ValidateException", "RequiredArgumentException"})


def _permanent_class(code: str) -> type[PermanentError] | None:
    """The permanent error a business or gateway code names, or None when it names none."""
    if code in AUTH_CODES or code.startswith(AUTH_CODE_PREFIXES):
        return AuthError
    if code in INVALID_REQUEST_CODES or code.startswith(INVALID_REQUEST_PREFIXES):
        return InvalidRequestError
    if code in DUPLICATE_NAME_CODES:
        return DuplicateNameError
    if code in NOT_FOUND_CODES:
        return NotFoundError
    if code in PERMANENT_CODES:
        return PermanentError
    return None


def _error_for(
    operation: str,
    code: str,
    message: str,
    request_id: str | None,
    status: int | None,
    retry_after_ms: int | None = None,
) -> PlatformError:
    """Read the code first; only a code that names nothing lets the HTTP status decide."""
    retry_after = retry_after_ms / 1000.0 if retry_after_ms else None
    if code in TRANSIENT_CODES or code.startswith("Throttling"):
        return TransientError(
            "iot",
            operation,
            code,
            message,
            request_id=request_id,
            status=status,
            retry_after=retry_after,
        )
    permanent = _permanent_class(code)
    if permanent is not None:
        return permanent("iot", operation, code, message, request_id=request_id, status=status)
    if status is not None and (status >= 500 or status == 429):
        return TransientError(
            "iot",
            operation,
            code,
            message,
            request_id=request_id,
            status=status,
            retry_after=retry_after,
        )
    return PermanentError("iot", operation, code, message, request_id=request_id, status=status)


def _local_cause(exc: BaseException) -> BaseException | None:
    """The error behind ``exc`` when it was raised before the request left this process.

    The Tea SDK wraps everything in UnretryableException, keeping the original as
    ``inner_exception``: a UnicodeEncodeError (a value UTF-8 cannot encode) or the SDK's own
    parameter validation mean no answer could ever change the outcome.
    """
    for candidate in (exc, getattr(exc, "inner_exception", None)):
        if isinstance(candidate, (UnicodeEncodeError, TypeError)):
            return candidate
        if candidate is not None and type(candidate).__name__ in LOCAL_ERROR_NAMES:
            return candidate
    return None


def classify_sdk_error(exc: Exception, operation: str) -> PlatformError:
    """Map a Tea/darabonba exception (or a network error) to transient/permanent."""
    code = getattr(exc, "code", None)
    status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
    if code:
        data = getattr(exc, "data", None)
        request_id = getattr(exc, "request_id", None)
        if not request_id and isinstance(data, dict):
            request_id = data.get("RequestId")
        retry_after = getattr(exc, "retry_after", None)
        return _error_for(
            operation,
            str(code),
            str(getattr(exc, "message", "") or exc),
            request_id,
            int(status) if status else None,
            int(retry_after) if retry_after else None,
        )
    local = _local_cause(exc)
    if isinstance(local, UnicodeEncodeError):
        return InvalidRequestError(
            "iot",
            operation,
            "RequestEncodingError",
            f"the request cannot be encoded as the API sends it (UTF-8): {local}",
        )
    if local is not None:
        return PermanentError("iot", operation, type(local).__name__, str(local)[:300])
    # No code: the request never got an answer (connection refused/reset, timeout) or the
    # answer was not JSON. Either way nothing was decided server-side that we can read.
    return TransientError("iot", operation, type(exc).__name__, str(exc)[:300])


@dataclass(frozen=True)
class QueriedFirmware:
    """QueryOTAFirmware's FirmwareInfo (API field names) and the call's request id."""

    fields: dict[str, Any]
    request_id: str | None

    @property
    def udi(self) -> str | None:
        """The Udi ("" for none); None when the answer held no FirmwareInfo."""
        return str(self.fields.get("Udi") or "") if self.fields else None


def _job(item: Any) -> OtaJob:
    """One ListOTAJobByFirmware SimpleOTAJobInfo as an OtaJob."""
    return OtaJob(
        job_id=item.job_id,
        job_type=item.job_type,
        job_status=item.job_status,
        utc_create=item.utc_create,
        utc_modified=item.utc_modified,
        target_selection=item.target_selection,
    )


def _without(body: Any, operation: str, field: str) -> TransientError:
    """A successful answer that lacks what the call is for: worth asking again."""
    return TransientError(
        "iot",
        operation,
        "EmptyResponse",
        f"Success=true without a {field}",
        request_id=body.request_id,
    )


def _firmware_items(body: Any) -> list[Any]:
    """ListOTAFirmware's packages on one page."""
    return list(body.firmware_info.simple_firmware_info or []) if body.firmware_info else []


def _job_items(body: Any) -> list[Any]:
    """ListOTAJobByFirmware's jobs on one page."""
    return list(body.data.simple_otajob_info or []) if body.data else []


def _files_of(fields: dict[str, Any]) -> tuple[ListedFile, ...] | None:
    """QueryOTAFirmware's MultiFiles as ListedFiles; None for a one-file package."""
    entries = fields.get("MultiFiles") or []
    if not entries:
        return None
    return tuple(
        ListedFile(
            name=str(e.get("Name") or ""),
            size=int(e["Size"]) if e.get("Size") is not None else None,
            sign=e.get("SignValue"),
        )
        for e in entries
    )


def _listed(
    item: Any, *, udi: str | None, files: tuple[ListedFile, ...] | None = None
) -> ListedPackage:
    """One ListOTAFirmware SimpleFirmwareInfo as a ListedPackage."""
    return ListedPackage(
        firmware_id=item.firmware_id,
        name=item.firmware_name,
        dest_version=item.dest_version,
        sign_method=item.sign_method,
        sign=item.firmware_sign,
        size=int(item.firmware_size) if item.firmware_size is not None else None,
        module=item.module_name,
        product_key=item.product_key,
        src_version=item.src_version,
        type=item.type,
        utc_create=item.utc_create,
        status=item.status,
        description=item.firmware_desc,
        udi=udi,
        files=files,
    )


class IotOtaPlatform:
    """IoT Platform's OTA operations with errors classified for the retry policy."""

    def __init__(
        self,
        credentials: CloudCredentials,
        endpoint: str,
        region: str,
        *,
        protocol: str = "https",
        signature_algorithm: str | None = None,
        connect_timeout_ms: int = 5000,
        read_timeout_ms: int = 30000,
        pacer: ActionPacer | None = None,
    ) -> None:
        self._credentials = credentials
        self._endpoint = endpoint
        self._region = region
        self._protocol = protocol
        self._signature_algorithm = signature_algorithm
        self._connect_timeout_ms = connect_timeout_ms
        self._read_timeout_ms = read_timeout_ms
        self._pacer = pacer
        self._client: Any = None

    def _sdk(self) -> tuple[Any, Any]:
        from alibabacloud_iot20180120 import models
        from alibabacloud_iot20180120.client import Client
        from alibabacloud_tea_openapi import models as openapi

        if self._client is None:
            c = self._credentials
            config = openapi.Config(
                access_key_id=c.access_key_id,
                access_key_secret=c.access_key_secret,
                security_token=c.security_token,
                endpoint=self._endpoint,
                region_id=self._region,
                protocol=self._protocol,
                connect_timeout=self._connect_timeout_ms,
                read_timeout=self._read_timeout_ms,
            )
            if self._signature_algorithm:
                config.signature_algorithm = self._signature_algorithm
            self._client = Client(config)
        return self._client, models

    def _invoke(self, operation: str, call: Callable[[Any, Any], Any]) -> Any:
        client, models = self._sdk()
        try:
            if self._pacer is None:
                response = call(client, models)
            else:
                with self._pacer.call(operation):
                    response = call(client, models)
        except PlatformError:
            raise
        except Exception as exc:
            raise classify_sdk_error(exc, operation) from exc
        body = response.body
        if body is None:
            raise TransientError("iot", operation, "EmptyResponse", "no response body")
        if not body.success:
            # HTTP 200 with Success=false is a failure the SDK does not raise.
            raise _error_for(
                operation,
                str(body.code or "UnknownError"),
                str(body.error_message or ""),
                body.request_id,
                getattr(response, "status_code", None),
            )
        return body

    def find_firmware(
        self,
        name: str,
        dest_version: str | None,
        product_key: str | None,
        iot_instance_id: str | None,
    ) -> FirmwareSearch:
        """Page through ListOTAFirmware (filtered by version/product when given) for ``name``.

        ListOTAFirmware cannot filter by name, so the pipeline narrows by DestVersion first
        (usually one page) and scans everything only when CreateOTAFirmware says the name
        is taken by some other package. The request id of every page (and of the
        QueryOTAFirmware that reads a found package's Udi) comes back with the answer.
        """
        request_ids: list[str] = []
        package = self._scan(name, dest_version, product_key, iot_instance_id, request_ids)
        return FirmwareSearch(package, tuple(request_ids))

    def _scan(
        self,
        name: str,
        dest_version: str | None,
        product_key: str | None,
        iot_instance_id: str | None,
        request_ids: list[str],
    ) -> ListedPackage | None:
        def call_for(page: int) -> Callable[[Any, Any], Any]:
            return lambda client, models: client.list_otafirmware(
                models.ListOTAFirmwareRequest(
                    current_page=page,
                    page_size=PAGE_SIZE,
                    dest_version=dest_version,
                    product_key=product_key,
                    iot_instance_id=iot_instance_id,
                )
            )

        for body, items in self._pages("ListOTAFirmware", call_for, _firmware_items):
            if body.request_id:
                request_ids.append(body.request_id)
            for item in items:
                if item.firmware_name == name:
                    queried = self.query_firmware(item.firmware_id, iot_instance_id)
                    if queried.request_id:
                        request_ids.append(queried.request_id)
                    return _listed(item, udi=queried.udi, files=_files_of(queried.fields))
        return None

    def _pages(
        self,
        action: str,
        call_for: Callable[[int], Callable[[Any, Any], Any]],
        items_of: Callable[[Any], list[Any]],
    ) -> Iterator[tuple[Any, list[Any]]]:
        """Each page's answer and its items, from page 1 to the answer's PageCount."""
        page = 1
        while True:
            body = self._invoke(action, call_for(page))
            items = items_of(body)
            yield body, items
            if not items or page >= int(body.page_count or 0):
                return
            page += 1

    def query_firmware(self, firmware_id: str, iot_instance_id: str | None) -> QueriedFirmware:
        """QueryOTAFirmware: the package's FirmwareInfo, keyed by the API's field names.

        The pipeline asks it only for the Udi of a package that already holds a release's
        name (ListOTAFirmware does not report Udi), so that idempotency compares Udi too;
        the CLI's ``status`` shows all of it. Raises
        :class:`~ota_release.errors.NotFoundError` for an unknown id.
        """
        body = self._invoke(
            "QueryOTAFirmware",
            lambda client, models: client.query_otafirmware(
                models.QueryOTAFirmwareRequest(
                    firmware_id=firmware_id, iot_instance_id=iot_instance_id
                )
            ),
        )
        info = body.firmware_info
        return QueriedFirmware(dict(info.to_map()) if info is not None else {}, body.request_id)

    def create_firmware(self, request: FirmwareRequest) -> CreatedFirmware:
        # FirmwareRequest's attributes are the SDK request's field names.
        kwargs = request.sent_attributes()

        def call(client: Any, models: Any) -> Any:
            if request.multi_files is not None:
                kwargs["multi_files"] = [
                    models.CreateOTAFirmwareRequestMultiFiles(**vars(f))
                    for f in request.multi_files
                ]
            return client.create_otafirmware(models.CreateOTAFirmwareRequest(**kwargs))

        body = self._invoke("CreateOTAFirmware", call)
        data = body.data
        if data is None or not data.firmware_id:
            raise _without(body, "CreateOTAFirmware", "FirmwareId")
        return CreatedFirmware(data.firmware_id, data.utc_create, body.request_id)

    def create_verify_job(
        self,
        firmware_id: str,
        product_key: str,
        devices: tuple[str, ...],
        timeout_minutes: int | None,
        iot_instance_id: str | None,
    ) -> tuple[str, str | None]:
        """CreateOTAVerifyJob: a verification of the package on ``devices`` (1-10).

        The SDK flattens ``target_device_name`` to ``TargetDeviceName.N``. Returns the
        JobId and the call's request id; an answer without a JobId is transient (the
        pipeline looks the job up again before it asks a second time).
        """

        def call(client: Any, models: Any) -> Any:
            return client.create_otaverify_job(
                models.CreateOTAVerifyJobRequest(
                    firmware_id=firmware_id,
                    product_key=product_key,
                    target_device_name=list(devices),
                    timeout_in_minutes=timeout_minutes,
                    iot_instance_id=iot_instance_id,
                )
            )

        body = self._invoke("CreateOTAVerifyJob", call)
        data = body.data
        if data is None or not data.job_id:
            raise _without(body, "CreateOTAVerifyJob", "JobId")
        return str(data.job_id), body.request_id

    def list_packages(
        self, product_key: str | None, iot_instance_id: str | None
    ) -> list[ListedPackage]:
        """Every package (of ``product_key`` when given), all pages of ListOTAFirmware.

        ListOTAFirmware reports no Udi, so ``udi`` is None on each.
        """

        def call_for(page: int) -> Callable[[Any, Any], Any]:
            return lambda client, models: client.list_otafirmware(
                models.ListOTAFirmwareRequest(
                    current_page=page,
                    page_size=PAGE_SIZE,
                    product_key=product_key,
                    iot_instance_id=iot_instance_id,
                )
            )

        pages = self._pages("ListOTAFirmware", call_for, _firmware_items)
        return [_listed(item, udi=None) for _, items in pages for item in items]

    def count_packages(self, iot_instance_id: str | None) -> int:
        """The account's (instance's) package count: ListOTAFirmware's Total for one entry.

        No product or version filter, so every package of the instance counts, as the
        500-package quota does.
        """
        body = self._invoke(
            "ListOTAFirmware",
            lambda client, models: client.list_otafirmware(
                models.ListOTAFirmwareRequest(
                    current_page=1, page_size=1, iot_instance_id=iot_instance_id
                )
            ),
        )
        if body.total is None:
            raise _without(body, "ListOTAFirmware", "Total")
        return int(body.total)

    def delete_firmware(self, firmware_id: str, iot_instance_id: str | None) -> str | None:
        """DeleteOTAFirmware; the call's request id. An unknown id raises NotFoundError."""
        body = self._invoke(
            "DeleteOTAFirmware",
            lambda client, models: client.delete_otafirmware(
                models.DeleteOTAFirmwareRequest(
                    firmware_id=firmware_id, iot_instance_id=iot_instance_id
                )
            ),
        )
        request_id: str | None = body.request_id
        return request_id

    def list_jobs(self, firmware_id: str, iot_instance_id: str | None) -> list[OtaJob]:
        """Every job on the package (verifications and upgrade batches), all pages.

        ListOTAJobByFirmware at its largest page (200), paged by the answer's PageCount.
        An unknown package raises :class:`~ota_release.errors.NotFoundError`.
        """

        def call_for(page: int) -> Callable[[Any, Any], Any]:
            return lambda client, models: client.list_otajob_by_firmware(
                models.ListOTAJobByFirmwareRequest(
                    firmware_id=firmware_id,
                    current_page=page,
                    page_size=JOB_PAGE_SIZE,
                    iot_instance_id=iot_instance_id,
                )
            )

        pages = self._pages("ListOTAJobByFirmware", call_for, _job_items)
        return [_job(item) for _, items in pages for item in items]

    def generate_upload_url(self, file_suffix: str, iot_instance_id: str | None) -> UploadTicket:
        body = self._invoke(
            "GenerateOTAUploadURL",
            lambda client, models: client.generate_otaupload_url(
                models.GenerateOTAUploadURLRequest(
                    file_suffix=file_suffix, iot_instance_id=iot_instance_id
                )
            ),
        )
        d = body.data
        return UploadTicket(
            firmware_url=d.firmware_url,
            host=d.host,
            key=d.key,
            access_key_id=d.ossaccess_key_id,
            policy=d.policy,
            signature=d.signature,
            request_id=body.request_id,
        )
