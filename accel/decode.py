"""Frame decoding: the decoder plug-ins of :mod:`accel.decoders`, tried in order.

Every decoder returns frames in colour-by-pixel layout plus the photometric interpretation of
the returned arrays (see :class:`accel.decoders.base.Decoded`); colour-space conversion is left
to the caller, so nothing is converted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

from accel.dataset import DatasetLike, pixel_keyword
from accel.decoders import native, pydicom, turbo
from accel.decoders.base import Decoded, Decoder, FrameSpec, PixelSpec
from accel.errors import PixelDataError

__all__ = ["DECODERS", "decode_frames"]

# The first that can decode the pixels does: the fast paths first, pydicom for the rest.
DECODERS: tuple[Decoder, ...] = (turbo, native, pydicom)


def decode_frames(
    ds: DatasetLike, image: FrameSpec, indices: Sequence[int], pool: Executor | None = None
) -> Decoded:
    """Decode the frames at 0-based `indices` (PS3.5 8 and A.4), raising AccelError subclasses."""
    spec = PixelSpec(ds, pixel_keyword(ds), image)
    for decoder in DECODERS:
        if decoder.can_decode(spec):
            return decoder.decode(spec, indices, pool)
    # Only a dataset that is not pydicom's gets here (service.dicom.flat admits what native reads).
    raise PixelDataError("these pixels need pydicom's decoders and a pydicom Dataset")
