"""Numba kernels for the greyscale pipeline: Modality LUT, VOI, MONOCHROME1 and 8-bit output.

Every kernel takes plain arrays and numbers. The whole greyscale pipeline (PS3.3 C.11.1 Modality
LUT, C.11.2 VOI LUT/window, MONOCHROME1 inversion, rounding to uint8) is one scalar function,
``_display_value``. For integer pixels of at most 16 bits it is evaluated once per possible stored
value to build a uint8 lookup table, then one gather pass renders the frame; other pixel types
(32-bit integers, floats) evaluate it per pixel. No float temporaries over the volume either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numba import njit

__all__ = [
    "DisplayParams",
    "ModalityKind",
    "VoiKind",
    "build_lut",
    "lut_domain",
    "minmax",
    "modality_range",
    "render_grey",
    "warm_up",
]


class ModalityKind(IntEnum):
    """How stored values become modality values (PS3.3 C.11.1)."""

    IDENTITY = 0
    RESCALE = 1
    TABLE = 2


class VoiKind(IntEnum):
    """How modality values become display values (PS3.3 C.11.2.1.2, C.11.2.1.3)."""

    LINEAR = 0
    LINEAR_EXACT = 1
    SIGMOID = 2
    TABLE = 3


_EMPTY = np.zeros(1, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class DisplayParams:
    """Plain parameters of one frame's greyscale pipeline; ``key`` identifies equal pipelines."""

    modality: ModalityKind = ModalityKind.IDENTITY
    slope: float = 1.0
    intercept: float = 0.0
    modality_table: np.ndarray = field(default_factory=lambda: _EMPTY)  # modality values
    modality_first: int = 0
    voi: VoiKind = VoiKind.LINEAR_EXACT
    center: float = 127.5
    width: float = 255.0
    voi_table: np.ndarray = field(default_factory=lambda: _EMPTY)  # display values, 0..255
    voi_first: int = 0
    invert: bool = False

    @property
    def key(self) -> tuple[object, ...]:
        """Hashable identity of the pipeline, to share one LUT between frames."""
        return (
            int(self.modality),
            self.slope,
            self.intercept,
            id(self.modality_table),
            self.modality_first,
            int(self.voi),
            self.center,
            self.width,
            id(self.voi_table),
            self.voi_first,
            self.invert,
        )

    def args(self) -> tuple[object, ...]:
        """Positional arguments in the order the kernels take them."""
        return (
            int(self.modality),
            float(self.slope),
            float(self.intercept),
            self.modality_table,
            int(self.modality_first),
            int(self.voi),
            float(self.center),
            float(self.width),
            self.voi_table,
            int(self.voi_first),
            bool(self.invert),
        )


@njit(nogil=True, cache=True)
def _display_value(
    x, m_kind, slope, intercept, m_table, m_first, v_kind, center, width, v_table, v_first, invert
):
    # Modality LUT, PS3.3 C.11.1: rescale or table (values outside the table clamp to its ends).
    if m_kind == 1:
        v = x * slope + intercept
    elif m_kind == 2:
        i = 0
        if x >= m_first:
            d = x - m_first
            i = len(m_table) - 1 if d >= len(m_table) - 1 else int(d)
        v = m_table[i]
    else:
        v = x
    # VOI, PS3.3 C.11.2.1.2 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT), C.11.2.1.3.1 (SIGMOID).
    if v_kind == 0 or v_kind == 1:
        c = center
        w = width
        if v_kind == 0:
            c = center - 0.5
            w = width - 1.0
        if v <= c - w / 2.0:
            y = 0.0
        elif v > c + w / 2.0:
            y = 255.0
        else:
            y = ((v - c) / w + 0.5) * 255.0
    elif v_kind == 2:
        y = 255.0 / (1.0 + math.exp(-4.0 * (v - center) / width))
    else:
        i = 0
        if v >= v_first:
            d = v - v_first
            i = len(v_table) - 1 if d >= len(v_table) - 1 else int(d)
        y = v_table[i]
    if not y > 0.0:  # also catches NaN
        y = 0.0
    elif y > 255.0:
        y = 255.0
    out = np.uint8(math.floor(y + 0.5))
    if invert:
        out = np.uint8(255 - out)
    return out


@njit(nogil=True, cache=True)
def _build_lut(
    lo, n, m_kind, slope, intercept, m_table, m_first, v_kind, center, width, v_table, v_first, inv
):
    lut = np.empty(n, dtype=np.uint8)
    for i in range(n):
        lut[i] = _display_value(
            float(lo + i),
            m_kind,
            slope,
            intercept,
            m_table,
            m_first,
            v_kind,
            center,
            width,
            v_table,
            v_first,
            inv,
        )
    return lut


