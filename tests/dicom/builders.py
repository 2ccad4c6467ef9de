"""Small DICOM files and zips built in memory for the tests (no fixtures on disk)."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import NamedTuple

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SECRET_NAME = "SECRET^PATIENT"


def make_dataset(*, rows: int = 4, columns: int = 4, frames: int | None = None) -> Dataset:
    """A tiny 8-bit MONOCHROME2 secondary capture with a recognisable patient name."""
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = SECRET_NAME
    ds.PatientID = "ID-123"
    ds.Modality = "OT"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    count = 1
    if frames is not None:
        ds.NumberOfFrames = frames
        count = frames
    ds.PixelData = bytes(i % 256 for i in range(rows * columns)) * count
    return ds


def to_file_bytes(ds: Dataset, *, preamble: bool = True) -> bytes:
    """Serialise as a PS3.10 file (preamble + DICM + file meta), or as a bare implicit dataset."""
    buffer = BytesIO()
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", SECONDARY_CAPTURE)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(buffer, enforce_file_format=True)
    else:
        ds.save_as(buffer, implicit_vr=True, little_endian=True)
    return buffer.getvalue()


def dicom_bytes(**kwargs: int) -> bytes:
    """A complete small DICOM file."""
    return to_file_bytes(make_dataset(**kwargs))


def make_zip(entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip held in memory with the given entry names and contents."""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def file_bytes(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """A PS3.10 file whose dataset is encoded as ``syntax`` says (explicit or implicit VR,
    little or big endian; encapsulated syntaxes are explicit VR little endian)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", SECONDARY_CAPTURE)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", generate_uid())
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = BytesIO()
    ds.save_as(
        buffer,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=syntax != ExplicitVRBigEndian,
        enforce_file_format=True,
    )
    return buffer.getvalue()


def with_sequence(ds: Dataset, *, undefined_length: bool = True) -> Dataset:
    """``ds`` with a two-item sequence before the pixels: by default the sequence and its items
    have undefined lengths, ended by delimiters; else pydicom writes their lengths."""
    items = []
    for value in ("1", "22"):
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.is_undefined_length_sequence_item = undefined_length
        items.append(item)
    ds.ProcedureCodeSequence = Sequence(items)
    ds["ProcedureCodeSequence"].is_undefined_length = undefined_length
    return ds


def encapsulated(ds: Dataset, fragments: int = 3) -> bytes:
    """``ds`` as a JPEG Baseline file whose Pixel Data is its one frame split over
    ``fragments`` fragments; only the structure matters, nothing is decoded."""
    ds.PixelData = encapsulate([bytes(ds.PixelData)], fragments_per_frame=fragments)
    ds["PixelData"].VR = "OB"
    return file_bytes(ds, JPEGBaseline8Bit)


class Span(NamedTuple):
    """Where one top-level element lies in a file: header start, value start, end (exclusive),
    and its declared length (None when undefined)."""

    tag: int
    start: int
    value_start: int
    end: int
    length: int | None


def element_spans(data: bytes) -> list[Span]:
    """Every dataset element at the top level (file meta excluded), as pydicom reads the file:
    an independent account of where each element's header and value lie."""
    ds = pydicom.dcmread(BytesIO(data), force=True, defer_size=0)
    implicit, _ = ds.original_encoding
    located: list[tuple[int, int, int, int | None]] = []  # tag, header start, value start, length
    for tag in list(ds.keys()):
        element = ds.get_item(tag, keep_deferred=True)
        if isinstance(element, RawDataElement):
            value_start, vr = element.value_tell, element.VR
            length = None if element.length == 0xFFFFFFFF else element.length
        else:  # a sequence of undefined length, parsed while reading
            assert isinstance(element, DataElement) and element.file_tell is not None
            value_start, vr, length = element.file_tell, element.VR, None
        header = 12 if not implicit and vr in EXPLICIT_VR_LENGTH_32 else 8
        located.append((int(tag), value_start - header, value_start, length))
    ends = [start for _, start, _, _ in located[1:]] + [len(data)]
    return [
        Span(tag, start, value_start, end, length)
        for (tag, start, value_start, length), end in zip(located, ends, strict=True)
    ]
