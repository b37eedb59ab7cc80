"""The local OSS driven by the real oss2 SDK over HTTP: objects, listings, multipart, events.

Signatures and PostObject are covered in test_local_oss_auth.py.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from werkzeug.wrappers import Response

from localcloud.credentials import DEFAULT_ACCESS_KEY_ID as AK
from localcloud.credentials import DEFAULT_ACCESS_KEY_SECRET as SK
from localcloud.oss import DEFAULT_REGION, LocalOss
from localcloud.oss.storage import crc64
from localcloud.server import LocalServer

pytestmark = pytest.mark.integration

AWKWARD_KEYS = [
    "plain.bin",
    "firmware/acme/cam-2.0.0.bin",
    "with space/and+plus%percent.bin",
    "固件/摄像头 v2.bin",
    "ümlaut & ampersand?query#hash.bin",
]


# -- fixtures ---------------------------------------------------------------------------


# ``oss`` and ``endpoint``: one local OSS for the module (tests/integration/conftest.py).

_bucket_numbers = itertools.count()


def v4_bucket(endpoint: str, name: str) -> oss2.Bucket:
    """An SDK bucket signing V4, as the local OSS (like a bucket created today) requires."""
    return oss2.Bucket(oss2.AuthV4(AK, SK), endpoint, name, region=DEFAULT_REGION)


@pytest.fixture
def bucket(oss: LocalOss, endpoint: str) -> oss2.Bucket:
    """A fresh, empty bucket per test, created through the SDK."""
    sdk_bucket = v4_bucket(endpoint, f"test-bucket-{next(_bucket_numbers)}")
    sdk_bucket.create_bucket()
    return sdk_bucket


@pytest.fixture
def events(oss: LocalOss) -> Iterator[list[dict[str, Any]]]:
    """The events delivered while the test runs (call ``oss.drain()`` before reading)."""
    received: list[dict[str, Any]] = []

    def collect(event: dict[str, object]) -> None:
        received.append(event)

    unsubscribe = oss.subscribe(collect)
    yield received
    oss.drain()
    unsubscribe()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_upper(data: bytes) -> str:
    return md5_hex(data).upper()


def content_md5(data: bytes) -> str:
    """The Content-MD5 header value: base64 of the binary digest."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def error_fields(response: requests.Response) -> dict[str, str]:
    root = ET.fromstring(response.content)  # noqa: S314 - our own server's reply
    return {child.tag: child.text or "" for child in root}


# -- put / get / head -------------------------------------------------------------------


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_put_then_get_returns_the_same_bytes_for_awkward_keys(
    bucket: oss2.Bucket, key: str
) -> None:
    data = f"payload for {key}".encode()

    bucket.put_object(key, data)

    assert bucket.get_object(key).read() == data
    assert bucket.head_object(key).content_length == len(data)


def test_etag_is_the_uppercase_md5_of_the_content_and_type_is_normal(bucket: oss2.Bucket) -> None:
    data = b"firmware image bytes" * 100

    put = bucket.put_object("fw.bin", data)
    head = bucket.head_object("fw.bin")

    assert put.etag == md5_upper(data)
    assert put.resp.headers["ETag"] == f'"{md5_upper(data)}"'
    assert head.etag == md5_upper(data)
    assert head.object_type == "Normal"


def test_crc64_matches_the_crc64_xz_check_value_and_oss2s_implementation() -> None:
    sdk_crc = oss2.utils.Crc64()
    sdk_crc.update(b"123456789")

    assert crc64(b"123456789") == 0x995DC9BBDF1939FA
    assert crc64(b"123456789") == sdk_crc.crc
    assert crc64(b"6789", crc64(b"12345")) == crc64(b"123456789")


def test_crc64_header_passes_oss2s_crc_checks_on_put_and_get(bucket: oss2.Bucket) -> None:
    data = bytes(range(256)) * 1000
    bucket.enable_crc = True

    put = bucket.put_object("crc.bin", data)  # oss2 raises InconsistentError on mismatch
    get = bucket.get_object("crc.bin")
    assert get.read() == data
    oss2.utils.check_crc("get", get.client_crc, get.server_crc, get.request_id)

    assert put.crc == crc64(data)
    assert get.server_crc == crc64(data)


