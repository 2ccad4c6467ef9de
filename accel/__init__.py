"""accel: DICOM frames in, encoded PNG/JPEG/GIF bytes out (numba kernels, libjpeg-turbo, ISA-L)."""

from accel.errors import AccelError, PixelDataError, UnsupportedImage, UnsupportedTransferSyntax
from accel.render import render, warm_up

__all__ = [
    "AccelError",
    "PixelDataError",
    "UnsupportedImage",
    "UnsupportedTransferSyntax",
    "render",
    "warm_up",
]
