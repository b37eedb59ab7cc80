"""The step after ``created``: the verification job the sidecar's ``verify`` asks for.

A package created with NeedToVerify (the API's default) cannot be used for a batch update
until it is verified on devices; a sidecar (or a folder default) with ``verify: {devices,
timeout_minutes}`` gets that job started as soon as the package exists.

Once per package, whatever the delivery: the package's jobs are looked up first
(ListOTAJobByFirmware) and CreateOTAVerifyJob is called only when no verification job
exists. A refusal is looked up once more (the release's other half may have started the
job meanwhile: the platform refuses a second verification of a verifying package) before
it is reported. A refused verification leaves the package registered and the outcome
``created``; the refusal is in ``verification``. A transient failure is retried within the
invocation's deadline and then raised, unpublished: FC retries the invocation, whose
release finds the package as its own earlier attempt (``created`` again) and comes back
here, where the lookup keeps it at one job.
"""

from __future__ import annotations

from ota_release import rules
from ota_release.errors import PermanentError
from ota_release.notification import (
    VERIFY_EXISTING,
    VERIFY_REFUSED,
    VERIFY_STARTED,
    ErrorItem,
    PackageRef,
    Verification,
)
from ota_release.pipeline.context import Release
from ota_release.ports import OtaJob
from ota_release.sidecar import VerifySpec


def verify(r: Release, package: PackageRef) -> None:
    """Start (or find) the verification job of a created package, when the sidecar asks."""
    spec = r.release_spec
    if spec.verify is None:
        return
    block = spec.verify
    try:
        r.verification = _verification(r, package.id, block)
    except PermanentError as exc:
        r.request_ids.add(exc.service, exc.request_id)
        r.verification = _refused(block, ErrorItem(exc.operation, exc.code, exc.message))


def _verification(r: Release, firmware_id: str, block: VerifySpec) -> Verification:
    """The job that exists, the one started now, or the rule or refusal that stopped it."""
    existing = _verify_job(r, firmware_id)
    if existing is not None:
        return _found(block, existing)
    spec = r.release_spec
    params = {
        "ProductKey": spec.product_key,
        "TargetDeviceName": list(block.devices),
        "TimeoutInMinutes": block.timeout_minutes,
    }
    violations = rules.check_create_verify_job(params)
    if violations:  # the sidecar check makes this unreachable unless rules change
        return _refused(block, ErrorItem.of(violations[0]))
    product_key = spec.product_key
    assert product_key is not None  # checked just above
    try:
        job_id, request_id = r.call(
            f"CreateOTAVerifyJob {firmware_id}",
            lambda: r.ports.platform.create_verify_job(
                firmware_id,
                product_key,
                block.devices,
                block.timeout_minutes,
                spec.iot_instance_id,
            ),
        )
    except PermanentError as exc:
        r.request_ids.add(exc.service, exc.request_id)
        raced = _verify_job(r, firmware_id)
        if raced is not None:
            return _found(block, raced)
        raise
    r.request_ids.add("iot", request_id)
    return Verification(VERIFY_STARTED, block.devices, block.timeout_minutes, job_id)


def _verify_job(r: Release, firmware_id: str) -> OtaJob | None:
    """The package's verification job, if it has one (the newest)."""
    spec = r.release_spec
    jobs = r.call(
        f"ListOTAJobByFirmware {firmware_id}",
        lambda: r.ports.platform.list_jobs(firmware_id, spec.iot_instance_id),
    )
    # The verification type's wire value is unconfirmed (the SDK spells it VERFIY_FIRMWARE):
    # every job that is not an upgrade batch is the verification.
    return next((job for job in jobs if not job.is_upgrade), None)


def _found(block: VerifySpec, job: OtaJob) -> Verification:
    return Verification(VERIFY_EXISTING, block.devices, block.timeout_minutes, job.job_id)


def _refused(block: VerifySpec, error: ErrorItem) -> Verification:
    return Verification(VERIFY_REFUSED, block.devices, block.timeout_minutes, error=error)
