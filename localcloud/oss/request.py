"""One OSS request as the handlers see it: the parsed werkzeug request and where it points.

:class:`OssRequest` streams form file parts and bodies into hashing temp files;
:class:`Call` is a routed request (operation, bucket, key, caller) with the body and
header readers every write handler shares.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from werkzeug.wrappers import Request

from localcloud.credentials import Credential
from localcloud.oss.errors import OssError, invalid_argument, invalid_digest
from localcloud.oss.form import OssFormDataParser
from localcloud.oss.storage import BlobWriter

MAX_USER_META_BYTES = 8 * 1024
# Headers kept with an object and returned on GET/HEAD, like Content-Type is.
STORED_HEADERS = (
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Cache-Control",
    "Expires",
)


class OssRequest(Request):
    """A werkzeug request whose form-file parts stream into hashing temp files.

    Forms are parsed by :mod:`localcloud.oss.form` (large reads, no copies of the file
    part), which hands file parts to ``_get_file_stream`` as werkzeug's own parser would.
    """

    form_data_parser_class = OssFormDataParser

    def __init__(self, environ: dict[str, Any], spool_dir: Path) -> None:
        super().__init__(environ)
        self.spool_dir = spool_dir
        self.spools: list[BlobWriter] = []

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        writer = BlobWriter(self.spool_dir)
        self.spools.append(writer)
        return writer  # type: ignore[return-value]  # duck-typed file the parser writes to

    def new_writer(self) -> BlobWriter:
        writer = BlobWriter(self.spool_dir)
        self.spools.append(writer)
        return writer

    def cleanup(self) -> None:
        for writer in self.spools:
            writer.discard()


@dataclass
class Call:
    """One routed request: what the handlers need besides the werkzeug request."""

    request: OssRequest
    operation: str
    bucket: str | None
    key: str
    request_id: str
    virtual_host: bool = False  # the bucket came from the Host header
    caller: Credential | None = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.args.items())

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def url_encoded(self) -> bool:
        return self.request.args.get("encoding-type") == "url"

    def encode(self, text: str) -> str:
        """A key or prefix as the response must carry it (URL-encoded on request)."""
        return quote(text, safe="/") if self.url_encoded else text

    def bucket_name(self) -> str:
        assert self.bucket is not None
        return self.bucket

    def object_location(self, bucket: str, key: str) -> str:
        """The object's URL in the addressing style this request used."""
        if self.virtual_host:
            return f"{self.request.host_url}{quote(key, safe='/')}"
        return f"{self.request.host_url}{bucket}/{quote(key, safe='/')}"

    def forbid_overwrite(self) -> bool:
        return forbid_overwrite(self.header("x-oss-forbid-overwrite"))

    def read_body(self) -> BlobWriter:
        """The request body streamed into a hashing temp file, checked against Content-MD5."""
        writer = self.request.new_writer()
        writer.copy_from(self.request.stream)
        writer.finish()
        declared = self.header("Content-MD5")
        if declared is not None:
            try:
                expected = base64.b64decode(declared, validate=True)
            except (binascii.Error, ValueError):
                expected = b""
            if expected != writer.md5_digest:
                raise invalid_digest(declared, base64.b64encode(writer.md5_digest).decode())
        return writer

    def small_body(self, limit: int = 4 * 1024 * 1024) -> bytes:
        """A small XML body held in memory (DeleteMultipleObjects, CompleteMultipartUpload)."""
        data = self.request.stream.read(limit + 1)
        if len(data) > limit:
            raise OssError(400, "EntityTooLarge", "Your request body is too large.")
        declared = self.header("Content-MD5")
        calculated = base64.b64encode(hashlib.md5(data).digest()).decode()
        if declared is not None and calculated != declared:
            raise invalid_digest(declared, calculated)
        return data


def forbid_overwrite(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def object_settings(
    headers: Iterable[tuple[str, str]],
) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """Content-Type, x-oss-meta-* (lower-cased names) and the other kept headers."""
    content_type: str | None = None
    meta: dict[str, str] = {}
    kept: dict[str, str] = {}
    stored = {h.lower(): h for h in STORED_HEADERS}
    for name, value in headers:
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif lower.startswith("x-oss-meta-"):
            meta[lower[len("x-oss-meta-") :]] = value
        elif lower in stored:
            kept[stored[lower]] = value
    size = sum(len(k) + len(v) for k, v in meta.items())
    if size > MAX_USER_META_BYTES:
        raise invalid_argument(
            "Your metadata headers exceed the maximum allowed metadata size.",
            "x-oss-meta-*",
            str(size),
        )
    return content_type, meta, kept
