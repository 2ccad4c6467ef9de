"""Every supported transfer syntax and photometric interpretation, end to end over HTTP: the PNG
the server returns is compared with pydicom's reference rendering of the same file."""

from __future__ import annotations

import base64
import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_color_lut, pixel_array
from pydicom.uid import JPEGLosslessSV1, RLELossless

from tests.accel.helpers import decode_png, expected_grey, make_ds, psnr, reread, rgb_image, to_u8
from tests.accel.ljpeg import encode_lossless
from tests.accel.test_render import ALL_LOSSLESS, _grey, _palette_ds

ENDPOINT = "/api/dicom/read/file/"


def file_bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def rendered_over_http(api, ds: pydicom.Dataset) -> list[np.ndarray]:
    client, headers = api
    response = client.post(ENDPOINT, files={"file": ("x.dcm", file_bytes(ds))}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ImageFormat"] == "PNG"
    return [decode_png(base64.b64decode(image)) for image in body["Images"]]


def assert_close(got: list[np.ndarray], want: list[np.ndarray], tolerance: int = 1) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.abs(g.astype(int) - w.astype(int)).max() <= tolerance


@pytest.mark.parametrize("ts", ALL_LOSSLESS, ids=lambda uid: uid.name)
@pytest.mark.parametrize("case", ["s16-ct", "u12-minmax", "u8"])
def test_greyscale_in_every_lossless_syntax(api, ts, case) -> None:
    ds = _grey(case, ts)
    assert_close(rendered_over_http(api, ds), expected_grey(ds))


def test_monochrome1(api) -> None:
    ds = _grey("u12-minmax", RLELossless, photometric="MONOCHROME1")
    assert_close(rendered_over_http(api, ds), expected_grey(ds))


def test_jpeg_lossless(api) -> None:
    ds = _grey("u12-minmax", "1.2.840.10008.1.2.1", frames=2)
    frames = pixel_array(ds)
    ds.PixelData = pydicom.encaps.encapsulate([encode_lossless(f, 12, 1) for f in frames])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds = reread(ds)
    assert_close(rendered_over_http(api, ds), expected_grey(ds))


@pytest.mark.parametrize(
    "name",
    [
        "JPGExtended.dcm",  # JPEG Extended, 12-bit
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless, signed 16-bit, windowed
        "JPEGLSNearLossless_08.dcm",  # JPEG-LS near-lossless
    ],
)
def test_compressed_greyscale_syntaxes(api, name) -> None:
    # No JPEG-LS or 12-bit JPEG encoder is installed: these come with the pydicom package.
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    got, want = rendered_over_http(api, ds), expected_grey(ds)
    if "Extended" in ds.file_meta.TransferSyntaxUID.name:
        assert all(psnr(g, w) > 35 for g, w in zip(got, want, strict=True))
    else:
        assert_close(got, want)


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_planar_configurations(api, planar) -> None:
    rgb = rgb_image(2, 16, 20)
    ds = make_ds(rgb, photometric="RGB")
    if planar:
        ds.PlanarConfiguration = 1
        ds.PixelData = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)).tobytes()
    assert_close(rendered_over_http(api, reread(ds)), list(rgb), tolerance=0)


@pytest.mark.parametrize("bits", [8, 16])
def test_palette_colour(api, bits) -> None:
    ds, want = _palette_ds(bits)
    assert_close(rendered_over_http(api, reread(ds)), [want], tolerance=0)


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline, YBR_FULL
        "examples_ybr_color.dcm",  # JPEG Baseline, YBR_FULL_422, 30 frames
        "SC_rgb_rle.dcm",  # RLE, RGB
        "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS, RGB
        "examples_palette.dcm",  # PALETTE COLOR
        "SC_rgb_rle_32bit_2frame.dcm",  # RLE, 32-bit RGB, 2 frames
    ],
)
def test_colour_files(api, name) -> None:
    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    got = rendered_over_http(api, ds)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        want = [to_u8(apply_color_lut(pixel_array(ds), ds) * 255.0 / 65535.0)]
    else:
        arr = pixel_array(ds)
        frames = list(arr) if arr.ndim == 4 else [arr]
        if arr.dtype != np.uint8:
            frames = [to_u8(f * 255.0 / (2**ds.BitsStored - 1)) for f in frames]
        want = frames
    assert len(got) == len(want)
    if ds.file_meta.TransferSyntaxUID.is_compressed and "Baseline" in str(
        ds.file_meta.TransferSyntaxUID.name
    ):
        assert all(psnr(g, w) > 35 for g, w in zip(got, want, strict=True))
    else:
        assert_close(got, want)
