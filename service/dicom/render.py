"""Rendering parsed uploads into the read-file answer: metadata plus every selected frame
encoded by accel, for one file or each file of a zip. No HTTP here: the handler in
``service.api.dicom`` calls these in its render pool (or on the event loop for a small single
image, see :func:`renders_inline`); the benchmark and the tests call :func:`read_dicom`."""

from __future__ import annotations

import logging
import struct
import traceback
from concurrent.futures import Executor
from typing import Any

import orjson
import pybase64

import accel
from service.answer import Answer
from service.dicom.archive import UploadLimits
from service.dicom.metadata import extract_metadata
from service.dicom.options import ReadOptions, resolve_frames
from service.dicom.upload import (
    Upload,
    check_pixel_volume,
    pixel_volume_bytes,
    read_upload,
)
from service.errors import ApiError, UnprocessableContent, UnsupportedMediaType
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
    if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
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


def read_dicom(
    filename: str,
    data: bytes | memoryview,
    options: ReadOptions,
    settings: Settings,
    pool: Executor | None,
) -> bytes:
    """Parse an upload (.dcm or .zip), render every instance and return the JSON body."""
    upload = read_upload(filename, data, upload_limits(settings))
    return render_upload(upload, options, settings, pool).to_bytes()


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
