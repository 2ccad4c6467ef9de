"""The DICOM read endpoint end to end over HTTP: the spec's example file in every format,
options, zips, and every bad input answered with a 4xx problem while the server keeps serving."""

from __future__ import annotations

import base64
import io
import zipfile

import httpx
import numpy as np
import pydicom
import pytest
import simplejpeg
from PIL import Image
from pydicom.encaps import generate_frames

from tests.support import (
    SAMPLE_0002,
    SPEC_EXAMPLE,
    needs_sample,
    tiny_dicom,
)

ENDPOINT = "/api/dicom/read/file/"


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    """0002.DCM's 96 stored JPEG frames, decoded by libjpeg-turbo."""
    ds = pydicom.dcmread(SAMPLE_0002)
    return [
        simplejpeg.decode_jpeg(frame, colorspace="GRAY")[:, :, 0]
        for frame in generate_frames(ds.PixelData, number_of_frames=96)
    ]


def post(api, content: bytes, name: str = "file.dcm", **form: str) -> httpx.Response:
    client, headers = api
    return client.post(
        ENDPOINT,
        files={"file": (name, content, "application/octet-stream")},
        data=form,
        headers=headers,
    )


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@needs_sample
def test_sample_as_png_matches_the_spec_and_the_decoded_frames(api, sample_frames) -> None:
    response = post(api, SAMPLE_0002.read_bytes(), "0002.DCM")
    assert response.status_code == 200
    body = response.json()
    for keyword, value in SPEC_EXAMPLE.items():
        assert body[keyword] == value, keyword
    assert body["ImageFormat"] == "PNG"
    assert len(body["Images"]) == 96
    for image, expected in zip(body["Images"], sample_frames, strict=True):
        png = decode(image)
        assert png.format == "PNG" and png.size == (512, 512)
        assert np.array_equal(np.asarray(png.convert("L")), expected)


@needs_sample
def test_sample_as_jpeg(api, sample_frames) -> None:
    body = post(api, SAMPLE_0002.read_bytes(), "0002.DCM", return_format="JPEG").json()
    assert body["ImageFormat"] == "JPEG" and len(body["Images"]) == 96
    for image, expected in zip(body["Images"], sample_frames, strict=True):
        jpeg = decode(image)
        assert jpeg.format == "JPEG" and jpeg.size == (512, 512)
        assert psnr(np.asarray(jpeg.convert("L")), expected) >= 38


@needs_sample
def test_sample_as_gif_is_one_animation_timed_by_frame_time(api, sample_frames) -> None:
    body = post(api, SAMPLE_0002.read_bytes(), "0002.DCM", return_format="gif").json()
    assert body["ImageFormat"] == "GIF" and len(body["Images"]) == 1
    gif = decode(body["Images"][0])
    assert gif.format == "GIF" and gif.n_frames == 96
    # FrameTime 33 ms; GIF delays are centiseconds, so 3 cs = 30 ms.
    assert gif.info["duration"] == 30
    for index in (0, 50, 95):
        gif.seek(index)
        assert np.array_equal(np.asarray(gif.convert("L")), sample_frames[index])


@needs_sample
def test_fields_frames_and_window_options(api, sample_frames) -> None:
    client, headers = api
    response = client.post(
        f"{ENDPOINT}?fields=PatientName,StudyDate,Modality,WindowCenter&frames=2-3,10",
        files={"file": ("0002.DCM", SAMPLE_0002.read_bytes())},
        headers=headers,
    )
    body = response.json()
    assert set(body) == {
        "PatientName",
        "StudyDate",
        "Modality",
        "WindowCenter",
        "ImageFormat",
        "Images",
    }
    assert body["WindowCenter"] is None and body["Modality"] == "XA"
    frames = [np.asarray(decode(image).convert("L")) for image in body["Images"]]
    assert len(frames) == 3
    for got, index in zip(frames, (1, 2, 9), strict=True):
        assert np.array_equal(got, sample_frames[index])
    windowed = post(api, SAMPLE_0002.read_bytes(), "0002.DCM", frames="1", window="64,64")
    [image] = windowed.json()["Images"]
    pixels = np.asarray(decode(image).convert("L"))
    assert not np.array_equal(pixels, sample_frames[0])
    assert pixels[sample_frames[0] >= 100].min() == 255  # above the window: white


def test_small_ct_renders_with_its_window(api) -> None:
    body = post(api, tiny_dicom(), "ct.dcm").json()
    [image] = body["Images"]
    ds = pydicom.dcmread(io.BytesIO(tiny_dicom()))
    hu = ds.pixel_array.astype(np.float64) - 1024
    # PS3.3 C.11.2.1.2.1 LINEAR window, centre 40, width 400.
    expected = np.clip(((hu - 39.5) / 399 + 0.5) * 255, 0, 255)
    got = np.asarray(decode(image))
    assert np.abs(got.astype(int) - np.rint(expected).astype(int)).max() <= 1


def test_zip_of_several_files_lists_each_and_the_skipped(api) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("series/a.dcm", tiny_dicom())
        archive.writestr("series/b.dcm", tiny_dicom(frames=2))
        archive.writestr("notes.txt", b"not an image")
    body = post(api, buffer.getvalue(), "study.zip", return_format="jpeg").json()
    assert [f["FileName"] for f in body["Files"]] == ["series/a.dcm", "series/b.dcm"]
    assert [len(f["Images"]) for f in body["Files"]] == [1, 2]
    assert body["Skipped"] == ["notes.txt"]


def test_zip_with_one_file_answers_like_the_file(api) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("one.dcm", tiny_dicom())
    body = post(api, buffer.getvalue(), "one.zip").json()
    assert body["Modality"] == "CT" and len(body["Images"]) == 1


