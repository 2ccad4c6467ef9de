"""service.dicom.flat: the fast reader answers exactly what the pydicom path answers, and steps
aside (None) for every file it does not handle."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from io import BytesIO
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

import service.dicom.upload as upload_module
from service.dicom.flat import FlatDataset, read_flat
from service.dicom.metadata import extract_metadata
from service.dicom.options import ReadOptions
from service.dicom.pipeline import answer_for_file
from service.errors import ApiError, TruncatedFile
from service.settings import load_settings
from tests.dicom.builders import SECONDARY_CAPTURE, file_bytes, make_dataset

SETTINGS = load_settings({})
# Every VR the reader may meet, through the Selector<VR>Value attributes, plus common ones.
SELECTORS = [f"Selector{vr}Value" for vr in
             ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OW",
              "PN", "SH", "SL", "SS", "ST", "TM", "UC", "UI", "UL", "UR", "US", "UT")]  # fmt: skip
COMMON = ["ImageType", "StudyDate", "StudyTime", "AcquisitionDateTime", "Manufacturer",
          "ReferringPhysicianName", "StationName", "PatientAge", "PatientWeight", "KVP",
          "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "PixelSpacing",
          "ImageComments", "RetrieveAETitle", "FrameTime", "AcquisitionMatrix", "RetrieveURL",
          "PixelAspectRatio", "CTDIvol", "ImagedVolumeWidth", "SmallestImagePixelValue",
          "RescaleType", "VOILUTFunction", "WindowCenterWidthExplanation"]  # fmt: skip
TEXT = st.text(alphabet="0123456789ABCZabz .+-eE_^=\\:/é\x00\x1b", max_size=70)
NUMBERISH = st.sampled_from(
    ["1", "-2", "+3", "0012", " 7", "8 ", "1.5", "-.5", "1e3", "2.50", "1.0000000000000002",
     "abc", "", "2147483648", "40\\400", "1.5\\ 2", "3\\-4\\5", ".", "1,5"]
)  # fmt: skip
UIDS = st.sampled_from(["1.2.840.10008.5.1.4.1.1.2", "1.2.3\\1.2.4", "1.02.3", "x1", "1." * 40])


_STRUCT = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FL": "f", "FD": "d"}
_CHARSET_VRS = ("PN", "SH", "LO", "LT", "ST", "UT", "UC")


def _encoded(vr: str, charset: str | None) -> st.SearchStrategy[bytes]:
    """Raw value bytes for ``vr``: valid, odd and invalid values alike (written as they are)."""
    if vr in _STRUCT:
        code = _STRUCT[vr]
        numbers = (
            st.floats(-1e6, 1e6, width=32)
            if code in "fd"
            else st.integers(*((0, 65535) if code in "HI" else (-32768, 32767)))
        )
        values = st.lists(numbers, min_size=1, max_size=3)
        raw = values.map(lambda v: struct.pack(f"<{len(v)}{code}", *v))
        return raw | st.binary(min_size=1, max_size=5)  # a length that is no multiple
    if vr == "AT":
        return st.lists(st.sampled_from([0x00280010, 0x00181063]), min_size=1, max_size=2).map(
            lambda tags: b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in tags)
        )
    if vr in ("OB", "OW"):
        return st.binary(max_size=20)
    text = NUMBERISH if vr in ("DS", "IS") else UIDS if vr == "UI" else TEXT | NUMBERISH
    codec = "utf-8" if charset == "ISO_IR 192" and vr in _CHARSET_VRS else "latin-1"
    encoded = text.map(lambda value: value.encode(codec))
    # Latin-1 bytes where UTF-8 is declared: not decodable, pydicom warns and replaces.
    return (
        encoded | TEXT.map(lambda value: value.encode("latin-1")) if codec == "utf-8" else encoded
    )


def _padded(vr: str, value: bytes) -> bytes:
    return value + (b"\0" if vr in ("UI", "OB") else b" ") * (len(value) % 2)


_LONG_VRS = ("OB", "OW", "UC", "UR", "UT", "UN")


def _encode(elements: dict[int, tuple[str, bytes]], syntax: str) -> bytes:
    """A PS3.10 file holding ``elements`` exactly as given (pydicom's writer would convert, and
    refuse, the malformed values this test feeds the readers)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    out = BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    implicit = syntax == ImplicitVRLittleEndian
    for tag in sorted(elements):
        vr, value = elements[tag]
        value = _padded(vr, value)
        out.write(struct.pack("<HH", tag >> 16, tag & 0xFFFF))
        if implicit:
            out.write(struct.pack("<I", len(value)))
        elif vr in _LONG_VRS:
            out.write(vr.encode() + b"\0\0" + struct.pack("<I", len(value)))
        else:
            out.write(vr.encode() + struct.pack("<H", len(value)))
        out.write(value)
    return out.getvalue()


