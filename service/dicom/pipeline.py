"""The read pipeline: from a received multipart body to the read-file answer (metadata plus
every selected frame encoded by accel, for one file or each file of a zip).

:func:`read_file_answer` is the one entry: multipart parsing, options, upload reading with its
limits, the choice between the event loop and the render pool, and rendering. The HTTP handler
(``service.api.dicom``), the tests and the benchmark all call it; no HTTP here."""

from __future__ import annotations

import asyncio
import logging
import struct
import traceback
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import orjson
import pybase64

import accel
from accel.dataset import has_pixel_data
from service.answer import Answer
from service.dicom.archive import UploadLimits
from service.dicom.metadata import extract_metadata
from service.dicom.options import ReadOptions, parse_read_options, resolve_frames
from service.dicom.upload import (
    Upload,
    check_pixel_volume,
    is_zip_upload,
    pixel_volume_bytes,
    read_upload,
)
from service.errors import ApiError, UnprocessableContent, UnsupportedMediaType, ValidationFailed
from service.multipart import Body, parse_multipart
from service.settings import Settings

log = logging.getLogger(__name__)

MALFORMED_INPUT_ERRORS = (
    AttributeError,
    IndexError,
    KeyError,
    NotImplementedError,
    OverflowError,
    TypeError,
    ValueError,
    struct.error,
)
IMAGE_FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF"}
# A body at most this large, holding one small image, may be rendered on the event loop.
INLINE_BODY_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RenderPools:
    """A worker's thread pools: ``render`` runs a request's parsing and rendering, ``encode``
    fans a multi-frame file's frames out."""

    render: Executor
    encode: Executor


@dataclass(frozen=True, slots=True)
class UploadForm:
    """The parts of a read-file body: the file's name and bytes, and the text fields."""

    filename: str
    data: memoryview
    fields: dict[str, str]


async def read_file_answer(
    pieces: list[Body],
    boundary: bytes,
    query: Mapping[str, str],
    settings: Settings,
    pools: RenderPools,
) -> Answer:
    """The answer for a received read-file body (the images' base64 is made later, while the
    answer is written).

    A small single image (DICOM_API_INLINE_PIXEL_BYTES of pixels, from a body of at most
    INLINE_BODY_BYTES that is not a zip, not scaled to a viewport) is parsed and rendered on
    the event loop: that takes well under a millisecond, less than handing it to a thread, and
    measured twice the request rate. Everything else runs in the render pool. ``pieces`` is
    emptied here, so that the body lives only as long as views of it are used.
    """
    loop = asyncio.get_running_loop()
    small_body = sum(len(piece) for piece in pieces) <= INLINE_BODY_BYTES
    if not (settings.inline_pixel_bytes and small_body):
        return await loop.run_in_executor(
            pools.render, _parse_and_render, pieces, boundary, query, settings, pools.encode
        )
    form = parse_upload_form(pieces, boundary)
    if is_zip_upload(form.filename, form.data):  # a zip's entries may expand far beyond it
        return await loop.run_in_executor(
            pools.render, _read_and_render, form, query, settings, pools.encode
        )
    upload, options = read_form(form, query, settings)
    if renders_inline(upload, options, settings.inline_pixel_bytes):
        return render_upload(upload, options, settings, None)
    return await loop.run_in_executor(
        pools.render, render_upload, upload, options, settings, pools.encode
    )


def parse_upload_form(pieces: list[Body], boundary: bytes) -> UploadForm:
    """The file and text fields of a multipart body; 400 when malformed or without a file."""
    body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    pieces.clear()
    parts = parse_multipart(body, boundary)
    files = [part for part in parts if part.name == "file"]
    if not files:
        raise ValidationFailed({"file": ["This field is required: a .dcm, .DCM or .zip file."]})
    fields: dict[str, str] = {}
    for part in parts:
        if part.name != "file":
            fields.setdefault(part.name, bytes(part.data).decode("utf-8", "replace"))
    return UploadForm(files[0].filename or "", files[0].data, fields)


def read_form(
    form: UploadForm, query: Mapping[str, str], settings: Settings
) -> tuple[Upload, ReadOptions]:
    """The options and the parsed DICOM file (or zip) of a form."""
    options = parse_read_options(form.fields, dict(query))
    upload = read_upload(form.filename, form.data, upload_limits(settings))
    # Drop this view of the request body: the body then lives only as long as the datasets
    # use it (the pixel data of an uncompressed file is a view of it; everything else was
    # copied), so a large upload is never held twice while it renders.
    form.data.release()
    return upload, options


def answer_for_file(
    filename: str,
    data: bytes | memoryview,
    options: ReadOptions,
    settings: Settings,
    pool: Executor | None,
) -> Answer:
    """The answer for one uploaded file (.dcm or .zip) and its parsed options: the step of
    :func:`read_file_answer` after the multipart body, for tests that compare readers."""
    return render_upload(
        read_upload(filename, data, upload_limits(settings)), options, settings, pool
    )


