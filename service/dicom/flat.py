"""A fast reader for the commonest upload: one uncompressed little-endian image, no sequences.

pydicom's ``dcmread`` builds a Dataset whose every element access goes through tags, hooks,
validation and ``DataElement`` objects; for a 128x128 CT that costs more than rendering it.
:func:`read_flat` walks the elements of such a file once and keeps them as offsets into the
upload. Values are converted only when asked for, by pydicom's own converters
(``pydicom.values.convert_value``); numbers and strings that pydicom would accept as they are
are converted (DS to float, IS to int) or formatted here directly. Every value equals
pydicom's and every metadata string is identical: ``tests/dicom/test_flat.py`` compares both
paths' whole responses on generated files.

Anything else returns None and the upload goes through pydicom: no DICM preamble, a transfer
syntax other than Explicit or Implicit VR Little Endian, sequences, undefined lengths, elements
out of order, ambiguous or unknown VRs, a character set other than the default, ISO_IR 100 or
ISO_IR 192, float pixel data, colour or palette images, bit-packed or 64-bit pixels. A file
whose last element runs past the end of the bytes is declined by the walk's own end check (no
cost added): ``upload.parse_dicom`` then reports it as truncated (``service.dicom.truncation``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

from pydicom import config
from pydicom.datadict import dictionary_has_tag, dictionary_keyword, dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement, empty_value_for_VR
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.values import convert_value

from accel.dataset import PIXEL_DATA_TAG, PIXEL_TAGS, has_pixel_data

__all__ = ["FlatDataset", "FlatElement", "read_flat"]

PREAMBLE = 128
SPECIFIC_CHARACTER_SET = 0x00080005
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_UNDEFINED = 0xFFFFFFFF
# PS3.5 7.1.2: these VRs have 2 reserved bytes and a 4-byte length in explicit VR.
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_KNOWN_VRS = _LONG_VRS | frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH", "SL",
     "SS", "ST", "TM", "UI", "UL", "US"}
)  # fmt: skip
BULK_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
# pydicom's names for the character sets this reader accepts (PS3.3 C.12.1.1.2).
_ENCODINGS = {"": "iso8859", "ISO_IR 6": "iso8859", "ISO_IR 100": "latin_1", "ISO_IR 192": "UTF8"}
_SYNTAXES: dict[str, bool] = {
    str(ExplicitVRLittleEndian): False,
    str(ImplicitVRLittleEndian): True,
}  # uid -> implicit VR
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_LONG_LENGTH = struct.Struct("<I")


class FlatElement(NamedTuple):
    """One element as pydicom's ``ds[keyword]`` shows it: converted value and VR."""

    value: Any
    VR: str


class _Raw(NamedTuple):
    vr: str
    offset: int
    length: int


_KEYWORDS: dict[int, str | None] = {}


def standard_keyword(tag: int) -> str | None:
    """The dictionary keyword of a public element (not file meta), else None; cached."""
    if tag not in _KEYWORDS:
        public = tag >> 16 != 0x0002 and not (tag >> 16) & 1 and dictionary_has_tag(tag)
        _KEYWORDS[tag] = (dictionary_keyword(tag) or None) if public else None
    return _KEYWORDS[tag]


