"""Frame decoding: libjpeg-turbo (simplejpeg) for JPEG Baseline, pydicom's decoders for the rest.

Both paths return frames in colour-by-pixel layout plus the photometric interpretation of the
returned arrays, which may differ from the dataset's (libjpeg-turbo returns RGB for YBR JPEGs,
pydicom expands native YBR_FULL_422 to YBR_FULL). Colour-space conversion is left to the caller,
so nothing is converted twice.

Which colour space a 3-component JPEG frame's components are in is decided per frame by
:func:`components_are_rgb`; when libjpeg-turbo would assume otherwise (a marker-less frame of an
RGB image), the frame is handed to it with an Adobe marker that states the truth.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import simplejpeg
from pydicom import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options, get_expected_length
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from accel.dataset import DatasetLike
from accel.errors import PixelDataError, UnsupportedTransferSyntax

__all__ = [
    "Decoded",
    "FrameSpec",
    "JpegHeader",
    "components_are_rgb",
    "decode_frames",
    "encapsulated_frames",
    "libjpeg_assumes_rgb",
    "parse_jpeg_header",
    "syntax_label",
]

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_LITTLE_ENDIAN_NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
Buffer = bytes | bytearray | memoryview
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
class FrameSpec:
    """The plain Image Pixel attributes decoding needs (PS3.3 C.7.6.3)."""

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    number_of_frames: int


@dataclass
class Decoded:
    """Decoded frames (in the order requested) and the colour space they are in."""

    frames: list[np.ndarray]
    photometric: str


def syntax_label(uid: str) -> str:
    """Return 'Name (UID)' for a transfer syntax, for client-facing messages."""
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else f"'{uid}'"


def _pixel_keyword(ds: DatasetLike) -> str:
    present = [kw for kw in _PIXEL_KEYWORDS if kw in ds]
    if not present:
        raise PixelDataError("the dataset has no Pixel Data")
    if len(present) > 1:
        raise PixelDataError("the dataset has more than one Pixel Data element")
    if ds[present[0]].value is None:
        raise PixelDataError("the Pixel Data element is empty")
    return present[0]


def encapsulated_frames(ds: DatasetLike, number_of_frames: int) -> list[bytes]:
    """Return every stored frame of encapsulated Pixel Data as bytes (PS3.5 A.4)."""
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths"))
    try:
        frames = list(
            generate_frames(
                ds.get("PixelData"), number_of_frames=number_of_frames, extended_offsets=offsets
            )
        )
    except Exception as exc:
        raise PixelDataError("the encapsulated Pixel Data is malformed") from exc
    if len(frames) < number_of_frames:
        raise PixelDataError(
            f"the Pixel Data holds {len(frames)} frames but Number of Frames is {number_of_frames}"
        )
    return frames[:number_of_frames]


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


def _decode_baseline(data: bytes, index: int, spec: FrameSpec) -> np.ndarray:
    colorspace = "GRAY" if spec.samples_per_pixel == 1 else "RGB"
    if spec.samples_per_pixel == 3:
        data = _as_libjpeg_reads_it(data, spec.photometric)
    try:
        try:
            arr = simplejpeg.decode_jpeg(data, colorspace=colorspace)
        except ValueError:
            # A recoverable libjpeg-turbo warning (e.g. a truncated entropy segment):
            # decode what is there, as viewers do.
            arr = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=False)
    except Exception as exc:
        raise PixelDataError(f"frame {index + 1} could not be decoded") from exc
    if arr.shape[:2] != (spec.rows, spec.columns):
        raise PixelDataError(
            f"frame {index + 1} is {arr.shape[1]}x{arr.shape[0]} pixels, expected "
            f"{spec.columns}x{spec.rows}"
        )
    return arr[:, :, 0] if spec.samples_per_pixel == 1 else arr


def uses_fast_jpeg(spec: FrameSpec) -> bool:
    """True when frames are 8-bit unsigned JPEG Baseline that libjpeg-turbo decodes directly."""
    return (
        spec.transfer_syntax == JPEGBaseline8Bit
        and spec.bits_allocated == 8
        and spec.pixel_representation == 0
        and spec.samples_per_pixel in (1, 3)
        and (spec.samples_per_pixel == 1 or spec.photometric in ("RGB", "YBR_FULL_422", "YBR_FULL"))
    )


def _check_native_length(ds: Dataset, keyword: str, spec: FrameSpec) -> None:
    expected = get_expected_length(ds, "bytes")
    actual = len(ds[keyword].value)
    if actual < expected:
        raise PixelDataError(
            f"the Pixel Data is {actual} bytes, expected {expected} for "
            f"{spec.number_of_frames} frame(s) of {spec.columns}x{spec.rows}"
        )


def native_frames(buffer: Buffer, spec: FrameSpec) -> np.ndarray | None:
    """Every frame of uncompressed little-endian greyscale data as an array (frames, rows,
    columns), or None for data this does not handle (colour, bit-packed, big endian).

    A zero-copy view of ``buffer`` when every allocated bit is stored; otherwise a copy with the
    unused high bits cleared (unsigned) or sign-extended (signed), as pydicom does.
    """
    if (
        spec.transfer_syntax not in _LITTLE_ENDIAN_NATIVE
        or spec.samples_per_pixel != 1
        or spec.bits_allocated not in (8, 16, 32)
        or not 0 < spec.bits_stored <= spec.bits_allocated
        or spec.photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    ):
        return None
    count = spec.rows * spec.columns * spec.number_of_frames
    dtype = np.dtype(f"<{'i' if spec.pixel_representation else 'u'}{spec.bits_allocated // 8}")
    if len(buffer) < count * dtype.itemsize:
        raise PixelDataError(
            f"the Pixel Data is {len(buffer)} bytes, expected {count * dtype.itemsize} for "
            f"{spec.number_of_frames} frame(s) of {spec.columns}x{spec.rows}"
        )
    frames = np.frombuffer(buffer, dtype=dtype, count=count)
    frames = frames.reshape(spec.number_of_frames, spec.rows, spec.columns)
    shift = spec.bits_allocated - spec.bits_stored
    if shift:
        frames = (frames << shift) >> shift  # arithmetic for signed, logical for unsigned
    return frames


def decode_frames(
    ds: DatasetLike, spec: FrameSpec, indices: Sequence[int], pool: Executor | None = None
) -> Decoded:
    """Decode the frames at 0-based `indices` (PS3.5 8 and A.4), raising AccelError subclasses."""
    keyword = _pixel_keyword(ds)
    if uses_fast_jpeg(spec):
        stored = encapsulated_frames(ds, spec.number_of_frames)

        def one(i: int) -> np.ndarray:
            return _decode_baseline(stored[i], i, spec)

        if pool is not None and len(indices) > 1:
            fast = list(pool.map(one, indices))
        else:
            fast = [one(i) for i in indices]
        return Decoded(fast, "MONOCHROME2" if spec.samples_per_pixel == 1 else "RGB")

    if keyword == "PixelData":
        stack = native_frames(ds[keyword].value, spec)
        if stack is not None:
            return Decoded([stack[i] for i in indices], spec.photometric)
    if not isinstance(ds, Dataset):  # service.dicom.flat only admits what native_frames reads
        raise PixelDataError("these pixels need pydicom's decoders and a pydicom Dataset")
    try:
        decoder = get_decoder(spec.transfer_syntax)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(
            f"no decoder for transfer syntax {syntax_label(spec.transfer_syntax)}"
        ) from None
    if not decoder.is_available:
        raise UnsupportedTransferSyntax(
            f"no decoder installed for transfer syntax {syntax_label(spec.transfer_syntax)}"
        )
    opts = as_pixel_options(ds)
    if not decoder.is_encapsulated:
        _check_native_length(ds, keyword, spec)
        # A read-only view avoids a copy, but pydicom logs a warning whenever it must copy
        # anyway (unused bits to mask, YBR_FULL_422 to expand, big endian, bit-packed data).
        view_only = (
            spec.bits_stored == spec.bits_allocated
            and spec.bits_allocated >= 8
            and spec.photometric != "YBR_FULL_422"
            and spec.transfer_syntax != ExplicitVRBigEndian
        )
        try:
            opts["view_only"] = view_only
            arr, props = decoder.as_array(ds, raw=True, **opts)
        except Exception as exc:
            raise PixelDataError("the Pixel Data could not be decoded") from exc
        if not arr.dtype.isnative:  # Explicit VR Big Endian: one byte-swapping copy
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if spec.number_of_frames == 1:
            arr = arr[None]
        return Decoded([arr[i] for i in indices], str(props["photometric_interpretation"]))

    if keyword != "PixelData":
        raise PixelDataError(f"{keyword} cannot be encapsulated")
    frames: list[np.ndarray] = []
    photometric = spec.photometric
    wanted = list(indices)
    it = decoder.iter_array(ds, indices=wanted, raw=True, **opts)
    for position in range(len(wanted)):
        try:
            arr, props = next(it)
        except StopIteration:
            raise PixelDataError(f"frame {wanted[position] + 1} is missing") from None
        except Exception as exc:
            raise PixelDataError(f"frame {wanted[position] + 1} could not be decoded") from exc
        frames.append(arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("=")))
        photometric = str(props.get("photometric_interpretation", photometric))
    return Decoded(frames, photometric)
