"""The local OSS's streaming form parser reads every body as werkzeug's parser does.

``localcloud.oss.form`` replaced werkzeug's multipart parser for PostObject because of
speed only; these tests hold it to werkzeug 3.1's results on generated bodies (odd line
breaks, boundary look-alikes inside the data, boundaries split across reads, malformed
endings) and check its limits and the CRC-64 the local OSS computes with it.
"""

from __future__ import annotations

import io
import os
from typing import Any, cast

import crcmod
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import MultiPartParser

from localcloud.oss.form import MultipartParser
from localcloud.oss.storage import crc64

BOUNDARY = b"ota-b0undary"
LINE_BREAKS = st.sampled_from([b"\r\n", b"\n", b"\r"])
PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"--" + BOUNDARY,
            b"\r\n--" + BOUNDARY,
            b"\n--" + BOUNDARY + b"--",
            b"\r\n--" + BOUNDARY + b" \r\n",
            b"--" + BOUNDARY[:5],
            b"\r",
            b"\n",
            b"\r\n\r\n",
            b"--",
        ]
    ),
)


class _Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.pos = 0
        self.step = step

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        piece = self.data[self.pos : self.pos + min(self.step, len(b))]
        b[: len(piece)] = piece
        self.pos += len(piece)
        return len(piece)


def _value(file: FileStorage) -> bytes:
    return cast(io.BytesIO, file.stream).getvalue()


def _werkzeug(body: bytes, max_memory: int | None, max_parts: int | None) -> Any:
    parser = MultiPartParser(
        stream_factory=cast(Any, lambda **_: io.BytesIO()),
        max_form_memory_size=max_memory,
        max_form_parts=max_parts,
        # The whole body in one read: werkzeug's own result can depend on where its reads
        # split a line break (with 37-byte reads it kept a CR of "\n\n\r\n--boundary" as
        # data, with 64-byte reads it did not); in one read it is its intended reading.
        buffer_size=len(body) + 1,
    )
    try:
        fields, files = parser.parse(io.BytesIO(body), BOUNDARY, len(body))
    except (ValueError, RequestEntityTooLarge) as exc:
        return type(exc).__name__
    return (
        list(fields.items(multi=True)),
        [(name, f.filename, f.mimetype, _value(f)) for name, f in files.items(multi=True)],
    )


def _werkzeug_reads(body: bytes, max_memory: int, read_size: int) -> Any:
    parser = MultiPartParser(
        stream_factory=cast(Any, lambda **_: io.BytesIO()),
        max_form_memory_size=max_memory,
        buffer_size=read_size,
    )
    try:
        parser.parse(io.BytesIO(body), BOUNDARY, len(body))
    except (ValueError, RequestEntityTooLarge) as exc:
        return type(exc).__name__
    return "parsed"


def _ours(body: bytes, step: int, max_memory: int | None, max_parts: int | None) -> Any:
    parser = MultipartParser(
        lambda headers, filename: io.BytesIO(),
        max_form_memory_size=max_memory,
        max_form_parts=max_parts,
        buffer_size=256,
    )
    try:
        fields, files = parser.parse(_Trickle(body, step), BOUNDARY)
    except (ValueError, RequestEntityTooLarge) as exc:
        return type(exc).__name__
    return (
        fields,
        [(name, f.filename, f.mimetype, _value(f)) for name, f in files],
    )


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    body = draw(st.sampled_from([b"", b"preamble\r\n", b"\r\n"]))
    for i in range(draw(st.integers(0, 3))):
        lb = draw(LINE_BREAKS)
        body += b"--" + BOUNDARY + draw(st.sampled_from([b"", b" ", b"\t "])) + lb
        if draw(st.booleans()):
            body += f'Content-Disposition: form-data; name="file{i}"; filename="f{i}.bin"'.encode()
            body += lb + b"Content-Type: application/octet-stream"
        else:
            body += f'Content-Disposition: form-data; name="field{i}"'.encode()
        body += lb + lb + b"".join(draw(st.lists(PIECES, max_size=12))) + draw(LINE_BREAKS)
    body += b"--" + BOUNDARY + draw(st.sampled_from([b"--\r\n", b"--", b"--  \n", b"", b"x"]))
    body += draw(st.sampled_from([b"", b"epilogue"]))
    return body


@settings(max_examples=400, deadline=None)
@given(body=bodies(), step=st.sampled_from([1, 3, 17, 100, 4096]))
def test_generated_bodies_parse_as_werkzeug_parses_them(body: bytes, step: int) -> None:
    assert _ours(body, step, None, None) == _werkzeug(body, None, None)


