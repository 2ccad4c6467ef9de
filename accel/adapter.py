"""The one place that reads DICOM attributes: turns a Dataset into plain values for the kernels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydicom import Dataset
from pydicom.pixels.processing import apply_color_lut
from pydicom.uid import ExplicitVRBigEndian

from accel.dataset import DatasetLike, transfer_syntax
from accel.decoders.base import FrameSpec
from accel.errors import UnsupportedImage
from accel.window import DisplayParams, ModalityKind, VoiKind

__all__ = [
    "GREY",
    "display_params",
    "frame_delay_ms",
    "frame_spec",
    "modality_params",
    "palette_table",
    "stored_range_params",
]

GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")
_VOI_FUNCTIONS = {
    "LINEAR": VoiKind.LINEAR,
    "LINEAR_EXACT": VoiKind.LINEAR_EXACT,
    "SIGMOID": VoiKind.SIGMOID,
}


def _int(ds: DatasetLike, keyword: str, default: int | None = None) -> int:
    try:
        value = ds.get(keyword, default)
    except Exception:  # a malformed value that pydicom fails to convert
        raise UnsupportedImage(f"the attribute {keyword} is malformed") from None
    if value is None or value == "":
        if default is None:
            raise UnsupportedImage(f"the required attribute {keyword} is missing")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UnsupportedImage(f"the attribute {keyword} is not an integer") from None


def frame_spec(ds: DatasetLike) -> FrameSpec:
    """Read the Image Pixel module (PS3.3 C.7.6.3) and check the combination is renderable."""
    photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    spp = _int(ds, "SamplesPerPixel")  # Type 1; pydicom's decoders need it too
    bits_allocated = _int(ds, "BitsAllocated")
    spec = FrameSpec(
        transfer_syntax=transfer_syntax(ds),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        samples_per_pixel=spp,
        bits_allocated=bits_allocated,
        bits_stored=_int(ds, "BitsStored", bits_allocated),
        pixel_representation=_int(ds, "PixelRepresentation", 0),
        photometric=photometric,
        number_of_frames=max(1, _int(ds, "NumberOfFrames", 1)),
    )
    if spec.rows <= 0 or spec.columns <= 0:
        raise UnsupportedImage("Rows and Columns must be positive")
    if bits_allocated not in (1, 8, 16, 32, 64) or not 0 < spec.bits_stored <= bits_allocated:
        raise UnsupportedImage(
            f"Bits Allocated {bits_allocated} with Bits Stored {spec.bits_stored} is not supported"
        )
    if photometric in GREY or photometric == "PALETTE COLOR":
        ok = spp == 1
    else:
        ok = photometric in COLOUR and spp == 3
    if not ok:
        raise UnsupportedImage(
            f"Photometric Interpretation '{photometric[:32]}' with {spp} samples per pixel "
            "is not supported"
        )
    return spec


def _group_item(ds: DatasetLike, index: int, keyword: str) -> Dataset | None:
    # PS3.3 C.7.6.16: a per-frame functional group overrides the shared one.
    for seq_kw, i in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        seq = ds.get(seq_kw)
        if seq and i < len(seq):
            inner = seq[i].get(keyword)
            if inner:
                return inner[0]
    return None


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        if not value:
            return None
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _lut_values(ds: DatasetLike, item: Dataset) -> tuple[np.ndarray, int, int]:
    # LUT Descriptor (PS3.3 C.11.1.1.1, C.11.2.1.1): entries (0 means 65536), first value, bits.
    desc = [int(v) for v in item.LUTDescriptor]
    entries = desc[0] or 65536
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        if len(data) == entries:  # 8-bit entries packed into an OB-like value
            table = np.frombuffer(data, dtype=np.uint8)
        else:
            big = transfer_syntax(ds) == ExplicitVRBigEndian
            table = np.frombuffer(data, dtype=">u2" if big else "<u2")[:entries]
    else:
        table = np.asarray(data if isinstance(data, Sequence) else [data], dtype=np.float64)
    if len(table) == 0:
        raise UnsupportedImage("a LUT Data element is empty")
    return table.astype(np.float64), desc[1], desc[2]


_Modality = tuple[ModalityKind, float, float, np.ndarray, int]
_Voi = tuple[VoiKind, float, float, np.ndarray, int]
_IDENTITY: _Modality = (ModalityKind.IDENTITY, 1.0, 0.0, np.zeros(1), 0)


def _rescale(source: DatasetLike) -> _Modality | None:
    slope = _first(source.get("RescaleSlope"))
    intercept = _first(source.get("RescaleIntercept"))
    if slope is None and intercept is None:
        return None
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    if slope == 1.0 and intercept == 0.0:
        return _IDENTITY
    return ModalityKind.RESCALE, slope, intercept, np.zeros(1), 0


def _modality_top(ds: DatasetLike) -> _Modality:
    # PS3.3 C.11.1: a Modality LUT Sequence takes the place of Rescale Slope/Intercept.
    if ds.get("ModalityLUTSequence"):
        table, first, _ = _lut_values(ds, ds.get("ModalityLUTSequence")[0])
        return ModalityKind.TABLE, 1.0, 0.0, table, first
    return _rescale(ds) or _IDENTITY


def _window(source: DatasetLike) -> _Voi | None:
    center = _first(source.get("WindowCenter"))
    width = _first(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    name = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    kind = _VOI_FUNCTIONS.get(name, VoiKind.LINEAR)
    if not _valid_window(kind, width):
        return None  # an unusable window is treated as absent
    return kind, center, width, np.zeros(1), 0


def _voi_top(ds: DatasetLike) -> _Voi | None:
    # Like pydicom's apply_voi_lut, the VOI LUT Sequence wins over a window when both exist.
    if ds.get("VOILUTSequence"):
        lut = ds.get("VOILUTSequence")[0]
        if "LUTDescriptor" in lut and "LUTData" in lut:
            table, first, bits = _lut_values(ds, lut)
            scaled = np.clip(table * (255.0 / (2**bits - 1)), 0.0, 255.0)
            return VoiKind.TABLE, 0.0, 1.0, scaled, first
    return _window(ds)


def _valid_window(kind: VoiKind, width: float) -> bool:
    return width >= 1.0 if kind == VoiKind.LINEAR else width > 0.0


def stored_range_params(bits_stored: int) -> tuple[float, float]:
    """Window (center, width) for LINEAR_EXACT that maps 0..2**bits-1 onto 0..255."""
    top = float(2**bits_stored - 1)
    return top / 2.0, top


class _Reader:
    """Per-frame Modality/VOI lookup with the top-level values parsed once."""

    def __init__(self, ds: DatasetLike) -> None:
        self.ds = ds
        self.modality = _modality_top(ds)
        self.voi = _voi_top(ds)
        self.groups = bool(
            ds.get("PerFrameFunctionalGroupsSequence") or ds.get("SharedFunctionalGroupsSequence")
        )

    def frame_modality(self, index: int) -> _Modality:
        if self.groups:
            item = _group_item(self.ds, index, "PixelValueTransformationSequence")
            if item is not None:
                return _rescale(item) or _IDENTITY
        return self.modality

    def frame_voi(self, index: int) -> _Voi | None:
        if self.groups:
            item = _group_item(self.ds, index, "FrameVOILUTSequence")
            if item is not None:
                found = _window(item)
                if found is not None:
                    return found
        return self.voi


def display_params(
    ds: DatasetLike,
    spec: FrameSpec,
    indices: Sequence[int],
    window: tuple[float, float] | None,
    float_data: bool,
) -> list[DisplayParams | None]:
    """Per selected frame: the fused pipeline, or None where the min-max window must be added."""
    reader = _Reader(ds)
    invert = spec.photometric == "MONOCHROME1"
    cache: dict[tuple[object, ...], DisplayParams | None] = {}
    out: list[DisplayParams | None] = []
    for index in indices:
        modality = reader.frame_modality(index)
        if window is not None:
            voi: _Voi | None = (
                VoiKind.LINEAR,
                float(window[0]),
                max(1.0, float(window[1])),
                np.zeros(1),
                0,
            )
        else:
            voi = reader.frame_voi(index)
        key = (
            modality[0],
            modality[1],
            modality[2],
            id(modality[3]),
            None if voi is None else (voi[0], voi[1], voi[2], id(voi[3])),
        )
        if key not in cache:
            if voi is None and (
                modality[0] == ModalityKind.IDENTITY
                and spec.pixel_representation == 0
                and spec.bits_stored <= 8
                and not float_data
            ):
                center, width = stored_range_params(spec.bits_stored)
                voi = (VoiKind.LINEAR_EXACT, center, width, np.zeros(1), 0)
            cache[key] = None if voi is None else DisplayParams(*modality, *voi, invert)
        out.append(cache[key])
    return out


def modality_params(ds: DatasetLike, indices: Sequence[int]) -> list[DisplayParams]:
    """Modality-only parameters per frame, used to find the modality value range."""
    reader = _Reader(ds)
    return [DisplayParams(*reader.frame_modality(i)) for i in indices]


def palette_table(ds: DatasetLike) -> tuple[np.ndarray, int]:
    """Return the Palette Color LUT as ((N, 3) uint8, first value); PS3.3 C.7.6.3.1.5, C.7.9.2."""
    if not isinstance(ds, Dataset):  # service.dicom.flat never admits palette colour
        raise UnsupportedImage("a Palette Color image needs a pydicom Dataset")
    try:
        desc = [int(v) for v in ds.RedPaletteColorLookupTableDescriptor]
        entries = desc[0] or 65536
        domain = np.arange(desc[1], desc[1] + entries, dtype=np.int64)
        rgb = apply_color_lut(domain, ds)[:, :3]
    except Exception as exc:
        raise UnsupportedImage("the Palette Color Lookup Table is missing or invalid") from exc
    if rgb.dtype != np.uint8:
        top = float(2 ** desc[2] - 1) if desc[2] in (8, 16) else 65535.0
        rgb = np.clip(np.floor(rgb * (255.0 / top) + 0.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(rgb), desc[1]


def frame_delay_ms(ds: DatasetLike) -> float:
    """Animation frame delay in ms: Frame Time, else 1000 / Cine Rate, else 100 (PS3.3 C.7.6.5)."""
    frame_time = _first(ds.get("FrameTime"))
    if frame_time is not None and frame_time > 0:
        return frame_time
    rate = _first(ds.get("CineRate"))
    if rate is not None and rate > 0:
        return 1000.0 / rate
    return 100.0
