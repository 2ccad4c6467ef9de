"""JPEG pass-through: when rendering a Baseline frame would be the identity, ship it as stored."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.uid import JPEGBaseline8Bit

from accel.decode import FrameSpec

__all__ = ["JpegHeader", "can_pass_through", "frame_is_plain", "parse_jpeg_header"]

_SOF0 = 0xC0
# Markers with no length field: TEM, RSTn, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xDA)}


@dataclass(frozen=True)
class JpegHeader:
    """What a JPEG codestream says before its first scan (ITU T.81 B.2)."""

    sof: int
    precision: int
    rows: int
    columns: int
    component_ids: tuple[int, ...]
    jfif: bool
    adobe_transform: int | None


def parse_jpeg_header(data: bytes) -> JpegHeader | None:
    """Parse markers up to the first SOS; None when the bytes are not a well-formed JPEG start."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, n = 2, len(data)
    sof = precision = rows = columns = -1
    ids: tuple[int, ...] = ()
    jfif = False
    adobe: int | None = None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4 : pos + 2 + length]
        if length < 2 or len(body) != length - 2:
            return None
        if marker == 0xDA:  # SOS: the header is complete
            if sof < 0:
                return None
            return JpegHeader(sof, precision, rows, columns, ids, jfif, adobe)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(body) < 6:
                return None
            precision, rows, columns, count = struct.unpack_from(">BHHB", body)
            ids = tuple(body[6 + 3 * k] for k in range(count) if 6 + 3 * k < len(body))
            sof = marker
        elif marker == 0xE0 and body.startswith(b"JFIF\0"):
            jfif = True
        elif marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            adobe = body[11]
        pos += 2 + length
    return None


def can_pass_through(spec: FrameSpec, identity_display: bool) -> bool:
    """Dataset-level test: 8-bit Baseline JPEG whose rendering applies nothing (PS3.5 8.2.1)."""
    if spec.transfer_syntax != JPEGBaseline8Bit or not identity_display:
        return False
    if spec.bits_allocated != 8 or spec.bits_stored != 8 or spec.pixel_representation != 0:
        return False
    if spec.samples_per_pixel == 1:
        return spec.photometric == "MONOCHROME2"
    return spec.samples_per_pixel == 3 and spec.photometric in ("RGB", "YBR_FULL_422")


def frame_is_plain(data: bytes, spec: FrameSpec) -> bool:
    """Frame-level test: a baseline 8-bit codestream of the declared size whose colour is known.

    Colour frames must carry a JFIF or Adobe marker so any decoder (a browser too) converts
    them to the same RGB that libjpeg-turbo gives us; anything unusual is rendered instead.
    """
    header = parse_jpeg_header(data)
    if header is None or header.sof != _SOF0 or header.precision != 8:
        return False
    if (header.rows, header.columns) != (spec.rows, spec.columns):
        return False
    if spec.samples_per_pixel == 1:
        return len(header.component_ids) == 1
    if len(header.component_ids) != 3:
        return False
    if spec.photometric == "YBR_FULL_422":
        # Stored YCbCr: JFIF, or Adobe with transform 1 (YCbCr).
        return header.adobe_transform == 1 or (header.jfif and header.adobe_transform is None)
    # RGB: decoders must show the samples as stored, or convert JFIF YCbCr to that RGB.
    return header.adobe_transform in (0, 1) or header.jfif
