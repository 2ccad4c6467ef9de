"""The read pipeline the server runs, without HTTP: the inline and render-pool branches give the
same answers, and each upload takes the branch the README describes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from service.dicom import ReadOptions
from service.dicom.pipeline import RenderPools, answer_for_file, multipart_body, read_file_answer
from service.errors import ApiError
from service.settings import Settings
from tests.support import tiny_dicom


class CountingPool(ThreadPoolExecutor):
    """A real thread pool that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(2, thread_name_prefix="render-test")
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def pools() -> Iterator[RenderPools]:
    render, encode = CountingPool(), ThreadPoolExecutor(2, thread_name_prefix="encode-test")
    yield RenderPools(render=render, encode=encode)
    render.shutdown()
    encode.shutdown()


def zipped(*files: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number, data in enumerate(files):
            archive.writestr(f"{number}.dcm", data)
    return buffer.getvalue()


SMALL = tiny_dicom(64, 64)  # 8 KiB of pixels
LARGE = tiny_dicom(512, 512)  # 512 KiB of pixels: over the inline limit


@pytest.mark.parametrize(
    ("name", "data", "fields", "settings", "inline"),
    [
        ("small.dcm", SMALL, {}, Settings(), True),
        ("small.dcm", SMALL, {"return_format": "gif"}, Settings(), True),
        ("large.dcm", LARGE, {}, Settings(), False),
        ("small.dcm", SMALL, {"viewport": "32,32"}, Settings(), False),  # output may be huge
        ("one.zip", zipped(SMALL), {}, Settings(), False),  # a zip may expand past its size
        ("two.zip", zipped(SMALL, SMALL), {}, Settings(), False),
        ("small.dcm", SMALL, {}, Settings(inline_pixel_bytes=0), False),  # inline turned off
    ],
)
async def test_each_upload_takes_its_branch_with_the_same_answer(
    pools: RenderPools, name: str, data: bytes, fields: dict[str, str], settings: Settings, inline
) -> None:
    pieces, boundary = multipart_body(name, data, fields)
    answer = await read_file_answer(pieces, boundary, {}, settings, pools)
    assert pools.render.submitted == (0 if inline else 1)  # type: ignore[attr-defined]
    assert pieces == []  # the body is let go of as soon as it is parsed
    body = orjson.loads(answer.to_bytes())
    options = ReadOptions(
        return_format=fields.get("return_format", "png"),  # type: ignore[arg-type]
        viewport=(32, 32) if "viewport" in fields else None,
    )
    expected = answer_for_file(name, data, options, settings, None).to_bytes()
    assert body == orjson.loads(expected)


async def test_options_come_from_the_form_and_the_query(pools: RenderPools) -> None:
    pieces, boundary = multipart_body("x.dcm", SMALL, {"fields": "Modality"})
    answer = await read_file_answer(pieces, boundary, {"return_format": "jpeg"}, Settings(), pools)
    body = orjson.loads(answer.to_bytes())
    assert body["Modality"] == "CT" and body["ImageFormat"] == "JPEG"
    assert set(body) == {"Modality", "ImageFormat", "Images"}


@pytest.mark.parametrize(
    ("pieces", "status"),
    [
        ([b"not multipart at all"], 400),
        (multipart_body("x.dcm", b"not dicom" * 50)[0], 400),
        (multipart_body("x.txt", SMALL)[0], 400),
    ],
)
async def test_bad_bodies_are_client_errors(pools: RenderPools, pieces, status: int) -> None:
    _, boundary = multipart_body("x.dcm", b"")
    with pytest.raises(ApiError) as info:
        await read_file_answer(list(pieces), boundary, {}, Settings(), pools)
    assert info.value.status == status
