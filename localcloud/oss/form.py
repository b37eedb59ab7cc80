"""A streaming ``multipart/form-data`` parser for PostObject bodies of up to 5 GiB.

werkzeug's parser is correct but slow for a large file part: it reads 64 KiB at a time,
copies each chunk three or four times (into its buffer, out for the boundary search, out
again as an event) and writes 64 KiB pieces, so the local OSS took uploads at a fraction
of the speed it serves downloads. This parser reads straight from the request stream
into one reusable buffer (``readinto``), finds the boundary with ``bytearray.find`` over
1 MiB at a time, and hands the file's bytes to the writer as memoryview slices of that
buffer: no copy between the socket and the writer's hash and disk write.

It accepts what werkzeug 3.1's ``MultipartDecoder`` accepts, in the same way: a line
break is CRLF, LF or CR; the first boundary may lack its leading line break; a boundary
line may carry trailing blanks; the last boundary may lack its final line break; a part
with a ``filename`` parameter is a file (even an empty one), others are fields decoded
with their ``charset`` if it is ASCII or ISO-8859-1, else UTF-8 (undecodable bytes
replaced). Its limits raise werkzeug's ``RequestEntityTooLarge`` where werkzeug's would
(give or take one 64 KiB read, where werkzeug counts whole reads): a field, part headers,
a preamble or an epilogue over ``max_form_memory_size`` bytes, more than
``max_form_parts`` parts. A malformed body raises ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO, Any, Protocol, cast

from werkzeug.datastructures import FileStorage, Headers, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

BUFFER_SIZE = 1024 * 1024

_LINE_BREAK = rb"(?:\r\n|\n|\r)"
_BLANK_LINE = re.compile(rb"(?:\r\n\r\n|\r\r|\n\n)")
_HEADER_CONTINUATION = re.compile(_LINE_BREAK + rb"[ \t]")
# What may follow "--boundary": "--" (the close delimiter, then blanks and an optional line
# break) or blanks and a line break (the next part's headers follow).
_AFTER_BOUNDARY = re.compile(
    rb"(--[^\S\n\r]*" + _LINE_BREAK + rb"?|[^\S\n\r]*" + _LINE_BREAK + rb")"
)
# Room kept after a boundary match before deciding it: "--", some blanks, a CRLF.
_LOOKAHEAD = 64


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class _Buffer:
    """One bytearray filled from the stream with ``readinto``; ``data[start:end]`` is unread."""

    def __init__(self, stream: Readable, size: int, *, growable: bool = False) -> None:
        self.stream = stream
        self.data = bytearray(size)
        self.view = memoryview(self.data)
        self.start = 0
        self.end = 0
        self.eof = False
        #: Without a memory limit (werkzeug then holds a field or header block of any
        #: size), a full buffer doubles instead of refusing the body.
        self.growable = growable

    def fill(self) -> bool:
        """Move the unread bytes to the front and read until full or EOF.

        False only when EOF was already known: nothing more can come.
        """
        if self.eof:
            return False
        if self.start:
            # Copied out first: the slice may overlap its destination.
            unread = bytes(self.view[self.start : self.end])
            self.data[: len(unread)] = unread
            self.start, self.end = 0, len(unread)
        if self.end == len(self.data):
            if not self.growable:
                raise RequestEntityTooLarge()
            # A new buffer, not a resize: slices of the old view may still be referenced.
            grown = bytearray(2 * len(self.data))
            grown[: self.end] = self.view[: self.end]
            self.data, self.view = grown, memoryview(grown)
        while self.end < len(self.data):
            got = self.stream.readinto(self.view[self.end :])
            if not got:
                self.eof = True
                break
            self.end += got
        return True  # new bytes, or the news that there are none


class MultipartParser:
    """Parse one form body.

    ``open_file(headers, filename)`` gives the container a file part is written to (it
    must consume each ``write`` before returning: the data is a view of a reused buffer).
    """

    def __init__(
        self,
        open_file: Callable[[Headers, str], Any],
        *,
        max_form_memory_size: int | None = 500_000,
        max_form_parts: int | None = 1000,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        self.open_file = open_file
        self.max_form_memory_size = max_form_memory_size
        self.max_form_parts = max_form_parts
        self.buffer_size = buffer_size

    def parse(
        self, stream: Readable, boundary: bytes
    ) -> tuple[list[tuple[str, str]], list[tuple[str, FileStorage]]]:
        if not boundary:
            raise ValueError("Missing boundary")
        size = self.buffer_size
        if self.max_form_memory_size is not None:
            # A field or a header block must fit in the buffer whole.
            size = max(size, self.max_form_memory_size + _LOOKAHEAD + len(boundary) + 4)
        buf = _Buffer(stream, size, growable=self.max_form_memory_size is None)
        dash_boundary = b"--" + boundary
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        closed = self._preamble(buf, dash_boundary)
        parts = 0
        while not closed:
            headers = self._headers(buf)
            parts += 1
            if self.max_form_parts is not None and parts > self.max_form_parts:
                raise RequestEntityTooLarge()
            if "content-disposition" not in headers:
                raise ValueError("Missing Content-Disposition header")
            _, extra = parse_options_header(headers["content-disposition"])
            name = extra.get("name", "")
            filename = extra.get("filename")
            if filename is not None:
                container = self.open_file(headers, filename)
                closed = self._data(buf, dash_boundary, container.write, None)
                container.seek(0)
                files.append((name, FileStorage(container, filename, name, headers=headers)))
            else:
                chunks: list[bytes] = []
                # Copied: the slices handed over are views of the reused buffer.
                closed = self._data(
                    buf, dash_boundary, _copy_into(chunks), self.max_form_memory_size
                )
                fields.append((name, b"".join(chunks).decode(_charset(headers), "replace")))
        # The epilogue: read to the end, keep nothing, refuse one werkzeug would not hold.
        epilogue = buf.end - buf.start
        while True:
            self._check_memory(epilogue)
            buf.start = buf.end
            if not buf.fill():
                return fields, files
            epilogue += buf.end - buf.start

    def _check_memory(self, size: int) -> None:
        if self.max_form_memory_size is not None and size > self.max_form_memory_size:
            raise RequestEntityTooLarge()

    def _preamble(self, buf: _Buffer, dash_boundary: bytes) -> bool:
        """Skip to the first boundary; True if it is the close delimiter (an empty form)."""
        skipped = 0
        while True:
            at = buf.data.find(dash_boundary, buf.start, buf.end)
            while at != -1:
                after = at + len(dash_boundary)
                if buf.end - after < _LOOKAHEAD and not buf.eof:
                    break  # decide once more bytes are in
                match = _AFTER_BOUNDARY.match(buf.data, after, buf.end)
                if match is not None:
                    self._check_memory(skipped + at - buf.start)
                    buf.start = match.end()
                    return match.group(1).startswith(b"--")
                at = buf.data.find(dash_boundary, at + 1, buf.end)
            start = max(buf.start, buf.end - len(dash_boundary) - 2) if at == -1 else at
            skipped += start - buf.start
            buf.start = start
            self._check_memory(skipped)
            if not buf.fill():
                raise ValueError("Invalid form-data: no boundary")

    def _headers(self, buf: _Buffer) -> Headers:
        while True:
            match = _BLANK_LINE.search(buf.data, buf.start, buf.end)
            if match is not None:
                break
            self._check_memory(buf.end - buf.start)
            if not buf.fill():
                raise ValueError("Invalid form-data: part headers do not end")
        raw = bytes(buf.data[buf.start : match.start()])
        # The blank line is two line breaks: the second one opens the part's data.
        buf.start = (match.start() + match.end()) // 2
        raw = _HEADER_CONTINUATION.sub(b" ", raw)
        headers = Headers()
        for line in raw.splitlines():
            line = line.strip(b" \t")
            if line:
                name, _, value = line.decode().partition(":")
                headers.add(name.strip(" \t"), value.strip(" \t"))
        return headers

    def _data(
        self,
        buf: _Buffer,
        dash_boundary: bytes,
        write: Callable[[Any], Any],
        limit: int | None,
    ) -> bool:
        """Pass one part's bytes to ``write``; True if it ended with the close delimiter.

        The part starts with the line break that ended its headers; that line break also
        counts as the one before the boundary of an empty part. Bytes that could still
        belong to a boundary split across two reads are kept for the next search.
        """
        if buf.end - buf.start < 2:
            buf.fill()  # a CRLF split across two reads is one line break
        first = _line_break_length(buf.data, buf.start, buf.end)
        if first == 0:
            raise ValueError("Invalid form-data: part data must start with a line break")
        data_start = buf.start + first
        lead = first
        keep = len(dash_boundary) + 2
        written = 0
        search = buf.start
        while True:
            at = buf.data.find(dash_boundary, search, buf.end)
            while at != -1:
                after = at + len(dash_boundary)
                if buf.end - after < _LOOKAHEAD and not buf.eof:
                    break  # decide once more bytes are in
                before = _line_break_before(buf.data, at, buf.start)
                match = None
                if before:
                    match = _AFTER_BOUNDARY.match(buf.data, after, buf.end)
                if match is not None:
                    end = max(at - before, data_start)
                    if end > data_start:
                        written += end - data_start
                        _check(written, limit)
                        write(buf.view[data_start:end])
                    buf.start = match.end()
                    return match.group(1).startswith(b"--")
                at = buf.data.find(dash_boundary, at + 1, buf.end)
            # No boundary decided in the buffer: write all but what could be the start of one.
            safe = buf.end - keep if at == -1 else at - 2
            if safe > data_start:
                written += safe - data_start
                _check(written, limit)
                write(buf.view[data_start:safe])
                data_start = safe
                lead = 0
            # Until data is written, the opening line break may still precede a boundary.
            buf.start = data_start - lead
            if not buf.fill():
                raise ValueError("Invalid form-data: the last boundary is missing")
            data_start = buf.start + lead
            search = buf.start


def _copy_into(chunks: list[bytes]) -> Callable[[memoryview], None]:
    def write(piece: memoryview) -> None:
        chunks.append(bytes(piece))

    return write


def _check(written: int, limit: int | None) -> None:
    if limit is not None and written > limit:
        raise RequestEntityTooLarge()


def _line_break_length(data: bytearray, at: int, end: int) -> int:
    if at < end and data[at] == 0x0D:
        return 2 if at + 1 < end and data[at + 1] == 0x0A else 1
    return 1 if at < end and data[at] == 0x0A else 0


def _line_break_before(data: bytearray, at: int, floor: int) -> int:
    """Length of the line break right before ``at`` (CRLF, LF or CR), 0 if none."""
    if at - 2 >= floor and data[at - 2] == 0x0D and data[at - 1] == 0x0A:
        return 2
    if at - 1 >= floor and data[at - 1] in (0x0A, 0x0D):
        return 1
    return 0


def _charset(headers: Headers) -> str:
    """A part's declared charset if it is one werkzeug accepts (a safe list), else UTF-8."""
    _, options = parse_options_header(headers.get("content-type", ""))
    charset = options.get("charset", "").lower()
    return charset if charset in {"ascii", "us-ascii", "utf-8", "iso-8859-1"} else "utf-8"


class OssFormDataParser(FormDataParser):
    """werkzeug's form parser with :class:`MultipartParser` for multipart bodies.

    Set as a request's ``form_data_parser_class``: file parts go to the request's
    ``stream_factory`` as with werkzeug's own parser, limits and silence are the request's.
    """

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        if mimetype != "multipart/form-data":
            return super().parse(stream, mimetype, content_length, options)

        def open_file(headers: Headers, filename: str) -> Any:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = 0
            return self.stream_factory(
                total_content_length=content_length,
                filename=filename,
                content_type=headers.get("content-type"),
                content_length=length,
            )

        parser = MultipartParser(
            open_file,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
        )
        try:
            boundary = (options or {}).get("boundary", "").encode("ascii")
            fields, files = parser.parse(cast(Readable, stream), boundary)
        except ValueError:
            if not self.silent:
                raise
            return stream, self.cls(), self.cls()
        return stream, self.cls(fields), self.cls(files)
