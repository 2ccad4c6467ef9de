"""The DICOM read endpoint: ``POST /api/dicom/read/file/`` (API key, monthly quota).

The handler authenticates, reserves a quota unit, receives the body, runs the read pipeline
(:func:`service.dicom.pipeline.read_file_answer`), records the read and sends the answer; the
unit is given back if anything before the answer fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from sanic import Blueprint, HTTPResponse, Request

from service.auth.guards import KEY_REJECTED, require_api_key
from service.auth.key_cache import ApiKeyCache
from service.body import upload_body
from service.context import app_context
from service.dicom.pipeline import read_file_answer
from service.errors import QuotaExceeded, Unauthorized
from service.http import send_answer
from service.multipart import multipart_boundary
from service.quota import KeyRevoked, QuotaCounter, QuotaDecision, QuotaUnavailable
from service.store import ApiKeyRecord
from service.timing import ServerTiming

bp = Blueprint("dicom")
log = logging.getLogger(__name__)

ENDPOINT = "/api/dicom/read/file/"


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


async def release_quota(quota: QuotaCounter, user_id: int, decision: QuotaDecision) -> None:
    """Give a reserved unit back. Shielded: a second cancellation (a timeout, then the client
    leaving) must not cut the release short and lose the unit."""
    try:
        await asyncio.shield(quota.release(user_id, decision.month))
    except QuotaUnavailable:
        log.warning("could not release a quota unit: quota backend unreachable")


def first_values(params: Mapping[str, list[str]]) -> dict[str, str]:
    """The first value of each query parameter."""
    return {name: values[0] for name, values in params.items() if values}


# Answers carry patient data: no cache (browser, proxy) may keep them.
@bp.post(ENDPOINT, stream=True, ctx_no_store=True)
async def read_file(request: Request) -> HTTPResponse | None:
    """Authenticate, then the quota, then the body, then the read pipeline."""
    ctx = app_context(request)
    timer = ServerTiming()
    async with upload_body(request, ctx.settings.max_upload_bytes) as upload:
        with timer.measure("auth"):
            key = await require_api_key(request, ctx.store, ctx.key_cache)
        now = ctx.clock.now()  # the read's moment: its month and day (README, Quota and usage)
        ctx.usage.record_key_use(key.id, now)
        upload.refuse_declared_oversize()
        with timer.measure("quota"):
            decision = await reserve_quota(ctx.quota, key, now, ctx.key_cache)
        try:
            boundary = multipart_boundary(request.headers.get("content-type", ""))
            with timer.measure("upload"):
                pieces = await upload.receive()
            with timer.measure("render"):
                answer = await read_file_answer(
                    pieces, boundary, first_values(request.args), ctx.settings, ctx.pools
                )
        except BaseException:
            await release_quota(ctx.quota, key.user_id, decision)
            raise
    await ctx.usage.record_success(key.user_id, now)
    headers = {**decision.headers(), "Server-Timing": timer.header()}
    return await send_answer(request, answer, headers)
