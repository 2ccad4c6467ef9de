"""PNG (numba Up filter + ISA-L deflate) and JPEG (libjpeg-turbo) writers; GIF is accel.gif.

PNG: measured on the 96-frame 512x512 0002.DCM, the PNG "Up" filter followed by ISA-L deflate
level 1 is ~35x faster than Pillow's PNG writer for 1.12x its bytes (Sub 1.30x, Paeth 1.13x but
slower, no filter 1.84x). ISA-L and libjpeg-turbo (simplejpeg) release the GIL, as do the numba
kernels, so frames are encoded in parallel threads when a pool is given.
"""

from __future__ import annotations

import struct

import numpy as np
import simplejpeg
from isal import isal_zlib
from numba import njit

from accel.window import variants

__all__ = ["FORMATS", "encode_jpeg", "encode_png", "warm_up"]

FORMATS = ("png", "jpeg", "gif")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEFLATE_LEVEL = 1


@njit(nogil=True, cache=True)
def _filter_up(rows):
    # PNG filter type 2 (Up) on every row but the first, which has no row above (type 0).
    h, n = rows.shape
    out = np.empty(h * (n + 1), dtype=np.uint8)
    for y in range(h):
        o = y * (n + 1)
        if y == 0:
            out[o] = 0
            for x in range(n):
                out[o + 1 + x] = rows[0, x]
        else:
            out[o] = 2
            for x in range(n):
                out[o + 1 + x] = rows[y, x] - rows[y - 1, x]
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", _crc(kind, data))


def _crc(kind: bytes, data: bytes) -> int:
    return isal_zlib.crc32(data, isal_zlib.crc32(kind)) & 0xFFFFFFFF


def encode_png(image: np.ndarray) -> bytes:
    """Encode a uint8 grey (h, w) or RGB (h, w, 3) image as an 8-bit PNG."""
    h, w = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    rows = np.ascontiguousarray(image, dtype=np.uint8).reshape(h, -1)
    idat = isal_zlib.compress(_filter_up(rows), _DEFLATE_LEVEL)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return b"".join(
        (_PNG_SIGNATURE, _chunk(b"IHDR", ihdr), _chunk(b"IDAT", idat), _chunk(b"IEND", b""))
    )


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode a uint8 grey or RGB image as baseline JPEG with libjpeg-turbo (4:4:4 chroma)."""
    if image.ndim == 2:
        return simplejpeg.encode_jpeg(
            np.ascontiguousarray(image)[:, :, None], quality=quality, colorspace="GRAY"
        )
    return simplejpeg.encode_jpeg(
        np.ascontiguousarray(image), quality=quality, colorspace="RGB", colorsubsampling="444"
    )


def warm_up() -> None:
    """Compile the PNG filter kernel (writable and read-only input)."""
    for shape in ((2, 2), (2, 2, 3)):
        for arr in variants(np.zeros(shape, dtype=np.uint8)):
            encode_png(arr)
