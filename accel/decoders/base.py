"""What every decoder shares: the description of what to decode, the result, the interface."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from accel.dataset import DatasetLike

__all__ = ["Decoded", "Decoder", "FrameSpec", "PixelSpec"]


@dataclass(frozen=True)
class FrameSpec:
    """The plain Image Pixel attributes decoding needs (PS3.3 C.7.6.3)."""

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    number_of_frames: int


@dataclass(frozen=True)
class PixelSpec:
    """What is to be decoded: a dataset, the keyword of its pixel data element and its
    Image Pixel attributes."""

    dataset: DatasetLike
    keyword: str
    image: FrameSpec


@dataclass
class Decoded:
    """Decoded frames (in the order requested) and the colour space they are in.

    That colour space may differ from the dataset's: libjpeg-turbo returns RGB for YBR JPEGs,
    pydicom expands native YBR_FULL_422 to YBR_FULL. Converting it is left to the caller, so
    nothing is converted twice.
    """

    frames: list[np.ndarray]
    photometric: str


class Decoder(Protocol):
    """A decoder plug-in (a module of this package)."""

    def can_decode(self, spec: PixelSpec) -> bool:
        """Whether this decoder takes these pixels."""

    def decode(
        self, spec: PixelSpec, indices: Sequence[int], pool: Executor | None = None
    ) -> Decoded:
        """The frames at 0-based ``indices``; raises AccelError subclasses (accel.errors)."""
