"""Viewport scaling with libvips: exact output sizes, aspect kept, values preserved."""

from __future__ import annotations

import numpy as np
import pytest

from accel.resize import fit_within, viewport_size


@pytest.mark.parametrize(
    ("rows", "columns", "viewport", "expected"),
    [
        (512, 512, (128, 64), (64, 64)),
        (512, 256, (100, 100), (50, 100)),
        (100, 200, (1000, 1000), (1000, 500)),
        (3, 1000, (10, 10), (10, 1)),
    ],
)
def test_viewport_size_keeps_the_aspect(rows, columns, viewport, expected) -> None:
    assert viewport_size(rows, columns, viewport) == expected


def test_grey_downscale_matches_block_means_on_a_smooth_image() -> None:
    y, x = np.mgrid[0:256, 0:256]
    image = ((x + y) // 2).astype(np.uint8)
    small = fit_within(image, (64, 64))
    assert small.shape == (64, 64) and small.dtype == np.uint8
    block_means = image.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    inner = (slice(2, -2), slice(2, -2))  # away from the edges, where kernels pad
    assert np.abs(small[inner].astype(float) - block_means[inner]).max() <= 2


def test_rgb_keeps_its_bands_and_colours() -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    image[..., 0] = 200
    image[..., 2] = 50
    scaled = fit_within(image, (20, 20))
    assert scaled.shape == (10, 20, 3)
    assert np.all(scaled[..., 0] == 200) and np.all(scaled[..., 1] == 0)


def test_same_size_is_returned_untouched() -> None:
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    assert fit_within(image, (8, 100)) is image
