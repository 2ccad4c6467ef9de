"""The decoder plug-ins (accel.decoders): which takes what, in which order, and what they give."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import simplejpeg
from pydicom import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
)

from accel import PixelDataError
from accel.adapter import frame_spec
from accel.dataset import (
    has_float_pixel_data,
    has_pixel_data,
    pixel_keyword,
    transfer_syntax,
)
from accel.decode import DECODERS, decode_frames
from accel.decoders import native, pydicom, turbo
from accel.decoders.base import Decoder, PixelSpec
from tests.accel.helpers import jpeg_ds, make_ds, ramp, reread, rgb_image


class PlainDataset:
    """A dataset that is not a pydicom Dataset (as service.dicom.flat.FlatDataset is not)."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds
        self.file_meta = ds.file_meta

    def get(self, key: str, default: Any = None) -> Any:
        return self._ds.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._ds

    def __getitem__(self, key: str) -> Any:
        return self._ds[key]


def _spec(ds: Any) -> PixelSpec:
    return PixelSpec(ds, pixel_keyword(ds), frame_spec(ds))


def _chosen(ds: Any) -> Decoder | None:
    spec = _spec(ds)
    return next((decoder for decoder in DECODERS if decoder.can_decode(spec)), None)


def _all(ds: Any) -> list[int]:
    return list(range(frame_spec(ds).number_of_frames))


def test_fast_paths_are_tried_before_pydicom() -> None:
    assert (turbo, native, pydicom) == DECODERS


def test_turbo_takes_8_bit_baseline_grey_and_colour_only() -> None:
    grey = _spec(jpeg_ds(ramp(1, 16, 16, 0, 255, np.uint8)))
    assert turbo.can_decode(grey)
    for photometric in ("RGB", "YBR_FULL_422", "YBR_FULL"):
        colour = replace(grey.image, samples_per_pixel=3, photometric=photometric)
        assert turbo.can_decode(replace(grey, image=colour))
    for wrong in (
        {"transfer_syntax": ExplicitVRLittleEndian},
        {"bits_allocated": 16, "bits_stored": 12},
        {"pixel_representation": 1},
        {"samples_per_pixel": 3, "photometric": "YBR_ICT"},
        {"samples_per_pixel": 3, "photometric": "PALETTE COLOR"},
    ):
        assert not turbo.can_decode(replace(grey, image=replace(grey.image, **wrong)))


def test_native_takes_little_endian_greyscale_pixel_data_only() -> None:
    ds = make_ds(ramp(2, 8, 8, 0, 4095, np.uint16), bits_stored=12)
    spec = _spec(ds)
    assert native.can_decode(spec)
    assert native.can_decode(replace(spec, dataset=PlainDataset(ds)))
    implicit = replace(spec.image, transfer_syntax=ImplicitVRLittleEndian)
    assert native.can_decode(replace(spec, image=implicit))
    assert not native.can_decode(replace(spec, keyword="FloatPixelData"))
    for wrong in (
        {"transfer_syntax": ExplicitVRBigEndian},
        {"transfer_syntax": JPEGBaseline8Bit},
        {"samples_per_pixel": 3, "photometric": "RGB"},
        {"bits_allocated": 1, "bits_stored": 1},
        {"bits_allocated": 64, "bits_stored": 64},
        {"photometric": "YBR_FULL"},
    ):
        assert not native.can_decode(replace(spec, image=replace(spec.image, **wrong)))


def test_pydicom_takes_any_pydicom_dataset_only() -> None:
    ds = make_ds(rgb_image(1, 8, 8), photometric="RGB")
    assert pydicom.can_decode(_spec(ds))
    assert not pydicom.can_decode(_spec(PlainDataset(ds)))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: jpeg_ds(ramp(2, 16, 16, 0, 255, np.uint8)), turbo),
        (lambda: jpeg_ds(rgb_image(2, 16, 16), photometric="YBR_FULL_422"), turbo),
        (lambda: make_ds(ramp(2, 8, 8, -500, 500, np.int16)), native),
        (lambda: PlainDataset(make_ds(ramp(2, 8, 8, 0, 255, np.uint8))), native),
        (lambda: make_ds(rgb_image(2, 8, 8), photometric="RGB"), pydicom),
        (lambda: reread(make_ds(ramp(1, 8, 8, 0, 999, np.uint16)), ExplicitVRBigEndian), pydicom),
        (lambda: PlainDataset(make_ds(rgb_image(1, 8, 8), photometric="RGB")), None),
    ],
)
def test_the_first_decoder_that_can_decode_is_chosen(make: Any, expected: Decoder | None) -> None:
    assert _chosen(make()) is expected


