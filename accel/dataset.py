"""What accel reads a DICOM dataset through: pydicom's Dataset, or anything offering its
``get``/``in``/``[keyword]`` interface (``service.dicom.flat.FlatDataset``).

This is also the one place that knows which element holds a dataset's pixels and which
transfer syntax the dataset is encoded in.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from accel.errors import PixelDataError

__all__ = [
    "FLOAT_PIXEL_KEYWORDS",
    "PIXEL_DATA_TAG",
    "PIXEL_KEYWORDS",
    "PIXEL_TAGS",
    "DatasetLike",
    "encapsulated_frames",
    "has_float_pixel_data",
    "has_pixel_data",
    "pixel_keyword",
    "transfer_syntax",
]

# The three pixel data elements (PS3.3 C.7.6.3), by keyword and, in the same order, by tag.
FLOAT_PIXEL_KEYWORDS = ("FloatPixelData", "DoubleFloatPixelData")
PIXEL_KEYWORDS = ("PixelData", *FLOAT_PIXEL_KEYWORDS)
PIXEL_DATA_TAG = 0x7FE00010
PIXEL_TAGS = (PIXEL_DATA_TAG, 0x7FE00008, 0x7FE00009)


class DatasetLike(Protocol):
    """The part of pydicom's Dataset API the adapter and the native decoder use."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value of the element ``key`` (a keyword), or ``default`` when absent."""

    def __contains__(self, key: str, /) -> bool: ...

    def __getitem__(self, key: str, /) -> Any: ...


def has_pixel_data(ds: DatasetLike) -> bool:
    """Whether the dataset holds a Pixel Data, Float Pixel Data or Double Float Pixel Data
    element (possibly empty, possibly several: :func:`pixel_keyword` checks that)."""
    return any(keyword in ds for keyword in PIXEL_KEYWORDS)


def has_float_pixel_data(ds: DatasetLike) -> bool:
    """Whether the dataset holds Float or Double Float Pixel Data (PS3.3 C.7.6.24)."""
    return any(keyword in ds for keyword in FLOAT_PIXEL_KEYWORDS)


def pixel_keyword(ds: DatasetLike) -> str:
    """The keyword of the dataset's one, non-empty pixel data element; PixelDataError if the
    dataset has none, more than one, or an empty one."""
    present = [keyword for keyword in PIXEL_KEYWORDS if keyword in ds]
    if not present:
        raise PixelDataError("the dataset has no Pixel Data")
    if len(present) > 1:
        raise PixelDataError("the dataset has more than one Pixel Data element")
    if ds[present[0]].value is None:
        raise PixelDataError("the Pixel Data element is empty")
    return present[0]


def transfer_syntax(ds: DatasetLike) -> str:
    """The dataset's transfer syntax UID: the file meta's, else the one pydicom read a raw
    dataset with (``original_encoding``), else Explicit VR Little Endian."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return str(uid)
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRBigEndian if little is False else ExplicitVRLittleEndian


def encapsulated_frames(ds: DatasetLike, number_of_frames: int) -> list[bytes]:
    """Return every stored frame of encapsulated Pixel Data as bytes (PS3.5 A.4)."""
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths"))
    try:
        frames = list(
            generate_frames(
                ds.get("PixelData"), number_of_frames=number_of_frames, extended_offsets=offsets
            )
        )
    except Exception as exc:
        raise PixelDataError("the encapsulated Pixel Data is malformed") from exc
    if len(frames) < number_of_frames:
        raise PixelDataError(
            f"the Pixel Data holds {len(frames)} frames but Number of Frames is {number_of_frames}"
        )
    return frames[:number_of_frames]
