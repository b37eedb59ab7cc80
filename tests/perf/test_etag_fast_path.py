"""The ETag fast path skips the download only when the ETag is provably the content's MD5.

Unit cases on ObjectInfo values, then the objects a real OSS upload produces (PutObject,
multipart, CopyObject of a multipart object) read back through the OSS adapter's HEAD.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest

from localcloud.credentials import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
from localcloud.oss import LocalOss
from localcloud.server import LocalServer
from ota_release.adapters import CloudCredentials
from ota_release.adapters.oss import OssObjectStore
from ota_release.digest import etag_fast_path
from ota_release.ports import ObjectInfo

CONTENT = b"firmware " * 40_000  # 360000 bytes: three parts at the stand-in's minimum
CONTENT_MD5 = hashlib.md5(CONTENT).hexdigest()  # noqa: S324 - the API's MD5 sign


def info(**overrides: object) -> ObjectInfo:
    fields: dict[str, object] = {
        "bucket": "b",
        "key": "fw.bin",
        "size": len(CONTENT),
        "etag": CONTENT_MD5.upper(),
        "object_type": "Normal",
    }
    fields.update(overrides)
    return ObjectInfo(**fields)  # type: ignore[arg-type]


def test_a_normal_object_with_an_md5_shaped_etag_takes_the_fast_path() -> None:
    digest = etag_fast_path(info(), "MD5")
    assert digest is not None
    assert (digest.sign, digest.size, digest.source) == (CONTENT_MD5, len(CONTENT), "etag")


@pytest.mark.parametrize(
    ("overrides", "sign_method", "why"),
    [
        ({"object_type": "Multipart"}, "MD5", "multipart ETags are not the content MD5"),
        ({"object_type": "Appendable"}, "MD5", "appendable ETags are not the content MD5"),
        ({}, "SHA256", "an ETag never proves a SHA-256"),
        ({"etag": CONTENT_MD5.upper()[:31]}, "MD5", "31 hex digits"),
        ({"etag": CONTENT_MD5.upper() + "0"}, "MD5", "33 hex digits"),
        ({"etag": CONTENT_MD5.upper()[:30] + "-3"}, "MD5", "a multipart-shaped ETag"),
        ({"etag": "G" * 32}, "MD5", "not hex"),
        ({"etag": ""}, "MD5", "no ETag at all"),
        ({"object_type": "normal"}, "MD5", "an object type spelled otherwise is not proof"),
    ],
)
def test_without_proof_the_fast_path_declines(
    overrides: dict[str, object], sign_method: str, why: str
) -> None:
    assert etag_fast_path(info(**overrides), sign_method) is None, why


# Objects made by real uploads ------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OssObjectStore, oss2.Bucket]]:
    data_dir: Path = tmp_path_factory.mktemp("oss")
    oss = LocalOss(data_dir)
    oss.create_bucket("perf-bucket")
    with LocalServer(oss) as server:
        bucket = oss2.Bucket(
            oss2.AuthV4(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
            server.url,
            "perf-bucket",
            region=oss.region,
        )
        adapter = OssObjectStore(
            CloudCredentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET),
            server.url,
            server.url,
            region=oss.region,
        )
        yield adapter, bucket
    oss.close()


def _multipart(bucket: oss2.Bucket, key: str) -> None:
    upload_id = bucket.init_multipart_upload(key).upload_id
    part = len(CONTENT) // 3
    parts = []
    for number, start in enumerate(range(0, len(CONTENT), part), start=1):
        result = bucket.upload_part(key, upload_id, number, CONTENT[start : start + part])
        parts.append(oss2.models.PartInfo(number, result.etag))
    bucket.complete_multipart_upload(key, upload_id, parts)


@pytest.mark.integration
def test_a_put_object_upload_is_proven_by_its_head(
    store: tuple[OssObjectStore, oss2.Bucket],
) -> None:
    adapter, bucket = store
    bucket.put_object("put.bin", CONTENT)
    head = adapter.head("perf-bucket", "put.bin")
    assert head is not None
    digest = etag_fast_path(head, "MD5")
    assert digest is not None and digest.sign == CONTENT_MD5


@pytest.mark.integration
def test_multipart_uploads_and_their_copies_are_streamed(
    store: tuple[OssObjectStore, oss2.Bucket],
) -> None:
    adapter, bucket = store
    _multipart(bucket, "multi.bin")
    bucket.copy_object("perf-bucket", "multi.bin", "copy-of-multi.bin")
    for key in ("multi.bin", "copy-of-multi.bin"):
        head = adapter.head("perf-bucket", key)
        assert head is not None
        assert head.object_type == "Multipart", key
        assert head.etag.lower() != CONTENT_MD5, "a multipart ETag is not the MD5"
        assert etag_fast_path(head, "MD5") is None, key
