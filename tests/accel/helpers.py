"""Build small DICOM datasets in memory and compute the expected rendering independently.

The expected rendering uses pydicom's own pipeline (pixel_array, apply_modality_lut,
apply_voi_lut) in float64 and rounds half up to uint8; accel's fused kernels must agree
within +-1 grey level (the two round the same real number, computed in a different order).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pydicom
import simplejpeg
from PIL import Image
from pydicom import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def make_ds(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    frames: bool = True,
    **attrs: Any,
) -> Dataset:
    """A dataset holding `pixels` ((frames,) rows, cols (, 3)) as native Explicit VR LE."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "OT"
    bits = bits_stored if bits_stored is not None else pixels.dtype.itemsize * 8
    ds.set_pixel_data(pixels, photometric, bits)
    if frames and "NumberOfFrames" not in ds:
        ds.NumberOfFrames = 1
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def reread(ds: Dataset, transfer_syntax: str | None = None) -> Dataset:
    """Write `ds` as a PS3.10 file (optionally in another native syntax) and parse it back."""
    ts = transfer_syntax or ds.file_meta.TransferSyntaxUID
    ds.file_meta.TransferSyntaxUID = ts
    buf = io.BytesIO()
    little = ts != ExplicitVRBigEndian
    if not little and ds.BitsAllocated > 8:
        # pydicom writes OW values as they are: swap the samples to big endian ourselves.
        dtype = np.dtype(f"<u{ds.BitsAllocated // 8}")
        ds.PixelData = np.frombuffer(ds.PixelData, dtype=dtype).byteswap().tobytes()
    implicit = ts == ImplicitVRLittleEndian
    ds.save_as(buf, implicit_vr=implicit, little_endian=little, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def jpeg_ds(pixels: np.ndarray, photometric: str = "MONOCHROME2", **attrs: Any) -> Dataset:
    """A JPEG Baseline dataset whose frames are encoded by libjpeg-turbo (JFIF, 4:2:2 colour)."""
    grey = pixels.ndim == 3
    ds = make_ds(pixels, photometric="MONOCHROME2" if grey else "RGB", **attrs)
    encoded = [
        simplejpeg.encode_jpeg(f[:, :, None], quality=95, colorspace="GRAY")
        if grey
        else simplejpeg.encode_jpeg(f, quality=95, colorspace="RGB", colorsubsampling="422")
        for f in pixels
    ]
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = photometric
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return reread(ds)


def y_range(ds: Dataset) -> tuple[float, float]:
    """The output range pydicom's apply_windowing maps onto (see its implementation)."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1)
    if ds.PixelRepresentation == 0:
        lo, hi = 0.0, float(2**ds.BitsStored - 1)
    else:
        lo, hi = float(-(2 ** (ds.BitsStored - 1))), float(2 ** (ds.BitsStored - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        lo, hi = (
            lo * ds.RescaleSlope + ds.RescaleIntercept,
            hi * ds.RescaleSlope + ds.RescaleIntercept,
        )
    return lo, hi


def to_u8(values: np.ndarray) -> np.ndarray:
    """Round half up and clip to uint8."""
    return np.clip(np.floor(np.asarray(values, dtype=np.float64) + 0.5), 0, 255).astype(np.uint8)


def expected_grey(ds: Dataset, frames: Sequence[int] | None = None) -> list[np.ndarray]:
    """Reference greyscale rendering of every frame with pydicom's processing functions."""
    arr = pixel_array(ds)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n == 1:
        arr = arr[None]
    modality = [apply_modality_lut(f, ds).astype(np.float64) for f in arr]
    has_voi = ds.get("VOILUTSequence") or ("WindowCenter" in ds and "WindowWidth" in ds)
    out = []
    for m in modality:
        if ds.get("VOILUTSequence"):
            bits = ds.VOILUTSequence[0].LUTDescriptor[2]
            y = apply_voi_lut(m.astype(np.int64), ds).astype(np.float64) * 255.0 / (2**bits - 1)
        elif has_voi:
            lo, hi = y_range(ds)
            y = (apply_voi_lut(m, ds) - lo) / (hi - lo) * 255.0
        elif ds.PixelRepresentation == 0 and ds.BitsStored <= 8 and not _rescaled(ds):
            y = m * 255.0 / (2**ds.BitsStored - 1)
        else:
            lo = min(float(x.min()) for x in modality)
            hi = max(float(x.max()) for x in modality)
            y = (m - lo) / (hi - lo) * 255.0
        out.append(to_u8(y))
    if ds.PhotometricInterpretation == "MONOCHROME1":
        out = [255 - o for o in out]
    return out if frames is None else [out[i] for i in frames]


def _rescaled(ds: Dataset) -> bool:
    if ds.get("ModalityLUTSequence"):
        return True
    slope, intercept = ds.get("RescaleSlope", 1), ds.get("RescaleIntercept", 0)
    return float(slope) != 1.0 or float(intercept) != 0.0


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG with Pillow (an independent decoder) to grey or RGB."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        return np.asarray(im)


def decode_image(data: bytes) -> np.ndarray:
    """Decode any single-frame image with Pillow."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.asarray(im)


def gif_frames(data: bytes, mode: str = "L") -> tuple[list[np.ndarray], list[int | None], Any]:
    """Decode every frame of a GIF with Pillow: arrays (L or RGB), durations (ms), loop."""
    frames, durations = [], []
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF"
        loop = im.info.get("loop")
        for k in range(getattr(im, "n_frames", 1)):
            im.seek(k)
            durations.append(im.info.get("duration"))
            frames.append(np.asarray(im.convert(mode)))
    return frames, durations, loop


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ramp(frames: int, rows: int, cols: int, lo: int, hi: int, dtype: Any) -> np.ndarray:
    """A smooth, frame-varying test image spanning lo..hi (compresses like real images)."""
    y, x = np.mgrid[0:rows, 0:cols]
    out = np.empty((frames, rows, cols), dtype=np.float64)
    for f in range(frames):
        out[f] = (x * 3 + y * 2 + f * 7) % (cols * 3 + rows * 2)
    out = lo + (out - out.min()) / max(1.0, out.max() - out.min()) * (hi - lo)
    return np.round(out).astype(dtype)


def rgb_image(frames: int, rows: int, cols: int) -> np.ndarray:
    """A smooth colour test image (frames, rows, cols, 3) uint8."""
    y, x = np.mgrid[0:rows, 0:cols]
    out = np.empty((frames, rows, cols, 3), dtype=np.uint8)
    for f in range(frames):
        out[f, ..., 0] = (x * 255 // max(1, cols - 1) + f * 20) % 256
        out[f, ..., 1] = y * 255 // max(1, rows - 1)
        out[f, ..., 2] = ((x + y) * 128 // max(1, rows + cols - 2) + 60) % 256
    return out


# Baseline JPEG colour-space fixtures ------------------------------------------------------------

_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment from just after SOI up to and including SOS."""
    assert data[:2] == b"\xff\xd8"
    out, pos = [], 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, pos, end))
        if marker == 0xDA:
            return out
        pos = end