def _read_and_render(
    form: UploadForm, query: Mapping[str, str], settings: Settings, pool: Executor | None
) -> Answer:
    upload, options = read_form(form, query, settings)
    return render_upload(upload, options, settings, pool)


def _parse_and_render(
    pieces: list[Body],
    boundary: bytes,
    query: Mapping[str, str],
    settings: Settings,
    pool: Executor | None,
) -> Answer:
    return _read_and_render(parse_upload_form(pieces, boundary), query, settings, pool)


def multipart_body(
    filename: str, data: bytes, fields: Mapping[str, str] | None = None
) -> tuple[list[Body], bytes]:
    """(pieces, boundary) of a read-file body as a client sends it: for tests and the
    benchmark, which run :func:`read_file_answer` without HTTP."""
    boundary = b"dicom-api-boundary-7d1f9c"
    out = bytearray()
    for name, value in (fields or {}).items():
        out += b"--" + boundary + b"\r\n"
        out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += b"--" + boundary + b"\r\n"
    out += f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
    out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return [bytes(out)], boundary


def warm_up() -> None:
    """Compile the rendering kernels before the first request (run at worker start)."""
    accel.warm_up()


def upload_limits(settings: Settings) -> UploadLimits:
    """The upload limits configured for this service."""
    return UploadLimits(
        max_zip_entries=settings.max_zip_entries,
        max_zip_total_bytes=settings.max_zip_total_bytes,
        max_zip_ratio=settings.max_zip_ratio,
    )


def render_instance(
    ds: Any, options: ReadOptions, max_pixel_bytes: int, pool: Executor | None
) -> tuple[dict[str, Any], list[bytes]]:
    """One file's response shape without ``Images`` (metadata and ``ImageFormat``), and its
    encoded images."""
    body = extract_metadata(ds, options.fields)
    images: list[bytes] = []
    if has_pixel_data(ds):
        try:
            check_pixel_volume(ds, max_pixel_bytes)
            frames = resolve_frames(options.frames, int(ds.get("NumberOfFrames", 1) or 1))
            images = accel.render(
                ds,
                options.return_format,
                frames=frames,
                window=options.window,
                quality=options.quality,
                pool=pool,
                viewport=options.viewport,
            )
        except accel.UnsupportedTransferSyntax as exc:
            raise UnsupportedMediaType(str(exc)) from None
        except accel.AccelError as exc:
            raise UnprocessableContent(str(exc)) from None
        except MALFORMED_INPUT_ERRORS as exc:
            # pydicom converts attributes lazily and raises these for values the checks above
            # could not foresee; the file is at fault, so it is a 422, and it is logged so that
            # a real bug hiding here is still seen (type and place only: no values).
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            log.warning(
                "render failed on malformed input: %s at %s:%d",
                type(exc).__name__,
                frame.filename,
                frame.lineno,
            )
            raise UnprocessableContent(
                "The image attributes are malformed or inconsistent; it cannot be rendered."
            ) from None
    body["ImageFormat"] = IMAGE_FORMAT_NAMES[options.return_format]
    return body, images


def render_upload(
    upload: Upload, options: ReadOptions, settings: Settings, pool: Executor | None
) -> Answer:
    """The answer for parsed instances: one file's shape, or ``Files`` (+ ``Skipped``).

    A single file's images stay raw until the answer is written (:class:`Answer`); a zip's
    answer is serialised here in full.
    """
    rendered = [
        (name, *render_instance(ds, options, settings.max_pixel_bytes, pool))
        for name, ds in upload.instances
    ]
    if len(rendered) == 1 and not upload.skipped:
        _, shape, images = rendered[0]
        return Answer.of(shape, images)
    files = [
        {"FileName": name, **shape, "Images": [pybase64.b64encode_as_string(i) for i in images]}
        for name, shape, images in rendered
    ]
    body: dict[str, Any] = {"Files": files}
    if upload.skipped:
        body["Skipped"] = list(upload.skipped)
    return Answer.whole(orjson.dumps(body))


def renders_inline(upload: Upload, options: ReadOptions, pixel_bytes: int) -> bool:
    """Whether the upload is small enough to render on the event loop: a single DICOM file
    (not a zip) whose decoded pixels are at most ``pixel_bytes``, not scaled to a viewport (which
    could make its output arbitrarily large)."""
    if len(upload.instances) != 1 or upload.skipped or options.viewport is not None:
        return False
    try:
        return pixel_volume_bytes(upload.instances[0].dataset) <= pixel_bytes
    except ApiError:
        return False  # malformed: the render pool path reports it
