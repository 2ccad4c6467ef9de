"""Baseline JPEG colour: the colour space of a frame's components is decided per frame, from its
JPEG markers first and the Photometric Interpretation when the markers say nothing.

The reference is pydicom's decoding (pylibjpeg-libjpeg) of each frame on its own, which follows
the Photometric Interpretation for a marker-less frame. A neutral grey of 180 is the telltale:
read as YCbCr, the RGB triple (180, 180, 180) comes out magenta, about (253, 125, 255).
"""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import pytest
import simplejpeg
from pydicom import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import convert_color_space, pixel_array

import accel
from accel.decoders.turbo import components_are_rgb, libjpeg_assumes_rgb, parse_jpeg_header
from service.dicom.options import ReadOptions, ReturnFormat
from service.dicom.pipeline import answer_for_file
from service.settings import load_settings
from tests.accel.helpers import (
    JFIF_APP0,
    adobe_app14,
    decode_image,
    decode_png,
    encapsulated_jpeg_ds,
    gif_frames,
    rgb_component_jpeg,
    rgb_image,
    with_segments,
    without_colour_markers,
    ycbcr_jpeg,
)

GREY = 180
PATCH = (slice(8, 24), slice(8, 24))  # whole 8x8 blocks: JPEG keeps a flat patch flat
JFIF_IDS = (1, 2, 3)
RGB_IDS = (82, 71, 66)  # 'R', 'G', 'B'


@dataclass
class Case:
    """A dataset, the pixels its frames were encoded from and pydicom's decoding of each."""

    ds: Dataset
    original: np.ndarray
    reference: list[np.ndarray]


def _pixels(frames: int) -> np.ndarray:
    out = rgb_image(frames, 32, 48)
    out[(slice(None), *PATCH)] = GREY
    return out


def _case(encoded: Sequence[bytes], pixels: np.ndarray, photometric: str) -> Case:
    reference = []
    for k, frame in enumerate(encoded):
        one = encapsulated_jpeg_ds([frame], pixels[k : k + 1], photometric)
        with warnings.catch_warnings():
            # pydicom warns when a codestream's markers overrule the Photometric Interpretation.
            warnings.simplefilter("ignore", UserWarning)
            reference.append(pixel_array(one))
    return Case(encapsulated_jpeg_ds(encoded, pixels, photometric), pixels, reference)


def markerless_rgb(frames: int = 2, ids: Sequence[int] = JFIF_IDS) -> Case:
    """PhotometricInterpretation RGB; RGB components; no JFIF or Adobe marker."""
    pixels = _pixels(frames)
    encoded = [without_colour_markers(rgb_component_jpeg(f), ids) for f in pixels]
    return _case(encoded, pixels, "RGB")


def markerless_ybr(frames: int = 2) -> Case:
    """PhotometricInterpretation YBR_FULL_422; YCbCr 4:2:2 components; no JFIF marker."""
    pixels = _pixels(frames)
    return _case([without_colour_markers(ycbcr_jpeg(f)) for f in pixels], pixels, "YBR_FULL_422")


def _spread(pixel: np.ndarray) -> int:
    return int(pixel.max()) - int(pixel.min())


def assert_colours(
    got: Sequence[np.ndarray], case: Case, tol: float = 3.0, grey_spread: int = 8
) -> None:
    """Each frame is within `tol` (mean absolute difference per channel) of pydicom's decoding
    and within 3 * `tol` of the original pixels (4:2:2 chroma blurs the colour image's sharp
    edges), and the neutral grey patch stays grey."""
    assert len(got) == len(case.reference)
    for k, (g, want) in enumerate(zip(got, case.reference, strict=True)):
        assert g.shape == want.shape
        diff = np.abs(g.astype(int) - want.astype(int)).mean(axis=(0, 1))
        assert diff.max() < tol, f"frame {k}: mean |difference| per channel {diff}"
        original = np.abs(g.astype(int) - case.original[k].astype(int)).mean(axis=(0, 1))
        assert original.max() < 3 * tol, f"frame {k}: {original} from the original pixels"
        centre = g[16, 16]
        assert _spread(centre) <= grey_spread, f"frame {k}: grey {GREY} rendered as {centre}"
        assert abs(int(centre.mean()) - GREY) <= grey_spread


