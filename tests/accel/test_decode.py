"""accel.decoders.native: the same arrays as pydicom's own native decoder."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import pixel_array
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from accel.adapter import frame_spec
from accel.decoders import native
from accel.decoders.base import PixelSpec


def _spec(ds: Dataset) -> PixelSpec:
    return PixelSpec(ds, "PixelData", frame_spec(ds))


@st.composite
def native_datasets(draw: st.DrawFn) -> Dataset:
    rows, columns, frames = (
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 3)),
    )
    bits = draw(st.sampled_from([8, 16, 32]))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = draw(
        st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    )
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.BitsAllocated, ds.BitsStored = bits, draw(st.integers(1, bits))
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, draw(st.integers(0, 1))
    size = rows * columns * frames * bits // 8
    ds.PixelData = draw(st.binary(min_size=size, max_size=size))
    return ds


@settings(max_examples=200, deadline=None)
@given(native_datasets())
def test_native_frames_equal_pydicoms_raw_arrays(ds: Dataset) -> None:
    spec = _spec(ds)
    assert native.can_decode(spec)
    decoded = native.decode(spec, range(spec.image.number_of_frames))
    ours = np.stack(decoded.frames)
    theirs = pixel_array(ds, raw=True, allow_excess_frames=False)
    assert decoded.photometric == "MONOCHROME2"
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs.reshape(ours.shape))


def test_big_endian_colour_and_bit_packed_data_are_left_to_pydicom() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(8)
    assert not native.can_decode(_spec(ds))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
    ds.PixelData = bytes(24)
    assert not native.can_decode(_spec(ds))
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 1
    ds.PixelData = bytes(1)
    assert not native.can_decode(_spec(ds))
