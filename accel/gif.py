"""GIF89a writer: a numba LZW encoder plus the container, lossless for 8-bit greyscale.

Greyscale frames use one global 256-grey palette whose index is the grey level, so they are
stored losslessly. Colour frames are quantised per frame to a 256-colour local palette with
Pillow's fast octree quantiser, without dithering (the honest choice: GIF cannot hold more).
Each frame's LZW stream is independent, so frames are encoded in parallel when a pool is given.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np
from numba import njit
from PIL import Image

from accel.window import variants

__all__ = ["delay_centiseconds", "encode_gif", "lzw_encode", "warm_up"]

_MAX_CODES = 4096
_GREY_PALETTE = np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes()


@njit(nogil=True, cache=True)
def _lzw(indices, min_code_size, table, used):
    # Variable-width LZW as in GIF89a Appendix F; a full table (4096 codes) emits a Clear code.
    # `table[prefix << 8 | pixel]` holds the code of a string (0 = none: string codes are >= 258);
    # `used` lists the filled slots so a Clear resets only those.
    clear = 1 << min_code_size
    n = indices.size
    raw = np.empty(2 * n + 16, dtype=np.uint8)  # codes never exceed 12 bits per pixel
    pos = 0
    acc = np.int64(clear)
    nbits = min_code_size + 1
    nused = 0
    width = min_code_size + 1
    next_code = clear + 2
    cur = np.int64(indices[0])
    for i in range(1, n):
        px = np.int64(indices[i])
        slot = (cur << 8) | px
        code = table[slot]
        if code != 0:
            cur = np.int64(code)
            continue
        acc |= cur << nbits
        nbits += width
        if next_code < _MAX_CODES:
            if next_code == (1 << width):
                width += 1
            table[slot] = next_code
            used[nused] = slot
            nused += 1
            next_code += 1
        else:
            acc |= np.int64(clear) << nbits
            nbits += width
            for k in range(nused):
                table[used[k]] = 0
            nused = 0
            width = min_code_size + 1
            next_code = clear + 2
        while nbits >= 8:
            raw[pos] = acc & 0xFF
            pos += 1
            acc >>= 8
            nbits -= 8
        cur = px
    for k in range(nused):
        table[used[k]] = 0

    acc |= cur << nbits
    nbits += width
    while nbits >= 8:
        raw[pos] = acc & 0xFF
        pos += 1
        acc >>= 8
        nbits -= 8
    acc |= np.int64(clear + 1) << nbits  # End of Information
    nbits += width
    while nbits > 0:
        raw[pos] = acc & 0xFF
        pos += 1
        acc >>= 8
        nbits -= 8

    # Split into data sub-blocks of at most 255 bytes, then the block terminator.
    nblocks = (pos + 254) // 255
    out = np.empty(1 + pos + nblocks + 1, dtype=np.uint8)
    out[0] = min_code_size
    o = 1
    for b in range(nblocks):
        start = b * 255
        size = min(255, pos - start)
        out[o] = size
        out[o + 1 : o + 1 + size] = raw[start : start + size]
        o += 1 + size
    out[o] = 0
    return out[: o + 1]


_scratch = threading.local()


def lzw_encode(indices: np.ndarray, min_code_size: int = 8) -> bytes:
    """Return the GIF table-based image data (code size byte, sub-blocks, terminator)."""
    flat = np.ascontiguousarray(indices, dtype=np.uint8).reshape(-1)
    if flat.size == 0:
        raise ValueError("empty image")
    if not 2 <= min_code_size <= 8:
        raise ValueError("min_code_size must be 2..8")
    # One zeroed 2 MB string table per thread, left zeroed by the kernel after every use.
    table = getattr(_scratch, "table", None)
    if table is None:
        table = _scratch.table = np.zeros(_MAX_CODES << 8, dtype=np.int16)
        _scratch.used = np.zeros(_MAX_CODES, dtype=np.int64)
    return _lzw(flat, min_code_size, table, _scratch.used).tobytes()


def delay_centiseconds(frame_time_ms: float) -> int:
    """GIF delay for a frame time in ms: rounded to 1/100 s, at least 2 (browsers slow 0-1)."""
    return max(2, min(65535, round(frame_time_ms / 10.0)))


def _quantise(rgb: np.ndarray) -> tuple[np.ndarray, bytes]:
    img = Image.fromarray(rgb, "RGB").quantize(
        256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    palette = bytes(img.getpalette() or b"")[: 256 * 3]
    return np.asarray(img, dtype=np.uint8), palette.ljust(256 * 3, b"\0")


def _grey_frame(frame: np.ndarray) -> tuple[bytes, bytes | None]:
    return lzw_encode(frame), None


def _colour_frame(frame: np.ndarray) -> tuple[bytes, bytes | None]:
    indices, palette = _quantise(frame)
    return lzw_encode(indices), palette


def encode_gif(frames: Sequence[np.ndarray], delay_cs: int, pool: Executor | None = None) -> bytes:
    """Encode uint8 grey (h, w) or RGB (h, w, 3) frames as one GIF89a, looping if animated."""
    h, w = frames[0].shape[:2]
    colour = frames[0].ndim == 3
    work: Callable[[np.ndarray], tuple[bytes, bytes | None]] = (
        _colour_frame if colour else _grey_frame
    )
    if pool is not None and len(frames) > 1:
        encoded = list(pool.map(work, frames))
    else:
        encoded = [work(f) for f in frames]

    parts = [b"GIF89a"]
    if colour:
        parts.append(struct.pack("<HHBBB", w, h, 0x70, 0, 0))  # no global table
    else:
        parts.append(struct.pack("<HHBBB", w, h, 0xF7, 0, 0))
        parts.append(_GREY_PALETTE)
    animated = len(frames) > 1
    if animated:
        parts.append(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")  # loop forever
    for data, palette in encoded:
        if animated:
            # Graphic Control Extension: disposal 1 (leave in place), the frame delay.
            parts.append(struct.pack("<BBBBHBB", 0x21, 0xF9, 4, 0x04, delay_cs, 0, 0))
        packed = 0x87 if palette is not None else 0x00  # local table of 256 entries
        parts.append(struct.pack("<BHHHHB", 0x2C, 0, 0, w, h, packed))
        if palette is not None:
            parts.append(palette)
        parts.append(data)
    parts.append(b"\x3b")
    return b"".join(parts)


def warm_up() -> None:
    """Compile the LZW kernel (writable and read-only input)."""
    for arr in variants(np.zeros((2, 2), dtype=np.uint8)):
        lzw_encode(arr)
