"""Size and digest of an object, streamed in bounded memory.

The bytes are read in fixed-size chunks; a reader thread fetches the next chunk while the
current one is hashed (hashlib releases the GIL on large buffers), so network and hashing
overlap. At most ``queue_depth + 2`` chunks are alive at once whatever the object's size.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from ota_release.ports import ByteSource, ObjectInfo

CHUNK_SIZE = 1024 * 1024
QUEUE_DEPTH = 4
_MD5_ETAG = re.compile(r"^[0-9A-Fa-f]{32}$")
_ALGORITHMS = {"MD5": "md5", "SHA256": "sha256"}
#: CRC-64/ECMA-182 in the reflected form OSS reports in ``x-oss-hash-crc64ecma`` (also
#: known as CRC-64/XZ: check value 0x995DC9BBDF1939FA for ``b"123456789"``), as the
#: keyword arguments of ``crcmod.Crc`` / ``crcmod.mkCrcFun``. The one definition: the
#: local OSS and the test fakes compute theirs from it too.
CRC64_ECMA: dict[str, Any] = {
    "poly": 0x142F0E1EBA9EA3693,
    "initCrc": 0,
    "rev": True,
    "xorOut": 0xFFFFFFFFFFFFFFFF,
}


@dataclass(frozen=True)
class Digest:
    """What the bytes are: their size and their digest in the given method."""

    size: int
    sign_method: str
    sign: str  # lowercase hex
    source: str  # "stream" or "etag"


class IntegrityError(Exception):
    """The bytes read do not match what OSS says the object holds."""


def etag_fast_path(info: ObjectInfo, sign_method: str) -> Digest | None:
    """The MD5 taken from the ETag, only when that is provably the content's MD5.

    OSS sets the ETag to the MD5 of the bytes for PutObject and PostObject uploads (object
    type ``Normal``); multipart and appendable objects get other values. Anything short of
    that proof returns None and the caller streams the object.
    """
    if sign_method != "MD5":
        return None
    if info.object_type != "Normal":
        return None
    etag = info.etag.strip('"')
    if not _MD5_ETAG.match(etag):
        return None
    return Digest(size=info.size, sign_method="MD5", sign=etag.lower(), source="etag")


def _new_crc64() -> Any | None:
    """A CRC-64/ECMA-182 hasher backed by crcmod's C extension, or None.

    Without the C extension CRC-64 runs at a few MiB/s and would dominate the digest, so
    the check is skipped and the size check stands alone.
    """
    try:
        import crcmod
        import crcmod._crcfunext
    except ImportError:
        return None
    return crcmod.Crc(**CRC64_ECMA)


class StreamHasher:
    """Size and digest of bytes fed in order, plus what they can be checked against.

    Besides the declared sign method it can keep an MD5 (to compare with an ETag that is
    provably the content's MD5) and a CRC-64 (to compare with ``x-oss-hash-crc64ecma``),
    so one read of the object answers every question.
    """

    def __init__(self, sign_method: str, *, also_md5: bool = False, crc64: bool = False) -> None:
        algorithm = _ALGORITHMS.get(sign_method)
        if algorithm is None:
            raise ValueError(f"unsupported sign method {sign_method!r}")
        self.sign_method = sign_method
        self.size = 0
        self._hasher = hashlib.new(algorithm)
        self._md5 = hashlib.md5() if also_md5 and algorithm != "md5" else None  # noqa: S324
        self._crc = _new_crc64() if crc64 else None

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        if self._md5 is not None:
            self._md5.update(chunk)
        if self._crc is not None:
            self._crc.update(chunk)
        self.size += len(chunk)

    @property
    def md5(self) -> str | None:
        """The MD5 of the bytes, when it was kept (or is the sign method itself)."""
        if self._md5 is not None:
            return self._md5.hexdigest()
        return self._hasher.hexdigest() if self.sign_method == "MD5" else None

    @property
    def crc64(self) -> int | None:
        return int(self._crc.crcValue) if self._crc is not None else None

    def result(self) -> Digest:
        return Digest(self.size, self.sign_method, self._hasher.hexdigest(), "stream")

    def differences(self, info: ObjectInfo) -> list[str]:
        """Where the bytes seen disagree with what a HEAD of the object reported."""
        out = []
        if self.size != info.size:
            out.append(f"read {self.size} bytes but the object holds {info.size}")
        fast = etag_fast_path(info, "MD5")
        if fast is not None and self.md5 is not None and self.md5 != fast.sign:
            out.append(f"MD5 of the bytes read is {self.md5} but the ETag says {fast.sign}")
        crc = self.crc64
        if crc is not None and info.crc64 is not None and crc != info.crc64:
            out.append(f"CRC-64 of the bytes read is {crc} but OSS reports {info.crc64}")
        return out


def prefetched(
    stream: ByteSource, chunk_size: int = CHUNK_SIZE, queue_depth: int = QUEUE_DEPTH
) -> Generator[bytes, None, None]:
    """The stream's chunks, read ahead by a thread so the network overlaps the consumer.

    At most ``queue_depth + 2`` chunks are alive at once. Closing the generator early (or
    an exception in the consumer) stops the reader without leaving it blocked.
    """
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=queue_depth)
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                chunk = stream.read(chunk_size)
                if not chunk:
                    break
                chunks.put(chunk)
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            chunks.put(exc)

    thread = threading.Thread(target=reader, name="digest-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
        thread.join()


def digest_stream(
    stream: ByteSource,
    sign_method: str,
    *,
    expected_size: int | None = None,
    expected_crc64: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    queue_depth: int = QUEUE_DEPTH,
    on_chunk: Callable[[bytes], None] | None = None,
) -> Digest:
    """Hash the stream; check its length (and CRC-64 when OSS reported one).

    ``on_chunk`` sees every chunk in order (used to copy while hashing).
    """
    hasher = StreamHasher(sign_method, crc64=expected_crc64 is not None)
    for chunk in prefetched(stream, chunk_size, queue_depth):
        hasher.update(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    if expected_size is not None and hasher.size != expected_size:
        raise IntegrityError(f"read {hasher.size} bytes but the object holds {expected_size}")
    crc = hasher.crc64
    if crc is not None and expected_crc64 is not None and crc != expected_crc64:
        raise IntegrityError(f"CRC-64 of the bytes read is {crc} but OSS reports {expected_crc64}")
    return hasher.result()
