"""A file that ends inside an element is refused as truncated (422, naming the element and the
byte where it starts); one that ends cleanly between elements reads as what it holds. Every
expectation is derived from pydicom's own account of where each element lies
(``builders.element_spans``), never from the reader under test."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from service.dicom.archive import UploadLimits
from service.dicom.truncation import find_truncation
from service.dicom.upload import read_upload
from service.errors import TruncatedFile, ValidationFailed
from tests.dicom.builders import (
    SECRET_NAME,
    Span,
    element_spans,
    encapsulated,
    file_bytes,
    make_dataset,
    make_zip,
    to_file_bytes,
    with_sequence,
)
from tests.support import SAMPLE_0002, needs_sample, tiny_dicom

LIMITS = UploadLimits()
SOP_CLASS_UID = 0x00080016
PIXEL_DATA = 0x7FE00010
# name -> (file bytes, whether the dataset is little endian)
FILES: dict[str, tuple[bytes, bool]] = {
    "explicit LE (flat reader)": (file_bytes(make_dataset()), True),
    "implicit LE (flat reader)": (file_bytes(make_dataset(), ImplicitVRLittleEndian), True),
    "explicit BE": (file_bytes(make_dataset(), ExplicitVRBigEndian), False),
    "no preamble, implicit LE": (to_file_bytes(make_dataset(), preamble=False), True),
    "sequence, explicit LE": (file_bytes(with_sequence(make_dataset())), True),
    "sequence, implicit LE": (
        file_bytes(with_sequence(make_dataset()), ImplicitVRLittleEndian),
        True,
    ),
    "sequence, explicit BE": (
        file_bytes(with_sequence(make_dataset()), ExplicitVRBigEndian),
        False,
    ),
    "defined-length sequence": (
        file_bytes(with_sequence(make_dataset(), undefined_length=False)),
        True,
    ),
    "encapsulated fragments": (encapsulated(make_dataset(rows=4, columns=8)), True),
}


def expected_message(span: Span, cut: int, little: bool) -> str:
    """The reason for a file cut at ``cut`` inside ``span``: the tag's hex digits that the cut
    left in the file ('?' for the rest), and for a value of defined length what is left of it."""
    group, element = span.tag >> 16, span.tag & 0xFFFF
    in_file = [group & 0xFF, group >> 8, element & 0xFF, element >> 8]  # little endian order
    if not little:
        in_file = [group >> 8, group & 0xFF, element >> 8, element & 0xFF]
    shown = [
        f"{byte:02X}" if index < cut - span.start else "??" for index, byte in enumerate(in_file)
    ]
    if little:
        tag = f"({shown[1]}{shown[0]},{shown[3]}{shown[2]})"
    else:
        tag = f"({shown[0]}{shown[1]},{shown[2]}{shown[3]})"
    text = f"the file ends inside element {tag} at byte {span.start}; it looks truncated"
    if span.length is not None and cut >= span.value_start:
        text += f" (its value is {cut - span.value_start} bytes, expected {span.length})"
    return text


def refused_as_truncated(data: bytes) -> TruncatedFile:
    with pytest.raises(TruncatedFile) as info:
        read_upload("cut.dcm", data, LIMITS)
    assert info.value.status == 422
    assert SECRET_NAME not in str(info.value.to_problem())
    return info.value


@pytest.mark.parametrize("kind", FILES)
def test_every_cut_inside_an_element_is_truncated_and_every_cut_between_elements_reads(
    kind: str,
) -> None:
    data, little = FILES[kind]
    spans = element_spans(data)
    sop_class = next(span for span in spans if span.tag == SOP_CLASS_UID)
    assert spans[-1].tag == PIXEL_DATA and spans[-1].end == len(data)
    for cut in range(len(data)):
        inside = [span for span in spans if span.start < cut < span.end]
        if cut < sop_class.end or (inside and inside[0].start < sop_class.end):
            # Nothing that names a SOP Class is left before the cut: not DICOM at all.
            with pytest.raises(ValidationFailed) as info:
                read_upload("cut.dcm", data[:cut], LIMITS)
            assert ("could not be read as DICOM" if cut else "is empty") in str(info.value.errors)
        elif inside:
            error = refused_as_truncated(data[:cut])
            assert error.detail == expected_message(inside[0], cut, little), cut
        else:
            ds = read_upload("cut.dcm", data[:cut], LIMITS).instances[0].dataset
            assert all(span.tag in ds for span in spans if span.end <= cut), cut
            assert not any(span.tag in ds for span in spans if span.start >= cut), cut


def test_a_clean_cut_before_the_pixels_is_metadata_only_and_one_byte_more_is_truncated() -> None:
    data = tiny_dicom(16, 16)
    pixels = element_spans(data)[-1]
    assert pixels.tag == PIXEL_DATA
    ds = read_upload("cut.dcm", data[: pixels.start], LIMITS).instances[0].dataset
    assert "PixelData" not in ds and ds.get("Rows") == 16
    error = refused_as_truncated(data[: pixels.start + 1])
    assert error.detail == expected_message(pixels, pixels.start + 1, little=True)
    assert "(??E0,????)" in error.detail  # one byte of (7FE0,0010) made it into the file


@pytest.mark.parametrize("fragments", [1, 3])
def test_encapsulated_pixel_data_cut_inside_a_fragment_or_before_its_delimiter(
    fragments: int,
) -> None:
    data = encapsulated(make_dataset(rows=8, columns=8), fragments)
    pixels = element_spans(data)[-1]
    assert pixels.tag == PIXEL_DATA and pixels.length is None
    assert find_truncation(data) is None
    delimiter = len(data) - 8  # (FFFE,E0DD) and its zero length end the value
    last_fragment = data.rindex(b"\xfe\xff\x00\xe0", 0, delimiter)
    for cut in (last_fragment + 4, last_fragment + 12, delimiter, delimiter + 4, len(data) - 1):
        error = refused_as_truncated(data[:cut])
        assert error.detail == (
            f"the file ends inside element (7FE0,0010) at byte {pixels.start}; it looks truncated"
        )


@pytest.mark.parametrize(
    "syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_a_cut_inside_a_sequence_item_names_the_sequence(syntax: str) -> None:
    data = file_bytes(with_sequence(make_dataset()), syntax)
    sequence = next(span for span in element_spans(data) if span.tag == 0x00081032)
    second_item_value = data.index(b"22", sequence.value_start)
    for cut in (second_item_value, second_item_value + 1, sequence.end - 8, sequence.end - 1):
        error = refused_as_truncated(data[:cut])
        assert error.detail == (
            f"the file ends inside element (0008,1032) at byte {sequence.start}; it looks truncated"
        )


def test_a_truncated_zip_entry_is_skipped_with_the_reason() -> None:
    whole = tiny_dicom(16, 16)
    cut = whole[:-100]
    pixels = element_spans(whole)[-1]
    reason = expected_message(pixels, len(cut), little=True)
    upload = read_upload("study.zip", make_zip({"good.dcm": whole, "cut.dcm": cut}), LIMITS)
    assert [instance.name for instance in upload.instances] == ["good.dcm"]
    assert upload.skipped == (f"cut.dcm: {reason}",)


@needs_sample
@pytest.mark.parametrize("size", [2000, 3000])
def test_the_first_bytes_of_0002_are_truncated(size: int) -> None:
    data = SAMPLE_0002.read_bytes()
    [span] = [span for span in element_spans(data) if span.start < size < span.end]
    error = refused_as_truncated(data[:size])
    assert error.detail == expected_message(span, size, little=True)


def test_every_complete_file_has_no_truncation() -> None:
    for data, _ in FILES.values():
        assert find_truncation(data) is None
    data = tiny_dicom(8, 8)
    assert find_truncation(data) is None and find_truncation(memoryview(bytearray(data))) is None


def _nested(depth: int) -> Dataset:
    ds = make_dataset()
    inner = Dataset()
    inner.CodeValue = "1"
    for _ in range(depth):
        inner.is_undefined_length_sequence_item = True
        outer = Dataset()
        outer.ProcedureCodeSequence = Sequence([inner])
        outer["ProcedureCodeSequence"].is_undefined_length = True
        inner = outer
    ds.ProcedureCodeSequence = inner.ProcedureCodeSequence
    ds["ProcedureCodeSequence"].is_undefined_length = True
    return ds


def test_nesting_too_deep_to_follow_is_left_to_pydicom() -> None:
    code_value = b"\x08\x00\x00\x01SH"  # (0008,0100) in explicit VR little endian
    shallow = file_bytes(_nested(10))
    cut = shallow.index(code_value) + 9  # inside the innermost item's value
    assert find_truncation(shallow[:cut]) is not None
    deep = file_bytes(_nested(100))
    assert find_truncation(deep) is None
    assert find_truncation(deep[: len(deep) // 2]) is None  # not followed, never raised


@settings(database=None, max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 2000))
def test_any_bytes_give_a_verdict_and_never_raise(garbage: bytes, at: int) -> None:
    base = FILES["sequence, explicit LE"][0]
    spliced = base[: at % len(base)] + garbage
    for data in (garbage, spliced, b"\x00" * 128 + b"DICM" + garbage):
        found = find_truncation(data)
        assert found is None or 0 <= found.offset < len(data)


def test_random_cuts_of_random_mutations_never_raise() -> None:
    rng = random.Random(7)
    bases = [data for data, _ in FILES.values()]
    for _ in range(300):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        found = find_truncation(bytes(data[: rng.randrange(len(data))]))
        assert found is None or found.offset >= 0
