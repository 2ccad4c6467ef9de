"""render() per transfer syntax and photometric interpretation, against pydicom's rendering."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space, pack_bits, pixel_array
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    RLELossless,
)

import accel
from tests.accel.helpers import (
    decode_image,
    decode_png,
    expected_grey,
    gif_frames,
    jpeg_ds,
    make_ds,
    psnr,
    ramp,
    reread,
    rgb_image,
    to_u8,
)
from tests.accel.ljpeg import encode_lossless

NATIVE = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian]
ALL_LOSSLESS = [*NATIVE, DeflatedExplicitVRLittleEndian, RLELossless, JPEG2000Lossless]

GREY_CASES = {
    # name: (low, high, dtype, bits stored, extra attributes)
    "u8": (0, 255, np.uint8, 8, {}),
    "u8-window": (0, 255, np.uint8, 8, {"WindowCenter": 90, "WindowWidth": 120}),
    "u12-window": (0, 4095, np.uint16, 12, {"WindowCenter": 1800, "WindowWidth": 1000}),
    "u12-minmax": (100, 3000, np.uint16, 12, {}),
    "s16-ct": (
        -1024,
        2000,
        np.int16,
        16,
        {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
    ),
    "s16-minmax-rescale": (-500, 1500, np.int16, 16, {"RescaleSlope": 2, "RescaleIntercept": 7}),
    "u16-sigmoid": (
        0,
        65535,
        np.uint16,
        16,
        {"WindowCenter": 30000, "WindowWidth": 30000, "VOILUTFunction": "SIGMOID"},
    ),
}


def _grey(case: str, ts: str, photometric: str = "MONOCHROME2", frames: int = 2) -> Dataset:
    lo, hi, dtype, bits, attrs = GREY_CASES[case]
    pixels = ramp(frames, 32, 40, lo, hi, dtype)
    ds = make_ds(pixels, photometric=photometric, bits_stored=bits, **attrs)
    if ts in (RLELossless, JPEG2000Lossless):
        ds.compress(ts)
        return reread(ds)
    return reread(ds, ts)


def _assert_close(got: np.ndarray, want: np.ndarray, tol: int = 1) -> None:
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= tol


@pytest.mark.parametrize("ts", ALL_LOSSLESS, ids=lambda u: u.name)
@pytest.mark.parametrize("case", sorted(GREY_CASES))
def test_grey_png_matches_reference(case, ts):
    ds = _grey(case, ts)
    out = accel.render(ds, "png")
    want = expected_grey(ds)
    assert len(out) == 2
    for data, expected in zip(out, want, strict=True):
        _assert_close(decode_png(data), expected)


@pytest.mark.parametrize("case", ["u8", "u12-window", "s16-minmax-rescale"])
def test_monochrome1_is_inverted(case):
    ds1 = _grey(case, ExplicitVRLittleEndian, "MONOCHROME1")
    ds2 = _grey(case, ExplicitVRLittleEndian, "MONOCHROME2")
    one = [decode_png(b) for b in accel.render(ds1, "png")]
    two = [decode_png(b) for b in accel.render(ds2, "png")]
    for a, b, ref in zip(one, two, expected_grey(ds1), strict=True):
        assert np.array_equal(a, 255 - b)
        _assert_close(a, ref)


def test_min_max_window_spans_all_frames():
    pixels = np.zeros((2, 8, 8), dtype=np.uint16)
    pixels[0, 0, 0], pixels[1, 0, 0] = 100, 1000  # frame 0 alone would stretch to 255
    ds = make_ds(pixels, bits_stored=12)
    first = decode_png(accel.render(ds, "png", frames=[0])[0])
    assert abs(int(first[0, 0]) - 100 / 1000 * 255) <= 1
    assert first[1, 1] == 0


def test_explicit_window_overrides_file():
    ds = _grey("u12-window", ExplicitVRLittleEndian)
    out = decode_png(accel.render(ds, "png", window=(500.0, 200.0))[0])
    ds.WindowCenter, ds.WindowWidth = 500, 200
    _assert_close(out, expected_grey(ds)[0])


def test_frames_subset_and_pool_give_same_bytes():
    ds = _grey("u12-window", ExplicitVRLittleEndian, frames=5)
    with ThreadPoolExecutor(2) as pool:
        for fmt in ("png", "jpeg", "gif"):
            plain = accel.render(ds, fmt, frames=[4, 1])
            pooled = accel.render(ds, fmt, frames=[4, 1], pool=pool)
            assert plain == pooled
    want = expected_grey(ds, [4, 1])
    got = [decode_png(b) for b in accel.render(ds, "png", frames=[4, 1])]
    for g, w in zip(got, want, strict=True):
        _assert_close(g, w)


def test_bits_stored_below_allocated_is_masked():
    pixels = ramp(1, 8, 8, 0, 4095, np.uint16)
    dirty = pixels | np.uint16(0xF000)  # garbage in the unused high bits
    ds = make_ds(pixels, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.PixelData = dirty.tobytes()
    _assert_close(decode_png(accel.render(ds, "png")[0]), expected_grey(ds)[0])


def test_signed_12_bit_sign_extended():
    pixels = ramp(1, 8, 8, -2048, 2047, np.int16)
    raw = (pixels.astype(np.int32) & 0x0FFF).astype(np.uint16)  # 12-bit two's complement
    ds = make_ds(pixels, bits_stored=12, WindowCenter=0, WindowWidth=4096)
    ds.PixelData = raw.tobytes()
    _assert_close(decode_png(accel.render(ds, "png")[0]), expected_grey(ds)[0])


def test_one_bit_data():
    bits = (np.indices((3, 16, 24)).sum(axis=0) % 3 == 0).astype(np.uint8)
    ds = make_ds(bits, bits_stored=1)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelData = pack_bits(bits)
    ds = reread(ds)
    out = [decode_png(b) for b in accel.render(ds, "png")]
    for o, b in zip(out, bits, strict=True):
        assert np.array_equal(o, b * 255)


@pytest.mark.parametrize("dtype", [np.uint32, np.int32])
def test_32_bit_integer_data(dtype):
    pixels = ramp(2, 8, 8, -5000 if dtype == np.int32 else 0, 100000, dtype)
    ds = make_ds(np.zeros((2, 8, 8), np.uint16), bits_stored=16)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelRepresentation = int(dtype == np.int32)
    ds.PixelData = pixels.tobytes()
    for g, w in zip(
        [decode_png(b) for b in accel.render(ds, "png")], expected_grey(ds), strict=True
    ):
        _assert_close(g, w)


def test_float_pixel_data():
    pixels = ramp(1, 8, 8, 0, 10, np.float32) * np.float32(0.37) - np.float32(1.5)
    ds = make_ds(np.zeros((1, 8, 8), np.uint8))
    del ds.PixelData
    ds.FloatPixelData = pixels.tobytes()
    ds.BitsAllocated = 32
    del ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    out = decode_png(accel.render(ds, "png")[0])
    lo, hi = float(pixels.min()), float(pixels.max())
    _assert_close(out, to_u8((pixels[0] - lo) / (hi - lo) * 255))


def test_per_frame_functional_groups():
    pixels = ramp(3, 16, 16, 0, 4095, np.uint16)
    ds = make_ds(pixels, bits_stored=12)
    shared, per_frame = Dataset(), []
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = 2048, 4096
    shared.FrameVOILUTSequence = [voi]
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 1, 0, "US"
    shared.PixelValueTransformationSequence = [pvt]
    ds.SharedFunctionalGroupsSequence = [shared]
    for k in range(3):
        item = Dataset()
        if k == 1:
            own = Dataset()
            own.WindowCenter, own.WindowWidth, own.VOILUTFunction = 1000, 500, "LINEAR_EXACT"
            item.FrameVOILUTSequence = [own]
        if k == 2:
            scale = Dataset()
            scale.RescaleSlope, scale.RescaleIntercept, scale.RescaleType = 0.5, 100, "US"
            item.PixelValueTransformationSequence = [scale]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    out = [decode_png(b) for b in accel.render(ds, "png")]
    modality = [pixels[0], pixels[1], pixels[2] * 0.5 + 100]
    windows = [(2048, 4096, "LINEAR"), (1000, 500, "LINEAR_EXACT"), (2048, 4096, "LINEAR")]
    for got, m, (c, w, func) in zip(out, modality, windows, strict=True):
        one = make_ds(np.zeros((1, 2, 2), np.uint16), bits_stored=12)
        one.WindowCenter, one.WindowWidth, one.VOILUTFunction = c, w, func
        from pydicom.pixels import apply_voi_lut

        want = to_u8(apply_voi_lut(m.astype(np.float64), one) / 4095 * 255)
        _assert_close(got, want)


# Colour -------------------------------------------------------------------------------------


@pytest.mark.parametrize("planar", [0, 1])
@pytest.mark.parametrize("ts", [*NATIVE, DeflatedExplicitVRLittleEndian, RLELossless])
def test_rgb_lossless(ts, planar):
    rgb = rgb_image(2, 16, 20)
    ds = make_ds(rgb, photometric="RGB")
    if ts == RLELossless:
        # RLE stores one segment per sample whatever the attribute says (PS3.5 G.2).
        ds.compress(ts)
        ds.PlanarConfiguration = planar
        ds = reread(ds)
    else:
        if planar:
            ds.PlanarConfiguration = 1
            ds.PixelData = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)).tobytes()
        ds = reread(ds, ts)
    for data, want in zip(accel.render(ds, "png"), rgb, strict=True):
        assert np.array_equal(decode_png(data), want)


def test_rgb_16_bit_scaled():
    rgb = rgb_image(1, 8, 8).astype(np.uint16) * 16
    ds = make_ds(rgb, photometric="RGB", bits_stored=12)
    got = decode_png(accel.render(ds, "png")[0])
    _assert_close(got, to_u8(rgb[0] * 255.0 / 4095.0))


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, RLELossless])
def test_ybr_full_native(ts):
    rgb = rgb_image(2, 16, 20)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    ds = make_ds(ybr, photometric="YBR_FULL")
    if ts == RLELossless:
        ds.compress(ts)
        ds = reread(ds)
    want = pixel_array(ds)  # pydicom converts YBR_FULL to RGB
    for data, w in zip(accel.render(ds, "png"), want, strict=True):
        _assert_close(decode_png(data), w)


def test_ybr_full_422_native():
    rgb = rgb_image(1, 8, 10)[0]
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    raw = bytearray()
    for row in ybr:
        for x in range(0, row.shape[0], 2):
            raw += bytes([row[x, 0], row[x + 1, 0], row[x, 1], row[x, 2]])
    ds = make_ds(rgb[None], photometric="RGB")
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.PixelData = bytes(raw)
    want = pixel_array(ds)
    _assert_close(decode_png(accel.render(ds, "png")[0]), want)


@pytest.mark.parametrize("photometric", ["YBR_FULL_422", "RGB"])
def test_baseline_jpeg_colour(photometric):
    rgb = rgb_image(2, 32, 48)
    ds = jpeg_ds(rgb, photometric)
    for data, original in zip(accel.render(ds, "png"), rgb, strict=True):
        assert psnr(decode_png(data), original) > 30  # JPEG 4:2:2 at q95 of the original


def test_baseline_jpeg_grey_matches_pydicom():
    pixels = ramp(2, 32, 48, 0, 255, np.uint8)
    ds = jpeg_ds(pixels, WindowCenter=100, WindowWidth=150)
    for got, want in zip(
        [decode_png(b) for b in accel.render(ds, "png")], expected_grey(ds), strict=True
    ):
        # libjpeg-turbo and pydicom's JPEG decoder may differ by one level before the window.
        _assert_close(got, want, tol=3)


def test_jpeg2000_lossy_rgb_and_grey():
    rgb = rgb_image(1, 32, 32)
    ds = make_ds(rgb, photometric="RGB")
    ds.compress(JPEG2000, j2k_cr=[5])
    ds = reread(ds)
    _assert_close(decode_png(accel.render(ds, "png")[0]), pixel_array(ds))
    grey = _grey("u12-window", ExplicitVRLittleEndian)
    grey.compress(JPEG2000, j2k_cr=[5])
    grey = reread(grey)
    for got, want in zip(
        [decode_png(b) for b in accel.render(grey, "png")], expected_grey(grey), strict=True
    ):
        _assert_close(got, want)


@pytest.mark.parametrize(
    "name",
    [
        "JPGExtended.dcm",  # JPEG Extended 12-bit
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless, signed 16-bit with a window
        "JPEGLSNearLossless_08.dcm",
        "SC_rgb_jls_lossy_line.dcm",
        "examples_palette.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",  # baseline YBR_FULL
        "examples_ybr_color.dcm",  # baseline YBR_FULL_422, 30 frames
    ],
)
def test_pydicom_bundled_files(name):
    # No JPEG-LS or 12-bit JPEG encoder is installed, so these syntaxes use the small files that
    # ship inside the pydicom package itself.
    import pydicom

    ds = pydicom.dcmread(get_testdata_file(name, download=False))
    frames = list(range(min(3, int(ds.get("NumberOfFrames", 1) or 1))))
    out = [decode_png(b) for b in accel.render(ds, "png", frames=frames)]
    if ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2"):
        want = expected_grey(ds, frames)
        tol = 3 if "Extended" in ds.file_meta.TransferSyntaxUID.name else 1
    elif ds.PhotometricInterpretation == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        want = [to_u8(apply_color_lut(pixel_array(ds), ds) * 255.0 / 65535.0)]
        tol = 1
    else:
        arr = pixel_array(ds)
        want = [arr[i] for i in frames] if arr.ndim == 4 else [arr]
        tol = 4  # libjpeg-turbo's fancy upsampling vs pydicom's decoder, for baseline colour
    for g, w in zip(out, want, strict=True):
        if tol > 1:
            assert psnr(g, w) > 35
        else:
            _assert_close(g, w, tol)


def _palette_ds(bits_entry: int, segmented: bool = False) -> tuple[Dataset, np.ndarray]:
    idx = (np.arange(16 * 20).reshape(1, 16, 20) % 200).astype(np.uint8)
    ds = make_ds(idx, photometric="PALETTE COLOR")
    n, first = 150, 10
    red = (np.arange(n) * 7) % 256
    green = 255 - (np.arange(n) % 256)
    blue = (np.arange(n) * 3) % 256
    scale = 257 if bits_entry == 16 else 1
    for name, ch in (("Red", red), ("Green", green), ("Blue", blue)):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [n, first, bits_entry])
        ds[f"{name}PaletteColorLookupTableDescriptor"].VR = "US"
        if segmented:
            # One discrete segment (opcode 0) holding every entry, PS3.3 C.7.9.2.
            seg = np.concatenate([[0, n], ch * scale]).astype("<u2").tobytes()
            setattr(ds, f"Segmented{name}PaletteColorLookupTableData", seg)
            ds[f"Segmented{name}PaletteColorLookupTableData"].VR = "OW"
        else:
            setattr(ds, f"{name}PaletteColorLookupTableData", (ch * scale).astype("<u2").tobytes())
            ds[f"{name}PaletteColorLookupTableData"].VR = "OW"
    table = np.stack([red, green, blue], axis=1).astype(np.uint8)
    want = table[np.clip(idx[0].astype(int) - first, 0, n - 1)]
    return ds, want


@pytest.mark.parametrize(("bits", "segmented"), [(16, False), (16, True), (8, False)])
def test_palette_colour(bits, segmented):
    ds, want = _palette_ds(bits, segmented)
    if bits == 8:  # 8-bit entries in 16-bit words: the high byte is zero
        pass
    got = decode_png(accel.render(ds, "png")[0])
    assert np.array_equal(got, want)


# Formats --------------------------------------------------------------------------------------


def test_jpeg_output_psnr_grey_and_colour():
    grey = _grey("u12-window", ExplicitVRLittleEndian)
    for data, want in zip(accel.render(grey, "jpeg", quality=90), expected_grey(grey), strict=True):
        assert data[:2] == b"\xff\xd8"
        assert psnr(decode_image(data), want) >= 38
    rgb = rgb_image(2, 32, 40)
    ds = make_ds(rgb, photometric="RGB")
    for data, want in zip(accel.render(ds, "jpeg", quality=95), rgb, strict=True):
        assert psnr(decode_image(data), want) >= 38
    small = accel.render(ds, "jpeg", quality=10)
    assert sum(map(len, small)) < sum(map(len, accel.render(ds, "jpeg", quality=95)))


@pytest.mark.parametrize(
    ("attrs", "delay_ms"),
    [
        ({"FrameTime": 33}, 30),  # 3.3 centiseconds rounds to 3
        ({"FrameTime": 47.0}, 50),
        ({"CineRate": 25}, 40),
        ({}, 100),
        ({"FrameTime": 5}, 20),  # browsers slow delays under 2 cs down, so 2 cs is the floor
    ],
)
def test_gif_animation_is_lossless_for_grey(attrs, delay_ms):
    pixels = ramp(4, 24, 30, 0, 255, np.uint8)
    ds = make_ds(pixels, **attrs)
    (data,) = accel.render(ds, "gif")
    frames, durations, loop = gif_frames(data)
    assert len(frames) == 4
    assert loop == 0
    assert durations == [delay_ms] * 4
    for got, want in zip(frames, pixels, strict=True):
        assert np.array_equal(got, want)


def test_gif_single_frame_and_colour():
    ds = _grey("u12-window", ExplicitVRLittleEndian, frames=1)
    (data,) = accel.render(ds, "gif")
    frames, _, _ = gif_frames(data)
    assert len(frames) == 1
    assert np.array_equal(frames[0], expected_grey(ds)[0])
    rgb = rgb_image(3, 32, 40)
    (data,) = accel.render(make_ds(rgb, photometric="RGB"), "gif")
    frames, _, _ = gif_frames(data, "RGB")
    assert len(frames) == 3
    for got, want in zip(frames, rgb, strict=True):
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 6  # 256-colour quantised


def test_jpeg_pass_through_only_when_identity():
    pixels = ramp(3, 32, 48, 0, 255, np.uint8)
    ds = jpeg_ds(pixels)
    from pydicom.encaps import generate_frames

    stored = list(generate_frames(ds.PixelData, number_of_frames=3))
    assert accel.render(ds, "jpeg") == stored
    assert accel.render(ds, "jpeg", frames=[2]) == [stored[2]]
    assert accel.render(ds, "jpeg", window=(128, 256)) != stored
    windowed = jpeg_ds(pixels, WindowCenter=128, WindowWidth=100)
    assert accel.render(windowed, "jpeg") != stored
    mono1 = jpeg_ds(pixels, "MONOCHROME1")
    out = accel.render(mono1, "jpeg")
    assert out != stored
    assert psnr(decode_image(out[0]), 255 - pixels[0]) > 30
    colour = jpeg_ds(rgb_image(2, 32, 48), "YBR_FULL_422")
    stored_colour = list(generate_frames(colour.PixelData, number_of_frames=2))
    assert accel.render(colour, "jpeg") == stored_colour


@pytest.mark.parametrize(
    ("ts", "selection", "case"),
    [
        (JPEGLosslessSV1, 1, "u12-window"),
        (JPEGLossless, 4, "u12-minmax"),
        (JPEGLosslessSV1, 1, "s16-ct"),
    ],
    ids=["sv1-u12", "p14-u12-minmax", "sv1-s16"],
)
def test_jpeg_lossless(ts, selection, case):
    plain = _grey(case, ExplicitVRLittleEndian, frames=2)
    pixels = pixel_array(plain)
    bits = 16 if pixels.dtype == np.int16 else 12
    unsigned = pixels.view(np.uint16) if pixels.dtype == np.int16 else pixels
    plain.PixelData = encapsulate([encode_lossless(f, bits, selection) for f in unsigned])
    plain["PixelData"].VR = "OB"
    plain.file_meta.TransferSyntaxUID = ts
    ds = reread(plain)
    assert np.array_equal(pixel_array(ds), pixels)
    got = [decode_png(b) for b in accel.render(ds, "png")]
    for g, w in zip(got, expected_grey(ds), strict=True):
        _assert_close(g, w)
