"""Usage summary: ``/api/developer/profiles/activity-summary/``."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from service.api.profiles import require_profile
from service.auth.guards import bearer_required
from service.http import json_response
from service.quota import UsageRecorder
from service.quota.calendar import month_start, next_month_start
from service.store import AccountStore, StoreUnavailable

bp = Blueprint("usage")


async def activity_summary(
    store: AccountStore, usage: UsageRecorder, user_id: int, now: datetime
) -> dict[str, Any]:
    """Successful reads per day of the current UTC month, and their total."""
    await require_profile(store, user_id)
    with contextlib.suppress(StoreUnavailable):  # the read below then answers 503
        await usage.flush()  # reads this worker could not write during an outage
    first = month_start(now)
    last = (next_month_start(now) - timedelta(days=1)).date()
    days = await store.daily_usage(user_id, first, last)
    return {
        "daily_activity": [{"day": day.isoformat(), "count": count} for day, count in days],
        "monthly_total": sum(count for _, count in days),
    }


@bp.get("/api/developer/profiles/activity-summary/")
@bearer_required
async def summary(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    body = await activity_summary(ctx.store, ctx.usage, request.ctx.user_id, ctx.clock.now())
    return json_response(body)
