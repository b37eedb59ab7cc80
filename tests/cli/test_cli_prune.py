"""`ota-release prune` against the local IoT Platform: lists, then deletes exactly that."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from localcloud.iot import JOB_CANCELED, JOB_COMPLETED, JOB_IN_PROGRESS, JOB_PLANNED

HOURS_APART = timedelta(hours=25)  # ages 0, 25, 50, ... hours: never on a day boundary


def fill(iot: Any) -> dict[str, list[str]]:
    """Three groups; the ids of each, oldest first, and jobs on the oldest of pkA."""
    groups = {
        "pkA/default": iot.seed_packages(
            8, product_key="pkA", name_prefix="a", spacing=HOURS_APART
        ),
        "pkB/default": iot.seed_packages(
            3, product_key="pkB", name_prefix="b", spacing=HOURS_APART
        ),
        # ages 210, 140, 70, 0 hours: its oldest is the oldest package of all
        "pkA/wifi": iot.seed_packages(
            4, product_key="pkA", module_name="wifi", name_prefix="w", spacing=HOURS_APART * 2.8
        ),
    }
    a = [p.firmware_id for p in groups["pkA/default"]]
    iot.add_upgrade_job(a[0], status=JOB_IN_PROGRESS)  # in use
    iot.add_upgrade_job(a[1], status=JOB_COMPLETED)  # finished: free to delete
    iot.backend.add_verify_job(a[1], ("cam-1",), status=JOB_CANCELED)
    iot.add_upgrade_job(a[2], status=JOB_PLANNED)  # in use
    return {name: [p.firmware_id for p in members] for name, members in groups.items()}


def prune(run: Any, local_cloud: Any, *args: str) -> Any:
    return run("prune", *args, env=local_cloud.env())


def remaining(local_cloud: Any) -> set[str]:
    return {p.firmware_id for p in local_cloud.iot.firmwares()}


def test_prune_lists_then_deletes_exactly_what_it_listed_and_nothing_in_use(
    run: Any, local_cloud: Any
) -> None:
    ids = fill(local_cloud.iot)
    a, w = ids["pkA/default"], ids["pkA/wifi"]
    before = remaining(local_cloud)

    listed = prune(run, local_cloud, "--keep", "3", "--json")

    assert listed.exit_code == 0, listed.output
    plan = json.loads(listed.stdout)
    # pkA/default: the 5 oldest are candidates; two are in use. pkA/wifi: the oldest one.
    assert plan["would_delete"] == [w[0], a[1], a[3], a[4]]  # oldest first
    assert [entry["id"] for entry in plan["in_use"]] == [a[0], a[2]]
    assert plan["deleted"] == [] and remaining(local_cloud) == before

    done = prune(run, local_cloud, "--keep", "3", "--yes", "--json")

    assert done.exit_code == 0, done.output
    deleted = [entry["id"] for entry in json.loads(done.stdout)["deleted"]]
    assert deleted == plan["would_delete"]
    assert remaining(local_cloud) == before - set(deleted)
    # the newest 3 of every product and module are still there, and the in-use ones
    for members in ids.values():
        assert set(members[-3:]) <= remaining(local_cloud)
    assert {a[0], a[2]} <= remaining(local_cloud)


def test_prune_deletes_oldest_first_and_prints_each_verdict(run: Any, local_cloud: Any) -> None:
    ids = fill(local_cloud.iot)
    a, w = ids["pkA/default"], ids["pkA/wifi"]

    result = prune(run, local_cloud, "--keep", "3", "--yes")

    assert result.exit_code == 0, result.output
    *lines, last = result.stdout.splitlines()
    verdicts = [(line[:13].strip(), line[13:].split()[0]) for line in lines]
    # every candidate of pkA/default and pkA/wifi, oldest first (w[0] is the oldest of all)
    assert verdicts == [
        ("deleted", w[0]),
        ("in use", a[0]),
        ("deleted", a[1]),
        ("in use", a[2]),
        ("deleted", a[3]),
        ("deleted", a[4]),
    ]
    assert "UPGRADE_FIRMWARE" in lines[1] and JOB_IN_PROGRESS in lines[1]
    assert last.startswith("deleted 4; kept 2 in use")


def test_prune_narrows_by_product_module_and_age(run: Any, local_cloud: Any) -> None:
    ids = fill(local_cloud.iot)
    a = ids["pkA/default"]

    # ages of pkA/default: 175, 150, 125, 100, 75, 50, 25, 0 hours; older than 4 days: 4
    result = prune(
        run,
        local_cloud,
        "--keep",
        "1",
        "--product-key",
        "pkA",
        "--module",
        "default",
        "--older-than",
        "4d",
        "--json",
    )

    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["would_delete"] == [a[1], a[3]]
    assert [entry["id"] for entry in plan["in_use"]] == [a[0], a[2]]
    assert plan["kept_recent"] == [a[4], a[5], a[6]]
    assert plan["kept_newest"] == [a[7]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "0"], "--keep"),
        (["--keep", "2", "--older-than", "30"], "--older-than: must be"),
        ([], "Missing option '--keep'"),
    ],
)
def test_prune_usage_errors_exit_2(
    run: Any, local_cloud: Any, args: list[str], message: str
) -> None:
    result = prune(run, local_cloud, *args)

    assert result.exit_code == 2
    assert message in result.output


def test_prune_with_refused_credentials_exits_1(run: Any, local_cloud: Any) -> None:
    env = local_cloud.env(ALIBABA_CLOUD_ACCESS_KEY_SECRET="wrong")

    result = run("prune", "--keep", "1", env=env)

    assert result.exit_code == 1
