"""One handler per IoT action: request parameters in, the response's data fields out.

Each handler reads the flat RPC parameters (as the SDK sends them), checks those the
backend does not need state for, calls :class:`~localcloud.iot.backend.IotBackend` and
shapes the answer. CreateOTAFirmware is validated by :mod:`ota_release.rules`, the one
module that holds those rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from localcloud.iot.backend import STATUS_NO_VERIFY, STATUS_VERIFIED, IotBackend, StoredPackage
from localcloud.iot.errors import BusinessError, IotCode
from localcloud.iot.jobs import StoredJob
from ota_release import rules

#: FileSuffix values GenerateOTAUploadURL accepts (bin is the default).
FILE_SUFFIXES = rules.UPLOAD_FILE_SUFFIXES
LIST_PAGE_SIZE_MAX = 100
#: ListOTAJobByFirmware's PageSize maximum (its reference: 200).
JOB_PAGE_SIZE_MAX = 200

Params = Mapping[str, str]


def generate_upload_url(backend: IotBackend, params: Params) -> dict[str, Any]:
    suffix = params.get("FileSuffix") or "bin"
    if suffix not in FILE_SUFFIXES:
        raise BusinessError(
            IotCode.ILLEGAL_REQUEST,
            f"FileSuffix: must be one of {', '.join(FILE_SUFFIXES)} (got {suffix!r})",
        )
    form = backend.upload_form(suffix)
    return {
        "Data": {
            "FirmwareUrl": form.firmware_url,
            "Host": form.host,
            "Key": form.key,
            "OSSAccessKeyId": form.access_key_id,
            "Policy": form.policy,
            "Signature": form.signature,
            "ObjectStorage": "OSS",
            "UtcCreate": form.utc_create,
        }
    }


def create_firmware(backend: IotBackend, params: Params) -> dict[str, Any]:
    request: dict[str, Any] = {k: params[k] for k in rules.API_PARAMETERS if k in params}
    files = _multi_files(params)
    if files is not None:
        request[rules.MULTI_FILES] = files
    violations = rules.check_create_firmware(request)
    if violations:
        raise BusinessError(IotCode.ILLEGAL_REQUEST, "; ".join(str(v) for v in violations))
    package = backend.create_package(request)
    return {"Data": {"FirmwareId": package.firmware_id, "UtcCreate": package.utc_create}}


def list_firmware(backend: IotBackend, params: Params) -> dict[str, Any]:
    page = _page_param(params, "CurrentPage", 1, None)
    size = _page_param(params, "PageSize", 10, LIST_PAGE_SIZE_MAX)
    dest = params.get("DestVersion")
    product_key = params.get("ProductKey")
    # Newest first, as the console lists them.
    matching = [
        p
        for p in reversed(backend.firmwares())
        if (dest is None or p.dest_version == dest)
        and (product_key is None or p.product_key == product_key)
    ]
    chunk = matching[(page - 1) * size : page * size]
    return {
        "FirmwareInfo": {"SimpleFirmwareInfo": [simple_firmware_info(p) for p in chunk]},
        "Total": len(matching),
        "PageSize": size,
        "PageCount": math.ceil(len(matching) / size),
        "CurrentPage": page,
    }


def query_firmware(backend: IotBackend, params: Params) -> dict[str, Any]:
    return {"FirmwareInfo": firmware_info(backend.package(params.get("FirmwareId")))}


def delete_firmware(backend: IotBackend, params: Params) -> dict[str, Any]:
    backend.delete_package(backend.package(params.get("FirmwareId")).firmware_id)
    return {}


def create_verify_job(backend: IotBackend, params: Params) -> dict[str, Any]:
    backend.check_instance(params.get("IotInstanceId"))
    package = backend.package(params.get("FirmwareId"))
    problems = _verify_job_problems(package, params)
    if problems:
        raise BusinessError(IotCode.ILLEGAL_REQUEST, "; ".join(problems))
    job_id, created = backend.start_verification(
        package, tuple(_indexed(params, "TargetDeviceName"))
    )
    return {"Data": {"JobId": job_id, "UtcCreate": created}}


def list_jobs_by_firmware(backend: IotBackend, params: Params) -> dict[str, Any]:
    """ListOTAJobByFirmware: the package's jobs, newest first, a page at a time.

    FirmwareId, CurrentPage and PageSize are all required by the reference.
    """
    missing = [n for n in ("FirmwareId", "CurrentPage", "PageSize") if not params.get(n)]
    if missing:
        raise BusinessError(
            IotCode.ILLEGAL_REQUEST, "; ".join(f"{name}: is required" for name in missing)
        )
    page = _page_param(params, "CurrentPage", 1, None)
    size = _page_param(params, "PageSize", 10, JOB_PAGE_SIZE_MAX)
    jobs = backend.jobs_of(params["FirmwareId"])
    chunk = jobs[(page - 1) * size : page * size]
    return {
        "Data": {"SimpleOTAJobInfo": [simple_job_info(job) for job in chunk]},
        "Total": len(jobs),
        "PageSize": size,
        "PageCount": math.ceil(len(jobs) / size),
        "CurrentPage": page,
    }


def _verify_job_problems(package: StoredPackage, params: Params) -> list[str]:
    """CreateOTAVerifyJob's parameter rules (:func:`ota_release.rules.check_create_verify_job`,
    the ones the sidecar check applies) and the package's product."""
    request = {
        "ProductKey": params.get("ProductKey"),
        "TargetDeviceName": _indexed(params, "TargetDeviceName"),
        "TimeoutInMinutes": params.get("TimeoutInMinutes"),
    }
    problems = [str(v) for v in rules.check_create_verify_job(request)]
    product_key = request["ProductKey"]
    if product_key and package.product_key is not None and product_key != package.product_key:
        problems.append(
            f"ProductKey: {product_key!r} is not the package's product {package.product_key!r}"
        )
    return problems


