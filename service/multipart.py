"""A multipart/form-data parser for large uploads (RFC 7578): one pass of ``find`` and no copy of
any part (parts are memoryviews of the body), where Sanic's parser copies the body twice."""

from __future__ import annotations

import mmap
from dataclasses import dataclass

from sanic.headers import parse_content_header

from service.errors import BadRequest

Body = bytes | bytearray | mmap.mmap  # a received request body, or one piece of it

MAX_PARTS = 100
MAX_PART_HEADER_BYTES = 16 * 1024
# One bytes.find holds the GIL until it returns: scanning a 100 MB part in one call would stall
# the event loop of a worker whose render thread parses it. 4 MiB is about a millisecond.
SCAN_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Part:
    """One form part: its field name, the client's file name (None for plain fields), bytes."""

    name: str
    filename: str | None
    data: memoryview  # a view into the request body: parts are never copied


def _malformed(why: str) -> BadRequest:
    return BadRequest(f"The multipart/form-data body is malformed: {why}.")


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data body, or a 400 saying how to send the upload."""
    media_type, params = parse_content_header(content_type)
    boundary = params.get("boundary")
    if media_type != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise BadRequest(
            "Send the upload as multipart/form-data with the DICOM file in a part named 'file'."
        )
    return boundary.encode("latin-1")


def parse_multipart(body: Body, boundary: bytes) -> list[Part]:
    """Every part of the body, in order; a 400 for anything that does not follow RFC 7578."""
    delimiter = b"--" + boundary
    view = memoryview(body)
    position = body.find(delimiter)
    if position < 0:
        raise _malformed("the boundary never occurs")
    parts: list[Part] = []
    while True:
        position += len(delimiter)
        if body[position : position + 2] == b"--":
            return parts  # the closing delimiter; an epilogue after it is ignored
        if body[position : position + 2] != b"\r\n":
            raise _malformed("a boundary is not followed by a line break")
        if len(parts) == MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        header_end = body.find(b"\r\n\r\n", position, position + MAX_PART_HEADER_BYTES)
        if header_end < 0:
            raise _malformed("a part's headers do not end")
        content_start = header_end + 4
        next_delimiter = _find(body, b"\r\n" + delimiter, content_start)
        if next_delimiter < 0:
            raise _malformed("the body ends inside a part")
        headers = bytes(view[position + 2 : header_end]).decode("utf-8", "replace")
        name, filename = _disposition(headers)
        parts.append(Part(name, filename, view[content_start:next_delimiter]))
        position = next_delimiter + 2


def _find(body: Body, pattern: bytes, start: int) -> int:
    """``body.find(pattern, start)`` in SCAN_CHUNK_BYTES steps, so other threads (the event
    loop) get the GIL between them."""
    end = len(body)
    while start < end:
        found = body.find(pattern, start, min(end, start + SCAN_CHUNK_BYTES + len(pattern) - 1))
        if found >= 0:
            return found
        start += SCAN_CHUNK_BYTES
    return -1


def _disposition(headers: str) -> tuple[str, str | None]:
    """The ``name`` and ``filename`` of a part's Content-Disposition header."""
    for line in headers.split("\r\n"):
        field, _, value = line.partition(":")
        if field.strip().lower() == "content-disposition":
            kind, params = parse_content_header(value.strip())
            name = params.get("name")
            if kind != "form-data" or not isinstance(name, str):
                raise _malformed("a part is not form-data with a name")
            filename = params.get("filename")
            return name, filename if isinstance(filename, str) else None
    raise _malformed("a part has no Content-Disposition header")
