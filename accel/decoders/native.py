"""Uncompressed little-endian greyscale (and palette index) Pixel Data read directly with numpy.

Frames are a zero-copy view of the Pixel Data when every allocated bit is stored; otherwise a
copy with the unused high bits cleared (unsigned) or sign-extended (signed), as pydicom does.
Colour, bit-packed, 64-bit and big-endian data are left to :mod:`accel.decoders.pydicom`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from accel.decoders.base import Decoded, PixelSpec
from accel.errors import PixelDataError

__all__ = ["can_decode", "decode"]

_LITTLE_ENDIAN_NATIVE = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


def can_decode(spec: PixelSpec) -> bool:
    """True for native little-endian Pixel Data of one 8, 16 or 32-bit sample per pixel."""
    image = spec.image
    return (
        spec.keyword == "PixelData"
        and image.transfer_syntax in _LITTLE_ENDIAN_NATIVE
        and image.samples_per_pixel == 1
        and image.bits_allocated in (8, 16, 32)
        and 0 < image.bits_stored <= image.bits_allocated
        and image.photometric in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    )


def decode(spec: PixelSpec, indices: Sequence[int], pool: Executor | None = None) -> Decoded:
    """The frames at ``indices`` as (rows, columns) arrays of the stored integer type."""
    image = spec.image
    buffer = spec.dataset[spec.keyword].value
    count = image.rows * image.columns * image.number_of_frames
    dtype = np.dtype(f"<{'i' if image.pixel_representation else 'u'}{image.bits_allocated // 8}")
    if len(buffer) < count * dtype.itemsize:
        raise PixelDataError(
            f"the Pixel Data is {len(buffer)} bytes, expected {count * dtype.itemsize} for "
            f"{image.number_of_frames} frame(s) of {image.columns}x{image.rows}"
        )
    stack = np.frombuffer(buffer, dtype=dtype, count=count)
    stack = stack.reshape(image.number_of_frames, image.rows, image.columns)
    shift = image.bits_allocated - image.bits_stored
    if shift:
        stack = (stack << shift) >> shift  # arithmetic for signed, logical for unsigned
    return Decoded([stack[i] for i in indices], image.photometric)
