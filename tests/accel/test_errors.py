"""Failures map to AccelError subclasses whose messages are client-safe."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

import accel
from accel import AccelError, PixelDataError, UnsupportedImage, UnsupportedTransferSyntax
from tests.accel.helpers import jpeg_ds, make_ds, ramp, reread

SECRET = "SECRET^PATIENT"


def _ds(frames: int = 2):
    ds = make_ds(ramp(frames, 32, 32, 0, 255, np.uint8))
    ds.PatientName = SECRET
    return ds


def _check(exc: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(exc.value)
    assert isinstance(exc.value, AccelError)
    assert SECRET not in message
    for part in parts:
        assert part in message


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif"])
def test_truncated_native_pixel_data(fmt):
    ds = _ds()
    ds.PixelData = ds.PixelData[:-100]
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, fmt)
    _check(exc, "Pixel Data")


def test_missing_pixel_data():
    ds = _ds()
    del ds.PixelData
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, "png")
    _check(exc, "no Pixel Data")


def test_unknown_transfer_syntax():
    ds = _ds()
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    with pytest.raises(UnsupportedTransferSyntax) as exc:
        accel.render(ds, "png")
    _check(exc, "1.2.3.4.5.6")


def test_known_syntax_without_decoder():
    ds = _ds()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder exists
    with pytest.raises(UnsupportedTransferSyntax) as exc:
        accel.render(ds, "png")
    _check(exc, "MPEG2", "1.2.840.10008.1.2.4.100")


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif"])
def test_garbage_baseline_jpeg_frame_is_named(fmt):
    pixels = ramp(3, 32, 32, 0, 255, np.uint8)
    ds = make_ds(pixels)
    frames = [simplejpeg.encode_jpeg(f[:, :, None], colorspace="GRAY") for f in pixels]
    frames[1] = b"\xff\xd8" + b"garbage!" * 20
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = reread(ds)
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, fmt, window=(100, 100))
    _check(exc, "frame 2")
    # Pass-through must not hide a broken frame either.
    if fmt == "jpeg":
        with pytest.raises(PixelDataError):
            accel.render(ds, "jpeg")


def test_garbage_jpeg2000_frame_is_named():
    ds = make_ds(ramp(3, 32, 32, 0, 4095, np.uint16), bits_stored=12)
    ds.compress(JPEG2000Lossless)
    from pydicom.encaps import generate_frames

    frames = list(generate_frames(ds.PixelData, number_of_frames=3))
    frames[2] = b"\x00" * 64
    ds.PixelData = encapsulate(frames)
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, "png")
    _check(exc, "frame 3")


def test_fewer_encapsulated_frames_than_declared():
    ds = jpeg_ds(ramp(2, 32, 32, 0, 255, np.uint8))
    ds.NumberOfFrames = 5
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, "png")
    _check(exc, "frame")


def test_wrong_jpeg_size_is_reported():
    ds = jpeg_ds(ramp(1, 32, 32, 0, 255, np.uint8))
    ds.Rows = 16
    with pytest.raises(PixelDataError) as exc:
        accel.render(ds, "png")
    _check(exc, "frame 1")


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("PhotometricInterpretation", "HSV"),
        ("PhotometricInterpretation", "RGB"),
        ("BitsAllocated", 12),
    ],
)
def test_unsupported_image(attr, value):
    ds = _ds()
    setattr(ds, attr, value)
    with pytest.raises(UnsupportedImage) as exc:
        accel.render(ds, "png")
    _check(exc)


def test_palette_without_table():
    ds = _ds()
    ds.PhotometricInterpretation = "PALETTE COLOR"
    with pytest.raises(UnsupportedImage) as exc:
        accel.render(ds, "png")
    _check(exc, "Palette")


def test_bad_format_and_frames_are_programming_errors():
    ds = _ds()
    with pytest.raises(ValueError, match="format"):
        accel.render(ds, "bmp")
    with pytest.raises(ValueError, match="frame"):
        accel.render(ds, "png", frames=[2])
    assert accel.render(ds, "png", frames=[]) == []
