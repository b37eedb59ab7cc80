"""Multi-file releases against the fakes: pairing a folder, staging every file, one create."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Any

import pytest

from ota_release.pairing import find_pair, folder_sidecar_candidates
from ota_release.pipeline import ReleaseConfig
from ota_release.settings import DEFAULT_SIDECAR_SUFFIXES, UrlMode
from tests.unit.fakes import precondition_failed
from tests.unit.test_release import Harness, error_fields

FOLDER = "firmware/acme/cam-2.0.0"
SIDECAR = FOLDER + ".ota.json"
FILES = {
    "app.bin": b"\x7fELF" + bytes(range(256)) * 16,
    "boot.img": b"BOOT" * 300,
    "config.json": b'{"night": true}',
}
NAME = "cam-2_0_0"  # derived from the folder's whole base name


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the API's MD5 sign


def key(name: str) -> str:
    return f"{FOLDER}/{name}"


def sidecar(h: Harness, doc: dict[str, Any] | None = None) -> None:
    h.sidecar(doc or {"version": "2.0.0", "files": list(FILES)}, key=SIDECAR)


def put_file(h: Harness, name: str, data: bytes | None = None) -> None:
    h.firmware(FILES[name] if data is None else data, key=key(name))


def created(h: Harness) -> list[dict[str, Any]]:
    return [p for p in h.platform.created_params if "MultiFiles" in p]


# Pairing ------------------------------------------------------------------------------------


def test_a_files_folder_sidecar_names_are_its_dirname_plus_each_suffix() -> None:
    assert folder_sidecar_candidates(key("app.bin"), DEFAULT_SIDECAR_SUFFIXES) == tuple(
        FOLDER + s for s in DEFAULT_SIDECAR_SUFFIXES
    )
    assert folder_sidecar_candidates("top.bin", DEFAULT_SIDECAR_SUFFIXES) == ()


def test_a_file_without_its_own_sidecar_looks_up_its_folders_after_its_own() -> None:
    h = Harness()
    put_file(h, "app.bin")
    sidecar(h)
    heads: list[str] = []

    def head(k: str) -> Any:
        heads.append(k)
        return h.store.head("firmware-bucket", k)

    trigger = h.store.head("firmware-bucket", key("app.bin"))
    assert trigger is not None
    pairing = find_pair(head, trigger, DEFAULT_SIDECAR_SUFFIXES)
    own = [key("app.bin") + s for s in DEFAULT_SIDECAR_SUFFIXES]
    assert heads == own + [FOLDER + s for s in DEFAULT_SIDECAR_SUFFIXES]
    assert pairing.folder == FOLDER and [i.key for i in pairing.folder_sidecars] == [SIDECAR]
    assert not pairing.complete


def test_a_single_file_waiting_firmware_makes_at_most_the_folder_lookup_more() -> None:
    h = Harness()
    h.firmware()
    assert h.run().outcome.value == "waiting"
    assert h.store.count("head") == 1 + 3 + 3  # itself, its sidecars, its folder's
    assert h.store.count("read_small") == 0


ORDERS = list(itertools.permutations([SIDECAR, *map(key, FILES)]))


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ">".join(k[-8:] for k in o))
def test_every_arrival_order_registers_once_with_every_file(order: tuple[str, ...]) -> None:
    h = Harness()
    outcomes = []
    for arrived in order:
        if arrived == SIDECAR:
            sidecar(h)
        else:
            put_file(h, arrived.rpartition("/")[2])
        outcomes.append(h.run(arrived).outcome.value)
    assert outcomes == ["waiting"] * 3 + ["created"]
    (params,) = created(h)
    assert [f["Name"] for f in params["MultiFiles"]] == list(FILES)
    assert [f["Size"] for f in params["MultiFiles"]] == [len(d) for d in FILES.values()]
    assert [f["SignValue"] for f in params["MultiFiles"]] == [md5(d) for d in FILES.values()]
    assert not {"FirmwareUrl", "FirmwareSign", "FirmwareSize"} & set(params)
    assert params["FirmwareName"] == NAME
    # each waiting names what is still missing: the files once the sidecar is known,
    # else (a file before its sidecar) the folder's sidecar
    for step in range(3):
        summary = h.message(step)["summary"]
        if SIDECAR in order[: step + 1]:
            missing = [k for k in order[step + 1 :] if k != SIDECAR]
            assert f"waiting for {len(missing)} of the 3 files" in summary
            assert all(k in summary for k in missing)
        else:
            assert SIDECAR in summary


def test_waiting_names_exactly_the_missing_files_and_lists_the_files() -> None:
    h = Harness()
    sidecar(h)
    put_file(h, "app.bin")
    assert h.run(key("app.bin")).outcome.value == "waiting"
    message = h.message()
    assert key("boot.img") in message["summary"] and key("config.json") in message["summary"]
    assert key("app.bin") + "," not in message["summary"]
    assert [(f["name"], f["etag"] is not None) for f in message["files"]] == [
        ("app.bin", True),
        ("boot.img", False),
        ("config.json", False),
    ]
    assert h.platform.calls == []


def test_created_notification_lists_every_file_with_key_etag_size_and_sign() -> None:
    h = Harness()
    sidecar(h)
    for name in FILES:
        put_file(h, name)
    result = h.run(SIDECAR)
    assert result.outcome.value == "created"
    message = h.message()
    assert message["firmware_key"] is None and message["sidecar_key"] == SIDECAR
    assert message["files"] == [
        {
            "name": name,
            "key": key(name),
            "etag": md5(data).upper(),
            "size": len(data),
            "sign": md5(data),
        }
        for name, data in FILES.items()
    ]


def test_each_file_gets_its_own_upload_ticket_and_staged_copy() -> None:
    h = Harness()
    sidecar(h)
    for name in FILES:
        put_file(h, name)
    h.run(SIDECAR)
    assert len(h.platform.tickets) == len(FILES)
    staged = {u.data for u in h.store.staged.values()}
    assert staged == set(FILES.values())
    urls = [f["Url"] for f in created(h)[0]["MultiFiles"]]
    assert urls == [t.firmware_url for t in h.platform.tickets]


def test_direct_mode_registers_each_objects_own_url() -> None:
    h = Harness(ReleaseConfig(url_mode=UrlMode.DIRECT))
    sidecar(h)
    for name in FILES:
        put_file(h, name)
    assert h.run(SIDECAR).outcome.value == "created"
    urls = [f["Url"] for f in created(h)[0]["MultiFiles"]]
    assert all(u.endswith(key(n)) for u, n in zip(urls, FILES, strict=True))
    assert h.platform.tickets == []


def test_a_file_overwritten_while_staging_registers_nothing_and_names_the_file() -> None:
    # GIVEN a complete release whose third file changes under the pinned read
    h = Harness()
    sidecar(h)
    for name in FILES:
        put_file(h, name)
    opened = h.store.open_stream

    def open_stream(bucket: str, k: str, if_match: str | None = None) -> Any:
        if k == key("config.json"):
            raise precondition_failed()
        return opened(bucket, k, if_match)

    h.store.open_stream = open_stream  # type: ignore[method-assign,assignment]
    result = h.run(SIDECAR)
    # THEN the release fails naming that file, and no package exists
    assert result.outcome.value == "failed"
    assert key("config.json") in h.message()["summary"]
    assert created(h) == []


def test_a_declared_size_mismatch_on_one_file_rejects_the_release_naming_the_entry() -> None:
    h = Harness()
    files = ["app.bin", {"name": "boot.img", "size": 1}, "config.json"]
    sidecar(h, {"version": "2.0.0", "files": files})
    for name in FILES:
        put_file(h, name)
    assert h.run(SIDECAR).outcome.value == "rejected"
    assert error_fields(h.message()) == ["files[1].size"]
    assert h.platform.calls == [] or created(h) == []


def test_a_file_the_sidecar_does_not_list_is_rejected_naming_it() -> None:
    h = Harness()
    sidecar(h)
    put_file(h, "app.bin", b"stray")
    h.firmware(b"stray", key=key("notes.txt"))
    assert h.run(key("notes.txt")).outcome.value == "rejected"
    (error,) = h.message()["errors"]
    assert error["field"] == "files" and error["value"] == "notes.txt"


def test_a_bad_file_name_is_rejected_naming_the_entry_and_the_value() -> None:
    h = Harness()
    sidecar(h, {"version": "2.0.0", "files": ["app.bin", "boot img", "x" * 33]})
    assert h.run(SIDECAR).outcome.value == "rejected"
    errors = h.message()["errors"]
    assert [(e["field"], e["value"]) for e in errors] == [
        ("files[1].name", "'boot img'"),
        ("files[2].name", repr("x" * 33)),
    ]


def test_a_sidecar_with_files_whose_stem_is_an_object_is_rejected() -> None:
    h = Harness()
    h.firmware(b"stem", key=FOLDER)
    sidecar(h)
    assert h.run(SIDECAR).outcome.value == "rejected"
    assert error_fields(h.message()) == ["files"]


def test_two_sidecars_for_one_release_folder_are_rejected() -> None:
    h = Harness()
    sidecar(h)
    h.sidecar("version: '2.0.0'\nfiles: [app.bin, boot.img]\n", key=FOLDER + ".ota.yaml")
    assert h.run(SIDECAR).outcome.value == "rejected"
    assert error_fields(h.message()) == ["sidecar"]


# Idempotency --------------------------------------------------------------------------------


def _release(h: Harness) -> None:
    sidecar(h)
    for name in FILES:
        put_file(h, name)


def test_a_duplicate_event_registers_nothing_twice_and_keeps_the_message_id() -> None:
    h = Harness()
    _release(h)
    first = h.run(SIDECAR)
    again = h.run(key("boot.img"))
    assert (first.outcome.value, again.outcome.value) == ("created", "created")
    assert first.message_id == again.message_id
    assert len(created(h)) == 1 and len(h.platform.firmware) == 1


def test_a_package_with_the_name_and_other_files_is_a_conflict_listing_files() -> None:
    h = Harness()
    h.platform.add(
        name=NAME,
        dest_version="2.0.0",
        type=0,
        module="default",
        files=(),
    )
    _release(h)
    assert h.run(SIDECAR).outcome.value == "conflict"
    assert error_fields(h.message()) == ["files"]
    assert created(h) == []


def test_a_single_file_package_holding_the_name_is_a_conflict_in_files() -> None:
    h = Harness()
    h.platform.add(name=NAME, dest_version="2.0.0", type=0, sign="0" * 32, size=3)
    _release(h)
    assert h.run(SIDECAR).outcome.value == "conflict"
    (error,) = h.message()["errors"]
    assert error["field"] == "files" and "a single-file package" in error["value"]


def test_a_multi_file_message_body_is_valid_json_with_files_only_when_multi() -> None:
    h = Harness()
    h.both()
    h.run()
    assert "files" not in json.loads(h.notifier.messages[-1][0])


def test_an_unreadable_folder_sidecar_waits_on_its_own_event_and_rejects_a_files() -> None:
    # GIVEN a release sidecar that is not JSON, and a file of its folder
    h = Harness()
    h.sidecar('{"version": "2.0.0", "files": [', key=SIDECAR)
    put_file(h, "app.bin")
    # THEN the sidecar's own event waits (as any sidecar whose firmware is absent)
    assert h.run(SIDECAR).outcome.value == "waiting"
    # AND the file's event, which claims it, reports its problem
    assert h.run(key("app.bin")).outcome.value == "rejected"
    assert error_fields(h.message()) == ["sidecar"]
    assert h.platform.calls == []


def test_a_package_whose_file_has_another_sign_is_a_conflict_naming_files() -> None:
    from ota_release.ports import ListedFile

    h = Harness()
    registered = tuple(ListedFile(n, len(d), md5(d)) for n, d in FILES.items())
    changed = (registered[0], ListedFile("boot.img", len(FILES["boot.img"]), "0" * 32))
    h.platform.add(
        name=NAME, dest_version="2.0.0", type=0, module="default", files=(*changed, registered[2])
    )
    _release(h)
    assert h.run(SIDECAR).outcome.value == "conflict"
    (error,) = h.message()["errors"]
    assert error["field"] == "files" and "0" * 32 in error["value"]


def test_the_same_package_registered_earlier_is_already_registered() -> None:
    from ota_release.ports import ListedFile

    h = Harness()
    files = tuple(ListedFile(n, len(d), md5(d)) for n, d in FILES.items())
    h.platform.add(name=NAME, dest_version="2.0.0", type=0, module="default", files=files)
    _release(h)
    assert h.run(SIDECAR).outcome.value == "already_registered"
    assert created(h) == [] and h.platform.tickets == []


@pytest.mark.parametrize(
    ("doc", "field", "rule_part"),
    [
        ({"files": ["a.bin", {"name": "b.bin", "colour": 1}]}, "files[1].colour", "entry key"),
        ({"files": ["a.bin", {"name": "b.bin", "size": 0}]}, "files[1].size", "at least 1"),
        ({"files": ["a.bin", {"name": "b.bin", "sign": "zz"}]}, "files[1].sign", "hex"),
        ({"files": ["a.bin", {"size": 3}]}, "files[1].name", "required"),
        ({"files": ["a.bin", "a.bin"]}, "files[1].name", "unique"),
        ({"files": ["a.bin", "b.bin"], "sign": "0" * 32}, "sign", "entry"),
        ({"files": ["a.bin", "b.bin"], "FirmwareSize": 3}, "FirmwareSize", "entry"),
        ({"files": [f"f{i}" for i in range(21)]}, "files", "2 to 20"),
        ({"files": {"a.bin": 1}}, "files", "list"),
    ],
)
def test_every_bad_files_entry_names_the_field_the_rule_and_the_value(
    doc: dict[str, Any], field: str, rule_part: str
) -> None:
    from ota_release.sidecar import validate_document

    result = validate_document({"version": "2.0.0", **doc}, firmware_key=FOLDER)
    assert result.spec is None
    (error,) = [e for e in result.errors if e.field == field]
    assert rule_part in error.rule


def test_an_oversized_sidecar_alone_waits_for_its_firmware_as_before() -> None:
    from ota_release.sidecar import MAX_SIDECAR_BYTES

    h = Harness()
    h.sidecar('{"version": "2.0.0", "pad": "' + "x" * MAX_SIDECAR_BYTES + '"}', key=SIDECAR)
    assert h.run(SIDECAR).outcome.value == "waiting"
    assert FOLDER in h.message()["summary"]


def test_a_release_sidecar_written_with_the_api_name_multifiles_is_rejected_naming_it() -> None:
    h = Harness()
    h.sidecar({"version": "2.0.0", "MultiFiles": [{"Name": "app.bin"}]}, key=SIDECAR)
    assert h.run(SIDECAR).outcome.value == "rejected"
    (error,) = h.message()["errors"]
    assert error["field"] == "MultiFiles" and "'files'" in error["rule"]