def _stored(ds: Dataset) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))


# Through accel.render -----------------------------------------------------------------------


def test_png_markerless_rgb_and_ybr_full_422() -> None:
    for case in (markerless_rgb(), markerless_ybr()):
        assert_colours([decode_png(b) for b in accel.render(case.ds, "png")], case)


@pytest.mark.parametrize("ids", [JFIF_IDS, (0, 1, 2), (2, 3, 4)], ids=["1-2-3", "0-1-2", "2-3-4"])
def test_png_markerless_rgb_whatever_the_component_ids(ids: tuple[int, ...]) -> None:
    # libjpeg guesses YCbCr for every marker-less 3-component stream whose IDs are not R, G, B.
    case = markerless_rgb(1, ids)
    assert_colours([decode_png(b) for b in accel.render(case.ds, "png")], case)


def test_jpeg_markerless_rgb_and_ybr_full_422_are_re_encoded() -> None:
    # A browser would read a marker-less 3-component JPEG as YCbCr, so the stored frames of the
    # RGB case must not be passed through; the YBR case is rendered too (no marker, no promise).
    for case in (markerless_rgb(), markerless_ybr()):
        out = accel.render(case.ds, "jpeg", quality=95)
        assert all(a != b for a, b in zip(out, _stored(case.ds), strict=True))
        assert all(data[:2] == b"\xff\xd8" for data in out)
        assert_colours([decode_image(b) for b in out], case)


def test_gif_markerless_rgb_and_ybr_full_422() -> None:
    for case in (markerless_rgb(3), markerless_ybr(3)):
        (data,) = accel.render(case.ds, "gif")
        frames, _, _ = gif_frames(data, "RGB")
        assert_colours(frames, case, tol=6.0, grey_spread=16)  # 256-colour quantised


def test_colour_space_is_decided_per_frame() -> None:
    pixels = _pixels(4)
    rgb = _case(
        [
            without_colour_markers(rgb_component_jpeg(pixels[0]), JFIF_IDS),  # PI decides: RGB
            rgb_component_jpeg(pixels[1]),  # Adobe transform 0: RGB
            without_colour_markers(rgb_component_jpeg(pixels[2])),  # IDs 'R', 'G', 'B': RGB
            ycbcr_jpeg(pixels[3]),  # JFIF: YCbCr whatever the attribute says
        ],
        pixels,
        "RGB",
    )
    assert_colours([decode_png(b) for b in accel.render(rgb.ds, "png")], rgb)
    assert_colours(
        [decode_png(b) for b in accel.render(rgb.ds, "png", frames=[2, 0])], _pick(rgb, [2, 0])
    )
    ybr = _case(
        [
            without_colour_markers(ycbcr_jpeg(pixels[0])),  # PI decides: YCbCr, converted once
            ycbcr_jpeg(pixels[1]),  # JFIF: YCbCr
            without_colour_markers(rgb_component_jpeg(pixels[2]), RGB_IDS),  # IDs: RGB
            without_colour_markers(rgb_component_jpeg(pixels[3]), b"rgb"),  # IDs 'r','g','b'
        ],
        pixels,
        "YBR_FULL_422",
    )
    assert_colours([decode_png(b) for b in accel.render(ybr.ds, "png")], ybr)


def _pick(case: Case, frames: Sequence[int]) -> Case:
    return Case(case.ds, case.original[list(frames)], [case.reference[k] for k in frames])