def _us(number: int) -> tuple[str, bytes]:
    return "US", struct.pack("<H", number)


def _text(vr: str, text: str) -> tuple[str, bytes]:
    return vr, text.encode("latin-1")


@st.composite
def images(draw: st.DrawFn) -> tuple[bytes, ReadOptions]:
    """A generated single-sample image file with random attributes and values, and options."""
    rows, columns = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    frames = draw(st.sampled_from([None, 1, 2, 3]))
    bits = draw(st.sampled_from([8, 16, 32]))
    stored = draw(st.integers(1, bits))
    pixels = rows * columns * (frames or 1) * bits // 8
    photometric = draw(st.sampled_from(["MONOCHROME1", "MONOCHROME2"]))
    elements = {
        0x00080016: _text("UI", SECONDARY_CAPTURE),
        0x00080018: _text("UI", generate_uid()),
        0x00080060: _text("CS", "OT"),
        0x00100010: _text("PN", "SECRET^PATIENT"),
        0x00280002: _us(1),
        0x00280004: _text("CS", photometric),
        0x00280010: _us(rows),
        0x00280011: _us(columns),
        0x00280100: _us(bits),
        0x00280101: _us(stored),
        0x00280102: _us(stored - 1),
        0x00280103: _us(draw(st.integers(0, 1))),
        0x7FE00010: (
            "OB" if bits == 8 else "OW",
            draw(st.binary(min_size=pixels, max_size=pixels)),
        ),
    }
    if frames is not None:
        elements[0x00280008] = _text("IS", str(frames))
    charset = draw(st.sampled_from([None, "ISO_IR 100", "ISO_IR 192"]))
    if charset:
        elements[0x00080005] = _text("CS", charset)
    for keyword in draw(st.lists(st.sampled_from(SELECTORS + COMMON), max_size=12, unique=True)):
        tag, vr = tag_for_keyword(keyword), dictionary_VR(keyword)
        vr = vr.split(" or ")[draw(st.integers(0, 1))] if " or " in vr else vr
        elements[tag] = (vr, draw(_encoded(vr, charset)))
    for name in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if draw(st.booleans()):
            value = draw(st.sampled_from(["40", "400", "1", "-1024", "0", "2.5", "40\\80", "x"]))
            elements[tag_for_keyword(name)] = _text("DS", value)
    if draw(st.booleans()):
        elements[0x00091010] = _text("LO", "private")
    syntax = draw(st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
    options = ReadOptions(
        fields=draw(
            st.sampled_from(
                [None, ("PatientName", "TransferSyntaxUID", "Missing", "PixelData", "Rows")]
            )
        ),
        return_format=draw(st.sampled_from(["png", "jpeg", "gif"])),
        window=draw(st.sampled_from([None, (40.0, 400.0)])),
    )
    return _encode(elements, syntax), options


def _answer(data: bytes, options: ReadOptions) -> tuple[str, Any]:
    try:
        return "ok", answer_for_file("x.dcm", data, options, SETTINGS, None).to_bytes()
    except ApiError as exc:
        return "error", (exc.status, exc.detail)


@contextlib.contextmanager
def pydicom_only() -> Iterator[None]:
    """Every upload read by pydicom, as before the fast reader existed."""
    original = upload_module.read_flat
    upload_module.read_flat = lambda data: None
    try:
        yield
    finally:
        upload_module.read_flat = original


def _pydicom_answer(data: bytes, options: ReadOptions) -> tuple[str, Any]:
    with pydicom_only():
        return _answer(data, options)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_the_fast_reader_answers_byte_for_byte_what_pydicom_answers(
    case: tuple[bytes, ReadOptions],
) -> None:
    data, options = case
    assert _answer(data, options) == _pydicom_answer(data, options)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_plain_image_is_read_flat(syntax: str) -> None:
    ds = make_dataset(rows=3, columns=2)
    ds.SeriesNumber = 4
    flat = read_flat(file_bytes(ds, syntax))
    assert isinstance(flat, FlatDataset)
    assert flat.get("Rows") == 3 and flat.get("SeriesNumber") == 4
    assert flat.get("NumberOfFrames", 1) == 1 and "NumberOfFrames" not in flat
    assert flat.file_meta.get("TransferSyntaxUID") == syntax
    assert bytes(flat["PixelData"].value) == bytes(ds.PixelData)


def _with_sequence(ds: Dataset) -> None:
    item = Dataset()
    item.CodeValue = "1"
    ds.ProcedureCodeSequence = Sequence([item])


def _rgb(ds: Dataset) -> None:
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = bytes(len(ds.PixelData) * 3)


def _palette(ds: Dataset) -> None:
    ds.PhotometricInterpretation = "PALETTE COLOR"


def _one_bit(ds: Dataset) -> None:
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0


def _other_charset(ds: Dataset) -> None:
    ds.SpecificCharacterSet = "ISO_IR 144"


def _float_pixels(ds: Dataset) -> None:
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = bytes(4 * 4 * 4)


def _ambiguous_vr(ds: Dataset) -> None:
    ds.SmallestImagePixelValue = 0


@pytest.mark.parametrize(
    ("change", "syntax"),
    [
        (_with_sequence, ExplicitVRLittleEndian),
        (_with_sequence, ImplicitVRLittleEndian),
        (_rgb, ExplicitVRLittleEndian),
        (_palette, ExplicitVRLittleEndian),
        (_one_bit, ExplicitVRLittleEndian),
        (_other_charset, ExplicitVRLittleEndian),
        (_float_pixels, ExplicitVRLittleEndian),
        (_ambiguous_vr, ImplicitVRLittleEndian),
        (None, ExplicitVRBigEndian),
    ],
)
def test_what_the_fast_reader_does_not_handle_goes_to_pydicom(change: Any, syntax: str) -> None:
    ds = make_dataset()
    if change is not None:
        change(ds)
    data = file_bytes(ds, syntax)
    assert read_flat(data) is None
    assert upload_module.parse_dicom(data) is not None  # pydicom reads it


def test_compressed_files_and_files_without_a_preamble_go_to_pydicom() -> None:
    ds = make_dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.compress(RLELossless)
    assert read_flat(_file_bytes_keep_syntax(ds)) is None
    bare = BytesIO()
    make_dataset().save_as(bare, implicit_vr=True, little_endian=True)
    assert read_flat(bare.getvalue()) is None


def _file_bytes_keep_syntax(ds: Dataset) -> bytes:
    out = BytesIO()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("cut", [1, 7, 50, 200])
def test_truncated_files_go_to_pydicom_and_never_raise(cut: int) -> None:
    data = file_bytes(make_dataset(rows=8, columns=8), ExplicitVRLittleEndian)
    assert read_flat(data[:-cut]) is None


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_a_file_cut_inside_an_element_is_declined_and_reported_as_truncated(syntax: str) -> None:
    data = file_bytes(make_dataset(rows=8, columns=8), syntax)
    pixels_start = data.index(b"\xe0\x7f\x10\x00")
    for cut in (pixels_start + 3, pixels_start + 10, len(data) - 1):
        assert read_flat(data[:cut]) is None  # the walk's own end check: no dataset
        with pytest.raises(
            TruncatedFile, match=rf"^the file ends inside element \(.*at byte {pixels_start};"
        ):
            upload_module.parse_dicom(data[:cut])
    assert isinstance(upload_module.parse_dicom(data[:pixels_start]), FlatDataset)


def test_undefined_length_goes_to_pydicom() -> None:
    data = bytearray(file_bytes(make_dataset(), ExplicitVRLittleEndian))
    at = data.index(b"\xe0\x7f\x10\x00OB\x00\x00")
    data[at + 8 : at + 12] = b"\xff\xff\xff\xff"
    assert read_flat(bytes(data)) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_metadata_does_not_depend_on_which_values_were_read_before(
    case: tuple[bytes, ReadOptions],
) -> None:
    fresh, touched = read_flat(case[0]), read_flat(case[0])
    assume(fresh is not None and touched is not None)  # e.g. implicit VR with "US or SS"
    assert fresh is not None and touched is not None
    for tag in touched.tags():
        with contextlib.suppress(Exception):  # what pydicom refuses to convert stays raw
            touched.value(tag)
    assert extract_metadata(touched, None) == extract_metadata(fresh, None)


EDGE_VALUES = [
    ("StationName", "SH", "A" * 20 + "\\B"),  # over SH's 16 characters: pydicom warns
    ("StationName", "SH", " lead\\trail \\ \x00"),
    ("Manufacturer", "LO", "x" * 70),
    ("Manufacturer", "LO", "a\\b\\c"),
    ("InstitutionName", "LO", "José"),  # not UTF-8: pydicom warns and replaces
    ("ImageComments", "LT", "line\\with backslash  \x00"),
    ("SelectorSTValue", "ST", "s" * 1100),
    ("SelectorUTValue", "UT", "esc \x1b$B text"),
    ("SelectorUCValue", "UC", "u\\c "),
    ("PatientName", "PN", "Doe^John\\Roe^Jane"),
    ("ImageType", "CS", "ORIGINAL\\primary\\ "),
    ("RetrieveAETitle", "AE", " AE \\ X"),
    ("SOPInstanceUID", "UI", "1." * 40),
    ("SOPInstanceUID", "UI", "1.2.03"),
    ("SliceThickness", "DS", "1.0000000000000002"),
    ("SliceThickness", "DS", " 2.5 \\ 3"),
    ("SeriesNumber", "IS", "2147483648"),
    ("SeriesNumber", "IS", "0012\\+5"),
    ("StudyDate", "DA", "2024-01-01"),
]


@pytest.mark.parametrize("charset", [None, "ISO_IR 192"])
@pytest.mark.parametrize(("keyword", "vr", "text"), EDGE_VALUES)
def test_edge_values_show_as_pydicom_shows_them(
    keyword: str, vr: str, text: str, charset: str | None
) -> None:
    elements = {
        0x00080016: _text("UI", SECONDARY_CAPTURE),
        tag_for_keyword(keyword): (vr, text.encode("latin-1")),  # Latin-1 bytes, even as UTF-8
    }
    if charset:
        elements[0x00080005] = _text("CS", charset)
    data = _encode(elements, ExplicitVRLittleEndian)
    flat = read_flat(data)
    assert flat is not None
    with pydicom_only():
        reference = upload_module.parse_dicom(data)
    assert reference is not None and not isinstance(reference, FlatDataset)
    assert extract_metadata(flat, None) == extract_metadata(reference, None)
