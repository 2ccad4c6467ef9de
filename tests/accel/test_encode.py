"""PNG, JPEG and GIF writers: round trips through independent decoders (Pillow, libvips)."""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import pyvips
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import accel
from accel import encode, gif
from tests.accel.helpers import decode_image, decode_png, gif_frames, make_ds, psnr, ramp

SHAPES = [(1, 1), (1, 7), (7, 1), (33, 65), (256, 300)]


def _noise(shape: tuple[int, ...], levels: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, levels, size=shape, dtype=np.uint8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("colour", [False, True])
def test_png_round_trip(shape, colour):
    img = _noise((*shape, 3) if colour else shape, seed=shape[0])
    data = encode.encode_png(img)
    assert np.array_equal(decode_png(data), img)
    # Every chunk CRC is right (Pillow checks IDAT, this checks all of them).
    pos = 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        crc = int.from_bytes(data[pos + 8 + length : pos + 12 + length], "big")
        assert zlib.crc32(kind + body) == crc
        pos += 12 + length
    assert pos == len(data)


def test_png_read_only_input_and_libvips():
    img = ramp(1, 40, 50, 0, 255, np.uint8)[0]
    img.setflags(write=False)
    data = encode.encode_png(img)
    vips = pyvips.Image.new_from_buffer(data, "")
    assert np.array_equal(vips.numpy(), img)


@pytest.mark.parametrize("shape", [(8, 8), (33, 65)])
def test_jpeg_grey_and_colour(shape):
    grey = ramp(1, *shape, 0, 255, np.uint8)[0]
    assert psnr(decode_image(encode.encode_jpeg(grey, 95)), grey) >= 38
    rgb = np.stack([grey, grey[::-1], 255 - grey], axis=-1)
    assert psnr(decode_image(encode.encode_jpeg(rgb, 95)), rgb) >= 38


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((1, 1), np.uint8),
        np.full((13, 7), 255, np.uint8),
        _noise((300, 301), levels=4),
        _noise((257, 263)),  # many Clear codes
        np.tile(np.arange(256, dtype=np.uint8), (40, 5)),
    ],
    ids=["1x1", "constant", "4-levels", "noise", "gradient"],
)
def test_gif_lzw_is_lossless_in_two_decoders(img):
    data = gif.encode_gif([img], 10)
    frames, _, _ = gif_frames(data)
    assert np.array_equal(frames[0], img)
    vips = pyvips.Image.new_from_buffer(data, "")
    # libvips decodes GIF to RGB(A); every channel carries the grey level.
    assert np.array_equal(vips.numpy()[..., 0].reshape(img.shape), img)


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_gif_lzw_property(img):
    frames, _, _ = gif_frames(gif.encode_gif([img], 10))
    assert np.array_equal(frames[0], img)


def test_gif_frames_in_parallel_are_identical():
    frames = [_noise((64, 64), seed=k) for k in range(6)]
    with ThreadPoolExecutor(3) as pool:
        assert gif.encode_gif(frames, 4, pool) == gif.encode_gif(frames, 4)


def test_gif_delay_rounding():
    assert gif.delay_centiseconds(33) == 3
    assert gif.delay_centiseconds(35) == 4  # half rounds to even: 3.5 -> 4
    assert gif.delay_centiseconds(1) == 2
    assert gif.delay_centiseconds(1e9) == 65535


def test_concurrent_renders_are_thread_safe():
    datasets = [
        make_ds(ramp(3, 32, 40, 0, 4095, np.uint16), bits_stored=12),
        make_ds(
            ramp(2, 32, 40, -1000, 1000, np.int16),
            bits_stored=16,
            RescaleSlope=2,
            RescaleIntercept=5,
        ),
        make_ds(ramp(4, 32, 40, 0, 255, np.uint8), WindowCenter=100, WindowWidth=50),
    ]
    jobs = [(ds, fmt) for ds in datasets for fmt in ("png", "jpeg", "gif")] * 4
    expected = [accel.render(ds, fmt) for ds, fmt in jobs]
    with ThreadPoolExecutor(4) as outer, ThreadPoolExecutor(2) as inner:
        got = list(outer.map(lambda job: accel.render(job[0], job[1], pool=inner), jobs))
    assert got == expected


def test_warm_up_is_idempotent():
    accel.warm_up()
    accel.warm_up()
