"""JPEG pass-through: when rendering a Baseline frame would be the identity, ship it as stored."""

from __future__ import annotations

from pydicom.uid import JPEGBaseline8Bit

from accel.decoders.base import FrameSpec
from accel.decoders.turbo import (
    JpegHeader,
    components_are_rgb,
    libjpeg_assumes_rgb,
    parse_jpeg_header,
)

__all__ = ["JpegHeader", "can_pass_through", "frame_is_plain", "parse_jpeg_header"]

_SOF0 = 0xC0


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
    them to the same RGB that we decode (:func:`accel.decoders.turbo.components_are_rgb`); a
    marker-less frame is read as YCbCr by a browser, wrongly for an RGB image, and is rendered
    instead, as is anything unusual.
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
    if components_are_rgb(header, spec.photometric) != libjpeg_assumes_rgb(header):
        return False  # a browser would show other colours than the ones we decode
    if spec.photometric == "YBR_FULL_422":
        # Stored YCbCr: JFIF, or Adobe with transform 1 (YCbCr).
        return header.adobe_transform == 1 or (header.jfif and header.adobe_transform is None)
    # RGB: decoders must show the samples as stored, or convert JFIF YCbCr to that RGB.
    return header.adobe_transform in (0, 1) or header.jfif