def test_content_md5_mismatch_is_rejected_with_invalid_digest(bucket: oss2.Bucket) -> None:
    wrong = content_md5(b"other bytes")

    with pytest.raises(oss2.exceptions.InvalidDigest) as caught:
        bucket.put_object("fw.bin", b"real bytes", headers={"Content-MD5": wrong})

    assert caught.value.status == 400
    assert not bucket.object_exists("fw.bin")


def test_matching_content_md5_is_accepted(bucket: oss2.Bucket) -> None:
    data = b"real bytes"
    right = content_md5(data)

    result = bucket.put_object("fw.bin", data, headers={"Content-MD5": right})

    assert result.etag == md5_upper(data)


def test_user_metadata_and_content_type_are_kept_and_returned(bucket: oss2.Bucket) -> None:
    headers = {
        "Content-Type": "application/x-firmware",
        "x-oss-meta-Version": "2.0.0",
        "x-oss-meta-product": "cam",
        "Content-Disposition": 'attachment; filename="cam.bin"',
    }

    bucket.put_object("fw.bin", b"x", headers=headers)
    head = bucket.head_object("fw.bin")

    assert head.content_type == "application/x-firmware"
    assert head.headers["x-oss-meta-version"] == "2.0.0"
    assert head.headers["x-oss-meta-product"] == "cam"
    assert head.headers["Content-Disposition"] == 'attachment; filename="cam.bin"'


def test_key_without_extension_defaults_to_octet_stream(bucket: oss2.Bucket) -> None:
    bucket.put_object("noext", b"x", headers={"Content-Type": ""})

    assert bucket.head_object("noext").content_type == "application/octet-stream"


def test_forbid_overwrite_on_existing_key_fails_with_409_file_already_exists(
    bucket: oss2.Bucket,
) -> None:
    bucket.put_object("fw.bin", b"first")

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object("fw.bin", b"second", headers={"x-oss-forbid-overwrite": "true"})

    assert caught.value.status == 409
    assert caught.value.code == "FileAlreadyExists"
    assert bucket.get_object("fw.bin").read() == b"first"


def test_forbid_overwrite_on_new_key_succeeds(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"first", headers={"x-oss-forbid-overwrite": "true"})

    assert bucket.get_object("fw.bin").read() == b"first"


def test_overwrite_replaces_content_and_etag(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"first")
    bucket.put_object("fw.bin", b"second")

    assert bucket.get_object("fw.bin").read() == b"second"
    assert bucket.head_object("fw.bin").etag == md5_upper(b"second")


