"""`ota-release prune`'s selection and run (cli/prune_plan.py) against the fake platform."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ota_release.cli.prune_plan import parse_age, run, select
from ota_release.errors import PermanentError, TransientError
from ota_release.ports import ListedPackage
from tests.unit.fakes import FakeOtaPlatform, not_found, transient

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def stamp(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def package(
    fid: str, days_ago: float | None, product: str = "pkA", module: str = "default"
) -> ListedPackage:
    return ListedPackage(
        firmware_id=fid,
        name=fid,
        dest_version="1",
        product_key=product,
        module=module,
        utc_create=None if days_ago is None else stamp(days_ago),
    )


def ids(packages: list[ListedPackage]) -> list[str]:
    return [p.firmware_id for p in packages]


def direct(what: str, fn: Any) -> Any:
    return fn()


def test_the_newest_n_of_each_product_and_module_stay_and_the_rest_go_oldest_first() -> None:
    packages = [
        package("a1", 10),
        package("a2", 9),
        package("a3", 1),
        package("a4", 0),
        package("b1", 30, product="pkB"),
        package("b2", 2, product="pkB"),
        package("w1", 50, module="wifi"),
    ]

    chosen = select(packages, 2, now=NOW)

    assert ids(chosen.candidates) == ["a1", "a2"]
    assert sorted(ids(chosen.newest)) == ["a3", "a4", "b1", "b2", "w1"]


def test_candidates_across_groups_are_ordered_oldest_first() -> None:
    packages = [
        package("a1", 5),
        package("a2", 1),
        package("b1", 9, product="pkB"),
        package("b2", 0, product="pkB"),
    ]

    assert ids(select(packages, 1, now=NOW).candidates) == ["b1", "a1"]


def test_module_narrows_and_an_empty_module_is_the_default_one() -> None:
    packages = [
        package("d1", 5, module=""),
        package("d2", 1),
        package("w1", 9, module="wifi"),
        package("w2", 0, module="wifi"),
    ]

    assert ids(select(packages, 1, module="default", now=NOW).candidates) == ["d1"]
    assert ids(select(packages, 1, module="wifi", now=NOW).candidates) == ["w1"]


def test_older_than_keeps_recent_packages_and_undated_ones_are_never_deleted() -> None:
    packages = [
        package("old", 40),
        package("recent", 3),
        package("undated-1", None),
        package("undated-2", None),
        package("newest", 0),
    ]

    chosen = select(packages, 1, older_than=timedelta(days=30), now=NOW)

    assert ids(chosen.candidates) == ["old"]
    assert ids(chosen.too_recent) == ["recent", "newest"]
    # an undated package counts as newer than any dated one, and is never a candidate
    assert ids(chosen.newest) == ["undated-2"]
    assert ids(chosen.undated) == ["undated-1"]


def test_keep_larger_than_a_group_selects_nothing_from_it() -> None:
    assert select([package("a1", 3), package("a2", 2)], 5, now=NOW).candidates == []


def platform_with(*packages: ListedPackage) -> FakeOtaPlatform:
    platform = FakeOtaPlatform()
    for p in packages:
        platform.firmware.append(p)
    return platform


@pytest.mark.parametrize(
    ("status", "job_type", "in_use"),
    [
        ("IN_PROGRESS", "UPGRADE_FIRMWARE", True),
        ("PLANNED", "UPGRADE_FIRMWARE", True),
        ("IN_PROGRESS", "VERFIY_FIRMWARE", True),
        ("COMPLETED", "UPGRADE_FIRMWARE", False),
        ("COMPLETE", "VERFIY_FIRMWARE", False),
        ("CANCELED", "UPGRADE_FIRMWARE", False),
    ],
)
def test_a_package_a_job_still_uses_is_kept_whatever_the_jobs_type(
    status: str, job_type: str, in_use: bool
) -> None:
    old = package("old", 9)
    platform = platform_with(old)
    platform.add_job("old", status, job_type)

    report = run(platform, [old], delete=True, iot_instance_id=None, call=direct)

    assert [p.firmware_id for p, _ in report.in_use] == (["old"] if in_use else [])
    assert [p.firmware_id for p, _ in report.deleted] == ([] if in_use else ["old"])
    assert ids(platform.firmware) == (["old"] if in_use else [])


def test_without_delete_nothing_is_deleted_and_the_same_packages_are_listed() -> None:
    a, b, c = package("a", 9), package("b", 8), package("c", 7)
    platform = platform_with(a, b, c)
    platform.add_job("b", "IN_PROGRESS")

    listed = run(platform, [a, b, c], delete=False, iot_instance_id="iot-1", call=direct)
    deleted = run(platform, [a, b, c], delete=True, iot_instance_id="iot-1", call=direct)

    assert ids(listed.would_delete) == ["a", "c"]
    assert [p.firmware_id for p, _ in deleted.deleted] == ids(listed.would_delete)
    assert ids(platform.firmware) == ["b"]
    assert ("delete_firmware", ("a", "iot-1")) in platform.calls


def test_a_package_gone_meanwhile_is_not_a_failure_and_a_refusal_is() -> None:
    a, b = package("a", 9), package("b", 8)
    platform = platform_with(a, b)
    platform.fail("list_jobs", not_found("iot", "ListOTAJobByFirmware", "iot.ota.FirmwareNotFound"))
    platform.fail("delete_firmware", PermanentError("iot", "DeleteOTAFirmware", "Forbidden", "no"))
    heard: list[tuple[str, str]] = []

    report = run(
        platform,
        [a, b],
        delete=True,
        iot_instance_id=None,
        call=direct,
        heard=lambda verdict, p, detail: heard.append((verdict, p.firmware_id)),
    )

    assert ids(report.gone) == ["a"]
    assert [(p.firmware_id, why) for p, why in report.failed] == [
        ("b", "DeleteOTAFirmware Forbidden: no")
    ]
    assert heard == [("gone", "a"), ("failed", "b")]


def test_transient_errors_go_through_the_caller() -> None:
    a = package("a", 9)
    platform = platform_with(a)
    platform.fail("list_jobs", transient("iot", "ListOTAJobByFirmware", "Throttling.User"))
    attempts: list[str] = []

    def retrying(what: str, fn: Any) -> Any:
        for _ in range(3):
            attempts.append(what)
            try:
                return fn()
            except TransientError as exc:
                attempts.append(exc.code)
        raise AssertionError("never succeeded")

    report = run(platform, [a], delete=True, iot_instance_id=None, call=retrying)

    assert attempts == [
        "ListOTAJobByFirmware a",
        "Throttling.User",
        "ListOTAJobByFirmware a",
        "DeleteOTAFirmware a",
    ]
    assert ids([p for p, _ in report.deleted]) == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("45S", timedelta(seconds=45)),
    ],
)
def test_ages_are_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "0d", "-1d", "1.5d", "3y", ""])
def test_a_bad_age_names_the_flag_the_rule_and_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=r"--older-than: must be .* \(got "):
        parse_age(text)