class FlatDataset:
    """A parsed file whose values stay raw in the upload until asked for.

    Offers the part of pydicom's Dataset API that the renderer and the upload checks use:
    ``get(keyword, default)``, ``keyword in ds`` (or an int tag), ``ds[keyword]`` and
    ``file_meta.get(keyword)``; :meth:`element` serves the metadata builder.
    """

    def __init__(
        self,
        view: memoryview,
        meta: dict[int, _Raw],
        elements: dict[int, _Raw],
        implicit: bool,
        encoding: str,
    ) -> None:
        self._view = view
        self._meta = meta
        self._elements = elements
        self._implicit = implicit
        self._encoding = encoding
        self._values: dict[int, Any] = {}

    @property
    def file_meta(self) -> _FileMeta:
        """The file meta information (group 0002), as ``ds.file_meta.get(keyword)``."""
        return _FileMeta(self)

    def __contains__(self, key: object) -> bool:
        tag = key if isinstance(key, int) else tag_for_keyword(str(key))
        return tag in self._elements

    def __len__(self) -> int:
        return len(self._elements)

    def __getitem__(self, keyword: str) -> FlatElement:
        tag = tag_for_keyword(keyword)
        if tag not in self._elements:
            raise KeyError(keyword)
        return self.element(tag)

    def get(self, keyword: str, default: Any = None) -> Any:
        """The converted value of ``keyword`` (as pydicom gives it), or ``default`` if absent."""
        tag = tag_for_keyword(keyword)
        return self.value(tag) if tag in self._elements else default

    def element(self, tag: int) -> FlatElement:
        """A present element (file meta included), converted; raises what pydicom raises for
        a value it cannot convert."""
        return FlatElement(self.value(tag), self._raw(tag).vr)

    def value(self, tag: int) -> Any:
        """The converted value of a present element: bulk data stays a view of the upload."""
        if tag not in self._values:
            raw = self._raw(tag)
            if raw.vr in BULK_VRS or tag == PIXEL_DATA_TAG:
                self._values[tag] = self._view[raw.offset : raw.offset + raw.length]
            else:
                self._values[tag] = self._convert(tag, raw)
        return self._values[tag]

    def text(self, tag: int) -> str:
        """``str()`` of pydicom's value ("" for none), as the metadata shows it; strings that
        pydicom converts without side effects are formatted here from the stored text (a DS
        or IS value keeps its spelling, "0012" or "1e3", as pydicom's DSfloat and IS do)."""
        raw = self._raw(tag)
        dates = raw.vr in ("DA", "DT", "TM")
        if raw.length and raw.vr in _TEXT_FORMATTERS and not (dates and config.datetime_conversion):
            text = _TEXT_FORMATTERS[raw.vr](self.raw_bytes(tag).decode("latin-1"))
            if text is not None:
                return text
        if raw.length and raw.vr in _CHARSET_TEXT_FORMATTERS:
            stored = self.raw_bytes(tag)
            if b"\x1b" not in stored:  # no ISO 2022 escape: one codec decodes it all
                try:
                    text = _CHARSET_TEXT_FORMATTERS[raw.vr](stored.decode(self._encoding))
                except UnicodeDecodeError:  # pydicom warns and replaces: let it
                    text = None
                if text is not None:
                    return text
        value = self.value(tag)
        return "" if value is None else str(value)

    def raw_bytes(self, tag: int) -> bytes:
        """A present element's value bytes as stored."""
        raw = self._raw(tag)
        return bytes(self._view[raw.offset : raw.offset + raw.length])

    def vr(self, tag: int) -> str:
        """A present element's value representation."""
        return self._raw(tag).vr

    def tags(self) -> Iterator[int]:
        """The dataset's tags in ascending order (the order the file holds them in)."""
        return iter(self._elements)

    def has_meta(self, tag: int | None) -> bool:
        """Whether the file meta information (group 0002) holds ``tag``."""
        return tag in self._meta

    def _raw(self, tag: int) -> _Raw:
        return self._meta[tag] if tag >> 16 == 0x0002 else self._elements[tag]

    def _convert(self, tag: int, raw: _Raw) -> Any:
        if raw.length == 0:
            return empty_value_for_VR(raw.vr)
        value = bytes(self._view[raw.offset : raw.offset + raw.length])
        if _plain_string(raw.vr):  # pydicom.values.convert_string, without the call layers
            items = value.decode("latin-1").rstrip(" \x00").split("\\")
            return items[0] if len(items) == 1 else MultiValue(str, items)
        if raw.vr in ("DS", "IS"):
            numbers = _valid_numbers(raw.vr, value.decode("latin-1"))
            if numbers is not None:  # what DSfloat / IS would hold: the same float or int
                return numbers[0] if len(numbers) == 1 else numbers
        if raw.vr in _NUMBERS:
            count, rest = divmod(raw.length, struct.calcsize(_NUMBERS[raw.vr]))
            if not rest:
                unpacked = struct.unpack(f"<{count}{_NUMBERS[raw.vr]}", value)
                return unpacked[0] if count == 1 else list(unpacked)
        implicit = self._implicit and tag >> 16 != 0x0002
        element = RawDataElement(BaseTag(tag), raw.vr, raw.length, value, 0, implicit, True)
        return convert_value(raw.vr, element, self._encoding)


