"""Greyscale kernels against pydicom's processing functions, PS3.3 C.11.2.1.2 and properties.

Tolerance: accel evaluates the window straight onto 0..255 and rounds half up; the reference
lets pydicom evaluate it onto its own output range (e.g. 0..4095) and then rescales to 0..255
before rounding half up. The real numbers are equal, so results differ by at most one grey
level, and only where float error lands on the other side of a .5.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydicom import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from accel import adapter, window
from accel.window import DisplayParams, ModalityKind, VoiKind
from tests.accel.helpers import make_ds, to_u8, y_range


def _render(ds: Dataset, arr: np.ndarray, window_override=None) -> np.ndarray:
    spec = adapter.frame_spec(ds)
    (params,) = adapter.display_params(ds, spec, [0], window_override, False)
    assert params is not None
    return window.render_grey(arr, params)


def _reference(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    m = apply_modality_lut(arr, ds)
    lo, hi = y_range(ds)
    y = (apply_voi_lut(m, ds) - lo) / (hi - lo) * 255.0
    out = to_u8(y)
    return 255 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


CASES = [
    # bits, signed, slope, intercept, center, width, function
    (8, False, None, None, 100, 50, "LINEAR"),
    (12, False, None, None, 2000, 800, "LINEAR"),
    (12, False, 1.0, -1024.0, 40, 400, "LINEAR"),
    (16, True, 1.0, 0.0, -200, 1500, "LINEAR"),
    (16, True, 2.5, 100.0, 300, 2000, "LINEAR_EXACT"),
    (12, False, 0.5, -10.0, 500, 300, "SIGMOID"),
    (16, False, None, None, 30000, 20000, "SIGMOID"),
    (10, False, None, None, 512, 1, "LINEAR"),  # width 1: a threshold
    (10, False, None, None, 512.5, 0.5, "LINEAR_EXACT"),
    (16, True, -1.0, 0.0, 100, 600, "LINEAR"),  # negative slope
]


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize(("bits", "signed", "slope", "intercept", "center", "width", "func"), CASES)
def test_window_matches_pydicom(bits, signed, slope, intercept, center, width, func, photometric):
    rng = np.random.default_rng(bits * 100 + int(width))
    dtype = np.dtype(f"{'i' if signed else 'u'}{2 if bits > 8 else 1}")
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    arr = rng.integers(lo, hi, size=(1, 24, 32), endpoint=True).astype(dtype)
    ds = make_ds(arr, photometric=photometric, bits_stored=bits)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, func
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    got = _render(ds, arr[0])
    want = _reference(ds, arr[0])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_modality_lut_sequence_and_window_match_pydicom():
    arr = np.arange(0, 4096, 4, dtype=np.uint16).reshape(1, 32, 32)
    ds = make_ds(arr, bits_stored=12)
    item = Dataset()
    item.LUTDescriptor = [2048, 100, 16]  # maps 100..2147; outside clamps
    item.LUTData = [(i * 37) % 65536 for i in range(2048)]
    item["LUTDescriptor"].VR = "US"
    item["LUTData"].VR = "US"
    ds.ModalityLUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 30000, 40000
    got = _render(ds, arr[0])
    assert np.abs(got.astype(int) - _reference(ds, arr[0]).astype(int)).max() <= 1


def test_voi_lut_sequence_matches_pydicom():
    arr = np.arange(0, 1024, dtype=np.uint16).reshape(1, 32, 32)
    ds = make_ds(arr, bits_stored=10)
    item = Dataset()
    item.LUTDescriptor = [512, 200, 12]
    item.LUTData = [min(4095, i * 9) for i in range(512)]
    item["LUTDescriptor"].VR = "US"
    item["LUTData"].VR = "US"
    ds.VOILUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 10, 10  # the LUT wins, as in pydicom
    got = _render(ds, arr[0])
    want = to_u8(apply_voi_lut(arr[0], ds).astype(np.float64) * 255.0 / 4095.0)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert got[0, 0] == 0  # below first mapped value: first entry
    assert got[-1, -1] == want[-1, -1]  # above the last: last entry


def _params(kind: VoiKind, center: float, width: float, invert: bool = False) -> DisplayParams:
    return DisplayParams(voi=kind, center=center, width=width, invert=invert)


def test_linear_boundaries_ps33_c11212():
    # c=100, w=21 (LINEAR): x <= 89.5 -> 0; x > 109.5 -> 255; else ((x-99.5)/20 + 0.5) * 255.
    x = np.array([[80, 89, 90, 99, 100, 109, 110, 200]], dtype=np.int16)
    out = window.render_grey(x, _params(VoiKind.LINEAR, 100, 21))
    # 90 -> 6.375, 99 -> 121.125, 100 -> 133.875, 109 -> 248.625
    want = [0, 0, 6, 121, 134, 249, 255, 255]
    assert out.tolist() == [want]


def test_linear_exact_and_sigmoid_boundaries():
    x = np.array([[0, 50, 100, 150, 200]], dtype=np.uint8)
    exact = window.render_grey(x, _params(VoiKind.LINEAR_EXACT, 100, 100))
    # x <= c - w/2 = 50 -> 0; x > c + w/2 = 150 -> 255; x = 100 -> 0.5 * 255 = 127.5 -> 128
    assert exact.tolist() == [[0, 0, 128, 255, 255]]
    sig = window.render_grey(x, _params(VoiKind.SIGMOID, 100, 100))
    # 255 / (1 + exp(-4 (x - c) / w)): at x = c exactly half range.
    want = [int(np.floor(255 / (1 + np.exp(-4 * (int(v) - 100) / 100)) + 0.5)) for v in x[0]]
    assert sig.tolist() == [want]
    assert sig[0, 2] == 128


def test_width_one_linear_is_a_threshold():
    x = np.array([[10, 11, 12]], dtype=np.uint8)
    out = window.render_grey(x, _params(VoiKind.LINEAR, 11.5, 1))
    assert out.tolist() == [[0, 0, 255]]  # x <= c - 0.5 -> 0, else 255


@pytest.mark.parametrize("size", [40, 300])  # 40x40 is computed directly, 300x300 via a LUT
def test_direct_kernel_matches_lut_kernel(size):
    rng = np.random.default_rng(3)
    ints = rng.integers(-3000, 3000, size=(size, size)).astype(np.int16)
    p = DisplayParams(ModalityKind.RESCALE, 1.5, -7.0, voi=VoiKind.SIGMOID, center=5, width=900)
    assert window.lut_pays(ints.dtype, ints.size) == (size == 300)
    chosen = window.render_grey(ints, p)
    via_lut = window.render_grey(ints, p, window.build_lut(p, *window.lut_domain(ints.dtype)))
    direct = window.render_grey(ints.astype(np.int32), p)
    as_float = window.render_grey(ints.astype(np.float32), p)
    assert np.array_equal(via_lut, direct)
    assert np.array_equal(via_lut, as_float)
    assert np.array_equal(via_lut, chosen)


def test_float_nan_renders_black():
    x = np.array([[np.nan, 0.0, 1.0]], dtype=np.float32)
    out = window.render_grey(x, _params(VoiKind.LINEAR_EXACT, 0.5, 1.0))
    assert out.tolist() == [[0, 0, 255]]


def test_identity_params_for_8_bit():
    arr = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    ds = make_ds(arr)
    spec = adapter.frame_spec(ds)
    (p,) = adapter.display_params(ds, spec, [0], None, False)
    assert np.array_equal(window.render_grey(arr[0], p), arr[0])


def test_stored_range_for_6_bits():
    arr = np.arange(64, dtype=np.uint8).reshape(1, 8, 8)
    ds = make_ds(arr, bits_stored=6)
    spec = adapter.frame_spec(ds)
    (p,) = adapter.display_params(ds, spec, [0], None, False)
    out = window.render_grey(arr[0], p)
    assert np.array_equal(out, to_u8(arr[0] * 255.0 / 63.0))


voi_kinds = st.sampled_from([VoiKind.LINEAR, VoiKind.LINEAR_EXACT, VoiKind.SIGMOID])


@settings(max_examples=60, deadline=None)
@given(
    data=arrays(np.int16, st.integers(1, 300)),
    kind=voi_kinds,
    center=st.floats(-40000, 40000),
    width=st.floats(1, 70000),
    slope=st.floats(0.01, 10),
    intercept=st.floats(-2000, 2000),
)
def test_properties(data, kind, center, width, slope, intercept):
    p = DisplayParams(ModalityKind.RESCALE, slope, intercept, voi=kind, center=center, width=width)
    inv = DisplayParams(
        ModalityKind.RESCALE, slope, intercept, voi=kind, center=center, width=width, invert=True
    )
    ordered = np.sort(data)
    out = window.render_grey(ordered, p)
    # Monotonic non-decreasing in the input for a positive slope and width.
    assert (np.diff(out.astype(int)) >= 0).all()
    # MONOCHROME1 is exactly the inverse of MONOCHROME2.
    assert np.array_equal(window.render_grey(ordered, inv), 255 - out)
    # The same for the per-pixel kernel on 32-bit input; uint8 output is within 0..255 by type.
    assert np.array_equal(window.render_grey(ordered.astype(np.int32), p), out)


@settings(max_examples=40, deadline=None)
@given(
    data=arrays(np.float32, st.integers(1, 100), elements=st.floats(-1e6, 1e6, width=32)),
    center=st.floats(-1e5, 1e5),
    width=st.floats(1e-3, 1e6),
)
def test_float_properties(data, center, width):
    p = DisplayParams(voi=VoiKind.LINEAR_EXACT, center=center, width=width)
    out = window.render_grey(np.sort(data), p)
    assert out.dtype == np.uint8
    assert (np.diff(out.astype(int)) >= 0).all()