@pytest.mark.parametrize(
    "ds",
    [
        make_ds(ramp(3, 16, 20, 0, 255, np.uint8)),
        make_ds(ramp(2, 16, 20, 0, 4095, np.uint16), bits_stored=12),
        make_ds(ramp(2, 16, 20, -2048, 2047, np.int16), bits_stored=12),
        make_ds(ramp(1, 16, 20, 0, 999, np.uint16), photometric="MONOCHROME1", frames=False),
        reread(make_ds(ramp(2, 16, 20, 0, 65535, np.uint16)), ImplicitVRLittleEndian),
        reread(make_ds(ramp(2, 16, 20, 0, 4095, np.uint16), bits_stored=12), ExplicitVRBigEndian),
        make_ds(rgb_image(2, 16, 20), photometric="RGB"),
        make_ds(rgb_image(2, 16, 20), photometric="YBR_FULL"),
    ],
    ids=["u8", "u16-12", "i16-12", "mono1", "implicit", "big-endian", "rgb", "ybr-full"],
)
def test_native_data_decodes_to_pydicoms_raw_arrays(ds: Dataset) -> None:
    decoded = decode_frames(ds, frame_spec(ds), _all(ds))
    theirs = pixel_array(ds, raw=True).reshape(np.stack(decoded.frames).shape)
    assert decoded.photometric == ds.PhotometricInterpretation
    for ours, expected in zip(decoded.frames, theirs, strict=True):
        assert ours.dtype == expected.dtype.newbyteorder("=")
        np.testing.assert_array_equal(ours, expected)


def test_a_non_pydicom_dataset_decodes_as_the_pydicom_one() -> None:
    ds = make_ds(ramp(3, 16, 20, 0, 4095, np.uint16), bits_stored=12)
    indices = [2, 0]
    ours = decode_frames(PlainDataset(ds), frame_spec(ds), indices)
    theirs = decode_frames(ds, frame_spec(ds), indices)
    for a, b in zip(ours.frames, theirs.frames, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("pixels", "photometric"),
    [
        (ramp(3, 32, 48, 0, 255, np.uint8), "MONOCHROME2"),
        (rgb_image(2, 32, 48), "YBR_FULL_422"),
        (rgb_image(2, 32, 48), "RGB"),
    ],
    ids=["grey", "ybr-422", "rgb"],
)
def test_baseline_frames_are_libjpeg_turbos_own_decoding(pixels: Any, photometric: str) -> None:
    ds = jpeg_ds(pixels, photometric=photometric)
    stored = list(generate_frames(ds.PixelData, number_of_frames=len(pixels)))
    grey = photometric == "MONOCHROME2"
    decoded = decode_frames(ds, frame_spec(ds), [1, 0])
    assert decoded.photometric == ("MONOCHROME2" if grey else "RGB")
    for ours, index in zip(decoded.frames, [1, 0], strict=True):
        theirs = simplejpeg.decode_jpeg(stored[index], colorspace="GRAY" if grey else "RGB")
        np.testing.assert_array_equal(ours, theirs[:, :, 0] if grey else theirs)


def test_a_colour_image_in_a_non_pydicom_dataset_is_refused() -> None:
    ds = PlainDataset(make_ds(rgb_image(1, 8, 8), photometric="RGB"))
    with pytest.raises(PixelDataError, match="need pydicom's decoders"):
        decode_frames(ds, frame_spec(ds), [0])


def test_pixel_data_and_transfer_syntax_lookups() -> None:
    ds = make_ds(ramp(1, 4, 4, 0, 255, np.uint8))
    assert has_pixel_data(ds) and not has_float_pixel_data(ds)
    assert pixel_keyword(ds) == "PixelData"
    assert transfer_syntax(ds) == ExplicitVRLittleEndian
    ds.FloatPixelData = bytes(64)
    assert has_float_pixel_data(ds)
    with pytest.raises(PixelDataError, match="more than one"):
        pixel_keyword(ds)
    del ds.PixelData
    assert pixel_keyword(ds) == "FloatPixelData"
    del ds.FloatPixelData
    assert not has_pixel_data(ds)
    with pytest.raises(PixelDataError, match="no Pixel Data"):
        pixel_keyword(ds)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    assert transfer_syntax(ds) == JPEG2000Lossless


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ((True, True), ImplicitVRLittleEndian),
        ((False, True), ExplicitVRLittleEndian),
        ((False, False), ExplicitVRBigEndian),
        ((None, None), ExplicitVRLittleEndian),
    ],
)
def test_a_raw_dataset_has_the_transfer_syntax_it_was_read_with(
    encoding: tuple[bool | None, bool | None], expected: str
) -> None:
    ds = Dataset()
    ds.set_original_encoding(*encoding)
    assert transfer_syntax(ds) == expected
