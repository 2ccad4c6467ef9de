"""A tiny lossless JPEG (ITU T.81 process 14, SOF3) encoder for greyscale test fixtures.

No installed package encodes JPEG Lossless, so the tests make their own codestreams: one
component, predictor 1..7, one Huffman table giving every difference category a 5-bit code.
"""

from __future__ import annotations

import struct

import numpy as np


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, width: int) -> None:
        for shift in range(width - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing, T.81 F.1.2.3
                self.acc = self.n = 0

    def flush(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits
        return bytes(self.out)


def _predict(img: np.ndarray, y: int, x: int, selection: int, precision: int) -> int:
    if y == 0 and x == 0:
        return 1 << (precision - 1)
    if y == 0:
        return int(img[0, x - 1])
    if x == 0:
        return int(img[y - 1, 0])
    a, b, c = int(img[y, x - 1]), int(img[y - 1, x]), int(img[y - 1, x - 1])
    return {
        1: a,
        2: b,
        3: c,
        4: a + b - c,
        5: a + ((b - c) >> 1),
        6: b + ((a - c) >> 1),
        7: (a + b) >> 1,
    }[selection]


def encode_lossless(img: np.ndarray, precision: int, selection: int = 1) -> bytes:
    """Encode a 2-D unsigned image of `precision` bits as a lossless JPEG codestream."""
    rows, cols = img.shape
    bits = _Bits()
    for y in range(rows):
        for x in range(cols):
            diff = (int(img[y, x]) - _predict(img, y, x, selection, precision)) % 65536
            if diff >= 32768 and diff != 32768:
                diff -= 65536
            ssss = 16 if diff == 32768 else abs(diff).bit_length()
            bits.put(ssss, 5)  # symbol k has the 5-bit code k
            if 0 < ssss < 16:
                bits.put(diff if diff > 0 else diff - 1 + (1 << ssss), ssss)
    counts = [0] * 16
    counts[4] = 17
    dht = bytes([0x00, *counts, *range(17)])
    sof = struct.pack(">BHHB", precision, rows, cols, 1) + bytes([1, 0x11, 0])
    sos = bytes([1, 1, 0x00, selection, 0, 0])
    return b"".join(
        [
            b"\xff\xd8",
            b"\xff\xc4" + struct.pack(">H", len(dht) + 2) + dht,
            b"\xff\xc3" + struct.pack(">H", len(sof) + 2) + sof,
            b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos,
            bits.flush(),
            b"\xff\xd9",
        ]
    )
