"""The real 96-frame 512x512 8-bit MONOCHROME2 JPEG Baseline cine loop (../shared/data/0002.DCM)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
import pytest
import simplejpeg
from pydicom.encaps import generate_frames

import accel
from tests.accel.helpers import decode_image, decode_png, gif_frames, psnr
from tests.support import SAMPLE_0002, needs_sample

pytestmark = needs_sample


@pytest.fixture(scope="module")
def ds() -> pydicom.Dataset:
    return pydicom.dcmread(SAMPLE_0002)


@pytest.fixture(scope="module")
def stored(ds) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))


@pytest.fixture(scope="module")
def decoded(stored) -> list[np.ndarray]:
    return [simplejpeg.decode_jpeg(f, colorspace="GRAY")[:, :, 0] for f in stored]


def test_png_frames_equal_decoded_frames(ds, decoded):
    with ThreadPoolExecutor(2) as pool:
        out = accel.render(ds, "png", pool=pool)
    assert len(out) == 96
    for data, frame in zip(out, decoded, strict=True):
        assert np.array_equal(decode_png(data), frame)


def test_png_agrees_with_pydicom_decoder(ds):
    # pydicom decodes with libjpeg instead of libjpeg-turbo: IDCTs may differ by one level.
    want = ds.pixel_array[[0, 95]]
    got = [decode_png(b) for b in accel.render(ds, "png", frames=[0, 95])]
    for g, w in zip(got, want, strict=True):
        assert np.abs(g.astype(int) - w.astype(int)).max() <= 1


def test_jpeg_passes_stored_frames_through(ds, stored):
    out = accel.render(ds, "jpeg")
    assert out == stored
    assert accel.render(ds, "jpeg", frames=[5, 7]) == [stored[5], stored[7]]


def test_jpeg_re_encode_when_windowed(ds, decoded):
    # A window of centre 127.5 / width 256 (LINEAR) is the identity up to rounding, but it
    # disables pass-through, so this checks the re-encode path.
    out = accel.render(ds, "jpeg", frames=[0, 50], window=(128.0, 256.0), quality=90)
    for data, frame in zip(out, [decoded[0], decoded[50]], strict=True):
        assert data[:2] == b"\xff\xd8"
        assert psnr(decode_image(data), frame) >= 38


def test_gif_has_96_frames_at_30_ms(ds, decoded):
    with ThreadPoolExecutor(2) as pool:
        (data,) = accel.render(ds, "gif", pool=pool)
    frames, durations, loop = gif_frames(data)
    assert len(frames) == 96
    # Frame Time 33 ms = 3.3 centiseconds, rounded to 3 cs = 30 ms (GIF has 1/100 s units).
    assert set(durations) == {30}
    assert loop == 0
    for k in (0, 1, 47, 95):
        assert np.array_equal(frames[k], decoded[k])
