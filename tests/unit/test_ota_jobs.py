"""OtaJob: which job statuses still hold a package, and the fake platform's job listing."""

from __future__ import annotations

import pytest

from ota_release.errors import NotFoundError
from ota_release.ports import OtaJob
from tests.unit.fakes import FakeOtaPlatform


@pytest.mark.parametrize(
    ("status", "in_use"),
    [
        ("PLANNED", True),
        ("IN_PROGRESS", True),
        ("COMPLETED", False),
        ("COMPLETE", False),  # the SDK's ListOTAJobByFirmware comment spells it so
        ("CANCELED", False),
        ("PAUSED", True),  # a status no source lists never frees a package
        (None, True),
    ],
)
def test_only_a_finished_job_frees_its_package(status: str | None, in_use: bool) -> None:
    job = OtaJob(job_id="j", job_type="UPGRADE_FIRMWARE", job_status=status)

    assert (job.in_use, job.finished) == (in_use, not in_use)


@pytest.mark.parametrize("job_type", ["VERFIY_FIRMWARE", "VERIFY_FIRMWARE", None])
def test_a_verification_is_recognised_as_not_an_upgrade_whatever_its_spelling(
    job_type: str | None,
) -> None:
    job = OtaJob(job_id="j", job_type=job_type, job_status="IN_PROGRESS")

    assert job.is_upgrade is False and job.in_use is True


def test_the_fake_lists_a_packages_jobs_newest_first() -> None:
    platform = FakeOtaPlatform()
    package = platform.add(name="cam", dest_version="1.0.0")
    older = platform.add_job(package.firmware_id, "COMPLETED")
    newer = platform.add_job(package.firmware_id, "IN_PROGRESS", job_type="VERFIY_FIRMWARE")

    jobs = platform.list_jobs(package.firmware_id, None)

    assert jobs == [newer, older]
    assert platform.count("list_jobs") == 1


def test_the_fake_refuses_jobs_of_an_unknown_package() -> None:
    with pytest.raises(NotFoundError):
        FakeOtaPlatform().list_jobs("missing", None)