def without_colour_markers(data: bytes, component_ids: Sequence[int] | None = None) -> bytes:
    """The JPEG without its JFIF APP0 and Adobe APP14 segments, optionally with the component
    IDs of its SOF and SOS segments rewritten (the entropy-coded data is kept as it is)."""
    segments = jpeg_segments(data)
    out = bytearray(data[:2])
    for marker, start, end in segments:
        segment = bytearray(data[start:end])
        if marker == 0xE0 and segment[4:9] == b"JFIF\0":
            continue
        if marker == 0xEE and segment[4:9] == b"Adobe":
            continue
        if component_ids is not None and marker in _SOF_MARKERS:
            assert segment[9] == len(component_ids)
            for k, cid in enumerate(component_ids):
                segment[10 + 3 * k] = cid
        if component_ids is not None and marker == 0xDA:
            assert segment[4] == len(component_ids)
            for k, cid in enumerate(component_ids):
                segment[5 + 2 * k] = cid
        out += segment
    out += data[segments[-1][2] :]
    return bytes(out)


def rgb_component_jpeg(frame: np.ndarray, quality: int = 95) -> bytes:
    """A 4:4:4 baseline JPEG whose components are R, G, B (no colour transform): libjpeg writes
    an Adobe APP14 marker with transform 0 and component IDs 'R', 'G', 'B' for it."""
    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, "JPEG", quality=quality, keep_rgb=True, subsampling=0)
    return buf.getvalue()


def ycbcr_jpeg(frame: np.ndarray, quality: int = 95) -> bytes:
    """A 4:2:2 baseline JFIF JPEG (YCbCr components, IDs 1, 2, 3) encoded by libjpeg-turbo."""
    return simplejpeg.encode_jpeg(frame, quality=quality, colorspace="RGB", colorsubsampling="422")


def encapsulated_jpeg_ds(encoded: Sequence[bytes], pixels: np.ndarray, photometric: str) -> Dataset:
    """A JPEG Baseline dataset holding the `encoded` frames of `pixels` (frames, rows, cols, 3)."""
    ds = make_ds(pixels, photometric="RGB")
    ds.PixelData = encapsulate(list(encoded))
    ds["PixelData"].VR = "OB"
    ds.PhotometricInterpretation = photometric
    ds.LossyImageCompression = "01"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    return reread(ds)


JFIF_APP0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def adobe_app14(transform: int) -> bytes:
    """An Adobe APP14 segment (version 100, no flags) with the given colour transform."""
    return b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + bytes([transform])


def with_segments(data: bytes, *segments: bytes) -> bytes:
    """The JPEG with `segments` inserted right after its SOI marker."""
    assert data[:2] == b"\xff\xd8"
    return b"".join((data[:2], *segments, data[2:]))