class _FileMeta:
    """``ds.file_meta.get(keyword)`` for a FlatDataset."""

    def __init__(self, ds: FlatDataset) -> None:
        self._ds = ds

    def __contains__(self, keyword: object) -> bool:
        return self._ds.has_meta(tag_for_keyword(str(keyword)))

    def get(self, keyword: str, default: Any = None) -> Any:
        tag = tag_for_keyword(keyword)
        return self._ds.value(tag) if self._ds.has_meta(tag) else default  # type: ignore[arg-type]


def _plain_string(vr: str) -> bool:
    """Whether pydicom reads ``vr`` as plain strings (DA, DT, TM: unless datetime conversion is
    on, which this service never turns on)."""
    return vr in ("AS", "CS") or (vr in ("DA", "DT", "TM") and not config.datetime_conversion)


def _listed(items: list[str]) -> str:
    """How pydicom shows a value: the value itself, or its MultiValue as "['a', 'b']"."""
    return items[0] if len(items) == 1 else "[" + ", ".join(map(repr, items)) + "]"


def _string(text: str) -> str:
    # pydicom.values.convert_string (AS, CS, DA, DT, TM): no validation on reading.
    return _listed(text.rstrip(" \x00").split("\\"))


def _application_entity(text: str) -> str:
    # pydicom.values.convert_AE_string
    return _listed([item.strip() for item in text.split("\\")])


def _valid_items(vr: str, text: str) -> list[str] | None:
    """The values of a UI, DS or IS element if pydicom's validators accept every one (they
    warn, or raise, otherwise), split as pydicom splits them; else None."""
    items = (text.strip() if vr == "DS" else text).rstrip(" \x00").split("\\")
    limit, pattern = _VALID[vr]
    if any(len(item) > limit or not pattern.match(item) for item in items):
        return None
    if vr == "IS" and any(not -(2**31) <= int(item) < 2**31 for item in items):
        return None
    return items


def _valid_numbers(vr: str, text: str) -> list[float] | list[int] | None:
    items = _valid_items(vr, text)
    if items is None:
        return None
    return [float(item) for item in items] if vr == "DS" else [int(item) for item in items]


def _validated(vr: str, text: str) -> str | None:
    """UI, DS and IS values as pydicom shows them, when its validators accept them; None for
    anything else, which pydicom then converts itself."""
    items = _valid_items(vr, text)
    if items is None:
        return None
    if vr == "UI":
        return _listed(items)
    return items[0] if len(items) == 1 else "[" + ", ".join(items) + "]"  # str(), not repr()


