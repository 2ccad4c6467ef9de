"""read_upload: .dcm and .zip uploads in memory, by content, with zip-bomb and path-trick limits."""

from __future__ import annotations

import os
import warnings
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian

from service.dicom.archive import UploadLimits, declared_entry_count
from service.dicom.upload import check_pixel_volume, pixel_volume_bytes, read_upload
from service.errors import PayloadTooLarge, UnprocessableContent, ValidationFailed
from tests.dicom.builders import SECRET_NAME, dicom_bytes, make_dataset, make_zip, to_file_bytes

LIMITS = UploadLimits()


def refused(filename: str, data: bytes, limits: UploadLimits = LIMITS) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        read_upload(filename, data, limits)
    assert info.value.status == 400
    assert SECRET_NAME not in str(info.value.to_problem())
    return info.value


INVALID_FILE_TYPE = "Invalid file type. Only .dcm, .DCM, .zip are allowed."


@pytest.mark.parametrize(
    "name",
    ["scan.dcm", "scan.DCM", "scan.Dcm", "IM000001", "1.2.840.113619.2.55.3.604688119", ""],
)
def test_single_dicom_accepted_by_content(name: str) -> None:
    upload = read_upload(name, dicom_bytes(), LIMITS)
    assert len(upload.instances) == 1 and upload.skipped == ()
    instance = upload.instances[0]
    assert instance.name == (name or "upload")
    assert str(instance.dataset.get("PatientName")) == SECRET_NAME


@pytest.mark.parametrize(
    "name",
    [
        "scan.txt",
        "scan.png",
        "scan.jpg",
        "scan.pdf",
        "scan.dcm.txt",
        "study.tar.gz",
        "IM000001.dicom",
        "C:\\Users\\me\\scan.TXT",
        "folder/scan.Png",
    ],
)
def test_other_extensions_are_refused_whatever_the_content(name: str) -> None:
    for content in (dicom_bytes(), make_zip({"a.dcm": dicom_bytes()}), b"not dicom", b""):
        error = refused(name, content)
        assert error.detail == INVALID_FILE_TYPE
        assert error.errors == {"file": [INVALID_FILE_TYPE]}


@pytest.mark.parametrize(
    "name",
    ["IM000001", "1.2.840.113619.2.55.3.604688119", "scan.", "series/IM1", "C:\\DICOM\\IM1"],
)
def test_a_name_without_extension_or_with_a_digit_suffix_is_judged_by_content(name: str) -> None:
    assert len(read_upload(name, dicom_bytes(), LIMITS).instances) == 1
    assert "could not be read as DICOM" in refused(name, b"plain text" * 20).errors["file"][0]
    assert refused(f"{name}.jpg", dicom_bytes()).detail == INVALID_FILE_TYPE


@pytest.mark.parametrize("name", ["study.zip", "study.ZIP", "study.Zip", "study.dcm", "study"])
def test_zip_entry_names_are_labels_and_only_the_upload_name_is_checked(name: str) -> None:
    data = make_zip({"scan.txt": dicom_bytes(), "image.png": dicom_bytes(), "notes.txt": b"hi"})
    upload = read_upload(name, data, LIMITS)
    assert [i.name for i in upload.instances] == ["scan.txt", "image.png"]
    assert upload.skipped == ("notes.txt",)
    assert refused(f"{name}.txt", data).detail == INVALID_FILE_TYPE


def test_bare_dataset_without_preamble_gets_its_transfer_syntax() -> None:
    data = to_file_bytes(make_dataset(), preamble=False)
    assert data[128:132] != b"DICM"
    ds = read_upload("raw.dcm", data, LIMITS).instances[0].dataset
    assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert ds.Rows == 4


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is plain text and not a DICOM file at all" * 10,
        b"\x89PNG\r\n\x1a\n" + bytes(200),
        bytes(4096),
        b"\x08\x00\x10\x00\x04\x00\x00\x00abcd",  # parses when forced, but nothing real in it
    ],
)
def test_non_dicom_refused_saying_what_is_accepted(data: bytes) -> None:
    error = refused("scan.dcm", data)
    assert "must be a DICOM file (.dcm) or a .zip of DICOM files" in error.errors["file"][0]
    assert "'scan.dcm'" in error.errors["file"][0]


def test_empty_file_refused() -> None:
    assert "empty" in refused("scan.dcm", b"").errors["file"][0]


def test_truncated_dicom_refused() -> None:
    data = dicom_bytes()
    error = refused("cut.dcm", data[:140])
    assert "could not be read as DICOM" in error.errors["file"][0]


def test_dicomdir_refused() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.1.3.10"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.DirectoryRecordSequence = []
    assert "DICOMDIR" in refused("DICOMDIR", to_file_bytes(ds)).errors["file"][0]