def test_explicitly_marked_rgb_frames_are_still_passed_through() -> None:
    pixels = _pixels(2)
    marked = _case([rgb_component_jpeg(f) for f in pixels], pixels, "RGB")  # Adobe transform 0
    assert accel.render(marked.ds, "jpeg") == _stored(marked.ds)
    mixed = _case(
        [
            rgb_component_jpeg(pixels[0]),
            without_colour_markers(rgb_component_jpeg(pixels[1]), JFIF_IDS),
        ],
        pixels,
        "RGB",
    )
    assert accel.render(mixed.ds, "jpeg", frames=[0]) == _stored(mixed.ds)[:1]
    out = accel.render(mixed.ds, "jpeg", quality=95)
    assert out[1] != _stored(mixed.ds)[1]
    assert_colours([decode_image(b) for b in out], mixed)


# Every marker combination ------------------------------------------------------------------


def _variants(components: bytes) -> list[tuple[str, bytes]]:
    """One frame in every combination of JFIF marker, Adobe transform and component IDs."""
    out = []
    for ids in (JFIF_IDS, RGB_IDS, b"rgb"):
        bare = without_colour_markers(components, ids)
        for jfif in (False, True):
            for adobe in (None, 0, 1, 2):
                segments = ([JFIF_APP0] if jfif else []) + (
                    [] if adobe is None else [adobe_app14(adobe)]
                )
                name = f"ids={bytes(ids)!r} jfif={jfif} adobe={adobe}"
                out.append((name, with_segments(bare, *segments)))
    return out


def test_libjpeg_assumes_rgb_is_what_libjpeg_turbo_does() -> None:
    pixels = _pixels(1)[0]
    components = rgb_component_jpeg(pixels)
    raw = simplejpeg.decode_jpeg(components)  # Adobe transform 0: the components as stored
    for name, frame in _variants(components):
        header = parse_jpeg_header(frame)
        assert header is not None
        if header.adobe_transform == 2 and not header.jfif:
            # libjpeg warns ("assume it's YCbCr"); libjpeg-turbo's TurboJPEG refuses the frame.
            with pytest.raises(ValueError, match="Adobe color transform"):
                simplejpeg.decode_jpeg(frame, strict=False)
            assert not libjpeg_assumes_rgb(header)
            continue
        got = simplejpeg.decode_jpeg(frame)
        assert np.array_equal(got, raw) == libjpeg_assumes_rgb(header), name


def test_every_marker_combination_is_decoded_by_the_rule() -> None:
    # RGB components where the rule says so, else the components converted from YCbCr once.
    pixels = _pixels(1)
    components = rgb_component_jpeg(pixels[0])
    raw = simplejpeg.decode_jpeg(components)
    as_ycbcr = convert_color_space(raw, "YBR_FULL", "RGB")
    wrong = []
    for photometric in ("RGB", "YBR_FULL_422", "YBR_FULL"):
        for name, frame in _variants(components):
            header = parse_jpeg_header(frame)
            assert header is not None
            want = raw if components_are_rgb(header, photometric) else as_ycbcr
            ds = encapsulated_jpeg_ds([frame], pixels, photometric)
            got = decode_png(accel.render(ds, "png")[0])
            if np.abs(got.astype(int) - want.astype(int)).max() > 2:
                wrong.append(f"{photometric} {name}")
    assert not wrong


# Through the HTTP-free service pipeline -----------------------------------------------------


def _file(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif"])
def test_answer_for_file_markerless_rgb_and_ybr_full_422(fmt: ReturnFormat) -> None:
    settings = load_settings({})
    for case in (markerless_rgb(), markerless_ybr()):
        options = ReadOptions(return_format=fmt)
        body = orjson.loads(
            answer_for_file("x.dcm", _file(case.ds), options, settings, None).to_bytes()
        )
        images = [base64.b64decode(i) for i in body["Images"]]
        if fmt == "gif":
            (gif,) = images
            assert_colours(gif_frames(gif, "RGB")[0], case, tol=6.0, grey_spread=16)
        else:
            assert_colours([decode_image(b) for b in images], case)