@njit(nogil=True, cache=True)
def _gather(src, lut, offset, out):
    for i in range(src.size):
        out[i] = lut[np.int64(src[i]) + offset]


@njit(nogil=True, cache=True)
def _direct(
    src,
    out,
    m_kind,
    slope,
    intercept,
    m_table,
    m_first,
    v_kind,
    center,
    width,
    v_table,
    v_first,
    inv,
):
    for i in range(src.size):
        out[i] = _display_value(
            float(src[i]),
            m_kind,
            slope,
            intercept,
            m_table,
            m_first,
            v_kind,
            center,
            width,
            v_table,
            v_first,
            inv,
        )


@njit(nogil=True, cache=True)
def _minmax(src):
    lo = np.inf
    hi = -np.inf
    for i in range(src.size):
        v = float(src[i])
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    return lo, hi


_LUT_DTYPES = {
    np.dtype(np.uint8): (0, 256),
    np.dtype(np.int8): (-128, 256),
    np.dtype(np.uint16): (0, 65536),
    np.dtype(np.int16): (-32768, 65536),
}


def lut_domain(dtype: np.dtype) -> tuple[int, int] | None:
    """Return (lowest value, size) of a LUT covering every value of `dtype`, or None if too wide."""
    return _LUT_DTYPES.get(np.dtype(dtype))


def build_lut(params: DisplayParams, lo: int, n: int) -> np.ndarray:
    """Tabulate Modality LUT + VOI + inversion for stored values lo..lo+n-1 (PS3.3 C.11)."""
    return _build_lut(lo, n, *params.args())


def lut_pays(dtype: np.dtype, pixels: int) -> bool:
    """Whether tabulating every value of `dtype` costs less than computing `pixels` directly:
    a 16-bit table has 65536 entries, more work than a small image's own pixels."""
    domain = lut_domain(dtype)
    return domain is not None and pixels >= domain[1]


def render_grey(
    frame: np.ndarray, params: DisplayParams, lut: np.ndarray | None = None
) -> np.ndarray:
    """Render one greyscale frame to uint8 in one pass (PS3.3 C.11.1, C.11.2, C.7.6.3.1.2).

    With `lut` (from :func:`build_lut` over the dtype's whole domain) each pixel is one lookup;
    without, the table is built here when it pays, else every pixel is computed directly.
    """
    src = np.ascontiguousarray(frame)
    out = np.empty(src.shape, dtype=np.uint8)
    flat_in, flat_out = src.reshape(-1), out.reshape(-1)
    domain = lut_domain(src.dtype)
    if domain is not None and lut is None and lut_pays(src.dtype, src.size):
        lut = build_lut(params, *domain)
    if domain is not None and lut is not None:
        _gather(flat_in, lut, -domain[0], flat_out)
    else:
        _direct(flat_in, flat_out, *params.args())
    return out


def minmax(frame: np.ndarray) -> tuple[float, float]:
    """Return (min, max) of a frame in one pass (NaN ignored; (inf, -inf) when empty)."""
    return _minmax(np.ascontiguousarray(frame).reshape(-1))


def modality_range(params: DisplayParams, lo: float, hi: float) -> tuple[float, float]:
    """Return the range of modality values that stored values in [lo, hi] map to (PS3.3 C.11.1)."""
    if params.modality == ModalityKind.RESCALE:
        a, b = lo * params.slope + params.intercept, hi * params.slope + params.intercept
        return min(a, b), max(a, b)
    if params.modality == ModalityKind.TABLE:
        table = params.modality_table
        i0 = int(np.clip(lo - params.modality_first, 0, len(table) - 1))
        i1 = int(np.clip(hi - params.modality_first, 0, len(table) - 1))
        part = table[i0 : i1 + 1]
        return float(part.min()), float(part.max())
    return lo, hi


def variants(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`arr` and a read-only copy: numba compiles separately for read-only input arrays."""
    frozen = arr.copy()
    frozen.setflags(write=False)
    return arr, frozen


def warm_up() -> None:
    """Compile every kernel signature used at run time on tiny arrays."""
    p = DisplayParams()
    for dtype in (
        np.uint8,
        np.int8,
        np.uint16,
        np.int16,
        np.uint32,
        np.int32,
        np.float32,
        np.float64,
    ):
        for arr in variants(np.zeros((2, 2), dtype=dtype)):
            minmax(arr)
            render_grey(arr, p)
