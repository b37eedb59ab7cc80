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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ota_release.ports import ObjectInfo, ObjectStream

CHUNK_SIZE = 1024 * 1024
QUEUE_DEPTH = 4
_MD5_ETAG = re.compile(r"^[0-9A-Fa-f]{32}$")
_ALGORITHMS = {"MD5": "md5", "SHA256": "sha256"}


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
    return crcmod.Crc(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def digest_stream(
    stream: ObjectStream,
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
    algorithm = _ALGORITHMS.get(sign_method)
    if algorithm is None:
        raise ValueError(f"unsupported sign method {sign_method!r}")
    hasher = hashlib.new(algorithm)
    crc = _new_crc64() if expected_crc64 is not None else None

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
    size = 0
    try:
        while True:
            item = chunks.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            hasher.update(item)
            if crc is not None:
                crc.update(item)
            if on_chunk is not None:
                on_chunk(item)
            size += len(item)
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
        thread.join()
    if expected_size is not None and size != expected_size:
        raise IntegrityError(f"read {size} bytes but the object holds {expected_size}")
    if crc is not None and expected_crc64 is not None and crc.crcValue != expected_crc64:
        raise IntegrityError(
            f"CRC-64 of the bytes read is {crc.crcValue} but OSS reports {expected_crc64}"
        )
    return Digest(size=size, sign_method=sign_method, sign=hasher.hexdigest(), source="stream")
