"""On-disk storage behind the local OSS: buckets, objects, multipart uploads.

Every object is a blob file plus a small JSON record. MD5, CRC-64 and size are computed
while the bytes are written, never afterwards, so a lookup or a HEAD never re-reads a
blob and a 2 GiB upload costs one pass over the data. An in-memory index (rebuilt from the
records at start-up) answers listings; one lock guards the index, blobs are written
outside it and swapped in atomically, so readers never see half an object.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import anycrc

from localcloud.oss.errors import (
    OssError,
    file_already_exists,
    invalid_argument,
    no_such_bucket,
    no_such_key,
    no_such_upload,
)

CHUNK_SIZE = 1024 * 1024

# CRC-64/ECMA-182 in the reflected form OSS reports in x-oss-hash-crc64ecma
# (ota_release.digest.CRC64_ECMA, the one definition; also known as
# CRC-64/XZ: check value 0x995DC9BBDF1939FA for b"123456789"). anycrc computes it with
# carry-less multiplication, >10 GiB/s here; crcmod's C table loop (what oss2 uses) runs
# at 270-440 MiB/s and holds the GIL, which made it the largest cost of every upload the
# stand-in takes (docs/benchmarks.md, "Staged release"). Both take the previous value to
# continue over more data and give the same results (tests/integration/test_local_oss_form.py).
_CRC64 = anycrc.Model("CRC64-XZ")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
BUCKET_ACLS = ("private", "public-read", "public-read-write")


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64 as OSS computes it; pass the previous value to continue over more data."""
    return int(_CRC64.calc(data, crc))


def validate_bucket_name(name: str) -> None:
    if not _BUCKET_NAME.match(name):
        raise OssError(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
            BucketName=name,
        )


def validate_object_key(key: str) -> None:
    encoded = key.encode("utf-8", "surrogatepass")
    if not key or len(encoded) > 1023 or key[0] in "/\\":
        raise OssError(
            400,
            "InvalidObjectName",
            "The Length of Object name must be between 1 and 1023 bytes and must not start "
            "with '/' or '\\'.",
            ObjectName=key,
        )


@dataclass(frozen=True)
class BucketInfo:
    """A bucket's settings. ``v1_post_form``: a legacy bucket that still accepts the V1
    PostObject form (OSSAccessKeyId/Policy/Signature), as the IoT platform's own upload
    bucket does (GenerateOTAUploadURL, API doc 147310, hands out exactly that form)."""

    name: str
    acl: str
    created: float
    v1_post_form: bool = False