def test_without_a_memory_limit_a_header_block_longer_than_the_buffer_parses_as_werkzeug() -> None:
    # Found by the test above: a boundary line ended by a lone CR, then 137 NULs, makes one
    # header block (no blank line until the next part's) longer than the 256-byte buffer.
    # werkzeug without max_form_memory_size holds any size; so does ours (it grows).
    body = (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="field0"\r\n\r\n'
        b"--" + BOUNDARY + b"\r" + b"\x00" * 137 + b"\r\n--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="file1"; filename="f1.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n--" + BOUNDARY + b"--\r\n"
    )
    assert _ours(body, 1, None, None) == _werkzeug(body, None, None)
    assert _ours(body, 1, None, None)[0] == [("field0", "")]


def _form(fields: list[tuple[str, bytes]], file: bytes) -> bytes:
    body = b""
    for name, value in fields:
        body += b"--" + BOUNDARY + b"\r\n"
        body += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
    body += b"--" + BOUNDARY + b"\r\n"
    body += b'Content-Disposition: form-data; name="file"; filename="fw.bin"\r\n'
    body += b"Content-Type: application/octet-stream\r\n\r\n" + file
    return body + b"\r\n--" + BOUNDARY + b"--\r\n"


def test_a_large_file_part_arrives_whole_across_many_reads() -> None:
    data = os.urandom(3 * 1024 * 1024 + 5) + b"\r\n--" + BOUNDARY[:-1]  # a near-boundary tail
    body = _form([("key", b"fw.bin"), ("policy", b"e30=")], data)
    fields, files = MultipartParser(lambda h, f: io.BytesIO()).parse(
        _Trickle(body, 70_000),
        BOUNDARY,
    )
    assert fields == [("key", "fw.bin"), ("policy", "e30=")]
    assert _value(files[0][1]) == data


def test_a_field_over_the_memory_limit_is_refused_as_werkzeug_refuses_it() -> None:
    body = _form([("key", b"k" * 1001)], b"data")
    assert _ours(body, 4096, 1000, None) == "RequestEntityTooLarge"
    assert _ours(_form([("key", b"k" * 1000)], b"data"), 4096, 1000, None)[0] == [
        ("key", "k" * 1000)
    ]


@pytest.mark.parametrize("where", ["preamble", "epilogue", "headers"])
def test_a_preamble_epilogue_or_header_block_over_the_limit_is_refused(where: str) -> None:
    filler = b"x" * 2000
    body = _form([("key", b"k")], b"data")
    if where == "preamble":
        body = filler + b"\r\n" + body
    elif where == "epilogue":
        body += filler
    else:
        body = body.replace(b"\r\n\r\nk", b"\r\nX-Pad: " + filler + b"\r\n\r\nk", 1)
    # werkzeug refuses each once its buffer would pass the limit (it counts whole reads)
    assert _werkzeug_reads(body, 1000, 100) == "RequestEntityTooLarge"
    assert _ours(body, 4096, 1000, None) == "RequestEntityTooLarge"
    assert _ours(body, 4096, 4000, None) == _werkzeug(body, 4000, None)


def test_more_parts_than_allowed_are_refused_as_werkzeug_refuses_them() -> None:
    body = _form([(f"f{i}", b"v") for i in range(5)], b"data")
    assert _ours(body, 4096, None, 5) == "RequestEntityTooLarge"
    assert _werkzeug(body, None, 5) == "RequestEntityTooLarge"
    assert _ours(body, 4096, None, 6) == _werkzeug(body, None, 6)


def test_a_field_is_decoded_with_its_charset() -> None:
    body = (
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="x-oss-meta-a"\r\n'
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9\r\n"
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="x-oss-meta-b"\r\n'
        b"Content-Type: text/plain; charset=latin-1\r\n\r\n\xff\r\n"
        b"--" + BOUNDARY + b"--\r\n"
    )
    assert _ours(body, 4096, None, None)[0] == [("x-oss-meta-a", "é"), ("x-oss-meta-b", "\ufffd")]
    assert _ours(body, 4096, None, None) == _werkzeug(body, None, None)


@pytest.mark.parametrize("size", [0, 1, 9, 4096, 1024 * 1024 + 3])
def test_crc64_matches_crcmods_crc64_ecma_as_oss2_computes_it(size: int) -> None:
    # oss2.utils.Crc64 is this crcmod configuration; the stand-in must give its values.
    reference = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=(1 << 64) - 1)
    data = os.urandom(size)
    assert crc64(data) == reference(data)
    half = size // 2
    assert crc64(data[half:], crc64(data[:half])) == reference(data)
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA
