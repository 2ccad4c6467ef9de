"""The DICOM read endpoint: ``POST /api/dicom/read/file/`` (API key, monthly quota)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.headers import parse_content_header

from service.answer import Answer
from service.auth.guards import KEY_REJECTED, api_key_required
from service.auth.key_cache import ApiKeyCache
from service.body import Body, discard_unread_body, receive_body
from service.dicom import (
    ReadOptions,
    Upload,
    is_zip_upload,
    parse_read_options,
    read_upload,
)
from service.dicom.render import render_upload, renders_inline, upload_limits
from service.errors import (
    BadRequest,
    PayloadTooLarge,
    QuotaExceeded,
    Unauthorized,
    ValidationFailed,
)
from service.http import send_answer
from service.multipart import parse_multipart
from service.quota import KeyRevoked, QuotaCounter, QuotaDecision, QuotaUnavailable
from service.settings import Settings
from service.store import ApiKeyRecord
from service.timing import ServerTiming

bp = Blueprint("dicom")
log = logging.getLogger(__name__)

ENDPOINT = "/api/dicom/read/file/"
INLINE_BODY_BYTES = 256 * 1024


async def reserve_quota(
    quota: QuotaCounter, key: ApiKeyRecord, now: datetime, cache: ApiKeyCache
) -> QuotaDecision:
    """Take one unit of the developer's month, or raise the spec's 429 (401 for a key deleted
    since this worker cached it: the quota step checks that atomically)."""
    try:
        decision = await quota.reserve(key.user_id, key.id, now)
    except KeyRevoked:
        cache.discard(key.prefix)
        raise Unauthorized(KEY_REJECTED, scheme="ApiKey") from None
    if not decision.granted:
        raise QuotaExceeded(
            f"Monthly quota of {decision.limit} requests is used up; it resets at the start "
            "of next month (UTC).",
            headers={"Retry-After": str(decision.resets_in), **decision.headers()},
            error=f"Monthly API request for '{ENDPOINT}' limit exceeded.",
            quota=decision.limit,
            requests_used=decision.used + 1,
        )
    return decision


def _first_values(params: Mapping[str, list[str]]) -> dict[str, str]:
    return {name: values[0] for name, values in params.items() if values}


def refuse_declared_oversize(request: Request, limit: int) -> None:
    """413 for a body whose Content-Length is already over the upload limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The upload is {int(declared)} bytes; the limit is {limit} bytes.")


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a multipart/form-data body, or a 400 saying how to send the upload."""
    media_type, params = parse_content_header(content_type)
    boundary = params.get("boundary")
    if media_type != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise BadRequest(
            "Send the upload as multipart/form-data with the DICOM file in a part named 'file'."
        )
    return boundary.encode("latin-1")


def upload_parts(boundary: bytes, pieces: list[Body]) -> tuple[str, memoryview, dict[str, str]]:
    """(file name, file bytes, text fields) of the body; 400 when malformed or without a file.

    ``pieces`` is emptied here, so that the body lives only as long as views of it are used.
    """
    body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    pieces.clear()
    parts = parse_multipart(body, boundary)
    files = [part for part in parts if part.name == "file"]
    if not files:
        raise ValidationFailed({"file": ["This field is required: a .dcm, .DCM or .zip file."]})
    form: dict[str, str] = {}
    for part in parts:
        if part.name != "file":
            form.setdefault(part.name, bytes(part.data).decode("utf-8", "replace"))
    return files[0].filename or "", files[0].data, form


UploadParts = tuple[str, memoryview, dict[str, str]]


def parse_upload_body(
    boundary: bytes, chunks: list[Body], query: dict[str, str], settings: Settings
) -> tuple[Upload, ReadOptions]:
    """Multipart, options and DICOM (or zip) parsing of a request body."""
    return parse_upload_parts(upload_parts(boundary, chunks), query, settings)


def parse_upload_parts(
    parts: UploadParts, query: dict[str, str], settings: Settings
) -> tuple[Upload, ReadOptions]:
    """Options and DICOM (or zip) parsing of a parsed multipart body."""
    filename, data, form = parts
    options = parse_read_options(form, query)
    upload = read_upload(filename, data, upload_limits(settings))
    # Drop this view of the request body: the body then lives only as long as the datasets
    # use it (the pixel data of an uncompressed file is a view of it; everything else was
    # copied), so a large upload is never held twice while it renders.
    data.release()
    del data
    return upload, options


def read_upload_body(
    boundary: bytes,
    chunks: list[Body],
    query: dict[str, str],
    settings: Settings,
    pool: Executor | None,
) -> Answer:
    """One request's parsing and rendering, run in the render pool: multipart, options, DICOM,
    rendering (the images' base64 is made later, while the answer is written)."""
    upload, options = parse_upload_body(boundary, chunks, query, settings)
    return render_upload(upload, options, settings, pool)


def read_upload_parts(
    parts: UploadParts, query: dict[str, str], settings: Settings, pool: Executor | None
) -> Answer:
    """:func:`read_upload_body` for a body whose multipart is already parsed."""
    upload, options = parse_upload_parts(parts, query, settings)
    return render_upload(upload, options, settings, pool)


async def render_request(
    ctx: Any, boundary: bytes, chunks: list[Body], query: dict[str, str]
) -> Answer:
    """The response body for an upload.

    Small single images (DICOM_API_INLINE_PIXEL_BYTES of pixels, from a body of at most
    INLINE_BODY_BYTES that is not a zip) are parsed and rendered on the event loop: that work
    takes well under a millisecond, less than handing it to a thread, and measured twice the
    request rate. Everything else is parsed and rendered in the worker's render pool.
    """
    settings: Settings = ctx.settings
    loop = asyncio.get_running_loop()
    small_body = sum(len(chunk) for chunk in chunks) <= INLINE_BODY_BYTES
    if not (settings.inline_pixel_bytes and small_body):
        return await loop.run_in_executor(
            ctx.render_pool, read_upload_body, boundary, chunks, query, settings, ctx.encode_pool
        )
    parts = upload_parts(boundary, chunks)
    if is_zip_upload(parts[0], parts[1]):  # a zip's entries may expand far beyond the body
        return await loop.run_in_executor(
            ctx.render_pool, read_upload_parts, parts, query, settings, ctx.encode_pool
        )
    upload, options = parse_upload_parts(parts, query, settings)
    if renders_inline(upload, options, settings.inline_pixel_bytes):
        return render_upload(upload, options, settings, None)
    return await loop.run_in_executor(
        ctx.render_pool, render_upload, upload, options, settings, ctx.encode_pool
    )


# Answers carry patient data: no cache (browser, proxy) may keep them.
@bp.post(ENDPOINT, stream=True, ctx_no_store=True)
async def read_file(request: Request) -> HTTPResponse | None:
    request.ctx.body_read = False
    try:
        return await read_file_metered(request)
    except asyncio.CancelledError:
        raise  # a timeout or a client gone: Sanic closes the connection, nothing to drain for
    except BaseException:
        if not request.ctx.body_read:
            await discard_unread_body(request)
        raise


@api_key_required
async def read_file_metered(request: Request) -> HTTPResponse | None:
    """Quota, then the body, then the render; the unit is given back if anything fails."""
    ctx = request.app.ctx
    limit = ctx.settings.max_upload_bytes
    refuse_declared_oversize(request, limit)
    user_id = request.ctx.api_key.user_id
    now = ctx.clock.now()
    timer = ServerTiming(auth=request.ctx.auth_seconds)
    with timer.measure("quota"):
        decision = await reserve_quota(ctx.quota, request.ctx.api_key, now, ctx.key_cache)
    try:
        boundary = multipart_boundary(request.headers.get("content-type", ""))
        # Sanic lifts its body-size limit for streaming handlers: put ours back.
        if request.stream is not None:
            request.stream.request_max_size = limit
        with timer.measure("upload"):
            chunks = await receive_body(request)
        request.ctx.body_read = True
        with timer.measure("render"):
            answer = await render_request(ctx, boundary, chunks, _first_values(request.args))
    except BaseException:
        try:
            # Shielded: a second cancellation (a timeout, then the client leaving) must not
            # cut the release short and lose the unit.
            await asyncio.shield(ctx.quota.release(user_id, decision.month))
        except QuotaUnavailable:
            log.warning("could not release a quota unit: quota backend unreachable")
        raise
    await ctx.usage.record_success(user_id, now)
    headers = {**decision.headers(), "Server-Timing": timer.header()}
    return await send_answer(request, answer, headers)
