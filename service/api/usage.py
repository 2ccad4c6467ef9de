"""Usage summary: ``/api/developer/profiles/activity-summary/``."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from service.auth.guards import bearer_required, caller
from service.http import json_response
from service.usage import activity_summary

bp = Blueprint("usage")


@bp.get("/api/developer/profiles/activity-summary/")
@bearer_required
async def summary(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    body = await activity_summary(ctx.store, ctx.usage, caller(request).user_id, ctx.clock.now())
    return json_response(body)