def test_range_get_returns_206_with_content_range(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    part = bucket.get_object("fw.bin", byte_range=(2, 5))

    assert part.status == 206
    assert part.read() == b"2345"
    assert part.headers["Content-Range"] == "bytes 2-5/10"


def test_open_ended_range_returns_the_tail(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    assert bucket.get_object("fw.bin", byte_range=(7, None)).read() == b"789"


def test_unsatisfiable_range_returns_the_whole_object_like_oss_by_default(
    bucket: oss2.Bucket,
) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    result = bucket.get_object("fw.bin", byte_range=(50, 60))

    assert result.status == 200
    assert result.read() == b"0123456789"


def test_unsatisfiable_range_with_standard_behaviour_is_416(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object(
            "fw.bin", byte_range=(50, 60), headers={"x-oss-range-behavior": "standard"}
        )

    assert caught.value.status == 416
    assert caught.value.code == "InvalidRange"


def test_get_object_meta_reports_size_etag_and_last_modified(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    meta = bucket.get_object_meta("fw.bin")

    assert meta.content_length == 10
    assert meta.etag == md5_upper(b"0123456789")
    assert meta.last_modified > 0


def test_deleted_object_is_gone_and_deleting_again_is_fine(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"x")

    bucket.delete_object("fw.bin")
    again = bucket.delete_object("fw.bin")

    assert again.status == 204
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object("fw.bin")


def test_head_of_missing_key_raises_no_such_key_through_the_x_oss_err_header(
    bucket: oss2.Bucket,
) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey) as caught:
        bucket.head_object("missing.bin")

    assert caught.value.details["Key"] == "missing.bin"


def test_missing_bucket_raises_no_such_bucket(endpoint: str) -> None:
    ghost = v4_bucket(endpoint, "no-such-bucket-here")

    with pytest.raises(oss2.exceptions.NoSuchBucket):
        ghost.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        ghost.list_objects()


def test_copy_object_copies_bytes_and_metadata(bucket: oss2.Bucket) -> None:
    bucket.put_object("固件/src.bin", b"abc", headers={"x-oss-meta-version": "1"})

    bucket.copy_object(bucket.bucket_name, "固件/src.bin", "copies/dst.bin")
    head = bucket.head_object("copies/dst.bin")

    assert bucket.get_object("copies/dst.bin").read() == b"abc"
    assert head.etag == md5_upper(b"abc")
    assert head.headers["x-oss-meta-version"] == "1"


def test_batch_delete_removes_the_listed_keys(bucket: oss2.Bucket) -> None:
    for key in ("a", "b 1", "c+2"):
        bucket.put_object(key, b"x")

    result = bucket.batch_delete_objects(["a", "b 1"])

    assert sorted(result.deleted_keys) == ["a", "b 1"]
    assert [o.key for o in oss2.ObjectIterator(bucket)] == ["c+2"]


def test_deleting_a_bucket_requires_it_to_be_empty(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"x")

    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        bucket.delete_bucket()
    bucket.delete_object("fw.bin")
    bucket.delete_bucket()

    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.list_objects()


def test_list_buckets_shows_buckets_created_through_sdk_and_python(
    oss: LocalOss, endpoint: str, bucket: oss2.Bucket
) -> None:
    oss.create_bucket("made-in-python")

    service = oss2.Service(oss2.AuthV4(AK, SK), endpoint, region=DEFAULT_REGION)
    names = [b.name for b in oss2.BucketIterator(service)]

    assert bucket.bucket_name in names
    assert "made-in-python" in names


# -- listing ----------------------------------------------------------------------------


def test_listings_return_awkward_keys_decoded_in_order(bucket: oss2.Bucket) -> None:
    for key in AWKWARD_KEYS:
        bucket.put_object(key, b"x")

    v1 = [o.key for o in oss2.ObjectIterator(bucket)]
    v2 = [o.key for o in oss2.ObjectIteratorV2(bucket)]

    assert v1 == sorted(AWKWARD_KEYS)
    assert v2 == sorted(AWKWARD_KEYS)


def test_list_objects_v1_pages_with_marker_and_max_keys(bucket: oss2.Bucket) -> None:
    keys = [f"fw/{i:02d}.bin" for i in range(5)]
    for key in keys:
        bucket.put_object(key, b"x")

    first = bucket.list_objects(max_keys=2)
    second = bucket.list_objects(max_keys=2, marker=first.next_marker)
    everything = [o.key for o in oss2.ObjectIterator(bucket, max_keys=2)]

    assert [o.key for o in first.object_list] == keys[:2]
    assert first.is_truncated
    assert [o.key for o in second.object_list] == keys[2:4]
    assert everything == keys


def test_list_objects_v2_pages_with_continuation_token(bucket: oss2.Bucket) -> None:
    keys = [f"固件/{i:02d} v.bin" for i in range(5)]
    for key in keys:
        bucket.put_object(key, b"x")

    first = bucket.list_objects_v2(max_keys=3)
    second = bucket.list_objects_v2(max_keys=3, continuation_token=first.next_continuation_token)

    assert [o.key for o in first.object_list] == keys[:3]
    assert first.is_truncated
    assert [o.key for o in second.object_list] == keys[3:]
    assert not second.is_truncated


def test_delimiter_groups_keys_into_common_prefixes(bucket: oss2.Bucket) -> None:
    for key in ("fw/acme/a.bin", "fw/acme/b.bin", "fw/beta/c.bin", "fw/top.bin", "other.txt"):
        bucket.put_object(key, b"x")

    v1 = bucket.list_objects(prefix="fw/", delimiter="/")
    v2 = bucket.list_objects_v2(prefix="fw/", delimiter="/")

    for result in (v1, v2):
        assert [o.key for o in result.object_list] == ["fw/top.bin"]
        assert result.prefix_list == ["fw/acme/", "fw/beta/"]


def test_common_prefixes_are_not_repeated_across_pages(bucket: oss2.Bucket) -> None:
    for key in ("a/1", "a/2", "b/1", "c", "d/1"):
        bucket.put_object(key, b"x")

    seen = [
        o.key if not o.is_prefix() else f"prefix:{o.key}"
        for o in oss2.ObjectIterator(bucket, delimiter="/", max_keys=1)
    ]

    assert seen == ["prefix:a/", "prefix:b/", "c", "prefix:d/"]


def test_list_entries_carry_size_etag_and_type(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"0123456789")

    (entry,) = bucket.list_objects_v2(fetch_owner=True).object_list

    assert entry.size == 10
    assert entry.etag == md5_upper(b"0123456789")
    assert entry.type == "Normal"
    assert entry.owner is not None


# -- multipart --------------------------------------------------------------------------


def test_resumable_upload_builds_a_multipart_object_with_dash_n_etag(
    bucket: oss2.Bucket, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 1400  # 358400 bytes: 4 parts of 100 KiB (the last shorter)
    source = tmp_path / "fw.bin"
    source.write_bytes(data)
    bucket.enable_crc = True  # complete_multipart_upload compares the combined CRC

    oss2.resumable_upload(
        bucket,
        "firmware/big.bin",
        str(source),
        store=oss2.ResumableStore(root=str(tmp_path)),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        num_threads=2,
    )
    head = bucket.head_object("firmware/big.bin")

    parts = [data[i : i + 100 * 1024] for i in range(0, len(data), 100 * 1024)]
    part_digests = b"".join(bytes.fromhex(md5_hex(p)) for p in parts)
    assert head.object_type == "Multipart"
    assert head.etag == f"{md5_upper(part_digests)}-4"
    assert head.content_length == len(data)
    assert bucket.get_object("firmware/big.bin").read() == data


def test_small_non_last_part_is_rejected_with_entity_too_small(bucket: oss2.Bucket) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id
    first = bucket.upload_part("fw.bin", upload_id, 1, b"tiny")
    second = bucket.upload_part("fw.bin", upload_id, 2, b"tail")

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.complete_multipart_upload(
            "fw.bin",
            upload_id,
            [oss2.models.PartInfo(1, first.etag), oss2.models.PartInfo(2, second.etag)],
        )

    assert caught.value.status == 400
    assert caught.value.code == "EntityTooSmall"


def test_complete_with_a_wrong_part_etag_is_rejected_with_invalid_part(
    bucket: oss2.Bucket,
) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id
    bucket.upload_part("fw.bin", upload_id, 1, b"only part")

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.complete_multipart_upload("fw.bin", upload_id, [oss2.models.PartInfo(1, "0" * 32)])

    assert caught.value.code == "InvalidPart"


def test_list_parts_reports_uploaded_parts(bucket: oss2.Bucket) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id
    bucket.upload_part("fw.bin", upload_id, 1, b"one")
    bucket.upload_part("fw.bin", upload_id, 2, b"two!")

    parts = bucket.list_parts("fw.bin", upload_id).parts

    assert [(p.part_number, p.size, p.etag) for p in parts] == [
        (1, 3, md5_upper(b"one")),
        (2, 4, md5_upper(b"two!")),
    ]


def test_aborted_upload_is_forgotten(bucket: oss2.Bucket) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id

    bucket.abort_multipart_upload("fw.bin", upload_id)

    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part("fw.bin", upload_id, 1, b"late")
    assert not bucket.object_exists("fw.bin")


# -- errors and request ids -------------------------------------------------------------


def test_error_body_has_code_message_request_id_and_host_id(
    bucket: oss2.Bucket, endpoint: str
) -> None:
    url = bucket.sign_url("GET", "missing.bin", 60)

    response = requests.get(url, timeout=10)
    fields = error_fields(response)

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/xml")
    assert fields["Code"] == "NoSuchKey"
    assert fields["Message"] == "The specified key does not exist."
    assert fields["RequestId"] == response.headers["x-oss-request-id"]
    assert fields["HostId"] == endpoint.removeprefix("http://")
    assert fields["Key"] == "missing.bin"
    assert (fields["EC"], response.headers["x-oss-ec"]) == ("0026-00000001", "0026-00000001")
    assert fields["RecommendDoc"] == "https://api.aliyun.com/troubleshoot?q=0026-00000001"
    # the elements come in OSS's order: the code's own ones, then EC and RecommendDoc
    assert list(fields) == [
        "Code", "Message", "RequestId", "HostId", "Key", "EC", "RecommendDoc"
    ]  # fmt: skip


def test_if_match_and_if_none_match_give_412_and_304(bucket: oss2.Bucket) -> None:
    etag = bucket.put_object("fw.bin", b"conditional").etag

    with pytest.raises(oss2.exceptions.PreconditionFailed) as caught:
        bucket.get_object("fw.bin", headers={"If-Match": '"0000"'})
    with pytest.raises(oss2.exceptions.NotModified):
        bucket.get_object("fw.bin", headers={"If-None-Match": f'"{etag}"'})

    assert caught.value.status == 412
    assert bucket.get_object("fw.bin", headers={"If-Match": f'"{etag}"'}).read() == b"conditional"
    assert bucket.get_object("fw.bin", headers={"If-None-Match": '"0000"'}).read() == b"conditional"


def test_object_names_are_limited_to_1023_utf8_bytes(bucket: oss2.Bucket) -> None:
    longest = "a" * 1020 + "固"  # 1020 + 3 bytes = 1023
    too_long = "a" * 1021 + "固"  # 1024 bytes, though only 1022 characters

    bucket.put_object(longest, b"x")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object(too_long, b"x")

    assert bucket.get_object(longest).read() == b"x"
    assert (caught.value.status, caught.value.code) == (400, "InvalidObjectName")


def test_every_response_carries_a_distinct_request_id(bucket: oss2.Bucket) -> None:
    put = bucket.put_object("fw.bin", b"x")
    get = bucket.get_object("fw.bin")
    with pytest.raises(oss2.exceptions.NoSuchKey) as caught:
        bucket.get_object("missing.bin")

    ids = {put.request_id, get.request_id, caught.value.request_id}
    assert len(ids) == 3
    assert all(len(i) == 24 for i in ids)


def test_unsupported_subresource_is_reported_not_silently_ignored(bucket: oss2.Bucket) -> None:
    bucket.put_object("fw.bin", b"x")

    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object_tagging("fw.bin")

    assert caught.value.code == "NotImplemented"


# -- notifications ----------------------------------------------------------------------


def test_put_object_raises_the_documented_fc_oss_trigger_event(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    key = "固件/相机 v2+.bin"
    result = bucket.put_object(key, b"0123456789")

    assert oss.drain()
    (event,) = events
    (record,) = event["events"]
    assert record["eventName"] == "ObjectCreated:PutObject"
    assert record["eventSource"] == "acs:oss"
    assert record["eventVersion"] == "1.0"
    assert record["eventTime"].endswith("Z") and len(record["eventTime"]) == 24
    assert record["region"] == oss.region
    assert record["userIdentity"] == {"principalId": oss.account_id}
    assert record["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert record["responseElements"] == {"requestId": result.request_id}
    assert record["oss"]["ossSchemaVersion"] == "1.0"
    assert record["oss"]["ruleId"]
    assert record["oss"]["bucket"] == {
        "name": bucket.bucket_name,
        "arn": f"acs:oss:{oss.region}:{oss.account_id}:{bucket.bucket_name}",
        "ownerIdentity": oss.account_id,
        "virtualBucket": "",
    }
    assert record["oss"]["object"] == {
        "key": key,
        "size": 10,
        "deltaSize": 10,
        "eTag": md5_upper(b"0123456789"),
    }


def test_multipart_completion_raises_one_complete_event(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id
    part = bucket.upload_part("fw.bin", upload_id, 1, b"whole file")
    done = bucket.complete_multipart_upload(
        "fw.bin", upload_id, [oss2.models.PartInfo(1, part.etag)]
    )

    assert oss.drain()
    (event,) = events
    record = event["events"][0]
    assert record["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert record["oss"]["object"]["eTag"] == done.etag
    assert record["oss"]["object"]["eTag"].endswith("-1")
    assert record["responseElements"]["requestId"] == done.request_id


def test_copy_raises_a_copy_event(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    bucket.put_object("src.bin", b"abc")
    bucket.copy_object(bucket.bucket_name, "src.bin", "dst.bin")

    assert oss.drain()
    assert [e["events"][0]["eventName"] for e in events] == [
        "ObjectCreated:PutObject",
        "ObjectCreated:CopyObject",
    ]


def test_failed_upload_raises_no_event(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    wrong = content_md5(b"other")
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("fw.bin", b"x", headers={"Content-MD5": wrong})

    assert oss.drain()
    assert events == []


def test_failing_subscriber_breaks_neither_the_upload_nor_other_subscribers(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    def explode(event: dict[str, object]) -> None:
        raise RuntimeError("subscriber bug")

    unsubscribe = oss.subscribe(explode)
    try:
        result = bucket.put_object("fw.bin", b"x")
        assert oss.drain()
    finally:
        unsubscribe()

    assert result.status == 200
    assert len(events) == 1


def test_upload_does_not_wait_for_a_slow_subscriber(oss: LocalOss, bucket: oss2.Bucket) -> None:
    release = threading.Event()
    delivered: list[str] = []

    def slow(event: dict[str, object]) -> None:
        release.wait(10)
        delivered.append(threading.current_thread().name)

    unsubscribe = oss.subscribe(slow)
    try:
        result = bucket.put_object("fw.bin", b"x")  # returns while `slow` is still blocked
        assert delivered == []
        assert not oss.drain(timeout=0.05)
        release.set()
        assert oss.drain()
    finally:
        release.set()
        unsubscribe()

    assert result.status == 200
    assert delivered == ["local-oss-events"]


# -- Python accessors, lookup_url, faults, persistence ----------------------------------


def test_lookup_url_resolves_plain_and_signed_urls(oss: LocalOss, bucket: oss2.Bucket) -> None:
    key = "firmware/acme/相机 2.0+.bin"
    bucket.put_object(key, b"0123456789")
    plain = oss.url_for(bucket.bucket_name, key)
    signed = bucket.sign_url("GET", key, 300)
    signed_slash_safe = bucket.sign_url("GET", key, 300, slash_safe=True)

    facts = [oss.lookup_url(url) for url in (plain, signed, signed_slash_safe)]

    expected_md5 = md5_hex(b"0123456789")
    for fact in facts:
        assert fact is not None
        assert (fact.bucket, fact.key, fact.size, fact.md5_hex) == (
            bucket.bucket_name,
            key,
            10,
            expected_md5,
        )


def test_lookup_url_gives_the_content_md5_of_multipart_objects(
    oss: LocalOss, bucket: oss2.Bucket
) -> None:
    upload_id = bucket.init_multipart_upload("fw.bin").upload_id
    part = bucket.upload_part("fw.bin", upload_id, 1, b"whole file")
    bucket.complete_multipart_upload("fw.bin", upload_id, [oss2.models.PartInfo(1, part.etag)])

    facts = oss.lookup_url(oss.url_for(bucket.bucket_name, "fw.bin"))

    assert facts is not None
    assert facts.md5_hex == md5_hex(b"whole file")


def test_lookup_url_returns_none_for_missing_objects_and_foreign_hosts(
    oss: LocalOss, bucket: oss2.Bucket
) -> None:
    bucket.put_object("fw.bin", b"x")
    path = f"/{bucket.bucket_name}/fw.bin"

    assert oss.lookup_url(oss.url_for(bucket.bucket_name, "missing.bin")) is None
    assert oss.lookup_url(f"http://example.com{path}") is None
    assert oss.lookup_url(f"ftp://127.0.0.1{path}") is None
    assert oss.lookup_url("not a url") is None


def test_lookup_url_resolves_virtual_host_style_urls(oss: LocalOss, bucket: oss2.Bucket) -> None:
    bucket.put_object("dir/fw.bin", b"x")
    url = f"https://{bucket.bucket_name}.oss-cn-hangzhou.aliyuncs.com/dir/fw.bin?Expires=1"

    facts = oss.lookup_url(url)

    assert facts is not None
    assert facts.key == "dir/fw.bin"


def test_python_accessors_see_what_the_sdk_wrote(oss: LocalOss, bucket: oss2.Bucket) -> None:
    bucket.put_object("a/fw.bin", b"abc")
    name = bucket.bucket_name

    record = oss.head(name, "a/fw.bin")

    assert record is not None and record.etag == md5_upper(b"abc")
    assert oss.read_object(name, "a/fw.bin") == b"abc"
    assert oss.object_path(name, "a/fw.bin").read_bytes() == b"abc"
    assert oss.list_keys(name, prefix="a/") == ["a/fw.bin"]
    assert oss.delete_object(name, "a/fw.bin")
    assert oss.head(name, "a/fw.bin") is None
    with pytest.raises(FileNotFoundError):
        oss.open_object(name, "a/fw.bin")


def test_put_object_accessor_is_visible_to_the_sdk_and_raises_an_event(
    oss: LocalOss, bucket: oss2.Bucket, events: list[dict[str, Any]]
) -> None:
    oss.put_object(bucket.bucket_name, "seeded.bin", b"seed", metadata={"Origin": "demo"})

    assert bucket.get_object("seeded.bin").read() == b"seed"
    assert bucket.head_object("seeded.bin").headers["x-oss-meta-origin"] == "demo"
    assert oss.drain()
    assert events[0]["events"][0]["eventName"] == "ObjectCreated:PutObject"


def test_concurrent_writers_to_one_key_leave_one_consistent_object(bucket: oss2.Bucket) -> None:
    payloads = [bytes([i]) * (50_000 + i) for i in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda p: bucket.put_object("race.bin", p), payloads))

    data = bucket.get_object("race.bin").read()
    assert data in payloads
    assert bucket.head_object("race.bin").etag == md5_upper(data)


class _RefuseWrites:
    """A fault hook answering PutObject with OSS's 503, leaving other calls alone."""

    def before(self, service: str, operation: str) -> Response | None:
        if service == "oss" and operation == "PutObject":
            return Response(b"", status=503)
        return None


def test_fault_hook_can_answer_in_place_of_oss(tmp_path: Path) -> None:
    local = LocalOss(tmp_path, faults=_RefuseWrites())
    local.create_bucket("faulty")
    try:
        with LocalServer(local, name="oss-faults") as server:
            sdk_bucket = v4_bucket(server.url, "faulty")
            with pytest.raises(oss2.exceptions.ServerError) as caught:
                sdk_bucket.put_object("fw.bin", b"x")
            listing = sdk_bucket.list_objects()
    finally:
        local.close()

    assert caught.value.status == 503
    assert caught.value.request_id
    assert listing.object_list == []


def test_objects_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    with LocalOss(tmp_path) as first:
        first.create_bucket("keep", acl="public-read")
        first.put_object("keep", "固件/fw.bin", b"persisted")

    with LocalOss(tmp_path) as second:
        record = second.head("keep", "固件/fw.bin")
        bucket_info = second.store.bucket("keep")

    assert record is not None and record.md5_hex == md5_hex(b"persisted")
    assert bucket_info is not None and bucket_info.acl == "public-read"


def _count_temp_files(oss: LocalOss) -> Callable[[], int]:
    return lambda: sum(1 for _ in oss.store.tmp_dir.iterdir())


def test_rejected_uploads_leave_no_temp_files(oss: LocalOss, bucket: oss2.Bucket) -> None:
    count = _count_temp_files(oss)
    before = count()
    wrong = content_md5(b"other")

    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("fw.bin", b"x" * 10_000, headers={"Content-MD5": wrong})

    assert count() == before
