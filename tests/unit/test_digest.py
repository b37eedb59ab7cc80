"""Streaming digest: equal to hashlib, checked against size and CRC, bounded in memory."""

from __future__ import annotations

import hashlib
import threading

import pytest

from ota_release.digest import Digest, IntegrityError, digest_stream, etag_fast_path
from ota_release.ports import ObjectInfo
from tests.unit.fakes import FakeStream, crc64_of

DATA = bytes(range(256)) * 1000 + b"tail"  # 256004 bytes: many chunks, a short last one


class Outstanding:
    """A stream whose chunks report when they are freed, to count how many are alive."""

    def __init__(self, chunks: int, chunk_size: int) -> None:
        self.remaining = chunks
        self.chunk_size = chunk_size
        self.alive = 0
        self.peak = 0
        self.lock = threading.Lock()

    def read(self, size: int = -1) -> bytes:
        if self.remaining == 0:
            return b""
        self.remaining -= 1
        with self.lock:
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        return b"x" * self.chunk_size

    def freed(self, chunk: bytes) -> None:
        # Called by the consumer once it is done with a chunk.
        with self.lock:
            self.alive -= 1

    def close(self) -> None:
        pass


class Exploding:
    def __init__(self, after: int) -> None:
        self.after = after

    def read(self, size: int = -1) -> bytes:
        if self.after == 0:
            raise ConnectionResetError("peer reset")
        self.after -= 1
        return b"y" * 10

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("method", "algorithm"), [("MD5", "md5"), ("SHA256", "sha256")])
def test_streamed_digest_of_many_chunks_equals_hashlib(method: str, algorithm: str) -> None:
    digest = digest_stream(FakeStream(DATA, chunk=1000), method, chunk_size=4096)
    assert digest == Digest(
        size=len(DATA),
        sign_method=method,
        sign=hashlib.new(algorithm, DATA).hexdigest(),
        source="stream",
    )


def test_empty_object_has_the_digest_of_nothing() -> None:
    digest = digest_stream(FakeStream(b""), "MD5", expected_size=0)
    assert (digest.size, digest.sign) == (0, hashlib.md5(b"").hexdigest())  # noqa: S324


def test_on_chunk_sees_every_byte_in_order() -> None:
    seen: list[bytes] = []
    digest_stream(FakeStream(DATA), "MD5", chunk_size=3000, on_chunk=seen.append)
    assert b"".join(seen) == DATA


def test_short_read_raises_integrity_error() -> None:
    with pytest.raises(IntegrityError, match=f"read {len(DATA)} bytes but the object holds"):
        digest_stream(FakeStream(DATA), "MD5", expected_size=len(DATA) + 1)


def test_matching_crc64_passes() -> None:
    digest = digest_stream(FakeStream(DATA), "MD5", expected_crc64=crc64_of(DATA))
    assert digest.size == len(DATA)


def test_crc64_matches_what_oss2_computes() -> None:
    oss_utils = pytest.importorskip("oss2.utils")
    crc = oss_utils.Crc64()
    crc.update(DATA)
    assert crc.crc == crc64_of(DATA)


def test_crc64_mismatch_raises_integrity_error() -> None:
    pytest.importorskip("crcmod._crcfunext", reason="CRC check needs crcmod's C extension")
    with pytest.raises(IntegrityError, match="CRC-64"):
        digest_stream(FakeStream(DATA), "MD5", expected_crc64=crc64_of(DATA) ^ 1)


def test_reader_exception_propagates_to_the_caller() -> None:
    with pytest.raises(ConnectionResetError, match="peer reset"):
        digest_stream(Exploding(after=5), "SHA256", chunk_size=10)


def test_unsupported_sign_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported sign method"):
        digest_stream(FakeStream(DATA), "SHA1")


def test_no_more_than_queue_depth_plus_two_chunks_are_alive() -> None:
    # GIVEN a stream of 200 chunks that counts chunks handed out and not yet consumed
    stream = Outstanding(chunks=200, chunk_size=64)
    # WHEN it is digested with a queue of 3
    digest = digest_stream(stream, "MD5", chunk_size=64, queue_depth=3, on_chunk=stream.freed)
    # THEN every chunk was read and never more than 3 + 2 were alive at once
    assert digest.size == 200 * 64
    assert stream.remaining == 0
    assert 1 <= stream.peak <= 3 + 2


def test_a_consumer_failure_does_not_leave_the_reader_blocked() -> None:
    stream = Outstanding(chunks=1000, chunk_size=8)

    def boom(chunk: bytes) -> None:
        raise RuntimeError("copy failed")

    with pytest.raises(RuntimeError, match="copy failed"):
        digest_stream(stream, "MD5", chunk_size=8, queue_depth=2, on_chunk=boom)
    assert not any(t.name == "digest-reader" and t.is_alive() for t in threading.enumerate())


# The ETag fast path -----------------------------------------------------------------------------

MD5_UPPER = hashlib.md5(DATA).hexdigest().upper()  # noqa: S324


def info(etag: str, object_type: str = "Normal") -> ObjectInfo:
    return ObjectInfo("b", "k", len(DATA), etag, object_type)


def test_etag_of_a_normal_object_is_its_md5() -> None:
    digest = etag_fast_path(info(f'"{MD5_UPPER}"'), "MD5")
    assert digest == Digest(len(DATA), "MD5", MD5_UPPER.lower(), "etag")


@pytest.mark.parametrize(
    ("etag", "object_type", "method"),
    [
        (MD5_UPPER, "Normal", "SHA256"),
        (MD5_UPPER, "Multipart", "MD5"),
        (MD5_UPPER, "Appendable", "MD5"),
        (MD5_UPPER[:28] + "ABCD-3", "Multipart", "MD5"),
        (MD5_UPPER[:31], "Normal", "MD5"),
        ("Z" * 32, "Normal", "MD5"),
    ],
)
def test_etag_is_not_trusted_without_proof(etag: str, object_type: str, method: str) -> None:
    assert etag_fast_path(info(etag, object_type), method) is None


def test_the_one_crc64_definition_gives_the_check_value_oss_uses() -> None:
    # CRC-64/XZ (the reflected ECMA-182 OSS reports) of b"123456789" is 0x995DC9BBDF1939FA.
    assert crc64_of(b"123456789") == 0x995DC9BBDF1939FA


def test_utc_millis_writes_utc_with_truncated_milliseconds() -> None:
    from datetime import datetime, timedelta, timezone

    from ota_release.timestamps import utc_millis, utc_millis_from_epoch

    east = timezone(timedelta(hours=8))
    assert utc_millis(datetime(2025, 1, 1, 8, 0, 0, 999_999, tzinfo=east)) == (
        "2025-01-01T00:00:00.999Z"
    )
    assert utc_millis(datetime(2025, 1, 1)) == "2025-01-01T00:00:00.000Z"  # naive is UTC
    assert utc_millis_from_epoch(0.25) == "1970-01-01T00:00:00.250Z"


def test_staged_suffixes_are_the_api_list_longest_first() -> None:
    from ota_release import rules
    from ota_release.pipeline.placement import STAGED_SUFFIXES, staged_suffix

    assert sorted(STAGED_SUFFIXES) == sorted(rules.UPLOAD_FILE_SUFFIXES)
    assert staged_suffix("p/a.TAR.GZ") == "tar.gz"
    assert staged_suffix("p/a.gz") == "gz"
    assert staged_suffix("p/a.gzip") == "gzip"
    assert staged_suffix("p/a.img") == "bin"
