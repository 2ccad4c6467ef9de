"""Turn an uploaded ``.dcm`` or ``.zip`` into parsed DICOM instances, in memory, with limits."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import pydicom
from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from accel.dataset import PIXEL_TAGS, has_pixel_data, transfer_syntax
from service.dicom.archive import UploadLimits, iter_zip, looks_like_zip
from service.dicom.flat import FlatDataset, read_flat
from service.dicom.truncation import Truncation, find_truncation
from service.errors import PayloadTooLarge, TruncatedFile, UnprocessableContent, ValidationFailed

ACCEPTED = "must be a DICOM file (.dcm) or a .zip of DICOM files"
INVALID_FILE_TYPE = "Invalid file type. Only .dcm, .DCM, .zip are allowed."
ALLOWED_EXTENSIONS = frozenset({"", ".dcm", ".zip"})  # "": no extension, as DICOM often has
DEFER_BYTES = 1024 * 1024
NATIVE_SYNTAXES = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian})
DEFLATED = frozenset({DeflatedExplicitVRLittleEndian})
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class Instance(NamedTuple):
    """One parsed DICOM file: its upload or zip-entry name and its dataset."""

    name: str
    dataset: Dataset | FlatDataset


@dataclass(frozen=True, slots=True)
class Upload:
    """The DICOM instances found in an upload, and the zip entries that were not DICOM."""

    instances: tuple[Instance, ...]
    skipped: tuple[str, ...] = ()


Buffer = bytes | bytearray | memoryview


class BufferReader(io.RawIOBase):
    """A read-only, seekable file over an in-memory buffer that never copies the whole buffer:
    pydicom reads an upload through it, copying only the elements it reads."""

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self._view = memoryview(data).cast("B")
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._position + size
        chunk = bytes(self._view[self._position : end])
        self._position += len(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._position : self._position + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        """Release the view, so the buffer it reads can be freed or resized again."""
        self._view.release()
        super().close()


def has_dicm_magic(data: Buffer) -> bool:
    """True for a PS3.10 file: 128-byte preamble then ``DICM``."""
    return data[128:132] == b"DICM"


def _plausible(ds: Dataset | FlatDataset, *, pixels_cut: bool = False) -> bool:
    """A forced read accepts almost any bytes, so demand a real SOP Class UID or image pixels
    (``pixels_cut``: the file ends inside its pixel data, which ``ds`` therefore lacks)."""
    try:
        if 0x00080016 in ds:
            sop: Any = (
                ds.raw_bytes(0x00080016)
                if isinstance(ds, FlatDataset)
                else ds.get_item(0x00080016).value
            )
            if isinstance(sop, bytes):
                sop = sop.decode("ascii", "replace")
            sop = str(sop or "").strip("\x00 ")
            if _UID.match(sop) and len(sop) <= 64:
                return True
        has_pixels = pixels_cut or has_pixel_data(ds)
        return has_pixels and 0x00280010 in ds and 0x00280011 in ds
    except Exception:
        return False


def _fill_transfer_syntax(ds: Dataset) -> None:
    """Give a raw dataset (no file meta) the transfer syntax it was read with, so decoders work."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    if getattr(ds, "original_encoding", (None, None))[0] is None:
        return
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = UID(transfer_syntax(ds))


def parse_dicom(data: Buffer) -> Dataset | FlatDataset | None:
    """The dataset if the bytes are a DICOM file (magic, or a forced read that looks real);
    raises TruncatedFile (422) for a DICOM file that ends inside an element.

    The commonest files (service.dicom.flat) are read without building a pydicom Dataset; the
    flat reader declines a file whose elements run past its end, so it never returns a cut one.
    Every other file is checked by :func:`find_truncation` before pydicom reads it (pydicom
    stops silently at the end of the data).
    """
    if len(data) < 8:
        return None
    flat = read_flat(data)
    if flat is not None:
        return flat if _plausible(flat) else None
    truncation = find_truncation(data)
    if truncation is not None:
        if _is_dicom_before(data, truncation):
            raise TruncatedFile(truncation.message)
        return None
    return _read_with_pydicom(data)


def _is_dicom_before(data: Buffer, truncation: Truncation) -> bool:
    """Whether the elements before the one the file ends inside are a plausible dataset (else
    the bytes are not DICOM at all, and saying "truncated" would mislead)."""
    prefix = memoryview(data).cast("B")[: truncation.offset]
    flat = read_flat(prefix)
    ds = flat if flat is not None else _read_with_pydicom(prefix, check=False)
    return ds is not None and _plausible(ds, pixels_cut=truncation.tag in PIXEL_TAGS)


def _read_with_pydicom(data: Buffer, *, check: bool = True) -> Dataset | None:
    """pydicom's forced read of a whole file (no truncation check here), None if it fails or
    does not look like DICOM (``check``).

    Elements over DEFER_BYTES are not copied by pydicom but taken from ``data`` afterwards: the
    pixel data of an uncompressed file stays a view of the upload (no second copy of the pixel
    volume), other large values become bytes of their own.
    """
    if len(data) < 8:
        return None
    try:
        with BufferReader(data) as reader:
            ds = pydicom.dcmread(reader, force=True, defer_size=DEFER_BYTES)
        if transfer_syntax(ds) in DEFLATED:
            # Offsets of a deflated file point into the inflated stream: read it whole instead.
            with BufferReader(data) as reader:
                ds = pydicom.dcmread(reader, force=True)
        else:
            _load_deferred(ds, memoryview(data).cast("B"))
    except Exception:
        # pydicom raises many types for garbage (and warnings, when they are errors in tests).
        return None
    if len(ds) == 0 or (check and not _plausible(ds)):
        return None
    _fill_transfer_syntax(ds)
    return ds


