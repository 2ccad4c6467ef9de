"""JPEG Baseline frames (8-bit, greyscale or 3-component) decoded by libjpeg-turbo (simplejpeg).

Which colour space a 3-component frame's components are in is decided per frame by
:func:`components_are_rgb`; when libjpeg-turbo would assume otherwise (a marker-less frame of an
RGB image), the frame is handed to it with an Adobe marker that states the truth. Frames come
back as RGB (or MONOCHROME2), whatever the dataset's Photometric Interpretation.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import simplejpeg
from pydicom.uid import JPEGBaseline8Bit

from accel.dataset import encapsulated_frames
from accel.decoders.base import Decoded, FrameSpec, PixelSpec
from accel.errors import PixelDataError

__all__ = [
    "JpegHeader",
    "can_decode",
    "components_are_rgb",
    "decode",
    "libjpeg_assumes_rgb",
    "parse_jpeg_header",
]

# Markers with no length field: TEM, RSTn, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xDA)}
# Component IDs that name R, G and B in ASCII (libjpeg knows the first; pydicom both).
_RGB_IDS = ((82, 71, 66), (114, 103, 98))
# Adobe APP14 segments (version 100, no flags) with transform 0 (RGB) and 1 (YCbCr).
_ADOBE = {
    True: b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00",
    False: b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x01",
}


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
    sos_offset: int  # where the first SOS marker starts


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
            return JpegHeader(sof, precision, rows, columns, ids, jfif, adobe, pos)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if len(body) < 6:
                return None
            precision, rows, columns, count = struct.unpack_from(">BHHB", body)
            ids = tuple(body[6 + 3 * k] for k in range(count) if 6 + 3 * k < len(body))
            sof = marker
        elif marker == 0xE0 and body.startswith(b"JFIF\0"):
            jfif = True
        elif marker == 0xEE and body.startswith(b"Adobe") and len(body) >= 12:
            adobe = body[11]  # the last Adobe marker counts, as in libjpeg
        pos += 2 + length
    return None


def libjpeg_assumes_rgb(header: JpegHeader) -> bool:
    """Whether libjpeg (libjpeg-turbo, browsers) reads 3 components as RGB rather than YCbCr
    (jdapimin.c default_decompress_parms): JFIF means YCbCr; else an Adobe transform of 0 means
    RGB and any other YCbCr; else component IDs 'R', 'G', 'B' mean RGB."""
    if header.jfif:
        return False
    if header.adobe_transform is not None:
        return header.adobe_transform == 0
    return header.component_ids == _RGB_IDS[0]


def components_are_rgb(header: JpegHeader, photometric: str) -> bool:
    """Whether a 3-component frame holds RGB (not YCbCr) components (PS3.5 8.2.1).

    What the codestream states wins: a JFIF marker means YCbCr; an Adobe marker with transform
    0 RGB and 1 YCbCr; component IDs 'R', 'G', 'B' (or 'r', 'g', 'b') RGB. A frame that states
    nothing holds what the Photometric Interpretation says: RGB, or YCbCr for YBR_FULL(_422).
    This differs from :func:`libjpeg_assumes_rgb` only where libjpeg guesses YCbCr.
    """
    if header.jfif:
        return False
    if header.adobe_transform in (0, 1):
        return header.adobe_transform == 0
    if header.component_ids in _RGB_IDS:
        return True
    return photometric == "RGB"


def _as_libjpeg_reads_it(data: bytes, photometric: str) -> bytes:
    """The frame as libjpeg-turbo must see it to decode the colour space of its components right.

    That is the frame itself, unless libjpeg would take RGB components for YCbCr (a marker-less
    frame of an RGB image) or refuse an Adobe transform other than 0 or 1: then an Adobe marker
    stating the components' colour space is added just before the first SOS (the last Adobe
    marker counts; with JFIF, the only case where libjpeg ignores it, the two always agree).
    """
    if data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\0":
        return data  # JFIF right after SOI, as JFIF requires: YCbCr, libjpeg agrees (no parse)
    header = parse_jpeg_header(data)
    if header is None or len(header.component_ids) != 3:
        return data  # the decoder reports what is wrong with it
    rgb = components_are_rgb(header, photometric)
    if rgb == libjpeg_assumes_rgb(header) and header.adobe_transform in (None, 0, 1):
        return data
    cut = header.sos_offset
    return b"".join((data[:cut], _ADOBE[rgb], data[cut:]))


def _decode_frame(data: bytes, index: int, image: FrameSpec) -> np.ndarray:
    colorspace = "GRAY" if image.samples_per_pixel == 1 else "RGB"
    if image.samples_per_pixel == 3:
        data = _as_libjpeg_reads_it(data, image.photometric)
    try:
        try:
            arr = simplejpeg.decode_jpeg(data, colorspace=colorspace)
        except ValueError:
            # A recoverable libjpeg-turbo warning (e.g. a truncated entropy segment):
            # decode what is there, as viewers do.
            arr = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=False)
    except Exception as exc:
        raise PixelDataError(f"frame {index + 1} could not be decoded") from exc
    if arr.shape[:2] != (image.rows, image.columns):
        raise PixelDataError(
            f"frame {index + 1} is {arr.shape[1]}x{arr.shape[0]} pixels, expected "
            f"{image.columns}x{image.rows}"
        )
    return arr[:, :, 0] if image.samples_per_pixel == 1 else arr


def can_decode(spec: PixelSpec) -> bool:
    """True for 8-bit unsigned JPEG Baseline greyscale, RGB or YBR_FULL(_422) frames."""
    image = spec.image
    return (
        image.transfer_syntax == JPEGBaseline8Bit
        and image.bits_allocated == 8
        and image.pixel_representation == 0
        and image.samples_per_pixel in (1, 3)
        and (
            image.samples_per_pixel == 1 or image.photometric in ("RGB", "YBR_FULL_422", "YBR_FULL")
        )
    )


def decode(spec: PixelSpec, indices: Sequence[int], pool: Executor | None = None) -> Decoded:
    """The frames at ``indices`` as MONOCHROME2 or RGB uint8 arrays, in ``pool`` if given."""
    image = spec.image
    stored = encapsulated_frames(spec.dataset, image.number_of_frames)

    def one(i: int) -> np.ndarray:
        return _decode_frame(stored[i], i, image)

    if pool is not None and len(indices) > 1:
        frames = list(pool.map(one, indices))
    else:
        frames = [one(i) for i in indices]
    return Decoded(frames, "MONOCHROME2" if image.samples_per_pixel == 1 else "RGB")
