"""render(): decode, apply the display pipeline and encode every selected frame of a dataset."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor

import numpy as np

from accel import adapter, color, encode, gif, resize, window
from accel.dataset import DatasetLike, encapsulated_frames, has_float_pixel_data
from accel.decode import decode_frames
from accel.decoders.base import Decoded, FrameSpec
from accel.passthrough import can_pass_through, frame_is_plain
from accel.window import DisplayParams, ModalityKind, VoiKind

__all__ = ["render", "warm_up"]

_IDENTITY_8 = adapter.stored_range_params(8)


def _is_identity(p: DisplayParams | None) -> bool:
    return (
        p is not None
        and p.modality == ModalityKind.IDENTITY
        and p.voi == VoiKind.LINEAR_EXACT
        and (p.center, p.width) == _IDENTITY_8
        and not p.invert
    )


def _min_max_params(ds: DatasetLike, spec: FrameSpec, decoded: Decoded) -> list[DisplayParams]:
    # No VOI: one LINEAR_EXACT window spanning the modality values of ALL frames (no flicker).
    modality = adapter.modality_params(ds, range(spec.number_of_frames))
    lo, hi = np.inf, -np.inf
    for frame, mod in zip(decoded.frames, modality, strict=True):
        f_lo, f_hi = window.minmax(frame)
        if f_lo <= f_hi:
            m_lo, m_hi = window.modality_range(mod, f_lo, f_hi)
            lo, hi = min(lo, m_lo), max(hi, m_hi)
    if not lo <= hi:  # empty or all-NaN data
        lo = hi = 0.0
    # A constant image gets a threshold at its value, so it renders black.
    center, width = ((lo + hi) / 2.0, hi - lo) if hi > lo else (lo + 0.5, 1.0)
    invert = spec.photometric == "MONOCHROME1"
    return [
        DisplayParams(
            mod.modality,
            mod.slope,
            mod.intercept,
            mod.modality_table,
            mod.modality_first,
            VoiKind.LINEAR_EXACT,
            center,
            width,
            invert=invert,
        )
        for mod in modality
    ]


def _skip(frame: np.ndarray, p: DisplayParams) -> bool:
    return frame.dtype == np.uint8 and _is_identity(p)


def _grey_renderer(
    params: list[DisplayParams], frames: list[np.ndarray]
) -> Callable[[int], np.ndarray]:
    # One LUT per distinct pipeline and pixel type, shared by every frame that uses it, when
    # those frames have more pixels than the table has entries (else direct computation wins).
    pixels: dict[tuple[object, ...], int] = {}
    for p, frame in zip(params, frames, strict=True):
        if not _skip(frame, p):
            key = (p.key, frame.dtype.str)
            pixels[key] = pixels.get(key, 0) + frame.size
    luts: dict[tuple[object, ...], np.ndarray] = {}
    for p, frame in zip(params, frames, strict=True):
        key = (p.key, frame.dtype.str)
        domain = window.lut_domain(frame.dtype)
        if key in pixels and key not in luts and window.lut_pays(frame.dtype, pixels[key]):
            luts[key] = window.build_lut(p, *domain)  # type: ignore[misc]

    def one(k: int) -> np.ndarray:
        frame, p = frames[k], params[k]
        if _skip(frame, p):
            return frame
        return window.render_grey(frame, p, luts.get((p.key, frame.dtype.str)))

    return one


def _colour_renderer(
    ds: DatasetLike, spec: FrameSpec, decoded: Decoded
) -> Callable[[int], np.ndarray]:
    frames = decoded.frames
    if spec.photometric == "PALETTE COLOR":
        table, first = adapter.palette_table(ds)
        return lambda k: color.apply_palette(frames[k], table, first)
    bits = spec.bits_stored if frames[0].dtype != np.uint8 else min(spec.bits_stored, 8)
    if decoded.photometric in ("YBR_FULL", "YBR_FULL_422"):
        return lambda k: color.ybr_full_to_rgb(color.scale_to_u8(frames[k], bits))
    # RGB, or YBR_ICT/YBR_RCT which the JPEG 2000 decoders have already turned into RGB.
    return lambda k: color.scale_to_u8(frames[k], bits)


def _map(pool: Executor | None, func: Callable[[int], bytes | np.ndarray], n: int) -> list:
    if pool is not None and n > 1:
        return list(pool.map(func, range(n)))
    return [func(k) for k in range(n)]


def render(
    ds: DatasetLike,
    fmt: str,
    *,
    frames: Sequence[int] | None = None,
    window: tuple[float, float] | None = None,
    quality: int = 90,
    pool: Executor | None = None,
    viewport: tuple[int, int] | None = None,
) -> list[bytes]:
    """Render frames as PNG/JPEG (one each) or one GIF (animated if >1); PS3.3 C.11, C.7.6.3.

    ``viewport=(width, height)`` scales every frame to fit it, keeping the aspect ratio.
    """
    if fmt not in encode.FORMATS:
        raise ValueError(f"unknown image format {fmt!r}")
    quality = min(100, max(1, int(quality)))
    spec = adapter.frame_spec(ds)
    indices = list(range(spec.number_of_frames)) if frames is None else [int(i) for i in frames]
    if any(not 0 <= i < spec.number_of_frames for i in indices):
        raise ValueError("frame index out of range")
    if not indices:
        return []
    grey = spec.photometric in adapter.GREY
    float_data = has_float_pixel_data(ds)

    params: list[DisplayParams | None] = []
    if grey:
        params = adapter.display_params(ds, spec, indices, window, float_data)
    if fmt == "jpeg" and viewport is None:
        identity = all(_is_identity(p) for p in params) if grey else True
        if can_pass_through(spec, identity):
            stored = encapsulated_frames(ds, spec.number_of_frames)
            if all(frame_is_plain(stored[i], spec) for i in indices):
                return [bytes(stored[i]) for i in indices]

    need_range = grey and any(p is None for p in params)
    wanted = list(range(spec.number_of_frames)) if need_range else indices
    decoded = decode_frames(ds, spec, wanted, pool)
    if need_range:
        every = _min_max_params(ds, spec, decoded)
        params = [p if p is not None else every[i] for p, i in zip(params, indices, strict=True)]
        decoded = Decoded([decoded.frames[i] for i in indices], decoded.photometric)

    display: Callable[[int], np.ndarray]
    if grey:
        display = _grey_renderer(params, decoded.frames)  # type: ignore[arg-type]
    else:
        display = _colour_renderer(ds, spec, decoded)
    if viewport is not None:
        unscaled = display
        display = lambda k: resize.fit_within(unscaled(k), viewport)  # noqa: E731

    n = len(indices)
    if fmt == "gif":
        images = _map(pool, display, n)
        delay = gif.delay_centiseconds(adapter.frame_delay_ms(ds))
        return [gif.encode_gif(images, delay, pool)]
    if fmt == "png":
        return _map(pool, lambda k: encode.encode_png(display(k)), n)
    return _map(pool, lambda k: encode.encode_jpeg(display(k), quality), n)


def warm_up() -> None:
    """Compile or load from cache every numba kernel, so no request pays for JIT."""
    window.warm_up()
    color.warm_up()
    encode.warm_up()
    gif.warm_up()