def _load_deferred(ds: Dataset, view: memoryview) -> None:
    """Give every element pydicom deferred its value from the upload (see parse_dicom)."""
    native = transfer_syntax(ds) in NATIVE_SYNTAXES
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if not isinstance(raw, RawDataElement) or raw.value is not None or raw.value_tell is None:
            continue
        value = view[raw.value_tell : raw.value_tell + raw.length]
        if native and tag in PIXEL_TAGS:
            vr = raw.VR or "OW"
            if " or " in vr:  # implicit VR: PS3.5 A.1 gives OW (OB for 8-bit and less)
                vr = "OB" if int(ds.get("BitsAllocated", 16) or 16) <= 8 else "OW"
            ds[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)
        else:
            ds[tag] = raw._replace(value=bytes(value))


def _is_dicomdir(ds: Dataset | FlatDataset) -> bool:
    if 0x00041220 in ds:  # Directory Record Sequence
        return True
    meta = getattr(ds, "file_meta", None)
    try:
        sop = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    except Exception:  # pydicom converts lazily and raises many types for malformed values
        return False
    return bool(sop == MediaStorageDirectoryStorage)


def _not_dicom(detail: str) -> ValidationFailed:
    return ValidationFailed({"file": [detail]}, detail=f"The file {ACCEPTED}.")


def file_extension(filename: str) -> str:
    """The extension of the name's last path component, lower case (".dcm"), "" for none; as
    ``os.path.splitext``, leading dots are no extension (".dcm" is a name).

    A suffix of digits only is no extension: DICOM files are often named by their UID
    (``1.2.840.113619.2.55.3.604688119``).
    """
    base = filename[max(filename.rfind("/"), filename.rfind("\\")) + 1 :]
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem.strip(".") or not suffix or (suffix.isascii() and suffix.isdigit()):
        return ""
    return "." + suffix.lower()


def check_file_name(filename: str) -> None:
    """The guide's rule (400): a .dcm or .zip name in any case, or one without an extension."""
    if file_extension(filename) not in ALLOWED_EXTENSIONS:
        raise ValidationFailed({"file": [INVALID_FILE_TYPE]}, detail=INVALID_FILE_TYPE)


def is_zip_upload(filename: str, data: Buffer) -> bool:
    """Whether :func:`read_upload` reads the upload as a zip: no DICM magic, and a zip's magic
    or a .zip name."""
    return not has_dicm_magic(data) and (looks_like_zip(data) or file_extension(filename) == ".zip")


def read_upload(filename: str, data: Buffer, limits: UploadLimits) -> Upload:
    """Parse an upload whose name passes :func:`check_file_name`: DICM magic wins, then zip (by
    magic or a .zip name), then a forced read. Zip entry names are labels, never checked."""
    check_file_name(filename)
    label = filename or "upload"
    if not data:
        raise _not_dicom(f"{label!r} is empty; the file {ACCEPTED}")
    if is_zip_upload(label, data):
        return _read_zip(label, bytes(data), limits)
    ds = parse_dicom(data)
    if ds is None:
        raise _not_dicom(f"{label!r} could not be read as DICOM; the file {ACCEPTED}")
    if _is_dicomdir(ds):
        raise _not_dicom(f"{label!r} is a DICOMDIR index, not an image; the file {ACCEPTED}")
    return Upload(instances=(Instance(label, ds),))


def _read_zip(label: str, data: bytes, limits: UploadLimits) -> Upload:
    instances: list[Instance] = []
    skipped: list[str] = []
    for member in iter_zip(label, data, limits):
        if member.data is None:
            skipped.append(member.name)
            continue
        try:
            ds = parse_dicom(member.data)
        except TruncatedFile as exc:
            skipped.append(f"{member.name}: {exc.detail}")
            continue
        if ds is None or _is_dicomdir(ds):
            skipped.append(member.name)
        else:
            instances.append(Instance(member.name, ds))
    if not instances:
        raise _not_dicom(f"{label!r} contains no DICOM files; the file {ACCEPTED}")
    return Upload(instances=tuple(instances), skipped=tuple(skipped))


def _int_attr(ds: Dataset | FlatDataset, keyword: str, default: int | None) -> int:
    """An integer attribute for size arithmetic; missing or malformed is a 422, never a crash."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            if default is None:
                raise ValueError(keyword)
            return default
        number = int(value)
    except Exception:
        number = -1
    if number < 0:
        raise UnprocessableContent(
            f"The file has pixel data but no usable {keyword} ({_tag_text(keyword)})."
        )
    return number


def _tag_text(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword) or 0
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def pixel_volume_bytes(ds: Dataset | FlatDataset) -> int:
    """Bytes of the decoded pixel data: Rows x Columns x frames x samples x ceil(bits/8);
    1-bit data counts one byte per pixel, as it is once unpacked. 0 without pixel data."""
    if not has_pixel_data(ds):
        return 0
    rows = _int_attr(ds, "Rows", None)
    columns = _int_attr(ds, "Columns", None)
    frames = _int_attr(ds, "NumberOfFrames", 1)
    samples = _int_attr(ds, "SamplesPerPixel", 1)
    bits = _int_attr(ds, "BitsAllocated", None)
    return rows * columns * frames * samples * max(1, -(-bits // 8))


def check_pixel_volume(
    ds: Dataset | FlatDataset, max_bytes: int, *, name: str | None = None
) -> int:
    """Refuse (413) an instance whose decoded pixels would pass max_bytes; call before decoding."""
    size = pixel_volume_bytes(ds)
    if size > max_bytes:
        which = f"{name!r}" if name else "The file"
        raise PayloadTooLarge(
            f"{which} would decode to {size} bytes of pixel data; at most {max_bytes} bytes "
            "are allowed."
        )
    return size
