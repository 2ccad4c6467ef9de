"""Small DICOM files and zips built in memory for the tests (no fixtures on disk)."""

from __future__ import annotations

import zipfile
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

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