_VALID = {
    "UI": (64, re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\Z")),
    "DS": (16, re.compile(r"[+\-]?(\d+|\d+\.\d*|\.\d+)([eE][+\-]?\d+)?\Z")),
    "IS": (12, re.compile(r"[+\-]?\d+\Z")),
}


_TEXT_FORMATTERS: dict[str, Callable[[str], str | None]] = {
    "AS": _string,
    "CS": _string,
    "DA": _string,
    "DT": _string,
    "TM": _string,
    "AE": _application_entity,
    "UI": partial(_validated, "UI"),
    "DS": partial(_validated, "DS"),
    "IS": partial(_validated, "IS"),
}


def _split_text(limit: int, text: str) -> str | None:
    # pydicom.values.convert_text (SH, LO, UC): each value validated for length, then stripped.
    items = text.split("\\")
    if limit and any(len(item) > limit for item in items):
        return None
    return _listed([item.rstrip("\x00 ") for item in items])


def _single_text(limit: int, text: str) -> str | None:
    # pydicom.values.convert_single_string (ST, LT, UT): one value, backslashes included.
    return None if limit and len(text) > limit else text.rstrip("\x00 ")


# Text in the dataset's character set; the limits are pydicom's MAX_VALUE_LEN (0: none).
_CHARSET_TEXT_FORMATTERS: dict[str, Callable[[str], str | None]] = {
    "SH": partial(_split_text, 16),
    "LO": partial(_split_text, 64),
    "UC": partial(_split_text, 0),
    "ST": partial(_single_text, 1024),
    "LT": partial(_single_text, 10240),
    "UT": partial(_single_text, 0),
}


def _explicit_elements(
    view: memoryview, position: int, end: int, stop_group: int | None
) -> tuple[dict[int, _Raw], int] | None:
    """Explicit VR little endian elements from ``position`` (until a group other than
    ``stop_group`` starts, when given); None when the reader does not handle what it finds."""
    elements: dict[int, _Raw] = {}
    previous = -1
    while position < end:
        if end - position < 8:
            return None
        group, number, vr_bytes, short_length = _EXPLICIT_HEADER.unpack_from(view, position)
        if stop_group is not None and group != stop_group:
            break
        tag = group << 16 | number
        if stop_group is None and group < 0x0008:
            return None  # file meta or command elements inside the dataset
        vr = vr_bytes.decode("latin-1")
        if vr not in _KNOWN_VRS or vr == "SQ" or tag <= previous:
            return None
        if vr in _LONG_VRS:
            if end - position < 12:
                return None
            (length,) = _LONG_LENGTH.unpack_from(view, position + 8)
            position += 12
        else:
            length = short_length
            position += 8
        if length == _UNDEFINED or position + length > end:
            return None
        if group != 0x0002 and vr == "UN" and dictionary_has_tag(tag):
            return None  # pydicom would re-read it with the dictionary VR
        elements[tag] = _Raw(vr, position, length)
        previous = tag
        position += length
    return elements, position


def _implicit_elements(view: memoryview, position: int, end: int) -> dict[int, _Raw] | None:
    elements: dict[int, _Raw] = {}
    previous = -1
    while position < end:
        if end - position < 8:
            return None
        group, number, length = _IMPLICIT_HEADER.unpack_from(view, position)
        tag = group << 16 | number
        position += 8
        if group < 0x0008 or tag <= previous or length == _UNDEFINED or position + length > end:
            return None
        if tag == PIXEL_DATA_TAG:
            vr = "OW"  # "OB or OW" in the dictionary; either way bulk data
        elif not dictionary_has_tag(tag):
            if group & 1:
                vr = "UN"  # private: never shown, never rendered
            else:
                return None
        else:
            vr = dictionary_VR(tag)
            if vr not in _KNOWN_VRS or vr == "SQ":
                return None  # sequences, and ambiguous VRs such as "US or SS"
        elements[tag] = _Raw(vr, position, length)
        previous = tag
        position += length
    return elements


def read_flat(data: bytes | bytearray | memoryview) -> FlatDataset | None:
    """The file as a :class:`FlatDataset`, or None when pydicom must read it (module docstring)."""
    view = memoryview(data).cast("B")
    if len(view) < PREAMBLE + 4 or view[PREAMBLE : PREAMBLE + 4] != b"DICM":
        return None
    end = len(view)
    try:
        parsed = _explicit_elements(view, PREAMBLE + 4, end, stop_group=0x0002)
        if parsed is None:
            return None
        meta, position = parsed
        syntax_raw = meta.get(0x00020010)
        if syntax_raw is None:
            return None
        syntax = bytes(view[syntax_raw.offset : syntax_raw.offset + syntax_raw.length])
        implicit = _SYNTAXES.get(syntax.decode("ascii").rstrip("\x00 "))
        if implicit is None:
            return None
        if implicit:
            elements = _implicit_elements(view, position, end)
        else:
            found = _explicit_elements(view, position, end, stop_group=None)
            elements = None if found is None else found[0]
    except (UnicodeDecodeError, struct.error):
        return None
    if not elements or any(tag in elements for tag in PIXEL_TAGS[1:]):
        return None
    encoding = _encoding(view, elements.get(SPECIFIC_CHARACTER_SET))
    if encoding is None:
        return None
    ds = FlatDataset(view, meta, elements, implicit, encoding)
    return ds if _pixels_handled(ds) else None


def _pixels_handled(ds: FlatDataset) -> bool:
    """No pixel data, or greyscale pixels that ``accel.decoders.native`` reads as they are
    (one sample of 8, 16 or 32 bits); palette, colour and bit-packed data go through pydicom."""
    if not has_pixel_data(ds):
        return True
    try:
        samples = ds.get("SamplesPerPixel", 1)
        photometric = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
        bits = ds.get("BitsAllocated")
        return samples == 1 and bits in (8, 16, 32) and photometric in MONOCHROME
    except Exception:  # a malformed value: pydicom's path reports it
        return False


def _encoding(view: memoryview, raw: _Raw | None) -> str | None:
    if raw is None:
        return _ENCODINGS[""]
    text = bytes(view[raw.offset : raw.offset + raw.length]).decode("latin-1").strip("\x00 ")
    return _ENCODINGS.get(text)
