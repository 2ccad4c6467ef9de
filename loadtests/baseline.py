"""The naive pipeline such services are usually built on: the benchmark's baseline.

pydicom decodes the whole pixel array, pydicom's reference LUT functions window each frame in
float64, Pillow encodes each frame, and the stdlib ``json`` module serialises the metadata
(every element as ``str``) with the base64 images.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
from PIL import Image
from pydicom import Dataset, dcmread
from pydicom.pixels import apply_modality_lut, apply_voi_lut

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF"}
DEFAULT_FRAME_MS = 100.0


def to_uint8(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """Modality LUT, then the first VOI window, then min-max scaling to 0..255 (float64)."""
    if ds.get("BitsAllocated", 8) == 8 and "WindowCenter" not in ds and "RescaleSlope" not in ds:
        return frame.astype(np.uint8, copy=False)
    values = apply_voi_lut(apply_modality_lut(frame, ds), ds).astype(np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low or 1.0) * 255.0
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.astype(np.uint8)


def frames_of(ds: Dataset) -> list[np.ndarray]:
    """Every frame of the dataset as an 8-bit array, via ``ds.pixel_array``."""
    pixels = ds.pixel_array
    count = int(ds.get("NumberOfFrames", 1) or 1)
    stack = pixels if count > 1 else pixels[np.newaxis]
    return [to_uint8(frame, ds) for frame in stack]


def encode_frames(frames: list[np.ndarray], fmt: str, frame_ms: float) -> list[bytes]:
    """One Pillow image per frame, or one animated GIF of all frames."""
    images = [Image.fromarray(frame) for frame in frames]
    if fmt == "gif" and len(images) > 1:
        buffer = io.BytesIO()
        images[0].save(
            buffer,
            "GIF",
            save_all=True,
            append_images=images[1:],
            duration=frame_ms,
            loop=0,
        )
        return [buffer.getvalue()]
    out = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, PIL_FORMATS[fmt], **({"quality": 90} if fmt == "jpeg" else {}))
        out.append(buffer.getvalue())
    return out


def metadata_as_str(ds: Dataset) -> dict[str, Any]:
    """Every element except pixel data as ``{keyword: str(value)}``, the usual shortcut."""
    return {
        element.keyword or str(element.tag): str(element.value)
        for element in ds
        if element.keyword != "PixelData"
    }


def read_baseline(filename: str, data: bytes, fmt: str) -> tuple[bytes, int]:
    """Run the naive pipeline; returns (JSON body, total image bytes before base64)."""
    del filename  # the naive service ignores it too
    ds = dcmread(io.BytesIO(data))
    frame_ms = float(ds.get("FrameTime", DEFAULT_FRAME_MS) or DEFAULT_FRAME_MS)
    images = encode_frames(frames_of(ds), fmt, frame_ms)
    body = metadata_as_str(ds)
    body["Images"] = [base64.b64encode(image).decode("ascii") for image in images]
    return json.dumps(body).encode(), sum(len(image) for image in images)