@settings(database=None, max_examples=150)
@given(st.binary(max_size=600))
def test_random_bytes_are_refused_cleanly(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValidationFailed):
            read_upload("x.dcm", data, LIMITS)


# --- zips ---------------------------------------------------------------------------------


def test_zip_mixed_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inner = make_zip({"a.dcm": dicom_bytes()})
    data = make_zip(
        {
            "study/": b"",
            "study/one.dcm": dicom_bytes(),
            "../evil.dcm": dicom_bytes(),
            "/abs/path.dcm": dicom_bytes(),
            "win\\style\\IM0001": dicom_bytes(),
            "readme.txt": b"not dicom",
            "nested.zip": inner,
            "disguised.dcm": inner,
        }
    )
    upload = read_upload("study.zip", data, LIMITS)
    names = [i.name for i in upload.instances]
    assert names == ["study/one.dcm", "../evil.dcm", "/abs/path.dcm", "win\\style\\IM0001"]
    assert upload.skipped == ("readme.txt", "nested.zip", "disguised.dcm")
    # Entry names are labels only: nothing was written anywhere near the working directory.
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "evil.dcm").exists()
    assert not os.path.exists("/abs/path.dcm")


def test_zip_is_detected_by_content_not_name() -> None:
    upload = read_upload("upload.dcm", make_zip({"x": dicom_bytes()}), LIMITS)
    assert [i.name for i in upload.instances] == ["x"]


def test_stored_zip_accepted() -> None:
    data = make_zip({"a.dcm": dicom_bytes(), "b.dcm": dicom_bytes()}, method=zipfile.ZIP_STORED)
    assert len(read_upload("s.zip", data, LIMITS).instances) == 2


def test_empty_zip_refused() -> None:
    data = make_zip({})
    assert "contains no DICOM files" in refused("empty.zip", data).errors["file"][0]


def test_zip_without_dicom_refused() -> None:
    data = make_zip({"a.txt": b"hello", "dir/": b""})
    assert "contains no DICOM files" in refused("docs.zip", data).errors["file"][0]


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04" + bytes(100), b"this is not a zip", make_zip({"a.dcm": dicom_bytes()})[:-30]],
)
def test_corrupt_zip_refused(data: bytes) -> None:
    error = refused("broken.zip", data)
    assert "not a readable .zip archive" in error.errors["file"][0]


def test_zip_entry_with_bad_crc_refused() -> None:
    payload = dicom_bytes()
    data = bytearray(make_zip({"a.dcm": payload}, method=zipfile.ZIP_STORED))
    start = data.index(payload)
    data[start + 200] ^= 0xFF
    assert "corrupt" in refused("crc.zip", bytes(data)).errors["file"][0]


def test_lying_declared_size_is_caught() -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dcm", dicom_bytes())
        zf.filelist[0].file_size = 200  # the central directory now under-declares the entry
    assert "corrupt" in refused("lie.zip", buffer.getvalue()).errors["file"][0]


