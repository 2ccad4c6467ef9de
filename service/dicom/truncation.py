"""Where a DICOM file ends inside an element: a walk of the element headers (tag, VR, length).

pydicom stops silently at the end of the data: a file cut short in transit reads as a smaller,
valid-looking dataset. :func:`find_truncation` walks the headers as pydicom's reader does
(``pydicom.filereader.read_partial`` and ``data_element_generator``: file meta in explicit VR
little endian, the transfer syntax's encoding after it, the same implicit VR switches,
undefined lengths with items and delimiters, encapsulated fragments) without reading values,
and names the top-level element whose header or value runs past the end of the bytes.

A deflated dataset is not walked (its offsets are in the inflated stream; a cut deflate stream
already fails to inflate).
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from pydicom import config
from pydicom.datadict import DicomDictionary, RepeatersDictionary, mask_match
from pydicom.filereader import ENCODED_VR
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import converters

__all__ = ["Truncation", "find_truncation"]

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
TRANSFER_SYNTAX_UID = 0x00020010
MAX_DEPTH = 64  # nested sequences; deeper is left to pydicom
_LONG_VRS = frozenset(str(vr).encode() for vr in EXPLICIT_VR_LENGTH_32)
_ENCODINGS = {  # transfer syntax -> (implicit VR, little endian); other syntaxes: explicit LE
    str(ImplicitVRLittleEndian): (True, True),
    str(ExplicitVRLittleEndian): (False, True),
    str(ExplicitVRBigEndian): (False, False),
}


class Truncation(NamedTuple):
    """The top-level element a file ends inside: its tag (as far as the bytes hold it), the
    byte offset where it starts, and, for a cut value of defined length, how many of its
    declared bytes are present."""

    tag_text: str
    offset: int
    tag: int | None = None
    present: int | None = None
    declared: int | None = None

    @property
    def message(self) -> str:
        """The client-facing reason: tag and byte offsets only, never a value."""
        text = f"the file ends inside element {self.tag_text} at byte {self.offset}; "
        text += "it looks truncated"
        if self.declared is not None:
            text += f" (its value is {self.present} bytes, expected {self.declared})"
        return text


class _Cut(Exception):
    """The walk needed bytes past the end; ``present``/``declared`` for an element's own value."""

    def __init__(self, present: int | None = None, declared: int | None = None) -> None:
        super().__init__()
        self.present = present
        self.declared = declared


class _Truncated(Exception):
    """A top-level element runs past the end."""

    def __init__(self, truncation: Truncation) -> None:
        super().__init__(truncation.message)
        self.truncation = truncation


class _Unreadable(Exception):
    """A structure the walk does not follow (nesting deeper than MAX_DEPTH)."""


def find_truncation(data: bytes | bytearray | memoryview) -> Truncation | None:
    """The top-level element the file ends inside, or None when every element ends within the
    bytes (or the dataset is deflated, or nested too deep to follow)."""
    view = memoryview(data).cast("B")
    position = 132 if view[128:132] == b"DICM" else 0
    meta = _Walker(view, little=True)
    try:
        # File meta (0002) then command set (0000) elements, as read_partial reads them.
        syntax, position = meta.walk(position, 0x0002, meta.looks_implicit(position, False))
        _, position = meta.walk(position, 0x0000, meta.looks_implicit(position, True))
        if position >= len(view):
            return None
        encoding = _dataset_encoding(view, position, syntax)
        if encoding is None:
            return None
        implicit, little = encoding
        walker = _Walker(view, little)
        walker.walk(position, None, walker.looks_implicit(position, implicit))
    except _Truncated as cut:
        return cut.truncation
    except _Unreadable:
        return None
    return None


def _dataset_encoding(
    view: memoryview, position: int, syntax: bytes | None
) -> tuple[bool, bool] | None:
    """(implicit VR, little endian) of the dataset as read_partial chooses it; None if deflated."""
    if syntax is None:  # no Transfer Syntax UID: guess from the first element, as pydicom does
        if len(view) - position < 6:
            raise _Truncated(_truncation(view, position, _Cut(), little=True))
        group, _, vr = struct.unpack_from("<HH2s", view, position)
        if vr.decode("latin-1") in converters:
            return False, group < 1024  # big endian groups up to 0x00FF read as >= 1024
        return True, True
    uid = syntax.strip(b"\x00 ").decode("latin-1")
    if uid == str(DeflatedExplicitVRLittleEndian):
        return None
    return _ENCODINGS.get(uid, (False, True))


def _truncation(view: memoryview, start: int, cut: _Cut, *, little: bool) -> Truncation:
    """Name the element starting at ``start``: '?' for the tag digits past the end."""
    tag_bytes = bytes(view[start : start + 4])
    digits = ["??"] * 4
    for index, byte in enumerate(tag_bytes):
        digits[index] = f"{byte:02X}"
    if little:  # group low, group high, element low, element high
        group, element = digits[1] + digits[0], digits[3] + digits[2]
    else:
        group, element = digits[0] + digits[1], digits[2] + digits[3]
    tag = int(group + element, 16) if len(tag_bytes) == 4 else None
    return Truncation(f"({group},{element})", start, tag, cut.present, cut.declared)


def _dictionary_vr(tag: int) -> str:
    """The dictionary VR, as pydicom.datadict._dictionary_vr_fast finds it (KeyError if none)."""
    if tag in DicomDictionary:
        return DicomDictionary[tag][0]
    mask = None if (tag >> 16) % 2 else mask_match(tag)
    if mask:
        return RepeatersDictionary[mask][0]
    raise KeyError(tag)


