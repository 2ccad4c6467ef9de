"""Mutated DICOM files never produce anything but a response or a client error (no 500):
a seeded, bounded fuzz of the whole in-process pipeline over every output format."""

from __future__ import annotations

import random
import warnings

import pytest
from pydicom.data import get_testdata_file

from service.dicom import ReadOptions
from service.dicom.pipeline import answer_for_file
from service.errors import ApiError
from service.settings import Settings
from tests.support import tiny_dicom

SEED_FILES = [
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "examples_palette.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
]
ITERATIONS = 300


def seeds() -> list[bytes]:
    files = [tiny_dicom(16, 16, frames=3)]
    for name in SEED_FILES:
        path = get_testdata_file(name, download=False)
        assert path is not None, f"pydicom's bundled {name} is missing"
        with open(path, "rb") as handle:
            files.append(handle.read())
    return files


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Overwrite, delete or insert a few random byte runs."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.6:
            out[position] = rng.randrange(256)
        elif choice < 0.8:
            del out[position : position + rng.randint(1, 64)]
        else:
            out[position:position] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_files_give_a_response_or_a_client_error(seed: int) -> None:
    rng = random.Random(seed)
    originals = seeds()
    settings = Settings()
    outcomes = {"ok": 0, "client error": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the damage, as it should
        for _ in range(ITERATIONS):
            data = mutate(rng.choice(originals), rng)
            options = ReadOptions(return_format=rng.choice(["png", "jpeg", "gif"]))
            try:
                answer_for_file("fuzz.dcm", data, options, settings, None)
                outcomes["ok"] += 1
            except ApiError as exc:
                assert 400 <= exc.status < 500, exc
                outcomes["client error"] += 1
    assert sum(outcomes.values()) == ITERATIONS
    assert outcomes["ok"] > 0 and outcomes["client error"] > 0


@pytest.mark.parametrize("keep", [0.5, 0.9999])
def test_truncated_large_files_are_a_422_naming_the_shortfall(keep: float) -> None:
    # Large pixel data is taken from the upload after parsing (a deferred read): a file cut
    # short must still be refused before decoding, not read past its end.
    data = tiny_dicom(512, 512, frames=5)
    with pytest.raises(ApiError) as info:
        answer_for_file("cut.dcm", data[: int(len(data) * keep)], ReadOptions(), Settings(), None)
    assert info.value.status == 422
    assert "expected 2621440" in info.value.detail
