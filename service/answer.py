"""The read-file answer: JSON whose last member is the base64 ``Images`` array, kept as the JSON
around the images plus the raw images, and base64-encoded piece by piece as it is written.

Building the whole answer first held three copies of the images at once (the encoded images,
their base64 strings, the serialised JSON: 45 MB for the 105 MB CT series, on top of the
upload). Here the images are held once; base64 text exists only for the piece being written.
The bytes are exactly ``orjson.dumps`` of the complete object: base64 text never needs
escaping, and ``Images`` is the object's last key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

PIECE_BYTES = 1024 * 1024  # base64 text written per piece


def base64_length(size: int) -> int:
    """Length of the padded base64 text of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


@dataclass(frozen=True, slots=True)
class Answer:
    """``head + '"' + b64(images[0]) + '","' + ... + '"' + tail``; with no images, ``head``
    and ``tail`` alone."""

    head: bytes
    images: tuple[bytes, ...] = ()
    tail: bytes = b""

    @classmethod
    def of(cls, shape: dict[str, Any], images: list[bytes]) -> Answer:
        """The answer for ``shape`` (the JSON object without ``Images``) plus ``images``."""
        if "Images" in shape:
            raise ValueError("shape must not hold Images: they are appended last")
        without = orjson.dumps(shape)
        separator = b"," if len(shape) else b""
        return cls(without[:-1] + separator + b'"Images":[', tuple(images), b"]}")

    @classmethod
    def whole(cls, body: bytes) -> Answer:
        """An answer already serialised in full."""
        return cls(body)

    def __len__(self) -> int:
        images = self.images
        text = sum(base64_length(len(image)) + 2 for image in images) + max(0, len(images) - 1)
        return len(self.head) + text + len(self.tail)

    def pieces(self, piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
        """The answer's bytes in order: the head, then pieces of whole images' base64 of at
        least ``piece_bytes`` each (one large image may make a piece alone), the last one
        shorter, then the tail."""
        yield self.head
        batch: list[bytes] = []
        batched = 0
        for index, image in enumerate(self.images):
            batch.append(b'"' if index == 0 else b',"')
            batch.append(pybase64.b64encode(image))
            batch.append(b'"')
            batched += base64_length(len(image))
            if batched >= piece_bytes:
                yield b"".join(batch)
                batch, batched = [], 0
        if batch:
            yield b"".join(batch)
        if self.tail:
            yield self.tail

    def to_bytes(self) -> bytes:
        """The whole answer as one ``bytes``."""
        if not self.images and not self.tail:
            return self.head
        return b"".join(self.pieces())
