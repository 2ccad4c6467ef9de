"""Build the JSON metadata of a DICOM dataset: keyword -> string, sequences as lists, bulk data
summarised; never raises, never dumps bulk data whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_keyword, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from accel.dataset import PIXEL_DATA_TAG
from service.dicom.flat import BULK_VRS, FlatDataset, standard_keyword

MAX_DEPTH = 8
BULK_PREVIEW = 9
TOO_DEEP = "<sequence nested too deeply>"
BUFFERS = (bytes, bytearray, memoryview)


def summarise_bulk(value: bytes | bytearray | memoryview) -> str:
    """The first 9 bytes as a Python bytes literal followed by '.....' (the spec's PixelData)."""
    if not len(value):
        return ""
    if len(value) > BULK_PREVIEW:
        return repr(bytes(value[:BULK_PREVIEW]))[:-1] + "....."
    return repr(bytes(value))


def _is_bulk(tag: int, vr: str | None) -> bool:
    # Ambiguous VRs read without context look like "OB or OW" / "US or OW": any bulk part counts.
    return tag == PIXEL_DATA_TAG or any(part in BULK_VRS for part in str(vr or "").split(" or "))


def _raw_text(ds: Dataset, tag: int) -> str:
    """Fallback when pydicom cannot convert a value: its bytes as latin-1, padding stripped."""
    try:
        value = ds.get_item(tag).value
    except Exception:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1").strip("\x00 ")
    try:
        return "" if value is None else str(value)
    except Exception:
        return ""


def _render_value(ds: Dataset, tag: int, depth: int) -> Any:
    """One element's JSON value by the rules in the module docstring; falls back, never raises."""
    try:
        raw = ds.get_item(tag, keep_deferred=True)
        vr = getattr(raw, "VR", None)
        if _is_bulk(tag, vr) and isinstance(raw.value, BUFFERS):
            return summarise_bulk(raw.value)
        elem = ds[tag]
        value = elem.value
        if elem.VR == "SQ" or isinstance(value, DicomSequence):
            if depth >= MAX_DEPTH:
                return TOO_DEEP
            return [_dataset_to_dict(item, depth + 1) for item in value]
        if _is_bulk(tag, elem.VR):
            if isinstance(value, BUFFERS):
                return summarise_bulk(value)
            return "" if value is None else str(value)
        if value is None:
            return ""
        return str(value)
    except Exception:
        return _raw_text(ds, tag)


def _dataset_to_dict(ds: Dataset, depth: int) -> dict[str, Any]:
    """Every standard (keyword-bearing, non-private, non-file-meta) element, in tag order."""
    out: dict[str, Any] = {}
    try:
        tags = sorted(ds.keys())
    except Exception:
        return out
    for tag in tags:
        if tag >> 16 == 0x0002 or (tag >> 16) & 1 or not dictionary_has_tag(tag):
            continue
        keyword = dictionary_keyword(tag)
        if keyword:
            out[keyword] = _render_value(ds, tag, depth)
    return out


def _flat_value(ds: FlatDataset, tag: int) -> Any:
    """:func:`_render_value` for a FlatDataset (which holds no sequences): the same strings."""
    try:
        if tag == PIXEL_DATA_TAG or ds.vr(tag) in BULK_VRS:
            return summarise_bulk(ds.value(tag))
        return ds.text(tag)
    except Exception:
        return ds.raw_bytes(tag).decode("latin-1").strip("\x00 ")


def _flat_metadata(ds: FlatDataset, fields: Sequence[str] | None) -> dict[str, Any]:
    if fields is None:
        return {
            keyword: _flat_value(ds, tag)
            for tag in ds.tags()
            if (keyword := standard_keyword(tag)) is not None
        }
    out: dict[str, Any] = {}
    for keyword in fields:
        tag = tag_for_keyword(keyword)
        present = tag is not None and (ds.has_meta(tag) if tag >> 16 == 0x0002 else tag in ds)
        out[keyword] = _flat_value(ds, tag) if present else None  # type: ignore[arg-type]
    return out


def extract_metadata(ds: Dataset | FlatDataset, fields: Sequence[str] | None) -> dict[str, Any]:
    """All standard elements, or just ``fields`` in the order asked (None where absent); file
    meta keywords (group 0002) are only returned when asked for by name."""
    if isinstance(ds, FlatDataset):
        return _flat_metadata(ds, fields)
    if fields is None:
        return _dataset_to_dict(ds, 0)
    out: dict[str, Any] = {}
    meta = getattr(ds, "file_meta", None)
    for keyword in fields:
        tag = tag_for_keyword(keyword)
        source = meta if tag is not None and tag >> 16 == 0x0002 else ds
        if tag is None or source is None or tag not in source:
            out[keyword] = None
            continue
        out[keyword] = _render_value(source, tag, 0)
    return out