# Response shapes --------------------------------------------------------------------------


def simple_firmware_info(package: StoredPackage) -> dict[str, Any]:
    """The ListOTAFirmware ``SimpleFirmwareInfo`` entry.

    Its Status is documented as 0-3 only; -1 (no verification needed) is a
    QueryOTAFirmware value, so a no-verify package is listed without a Status.
    """
    info = _common_info(package)
    if package.status == STATUS_NO_VERIFY:
        del info["Status"]
    return info


def simple_job_info(job: StoredJob) -> dict[str, Any]:
    """The ListOTAJobByFirmware ``SimpleOTAJobInfo`` entry (times only once they exist)."""
    info = {
        "FirmwareId": job.firmware_id,
        "JobId": job.job_id,
        "JobStatus": job.job_status,
        "JobType": job.job_type,
        "ProductKey": job.product_key,
        "SelectionType": job.selection_type,
        "TargetSelection": job.target_selection,
        "UtcCreate": job.utc_create,
        "UtcModified": job.utc_modified,
        "UtcStartTime": job.utc_start_time,
        "UtcEndTime": job.utc_end_time,
    }
    return {k: v for k, v in info.items() if v is not None}


def firmware_info(package: StoredPackage) -> dict[str, Any]:
    """The QueryOTAFirmware ``FirmwareInfo`` object (Status -1 to 3)."""
    info = _common_info(package)
    if package.firmware_url is not None:
        info["FirmwareUrl"] = package.firmware_url
    if package.multi_files:
        info["MultiFiles"] = [
            {
                "Name": f.name,
                "Url": f.url,
                "Size": f.size,
                "SignValue": f.sign_value,
                "FileMd5": f.file_md5,
            }
            for f in package.multi_files
        ]
    if package.udi is not None:
        info["Udi"] = package.udi
    info["VerifyProgress"] = 100 if package.status == STATUS_VERIFIED else 0
    return info


def _common_info(package: StoredPackage) -> dict[str, Any]:
    info = {
        "FirmwareId": package.firmware_id,
        "FirmwareName": package.firmware_name,
        "DestVersion": package.dest_version,
        "SrcVersion": package.src_version,
        "ModuleName": package.module_name,
        "Type": package.type,
        "SignMethod": package.sign_method,
        "FirmwareSign": package.firmware_sign,
        "FirmwareSize": package.firmware_size,
        "FirmwareDesc": package.firmware_desc,
        "ProductKey": package.product_key,
        "ProductName": package.product_key,
        "Status": package.status,
        "UtcCreate": package.utc_create,
        "UtcModified": package.utc_modified,
    }
    return {k: v for k, v in info.items() if v is not None}


# Parameter helpers ------------------------------------------------------------------------


def _page_param(params: Params, name: str, default: int, maximum: int | None) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    value = rules.parse_query_int(raw)
    if value is None or value < 1 or (maximum is not None and value > maximum):
        bound = f"1 to {maximum}" if maximum is not None else "at least 1"
        raise BusinessError(IotCode.INVALID_PAGE_PARAMS, f"{name}: must be {bound} (got {raw!r})")
    return value


def _multi_files(params: Params) -> list[dict[str, str]] | None:
    """``MultiFiles.N.Field`` as the SDK flattens them, as a list of entries (N from 1), or
    None when the request has none. A gap in N leaves an entry without a Name, which the
    rules refuse."""
    entries: dict[int, dict[str, str]] = {}
    prefix = rules.MULTI_FILES + "."
    for key, value in params.items():
        if not key.startswith(prefix):
            continue
        index, _, field = key[len(prefix) :].partition(".")
        if not index.isdigit() or field not in rules.MULTI_FILE_FIELDS:
            raise BusinessError(IotCode.ILLEGAL_REQUEST, f"{key}: is not a MultiFiles field")
        entries.setdefault(int(index), {})[field] = value
    if not entries:
        return None
    return [entries.get(n, {}) for n in range(1, max(entries) + 1)]


def _indexed(params: Params, prefix: str) -> list[str]:
    """A repeat-list parameter as the SDK flattens it: ``Name.1``, ``Name.2``, ..."""
    found: list[tuple[int, str]] = []
    for key, value in params.items():
        head, _, index = key.partition(".")
        if head == prefix and index.isdigit():
            found.append((int(index), value))
    return [value for _, value in sorted(found)]
