"""extract_metadata: the spec's example for 0002.DCM, field selection, bulk data, bad values."""

from __future__ import annotations

import warnings
from io import BytesIO

import orjson
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from service.dicom.archive import UploadLimits
from service.dicom.metadata import MAX_DEPTH, TOO_DEEP, extract_metadata, summarise_bulk
from service.dicom.upload import read_upload
from tests.dicom.builders import SECRET_NAME, make_dataset, to_file_bytes
from tests.support import SAMPLE_0002, SPEC_EXAMPLE, needs_sample

SAMPLE = SAMPLE_0002


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return read_upload("0002.DCM", SAMPLE.read_bytes(), UploadLimits()).instances[0].dataset


@needs_sample
def test_spec_example_matches_field_by_field(sample: Dataset) -> None:
    ours = orjson.loads(orjson.dumps(extract_metadata(sample, None)))
    for key, value in SPEC_EXAMPLE.items():
        assert ours.get(key) == value, key
    # and in the same relative order as the example
    assert [k for k in ours if k in SPEC_EXAMPLE] == list(SPEC_EXAMPLE)


@needs_sample
def test_sample_rules(sample: Dataset) -> None:
    ours = extract_metadata(sample, None)
    assert not any(k.startswith(("MediaStorage", "TransferSyntax")) for k in ours)  # no group 2
    assert ours["KVP"] == "" and ours["InstanceNumber"] == ""  # empty DS/IS are "", not "None"
    assert ours["SourceImageSequence"] == [
        {
            "ReferencedSOPClassUID": "1.2.840.10008.5.1.4.1.1.12.1",
            "ReferencedSOPInstanceUID": "1.3.12.2.1107.5.4.3.321890.19960124.162922.28",
        }
    ]
    assert all(isinstance(v, str | list) for v in ours.values())


@needs_sample
def test_sample_selected_fields(sample: Dataset) -> None:
    fields = ["Modality", "PatientName", "EchoTime", "TransferSyntaxUID", "PixelData"]
    assert extract_metadata(sample, fields) == {
        "Modality": "XA",
        "PatientName": "Rubo DEMO",
        "EchoTime": None,
        "TransferSyntaxUID": "1.2.840.10008.1.2.4.50",
        "PixelData": SPEC_EXAMPLE["PixelData"],
    }
    assert list(extract_metadata(sample, fields)) == fields


def test_bulk_summary() -> None:
    assert summarise_bulk(b"") == ""
    assert summarise_bulk(b"\x00\x01") == "b'\\x00\\x01'"
    assert summarise_bulk(b"abcdefghi") == "b'abcdefghi'"
    assert summarise_bulk(b"abcdefghij") == "b'abcdefghi....."


def test_private_tags_skipped_and_bulk_never_dumped() -> None:
    ds = make_dataset(rows=64, columns=64)
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x00091002, "OB", b"\x01" * 1000)
    ds.add_new(0x00420011, "OB", b"%PDF-1.4 and a lot more")  # EncapsulatedDocument
    out = extract_metadata(ds, None)
    assert out["EncapsulatedDocument"] == "b'%PDF-1.4 ....."
    assert out["PixelData"].endswith(".....") and len(out["PixelData"]) < 50
    assert "private" not in out.values()
    assert len(orjson.dumps(out)) < 1500


def test_multivalue_and_numbers() -> None:
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelSpacing = ["0.5", "0.25"]
    ds.WindowCenter = "40"
    ds.FrameIncrementPointer = 0x00181063
    out = extract_metadata(ds, None)
    assert out == {
        "ImageType": "['ORIGINAL', 'PRIMARY']",
        "PixelSpacing": "[0.5, 0.25]",
        "WindowCenter": "40",
        "FrameIncrementPointer": "(0018,1063)",
    }


def test_nested_sequences_and_depth_limit() -> None:
    root = Dataset()
    current = root
    for level in range(MAX_DEPTH + 3):
        item = Dataset()
        item.CodeValue = str(level)
        current.ReferencedSeriesSequence = Sequence([item])
        current = item
    out = extract_metadata(root, None)
    node = out
    for level in range(MAX_DEPTH):
        node = node["ReferencedSeriesSequence"][0]
        assert node["CodeValue"] == str(level)
    assert node["ReferencedSeriesSequence"] == TOO_DEEP
    assert (
        extract_metadata(root, ["ReferencedSeriesSequence"])["ReferencedSeriesSequence"][0][
            "CodeValue"
        ]
        == "0"
    )


def test_empty_sequence_is_empty_list() -> None:
    ds = Dataset()
    ds.ReferencedSeriesSequence = []
    assert extract_metadata(ds, None) == {"ReferencedSeriesSequence": []}


def _malformed_bytes() -> bytes:
    ds = make_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jörg"
    ds.FrameTime = "98765"
    data = to_file_bytes(ds)
    return data.replace(b"98765 ", b"12abc ").replace(b"ISO_IR 100", b"ISO_IR 999")


def _read_quietly(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data))


@pytest.mark.parametrize("mode", ["error", "ignore", "always"])
def test_malformed_values_never_raise(mode: str) -> None:
    ds = _read_quietly(_malformed_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter(mode)  # pydicom warns; with warnings as errors it raises
        out = extract_metadata(ds, None)
        picked = extract_metadata(ds, ["FrameTime", "PatientName"])
    assert out["FrameTime"] == "12abc" == picked["FrameTime"]
    assert out["PatientName"] == "Müller^Jörg" == picked["PatientName"]
    assert out["SpecificCharacterSet"] == "ISO_IR 999"
    assert out["Rows"] == "4"


def test_bogus_charset_upload_is_accepted_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="Unknown encoding"):
        upload = read_upload("odd.dcm", _malformed_bytes(), UploadLimits())
        out = extract_metadata(upload.instances[0].dataset, ["PatientName", "Modality"])
    assert out == {"PatientName": "Müller^Jörg", "Modality": "OT"}


def test_metadata_is_json_serialisable() -> None:
    ds = make_dataset()
    out = extract_metadata(ds, None)
    assert orjson.loads(orjson.dumps(out))["PatientName"] == SECRET_NAME
