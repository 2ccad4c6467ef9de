"""Numba kernels for colour images: YBR_FULL to RGB, palette colour lookup, depth scaling.

Planar configuration needs no kernel: pydicom's decoders always return colour-by-pixel
(PlanarConfiguration 0) arrays, and libjpeg-turbo returns interleaved RGB.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from accel.window import variants

__all__ = ["apply_palette", "scale_to_u8", "warm_up", "ybr_full_to_rgb"]

# PS3.3 C.7.6.3.1.2 (YBR_FULL), the same coefficients as pydicom's convert_color_space.
_CR_R = 1.402
_CB_G = -0.114 * 1.772 / 0.587
_CR_G = -0.299 * 1.402 / 0.587
_CB_B = 1.772


@njit(nogil=True, cache=True)
def _clip_round(v):
    v = math.floor(v + 0.5)
    if v < 0.0:
        return np.uint8(0)
    if v > 255.0:
        return np.uint8(255)
    return np.uint8(v)


@njit(nogil=True, cache=True)
def _ybr_to_rgb(src, out):
    for i in range(0, src.size, 3):
        y = float(src[i])
        cb = float(src[i + 1]) - 128.0
        cr = float(src[i + 2]) - 128.0
        out[i] = _clip_round(y + _CR_R * cr)
        out[i + 1] = _clip_round(y + _CB_G * cb + _CR_G * cr)
        out[i + 2] = _clip_round(y + _CB_B * cb)


@njit(nogil=True, cache=True)
def _palette(src, table, offset, out):
    last = table.shape[0] - 1
    for i in range(src.size):
        j = np.int64(src[i]) + offset
        if j < 0:
            j = 0
        elif j > last:
            j = last
        out[i, 0] = table[j, 0]
        out[i, 1] = table[j, 1]
        out[i, 2] = table[j, 2]


@njit(nogil=True, cache=True)
def _scale(src, maxval, out):
    k = 255.0 / maxval
    for i in range(src.size):
        out[i] = _clip_round(float(src[i]) * k)


def ybr_full_to_rgb(frame: np.ndarray) -> np.ndarray:
    """Convert an 8-bit YBR_FULL frame (..., 3) to RGB (PS3.3 C.7.6.3.1.2)."""
    src = np.ascontiguousarray(frame, dtype=np.uint8)
    out = np.empty(src.shape, dtype=np.uint8)
    _ybr_to_rgb(src.reshape(-1), out.reshape(-1))
    return out


def apply_palette(frame: np.ndarray, table: np.ndarray, first: int) -> np.ndarray:
    """Map palette indices through an (N, 3) table whose row 0 is `first` (PS3.3 C.7.6.3.1.5)."""
    src = np.ascontiguousarray(frame)
    out = np.empty((*src.shape, 3), dtype=np.uint8)
    _palette(src.reshape(-1), np.ascontiguousarray(table), -int(first), out.reshape(-1, 3))
    return out


def scale_to_u8(frame: np.ndarray, bits_stored: int) -> np.ndarray:
    """Scale samples of 0..2**bits_stored-1 onto 0..255 (identity for 8-bit data)."""
    if frame.dtype == np.uint8 and bits_stored == 8:
        return frame
    src = np.ascontiguousarray(frame)
    out = np.empty(src.shape, dtype=np.uint8)
    _scale(src.reshape(-1), float(2**bits_stored - 1), out.reshape(-1))
    return out


def warm_up() -> None:
    """Compile every colour kernel signature on tiny arrays (writable and read-only)."""
    for arr in variants(np.zeros((2, 2, 3), dtype=np.uint8)):
        ybr_full_to_rgb(arr)
    table = np.zeros((4, 3), dtype=np.uint8)
    for dtype in (np.uint8, np.uint16, np.int16):
        for arr in variants(np.zeros((2, 2), dtype=dtype)):
            apply_palette(arr, table, 0)
    for wide in (np.uint8, np.uint16, np.int16, np.uint32, np.int32):
        for arr in variants(np.zeros((2, 2, 3), dtype=wide)):
            scale_to_u8(arr, 12)