def test_zip_bomb_refused_by_ratio_before_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_zip({"bomb.dcm": bytes(50 * 1024 * 1024)})
    assert len(data) < 1024 * 1024

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("an entry was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    with pytest.raises(PayloadTooLarge) as info:
        read_upload("bomb.zip", data, LIMITS)
    assert info.value.status == 413
    assert "compression ratio" in info.value.detail and "'bomb.dcm'" in info.value.detail


def test_small_highly_compressible_entry_is_exempt_from_ratio() -> None:
    ds = make_dataset(rows=256, columns=256)
    ds.PixelData = bytes(256 * 256)  # a blank image compresses far beyond 100:1
    upload = read_upload("blank.zip", make_zip({"blank.dcm": to_file_bytes(ds)}), LIMITS)
    assert len(upload.instances) == 1


def test_total_declared_size_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_zip({"a.dcm": dicom_bytes(), "b.dcm": dicom_bytes()})
    limits = UploadLimits(max_zip_total_bytes=len(dicom_bytes()) + 10)
    with pytest.raises(PayloadTooLarge, match="expands to"):
        read_upload("big.zip", data, limits)


def test_too_many_entries_refused_before_parsing_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make_zip({f"{n}.txt": b"x" for n in range(5)})
    assert declared_entry_count(data) == 5

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(PayloadTooLarge, match="has 5 entries; at most 4"):
        read_upload("many.zip", data, UploadLimits(max_zip_entries=4))


def test_encrypted_entry_skipped() -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ok.dcm", dicom_bytes())
        zf.writestr("locked.dcm", b"ciphertext" * 20)
        zf.filelist[1].flag_bits |= 0x1
    upload = read_upload("enc.zip", buffer.getvalue(), LIMITS)
    assert [i.name for i in upload.instances] == ["ok.dcm"]
    assert upload.skipped == ("locked.dcm",)


# --- pixel volume -------------------------------------------------------------------------


def test_pixel_volume_basic_and_multiframe() -> None:
    assert pixel_volume_bytes(make_dataset(rows=4, columns=5)) == 20
    assert pixel_volume_bytes(make_dataset(rows=4, columns=5, frames=3)) == 60


def test_pixel_volume_samples_and_bits() -> None:
    ds = make_dataset(rows=10, columns=10)
    ds.SamplesPerPixel = 3
    ds.BitsAllocated = 16
    assert pixel_volume_bytes(ds) == 10 * 10 * 3 * 2
    ds.BitsAllocated = 12  # not legal, but ceil(12/8) = 2
    assert pixel_volume_bytes(ds) == 600
    ds.BitsAllocated = 1
    ds.SamplesPerPixel = 1
    assert pixel_volume_bytes(ds) == 100  # one byte per pixel once unpacked


def test_pixel_volume_without_pixels_is_zero() -> None:
    ds = make_dataset()
    del ds.PixelData
    del ds.Rows
    assert pixel_volume_bytes(ds) == 0


@pytest.mark.parametrize("keyword", ["Rows", "Columns", "BitsAllocated"])
def test_pixel_volume_missing_geometry_is_422(keyword: str) -> None:
    ds = make_dataset()
    delattr(ds, keyword)
    with pytest.raises(UnprocessableContent, match=keyword) as info:
        pixel_volume_bytes(ds)
    assert info.value.status == 422


@pytest.mark.parametrize("frames", ["-3", ["2", "3"]])
def test_pixel_volume_malformed_frame_count_is_422(frames: object) -> None:
    ds = make_dataset()
    ds.NumberOfFrames = frames
    with pytest.raises(UnprocessableContent, match="NumberOfFrames"):
        pixel_volume_bytes(ds)


def test_check_pixel_volume_413_gives_sizes_not_patient_data() -> None:
    ds = make_dataset(rows=100, columns=100, frames=2)
    assert check_pixel_volume(ds, 20_000) == 20_000
    with pytest.raises(PayloadTooLarge) as info:
        check_pixel_volume(ds, 19_999, name="scan.dcm")
    detail = info.value.detail
    assert info.value.status == 413
    assert "20000" in detail and "19999" in detail and "'scan.dcm'" in detail
    assert SECRET_NAME not in detail


def test_reading_from_a_view_leaves_no_reference_to_the_request_body() -> None:
    # The handler frees the request body once the datasets are parsed: from then on only the
    # datasets may hold it (a lingering export would keep a large upload in memory twice).
    # bytearray refuses to grow while any view of it exists, so growing it proves there is none.
    body = bytearray(dicom_bytes(rows=16, columns=16))
    view = memoryview(body)
    upload = read_upload("x.dcm", view, UploadLimits())
    view.release()
    ds = upload.instances[0].dataset
    assert ds.get("Rows") == 16
    assert len(ds["PixelData"].value) == 16 * 16
    del upload, ds
    body.extend(b"\0")


def _large_native_file(transfer_syntax: str) -> tuple[bytes, bytes]:
    """A file with 2 MiB of 16-bit pixel data (over DEFER_BYTES), and those pixel bytes."""
    from pydicom.uid import ExplicitVRBigEndian

    ds = make_dataset(rows=1024, columns=1024)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    pixels = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    ds.PixelData = pixels
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    out = BytesIO()
    little = transfer_syntax != ExplicitVRBigEndian
    implicit = transfer_syntax == ImplicitVRLittleEndian
    ds.save_as(out, implicit_vr=implicit, little_endian=little, enforce_file_format=True)
    return out.getvalue(), pixels


@pytest.mark.parametrize(
    "syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]
)
def test_large_native_pixel_data_is_a_view_of_the_upload_not_a_copy(syntax: str) -> None:
    data, pixels = _large_native_file(syntax)
    body = bytearray(data)
    upload = read_upload("big.dcm", memoryview(body), UploadLimits())
    ds = upload.instances[0].dataset
    pixel_data = ds["PixelData"].value
    assert isinstance(pixel_data, memoryview)
    assert bytes(pixel_data) == pixels
    assert ds["PixelData"].VR == "OW"
    body[-1] ^= 0xFF  # the view sees the upload's own bytes
    assert pixel_data[-1] == pixels[-1] ^ 0xFF
    from service.dicom.metadata import extract_metadata

    assert extract_metadata(ds, ["PixelData"])["PixelData"] == repr(pixels[:9])[:-1] + "....."


def test_large_deflated_files_are_read_whole() -> None:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    data, pixels = _large_native_file(DeflatedExplicitVRLittleEndian)
    ds = read_upload("big.dcm", data, UploadLimits()).instances[0].dataset
    assert bytes(ds.PixelData) == pixels