def truncated_pixel_data() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(tiny_dicom(rows=16, columns=16)))
    ds.PixelData = ds.PixelData[:100]
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def unknown_transfer_syntax() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(tiny_dicom()))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder installed
    ds["PixelData"].VR = "OB"
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "name", "form", "status", "words"),
    [
        (b"hello world" * 50, "notes.dcm", {}, 400, "DICOM"),
        (b"PK\x03\x04broken", "x.zip", {}, 400, "zip"),
        (tiny_dicom(), "ct.dcm", {"return_format": "bmp"}, 400, "return_format"),
        (tiny_dicom(), "ct.dcm", {"fields": "PatientName,Nonsense,Bogus"}, 400, "Nonsense"),
        (tiny_dicom(), "ct.dcm", {"frames": "5"}, 400, "frame"),
        (tiny_dicom(), "ct.dcm", {"window": "40"}, 400, "window"),
        (tiny_dicom(), "ct.dcm", {"quality": "0"}, 400, "quality"),
        (truncated_pixel_data(), "short.dcm", {}, 422, "Pixel"),
        (unknown_transfer_syntax(), "mpeg.dcm", {}, 415, "1.2.840.10008.1.2.4.100"),
    ],
)
def test_bad_inputs_get_a_clear_problem(api, content, name, form, status, words) -> None:
    body = assert_problem(post(api, content, name, **form), status)
    assert words.lower() in str(body).lower()
    client, _ = api
    assert client.get("/health").status_code == 200


def test_missing_file_part_and_wrong_content_type(api) -> None:
    client, headers = api
    response = client.post(
        ENDPOINT, data={"return_format": "png"}, files={"other": b"x"}, headers=headers
    )
    assert "file" in assert_problem(response, 400)["errors"]
    response = client.post(ENDPOINT, content=tiny_dicom(), headers=headers)
    assert "multipart" in assert_problem(response, 400)["detail"]
    response = client.post(
        ENDPOINT,
        content=b"--x\r\nbroken",
        headers={**headers, "content-type": "multipart/form-data"},
    )
    assert response.status_code == 400


def test_api_key_is_required(api) -> None:
    client, _ = api
    files = {"file": ("ct.dcm", tiny_dicom())}
    assert_problem(client.post(ENDPOINT, files=files), 401)
    for value in ("ApiKey nonsense", "ApiKey abcdefgh." + "x" * 40, "Bearer abc", "ApiKey"):
        response = client.post(ENDPOINT, files=files, headers={"Authorization": value})
        assert_problem(response, 401)


def test_viewport_scales_every_frame(api) -> None:
    body = post(api, tiny_dicom(rows=32, columns=64, frames=2), "ct.dcm", viewport="16,16").json()
    sizes = {decode(image).size for image in body["Images"]}
    assert sizes == {(16, 8)}
    bad = post(api, tiny_dicom(), "ct.dcm", viewport="0,10")
    assert "viewport" in assert_problem(bad, 400)["errors"]


def test_refused_large_uploads_still_get_their_answer(api) -> None:
    # The body is read and dropped (not stored), so the client reads the 401 instead of a reset.
    client, _ = api
    big = b"\0" * (5 * 1024 * 1024)
    response = client.post(
        ENDPOINT, files={"file": ("big.dcm", big)}, headers={"Authorization": "ApiKey nope"}
    )
    assert_problem(response, 401)
    response = client.post(ENDPOINT, files={"file": ("big.dcm", big)})
    assert_problem(response, 401)


def test_only_small_single_images_render_inline() -> None:
    from service.dicom import ReadOptions, UploadLimits, read_upload
    from service.dicom.pipeline import renders_inline

    limit = 128 * 1024
    small = read_upload("s.dcm", tiny_dicom(rows=64, columns=64), UploadLimits())
    large = read_upload("l.dcm", tiny_dicom(rows=512, columns=512), UploadLimits())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.dcm", tiny_dicom())
        archive.writestr("b.dcm", tiny_dicom())
    several = read_upload("z.zip", buffer.getvalue(), UploadLimits())
    plain, scaled = ReadOptions(), ReadOptions(viewport=(8192, 8192))
    assert renders_inline(small, plain, limit)
    assert not renders_inline(large, plain, limit)  # 512 KiB of pixels: the render pool
    assert not renders_inline(several, plain, limit)
    assert not renders_inline(small, scaled, limit)  # its output could be huge
    assert not renders_inline(small, plain, 0)


def test_large_answers_carry_the_same_headers_and_an_exact_length(api) -> None:
    # Answers of a megabyte or more are written after their headers (service.http.send_answer).
    rng = np.random.default_rng(7)
    ds = pydicom.dcmread(io.BytesIO(tiny_dicom(rows=256, columns=256, frames=24)))
    ds.PixelData = rng.integers(0, 4096, (24, 256, 256), dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    # A window over the whole range keeps the noise: about 2 MB of JSON.
    large, small = post(api, buffer.getvalue(), window="2048,4096"), post(api, tiny_dicom())
    assert large.status_code == small.status_code == 200
    assert int(large.headers["content-length"]) == len(large.content) > 1024 * 1024
    for response in (large, small):
        assert response.headers["content-type"] == "application/json"
        assert "render;dur=" in response.headers["server-timing"]
        assert int(response.headers["ratelimit-remaining"]) >= 0
    body = large.json()
    assert len(body["Images"]) == 24 and body["Rows"] == "256"
    assert (
        int(small.headers["ratelimit-remaining"]) == int(large.headers["ratelimit-remaining"]) - 1
    )