class _Walker:
    """Element headers of one byte order over the whole upload."""

    def __init__(self, view: memoryview, little: bool) -> None:
        self.view = view
        self.end = len(view)
        self.little = little
        order = "<" if little else ">"
        self._implicit_header = struct.Struct(f"{order}HHI")
        self._explicit_header = struct.Struct(f"{order}HH2sH")
        self._long_length = struct.Struct(f"{order}I")
        self._tag = struct.Struct(f"{order}HH")
        self._sequence_delimiter = re.compile(re.escape(self._tag.pack(0xFFFE, 0xE0DD)))

    def looks_implicit(self, position: int, assumed: bool) -> bool:
        """pydicom's ``_is_implicit_vr`` for a top-level dataset: explicit only if the first
        element's VR bytes are two capital letters."""
        raw_vr = self.view[position + 4 : position + 6]
        if len(raw_vr) < 2:
            return assumed
        return not (0x40 < raw_vr[0] < 0x5B and 0x40 < raw_vr[1] < 0x5B)

    def walk(self, position: int, group: int | None, implicit: bool) -> tuple[bytes | None, int]:
        """Walk top-level elements of ``group`` (all, when None) from ``position``: the Transfer
        Syntax UID value if met, and the position after the last one; raises _Truncated."""
        syntax = None
        end = self.end
        while position < end:
            start = position
            try:
                tag, vr, length, value_start = self.header(position, implicit)
                if group is not None and tag >> 16 != group:
                    break
                if tag == ITEM_DELIMITER:
                    break  # pydicom ends the dataset here
                if length != UNDEFINED and value_start + length <= end:
                    position = value_start + length  # the common case, kept cheap
                else:
                    position = self.value(tag, vr, length, value_start, implicit, depth=0)
            except _Cut as cut:
                raise _Truncated(_truncation(self.view, start, cut, little=self.little)) from None
            if tag == TRANSFER_SYNTAX_UID:
                syntax = bytes(self.view[value_start:position])
        return syntax, position

    def header(self, position: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
        """Tag, VR (None when implicit), length and value offset of the element at
        ``position``, read as pydicom's data_element_generator reads them."""
        if self.end - position < 8:
            raise _Cut()
        if implicit:
            group, number, length = self._implicit_header.unpack_from(self.view, position)
            return group << 16 | number, None, length, position + 8
        group, number, vr, length = self._explicit_header.unpack_from(self.view, position)
        if vr in _LONG_VRS:
            if self.end - position < 12:
                raise _Cut()
            (length,) = self._long_length.unpack_from(self.view, position + 8)
            return group << 16 | number, vr, length, position + 12
        if (
            vr not in ENCODED_VR and not b"AA" <= vr <= b"ZZ" and config.assume_implicit_vr_switch
        ):  # not even letters: pydicom reads this element as implicit VR
            (length,) = self._long_length.unpack_from(self.view, position + 4)
            return group << 16 | number, None, length, position + 8
        return group << 16 | number, vr, length, position + 8  # unknown letters: 2-byte length

    def value(
        self, tag: int, vr: bytes | None, length: int, value_start: int, implicit: bool, depth: int
    ) -> int:
        """The position after the element's value; raises _Cut when it runs past the end."""
        if length != UNDEFINED:
            value_end = value_start + length
            if value_end > self.end:
                if depth:
                    raise _Cut()
                raise _Cut(self.end - value_start, length)
            return value_end
        if depth > MAX_DEPTH:
            raise _Unreadable()
        if vr == b"UN" and config.settings.infer_sq_for_un_vr:
            vr = b"SQ"  # PS3.5 6.2.2
        if vr is None or (vr == b"UN" and config.replace_un_with_known_vr):
            try:
                vr = _dictionary_vr(tag).encode()
            except KeyError:  # a private tag: a sequence if it starts with an item
                if self.end - value_start < 4:
                    raise _Cut() from None
                if self._tag_at(value_start) == ITEM:
                    vr = b"SQ"
        if vr == b"SQ":
            return self.sequence(value_start, implicit, depth)
        return self.fragments(value_start)

    def _tag_at(self, position: int) -> int:
        group, number = self._tag.unpack_from(self.view, position)
        return int(group << 16 | number)

    def sequence(self, position: int, implicit: bool, depth: int) -> int:
        """Items of an undefined-length sequence up to its delimiter (read_sequence_item)."""
        while True:
            if self.end - position < 8:
                raise _Cut()
            tag = self._tag_at(position)
            (length,) = self._long_length.unpack_from(self.view, position + 4)
            position += 8
            if tag == SEQUENCE_DELIMITER:
                return position
            if length == UNDEFINED:
                position = self.item(position, implicit, depth + 1)
            elif position + length > self.end:
                raise _Cut()
            else:
                position += length

    def item(self, position: int, implicit: bool, depth: int) -> int:
        """Elements of an undefined-length item up to its delimiter; an item may switch to
        implicit VR (PS3.5 6.2.2), never back."""
        implicit = implicit or self.looks_implicit(position, implicit)
        while True:
            tag, vr, length, value_start = self.header(position, implicit)
            if tag == ITEM_DELIMITER:
                return value_start
            position = self.value(tag, vr, length, value_start, implicit, depth)

    def fragments(self, position: int) -> int:
        """An undefined-length value that is not a sequence: encapsulated fragments up to the
        sequence delimiter, else (as pydicom falls back to) the first delimiter's bytes."""
        start = position
        while self.end - position >= 8:
            tag = self._tag_at(position)
            if tag == SEQUENCE_DELIMITER:
                return position + 8
            if tag != ITEM:
                break
            (length,) = self._long_length.unpack_from(self.view, position + 4)
            position += 8 + length
        found = self._sequence_delimiter.search(self.view, start)
        if found is None or self.end - found.start() < 8:
            raise _Cut()
        return found.start() + 8
