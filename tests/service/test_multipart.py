"""The multipart/form-data parser against bodies built by an independent encoder (httpx)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import multipart
from service.errors import BadRequest
from service.multipart import MAX_PARTS, parse_multipart


def encode(files: dict, data: dict) -> tuple[bytes, bytes]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    boundary = request.headers["content-type"].split("boundary=")[1]
    return request.read(), boundary.encode()


@settings(max_examples=60, deadline=None)
@given(
    content=st.binary(max_size=4096),
    filename=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
    fields=st.dictionaries(
        st.sampled_from(["fields", "return_format", "window", "frames"]),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=50),
    ),
)
def test_round_trip(content: bytes, filename: str, fields: dict[str, str]) -> None:
    body, boundary = encode({"file": (filename, content, "application/dicom")}, fields)
    parts = parse_multipart(body, boundary)
    by_name = {part.name: part for part in parts}
    assert bytes(by_name["file"].data) == content
    assert by_name["file"].filename is not None
    for name, value in fields.items():
        assert by_name[name].filename is None
        assert bytes(by_name[name].data).decode() == value


def test_content_containing_boundary_like_bytes() -> None:
    content = b"--not-the-boundary\r\n\r\n--\r\n" * 100
    body, boundary = encode({"file": ("a.dcm", content)}, {})
    [part] = parse_multipart(body, boundary)
    assert bytes(part.data) == content and part.filename == "a.dcm"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no boundary at all",
        b'--B\r\nContent-Disposition: form-data; name="file"\r\n\r\nunterminated',
        b'--B\r\nContent-Disposition: form-data; name="file"\r\nno blank line',
        b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--\r\n",
        b'--B\r\nContent-Disposition: attachment; name="x"\r\n\r\nx\r\n--B--\r\n',
        b"--Bjunk",
    ],
)
def test_malformed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_multipart(body, b"B")


def test_part_count_is_limited() -> None:
    part = b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n'
    with pytest.raises(BadRequest, match="parts"):
        parse_multipart(part * (MAX_PARTS + 1) + b"--B--\r\n", b"B")


@settings(max_examples=80, deadline=None)
@given(content=st.binary(max_size=600), chunk=st.integers(1, 64))
def test_chunked_scanning_finds_what_one_find_finds(content: bytes, chunk: int) -> None:
    # Large parts are scanned in SCAN_CHUNK_BYTES steps (the GIL is freed between them); a
    # delimiter straddling a step boundary must still be found, at the same place.
    body, boundary = encode({"file": ("a.dcm", content)}, {"window": "40,400"})
    whole = [(p.name, bytes(p.data)) for p in parse_multipart(body, boundary)]
    original = multipart.SCAN_CHUNK_BYTES
    multipart.SCAN_CHUNK_BYTES = chunk
    try:
        stepped = [(p.name, bytes(p.data)) for p in parse_multipart(body, boundary)]
    finally:
        multipart.SCAN_CHUNK_BYTES = original
    assert stepped == whole and dict(whole)["file"] == content
