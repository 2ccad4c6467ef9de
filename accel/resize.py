"""Fit rendered 8-bit frames into a viewport with libvips (pyvips): the DICOMweb ``viewport``."""

from __future__ import annotations

import numpy as np
import pyvips

MAX_VIEWPORT = 8192


def viewport_size(rows: int, columns: int, viewport: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a ``columns x rows`` image scaled to fit ``viewport``, aspect kept."""
    width, height = viewport
    scale = min(width / columns, height / rows)
    return max(1, round(columns * scale)), max(1, round(rows * scale))


def fit_within(image: np.ndarray, viewport: tuple[int, int]) -> np.ndarray:
    """Scale a grey (H, W) or RGB (H, W, 3) uint8 frame to fit ``viewport`` (Lanczos-3)."""
    rows, columns = image.shape[:2]
    bands = 1 if image.ndim == 2 else image.shape[2]
    out_w, out_h = viewport_size(rows, columns, viewport)
    if (out_w, out_h) == (columns, rows):
        return image
    source = pyvips.Image.new_from_memory(
        np.ascontiguousarray(image).data, columns, rows, bands, "uchar"
    )
    scaled = source.resize(out_w / columns, vscale=out_h / rows, kernel="lanczos3")
    # resize() may be off by one pixel through rounding: crop or embed to the exact size.
    if (scaled.width, scaled.height) != (out_w, out_h):
        scaled = scaled.gravity("centre", out_w, out_h, extend="copy")
    buffer = scaled.cast("uchar").write_to_memory()
    shape = (out_h, out_w) if bands == 1 else (out_h, out_w, bands)
    return np.frombuffer(buffer, dtype=np.uint8).reshape(shape)
