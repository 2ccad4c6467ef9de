"""Parse and validate the options of ``POST /api/dicom/read/file/`` (form or query string)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from pydicom.datadict import tag_for_keyword

from service.errors import ValidationFailed

ReturnFormat = Literal["png", "jpeg", "gif"]
RETURN_FORMATS: tuple[ReturnFormat, ...] = ("png", "jpeg", "gif")
DEFAULT_QUALITY = 90
OPTION_NAMES = ("fields", "return_format", "window", "frames", "quality", "viewport")
MAX_VIEWPORT = 8192

# Limits on option text so that a hostile request cannot make parsing itself expensive.
MAX_FIELDS = 500
MAX_FRAME_ITEMS = 1000
_MAX_ECHO = 64

_FRAME_ITEM = re.compile(r"^\s*(\d{1,9})\s*(?:-\s*(\d{1,9})\s*)?$")
_INT = re.compile(r"^\s*\+?(\d{1,4})\s*$")


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """A validated ``frames`` option: 1-based inclusive ranges in the order the client gave them."""

    text: str
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Everything the DICOM read endpoint accepts besides the file itself."""

    fields: tuple[str, ...] | None = None
    return_format: ReturnFormat = "png"
    window: tuple[float, float] | None = None
    frames: FrameSpec | None = None
    quality: int = DEFAULT_QUALITY
    viewport: tuple[int, int] | None = None


def _echo(text: str) -> str:
    """Client text quoted back in an error, truncated so a message stays small."""
    return repr(text if len(text) <= _MAX_ECHO else text[:_MAX_ECHO] + "...")


def parse_fields(text: str) -> tuple[str, ...] | None:
    """Comma-separated DICOM keywords -> de-duplicated tuple; unknown keywords are all reported."""
    keywords: list[str] = []
    for item in text.split(","):
        keyword = item.strip()
        if keyword and keyword not in keywords:
            keywords.append(keyword)
    if not keywords:
        return None
    if len(keywords) > MAX_FIELDS:
        raise ValidationFailed({"fields": [f"at most {MAX_FIELDS} fields may be requested"]})
    unknown = [k for k in keywords if tag_for_keyword(k) is None]
    if unknown:
        names = ", ".join(_echo(k) for k in unknown)
        raise ValidationFailed(
            {"fields": [f"unknown DICOM keyword(s): {names} (keywords are case-sensitive)"]}
        )
    return tuple(keywords)


def parse_return_format(text: str) -> ReturnFormat:
    """``png``/``jpeg``/``gif`` in any case; nothing else."""
    value = text.strip().lower()
    if value not in RETURN_FORMATS:
        raise ValidationFailed({"return_format": ["must be one of png, jpeg, gif"]})
    return cast(ReturnFormat, value)


def parse_window(text: str) -> tuple[float, float]:
    """``center,width`` -> floats; width >= 1 so it is valid for every VOI LUT Function
    (PS3.3 C.11.2.1.2 requires >= 1 for LINEAR, > 0 for LINEAR_EXACT and SIGMOID)."""
    parts = text.split(",")
    message = "must be 'center,width': two finite numbers with width >= 1"
    if len(parts) != 2:
        raise ValidationFailed({"window": [message]})
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValidationFailed({"window": [message]}) from None
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
        raise ValidationFailed({"window": [message]})
    return center, width


def parse_frames(text: str) -> FrameSpec:
    """``1-10,20`` (1-based, inclusive, ranges may run backwards) -> a syntax-checked FrameSpec."""
    items = text.split(",")
    if len(items) > MAX_FRAME_ITEMS:
        raise ValidationFailed({"frames": [f"at most {MAX_FRAME_ITEMS} items are allowed"]})
    ranges: list[tuple[int, int]] = []
    for item in items:
        match = _FRAME_ITEM.match(item)
        if match is None:
            raise ValidationFailed(
                {"frames": [f"{_echo(item)} is not a frame number or range like '1-10'"]}
            )
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        if start < 1 or end < 1:
            raise ValidationFailed({"frames": ["frames are numbered from 1"]})
        ranges.append((start, end))
    return FrameSpec(text=text.strip(), ranges=tuple(ranges))


def parse_quality(text: str) -> int:
    """An integer 1..100 (JPEG quality; accepted and ignored for png and gif)."""
    match = _INT.match(text)
    if match is None or not 1 <= int(match.group(1)) <= 100:
        raise ValidationFailed({"quality": ["must be an integer from 1 to 100"]})
    return int(match.group(1))


def parse_viewport(text: str) -> tuple[int, int]:
    """``width,height`` in pixels (1..8192 each), as DICOMweb's ``viewport``."""
    parts = text.split(",")
    matches = [_INT.match(part) for part in parts] if len(parts) == 2 else []
    if len(matches) != 2 or any(
        m is None or not 1 <= int(m.group(1)) <= MAX_VIEWPORT for m in matches
    ):
        raise ValidationFailed(
            {"viewport": [f"must be 'width,height': two integers from 1 to {MAX_VIEWPORT}"]}
        )
    width, height = (int(m.group(1)) for m in matches if m is not None)
    return width, height


def resolve_frames(spec: FrameSpec | None, number_of_frames: int) -> tuple[int, ...]:
    """0-based frame indices for an instance: all frames for None, else the spec's frames in the
    order given with repeats dropped; a frame past the end is a 400 naming the frame count."""
    if spec is None:
        return tuple(range(number_of_frames))
    too_big = sorted({n for r in spec.ranges for n in r if n > number_of_frames})
    if too_big:
        noun = "frame" if number_of_frames == 1 else "frames"
        raise ValidationFailed(
            {
                "frames": [
                    f"frame {too_big[0]} is out of range: the file has {number_of_frames} {noun}"
                ]
            }
        )
    seen: dict[int, None] = {}
    for start, end in spec.ranges:
        step = 1 if end >= start else -1
        for n in range(start, end + step, step):
            seen.setdefault(n - 1, None)
    return tuple(seen)


_PARSERS = {
    "fields": parse_fields,
    "return_format": parse_return_format,
    "window": parse_window,
    "frames": parse_frames,
    "quality": parse_quality,
    "viewport": parse_viewport,
}


def _pick(name: str, form: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The option's text from the form or the query (blank counts as absent); both given with
    different text is an error rather than a silent choice."""
    in_form = (form.get(name) or "").strip() or None
    in_query = (query.get(name) or "").strip() or None
    if in_form is not None and in_query is not None and in_form != in_query:
        raise ValidationFailed(
            {name: ["given in both the form and the query string with different values"]}
        )
    return in_form if in_form is not None else in_query


def parse_read_options(form: Mapping[str, str], query: Mapping[str, str]) -> ReadOptions:
    """Build ReadOptions from the form and the query string, reporting every bad option at once."""
    errors: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for name in OPTION_NAMES:
        try:
            text = _pick(name, form, query)
            if text is not None:
                values[name] = _PARSERS[name](text)
        except ValidationFailed as exc:
            for key, messages in exc.errors.items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationFailed(errors)
    return ReadOptions(**values)  # type: ignore[arg-type]