@dataclass(frozen=True)
class StoredObject:
    """What OSS knows about one object; ``etag`` is upper-case and unquoted."""

    bucket: str
    key: str
    size: int
    etag: str
    md5_hex: str
    crc64: int
    object_type: str
    content_type: str
    last_modified: float
    blob: str
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartRecord:
    part_number: int
    size: int
    etag: str
    md5_hex: str
    crc64: int
    last_modified: float
    blob: str


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    content_type: str
    initiated: float
    user_meta: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    parts: dict[int, PartRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class BlobWriter:
    """A temp file that hashes what is written to it (MD5, CRC-64, size).

    It is also the stream werkzeug's form parser writes a PostObject file part into,
    hence the read/readline/seek methods the parser expects from its containers.
    """

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file: IO[bytes] = os.fdopen(fd, "w+b")
        self._md5 = hashlib.md5()
        self.crc64 = 0
        self.size = 0
        self.finished = False
        self.moved = False

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._md5.update(data)
        self.crc64 = crc64(data, self.crc64)
        self.size += len(data)
        return len(data)

    def copy_from(self, stream: BinaryIO | IO[bytes], limit: int | None = None) -> None:
        """Copy a request body (or another blob) in chunks, never holding it whole."""
        remaining = limit
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = stream.read(want)
            if not chunk:
                break
            self.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self.finish()

    @property
    def md5_digest(self) -> bytes:
        return self._md5.digest()

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest()

    def finish(self) -> None:
        if not self.finished:
            self._file.flush()
            self._file.close()
            self.finished = True

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.finished = True
        if not self.moved:
            self.path.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


class ObjectStore:
    """Buckets and objects under one data directory; safe to use from many threads."""

    def __init__(self, root: Path | str, *, min_part_size: int = 100 * 1024) -> None:
        self.root = Path(root)
        self.min_part_size = min_part_size
        self.tmp_dir = self.root / "tmp"
        self._buckets_dir = self.root / "buckets"
        self._uploads_dir = self.root / "uploads"
        for d in (self.tmp_dir, self._buckets_dir, self._uploads_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._buckets: dict[str, BucketInfo] = {}
        self._objects: dict[str, dict[str, StoredObject]] = {}
        self._uploads: dict[str, Upload] = {}
        self._load()

    # -- start-up -----------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild the index from the records, so a data dir survives a restart."""
        for bucket_file in sorted(self._buckets_dir.glob("*/bucket.json")):
            info = BucketInfo(**json.loads(bucket_file.read_text(encoding="utf-8")))
            self._buckets[info.name] = info
            objects: dict[str, StoredObject] = {}
            for record_file in (bucket_file.parent / "objects").glob("*.json"):
                record = StoredObject(**json.loads(record_file.read_text(encoding="utf-8")))
                current = objects.get(record.key)
                if current is None or current.last_modified <= record.last_modified:
                    objects[record.key] = record
            self._objects[info.name] = objects
        for upload_file in self._uploads_dir.glob("*/upload.json"):
            data = json.loads(upload_file.read_text(encoding="utf-8"))
            upload = Upload(**data)
            for part_file in upload_file.parent.glob("part-*.json"):
                part = PartRecord(**json.loads(part_file.read_text(encoding="utf-8")))
                upload.parts[part.part_number] = part
            self._uploads[upload.upload_id] = upload

    # -- buckets ------------------------------------------------------------------------

    def create_bucket(
        self, name: str, acl: str | None = None, *, v1_post_form: bool | None = None
    ) -> BucketInfo:
        """Create a bucket, or update the ACL of an existing one (PutBucket is idempotent).

        ``v1_post_form`` None keeps what the bucket had (False for a new one).
        """
        validate_bucket_name(name)
        acl = acl or "private"
        if acl not in BUCKET_ACLS:
            raise invalid_argument("no such bucket access control exists", "x-oss-acl", acl)
        with self._lock:
            current = self._buckets.get(name)
            legacy = v1_post_form
            if legacy is None:
                legacy = current.v1_post_form if current else False
            info = BucketInfo(name, acl, current.created if current else time.time(), legacy)
            directory = self._buckets_dir / name
            (directory / "objects").mkdir(parents=True, exist_ok=True)
            _write_json(directory / "bucket.json", asdict(info))
            self._buckets[name] = info
            self._objects.setdefault(name, {})
            return info

    def bucket(self, name: str) -> BucketInfo | None:
        with self._lock:
            return self._buckets.get(name)

    def require_bucket(self, name: str) -> BucketInfo:
        info = self.bucket(name)
        if info is None:
            raise no_such_bucket(name)
        return info

    def bucket_names(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            self.require_bucket(name)
            if self._objects.get(name):
                raise OssError(
                    409,
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty.",
                    BucketName=name,
                )
            del self._buckets[name]
            self._objects.pop(name, None)
            shutil.rmtree(self._buckets_dir / name, ignore_errors=True)

    # -- objects ------------------------------------------------------------------------

    def new_writer(self) -> BlobWriter:
        return BlobWriter(self.tmp_dir)

    def _objects_dir(self, bucket: str) -> Path:
        return self._buckets_dir / bucket / "objects"

    def commit(
        self,
        bucket: str,
        key: str,
        writer: BlobWriter,
        *,
        content_type: str,
        user_meta: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        object_type: str = "Normal",
        etag: str | None = None,
        forbid_overwrite: bool = False,
    ) -> StoredObject:
        """Move a finished blob into place as ``bucket/key`` and return its record."""
        writer.finish()
        blob = uuid.uuid4().hex
        record = StoredObject(
            bucket=bucket,
            key=key,
            size=writer.size,
            etag=etag or writer.md5_hex.upper(),
            md5_hex=writer.md5_hex,
            crc64=writer.crc64,
            object_type=object_type,
            content_type=content_type,
            last_modified=time.time(),
            blob=blob,
            user_meta=dict(user_meta or {}),
            headers=dict(headers or {}),
        )
        with self._lock:
            try:
                self.require_bucket(bucket)
                objects = self._objects[bucket]
                if forbid_overwrite and key in objects:
                    raise file_already_exists(key)
            except OssError:
                writer.discard()
                raise
            directory = self._objects_dir(bucket)
            writer.path.replace(directory / f"{blob}.bin")
            writer.moved = True
            _write_json(directory / f"{blob}.json", asdict(record))
            previous = objects.get(key)
            objects[key] = record
            if previous is not None:
                self._remove_blob(previous)
        return record

    def _remove_blob(self, record: StoredObject) -> None:
        directory = self._objects_dir(record.bucket)
        (directory / f"{record.blob}.json").unlink(missing_ok=True)
        (directory / f"{record.blob}.bin").unlink(missing_ok=True)

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get(bucket, {}).get(key)

    def require(self, bucket: str, key: str) -> StoredObject:
        with self._lock:
            self.require_bucket(bucket)
            record = self._objects[bucket].get(key)
            if record is None:
                raise no_such_key(key)
            return record

    def blob_path(self, record: StoredObject) -> Path:
        return self._objects_dir(record.bucket) / f"{record.blob}.bin"

    def open(self, bucket: str, key: str) -> tuple[StoredObject, BinaryIO]:
        """The record and an open handle on its blob, taken together under the lock.

        Opening under the lock matters: an overwrite right after would otherwise unlink
        the blob between the lookup and the open. An open handle survives the unlink.
        """
        with self._lock:
            record = self.require(bucket, key)
            return record, self.blob_path(record).open("rb")

    def delete(self, bucket: str, key: str) -> bool:
        with self._lock:
            self.require_bucket(bucket)
            record = self._objects[bucket].pop(key, None)
            if record is None:
                return False
            self._remove_blob(record)
            return True

    def list_objects(self, bucket: str) -> list[StoredObject]:
        """A sorted snapshot of the bucket (code-point order equals OSS's UTF-8 byte order)."""
        with self._lock:
            self.require_bucket(bucket)
            records = list(self._objects[bucket].values())
        records.sort(key=lambda r: r.key)
        return records

    # -- multipart ----------------------------------------------------------------------

    def initiate_upload(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str,
        user_meta: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Upload:
        self.require_bucket(bucket)
        upload = Upload(
            upload_id=uuid.uuid4().hex.upper(),
            bucket=bucket,
            key=key,
            content_type=content_type,
            initiated=time.time(),
            user_meta=dict(user_meta or {}),
            headers=dict(headers or {}),
        )
        directory = self._uploads_dir / upload.upload_id
        directory.mkdir(parents=True)
        data = {
            "upload_id": upload.upload_id,
            "bucket": upload.bucket,
            "key": upload.key,
            "content_type": upload.content_type,
            "initiated": upload.initiated,
            "user_meta": upload.user_meta,
            "headers": upload.headers,
        }
        _write_json(directory / "upload.json", data)
        with self._lock:
            self._uploads[upload.upload_id] = upload
        return upload

    def upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self._lock:
            self.require_bucket(bucket)
            upload = self._uploads.get(upload_id)
        if upload is None or upload.bucket != bucket or upload.key != key:
            raise no_such_upload(upload_id)
        return upload

    def put_part(self, upload: Upload, part_number: int, writer: BlobWriter) -> PartRecord:
        writer.finish()
        directory = self._uploads_dir / upload.upload_id
        blob = f"part-{part_number:05d}-{uuid.uuid4().hex[:8]}"
        part = PartRecord(
            part_number=part_number,
            size=writer.size,
            etag=writer.md5_hex.upper(),
            md5_hex=writer.md5_hex,
            crc64=writer.crc64,
            last_modified=time.time(),
            blob=blob,
        )
        with upload.lock:
            if upload.upload_id not in self._uploads:
                writer.discard()
                raise no_such_upload(upload.upload_id)
            writer.path.replace(directory / f"{blob}.bin")
            writer.moved = True
            _write_json(directory / f"part-{part_number:05d}.json", asdict(part))
            previous = upload.parts.get(part_number)
            upload.parts[part_number] = part
            if previous is not None:
                (directory / f"{previous.blob}.bin").unlink(missing_ok=True)
        return part

    def list_parts(self, upload: Upload) -> list[PartRecord]:
        with upload.lock:
            return [upload.parts[n] for n in sorted(upload.parts)]

    def complete_upload(
        self,
        upload: Upload,
        requested: list[tuple[int, str]] | None,
        *,
        forbid_overwrite: bool = False,
    ) -> StoredObject:
        """Join the parts into one object; ``requested`` None means "all parts, in order".

        The ETag follows the multipart convention: MD5 over the concatenated binary part
        MD5s, then ``-<part count>``. The object's own MD5 and CRC-64 are computed while
        the parts are joined, so lookups never have to read it again.
        """
        directory = self._uploads_dir / upload.upload_id
        with upload.lock:
            if upload.upload_id not in self._uploads:
                raise no_such_upload(upload.upload_id)
            parts = self._checked_parts(upload, requested)
            writer = self.new_writer()
            try:
                for part in parts:
                    with (directory / f"{part.blob}.bin").open("rb") as f:
                        writer.copy_from(f)
            except BaseException:
                writer.discard()
                raise
            joined = b"".join(bytes.fromhex(p.md5_hex) for p in parts)
            etag = f"{hashlib.md5(joined).hexdigest().upper()}-{len(parts)}"
            record = self.commit(
                upload.bucket,
                upload.key,
                writer,
                content_type=upload.content_type,
                user_meta=upload.user_meta,
                headers=upload.headers,
                object_type="Multipart",
                etag=etag,
                forbid_overwrite=forbid_overwrite,
            )
            self._drop_upload(upload)
        return record

    def _checked_parts(
        self, upload: Upload, requested: list[tuple[int, str]] | None
    ) -> list[PartRecord]:
        """The parts to join, in order: each listed one exists with its ETag, numbers ascend,
        and every part but the last is at least ``min_part_size``. Call under ``upload.lock``.
        """
        if requested is None:
            requested = [(n, upload.parts[n].etag) for n in sorted(upload.parts)]
        if not requested:
            raise OssError(
                400,
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against "
                "our published schema.",
            )
        parts: list[PartRecord] = []
        for number, etag in requested:
            part = upload.parts.get(number)
            if part is None or part.etag != etag.strip('"').upper():
                raise OssError(
                    400,
                    "InvalidPart",
                    "One or more of the specified parts could not be found or the "
                    "specified entity tag might not have matched the part's entity tag.",
                    PartNumber=number,
                    ETag=etag,
                )
            if parts and number <= parts[-1].part_number:
                raise OssError(
                    400,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order. Parts list must be "
                    "specified in order by part number.",
                )
            parts.append(part)
        for part in parts[:-1]:
            if part.size < self.min_part_size:
                raise OssError(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                    PartNumber=part.part_number,
                    MinSizeAllowed=self.min_part_size,
                    ProposedSize=part.size,
                )
        return parts

    def abort_upload(self, upload: Upload) -> None:
        with upload.lock:
            if upload.upload_id not in self._uploads:
                raise no_such_upload(upload.upload_id)
            self._drop_upload(upload)

    def _drop_upload(self, upload: Upload) -> None:
        with self._lock:
            self._uploads.pop(upload.upload_id, None)
        shutil.rmtree(self._uploads_dir / upload.upload_id, ignore_errors=True)


def read_range(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    """Yield ``length`` bytes from ``start`` in bounded chunks, closing the handle at the end."""
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()
