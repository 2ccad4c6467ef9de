"""pydicom's pixel pipeline (``pydicom.pixels.get_decoder``) for every other transfer syntax:
native colour, bit-packed, 64-bit and big-endian data, and every compressed syntax it has an
installed plug-in for. It needs a pydicom Dataset."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any, cast

import numpy as np
from pydicom import Dataset
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import Decoder as PydicomDecoder
from pydicom.pixels.utils import as_pixel_options, get_expected_length
from pydicom.uid import UID, ExplicitVRBigEndian

from accel.decoders.base import Decoded, PixelSpec
from accel.errors import PixelDataError, UnsupportedTransferSyntax

__all__ = ["can_decode", "decode", "syntax_label"]


def syntax_label(uid: str) -> str:
    """Return 'Name (UID)' for a transfer syntax, for client-facing messages."""
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else f"'{uid}'"


def can_decode(spec: PixelSpec) -> bool:
    """True for any pydicom Dataset: an unsupported syntax is reported by :func:`decode`."""
    return isinstance(spec.dataset, Dataset)


def decode(spec: PixelSpec, indices: Sequence[int], pool: Executor | None = None) -> Decoded:
    """The frames at ``indices`` (raw: no colour conversion) and their colour space."""
    decoder = _installed_decoder(spec.image.transfer_syntax)
    ds = cast(Dataset, spec.dataset)  # as can_decode checked
    opts = as_pixel_options(ds)
    if decoder.is_encapsulated:
        return _encapsulated(ds, spec, decoder, opts, indices)
    return _native(ds, spec, decoder, opts, indices)


def _installed_decoder(uid: str) -> PydicomDecoder:
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedTransferSyntax(
            f"no decoder for transfer syntax {syntax_label(uid)}"
        ) from None
    if not decoder.is_available:
        raise UnsupportedTransferSyntax(
            f"no decoder installed for transfer syntax {syntax_label(uid)}"
        )
    return decoder


def _native(
    ds: Dataset,
    spec: PixelSpec,
    decoder: PydicomDecoder,
    opts: dict[str, Any],
    indices: Sequence[int],
) -> Decoded:
    image = spec.image
    expected = get_expected_length(ds, "bytes")
    actual = len(ds[spec.keyword].value)
    if actual < expected:
        raise PixelDataError(
            f"the Pixel Data is {actual} bytes, expected {expected} for "
            f"{image.number_of_frames} frame(s) of {image.columns}x{image.rows}"
        )
    # A read-only view avoids a copy, but pydicom logs a warning whenever it must copy
    # anyway (unused bits to mask, YBR_FULL_422 to expand, big endian, bit-packed data).
    opts["view_only"] = (
        image.bits_stored == image.bits_allocated
        and image.bits_allocated >= 8
        and image.photometric != "YBR_FULL_422"
        and image.transfer_syntax != ExplicitVRBigEndian
    )
    try:
        arr, props = decoder.as_array(ds, raw=True, **opts)
    except Exception as exc:
        raise PixelDataError("the Pixel Data could not be decoded") from exc
    if not arr.dtype.isnative:  # Explicit VR Big Endian: one byte-swapping copy
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if image.number_of_frames == 1:
        arr = arr[None]
    return Decoded([arr[i] for i in indices], str(props["photometric_interpretation"]))


def _encapsulated(
    ds: Dataset,
    spec: PixelSpec,
    decoder: PydicomDecoder,
    opts: dict[str, Any],
    indices: Sequence[int],
) -> Decoded:
    if spec.keyword != "PixelData":
        raise PixelDataError(f"{spec.keyword} cannot be encapsulated")
    frames: list[np.ndarray] = []
    photometric = spec.image.photometric
    wanted = list(indices)
    it = decoder.iter_array(ds, indices=wanted, raw=True, **opts)
    for position in range(len(wanted)):
        try:
            arr, props = next(it)
        except StopIteration:
            raise PixelDataError(f"frame {wanted[position] + 1} is missing") from None
        except Exception as exc:
            raise PixelDataError(f"frame {wanted[position] + 1} could not be decoded") from exc
        frames.append(arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("=")))
        photometric = str(props.get("photometric_interpretation", photometric))
    return Decoded(frames, photometric)
