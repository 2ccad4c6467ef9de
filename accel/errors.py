"""Exceptions raised by accel; ``str(e)`` is always safe to show to a client."""

from __future__ import annotations


class AccelError(Exception):
    """Base class: the message names DICOM attributes and frames, never patient data."""


class UnsupportedTransferSyntax(AccelError):
    """No decoder is installed for the dataset's transfer syntax (maps to HTTP 415)."""


class PixelDataError(AccelError):
    """Pixel Data is missing, shorter than declared, or a frame fails to decode (HTTP 422)."""


class UnsupportedImage(AccelError):
    """The image pixel description cannot be rendered (HTTP 422)."""
