"""Liveness and readiness: ``/health`` and ``/ready``."""

from __future__ import annotations

import asyncio

from sanic import Blueprint, HTTPResponse, Request

from service.errors import ServiceUnavailable
from service.http import json_response

bp = Blueprint("health")


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    return json_response({"status": "ok"})


@bp.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    checks = {"database": ctx.store.ping(), "quota": ctx.quota.ping()}
    results = await asyncio.gather(
        *(asyncio.wait_for(check, timeout=2.0) for check in checks.values()),
        return_exceptions=True,
    )
    status = {
        name: "ok" if not isinstance(result, BaseException) else "unavailable"
        for name, result in zip(checks, results, strict=True)
    }
    if any(value != "ok" for value in status.values()):
        raise ServiceUnavailable("A dependency is unreachable.", checks=status)
    return json_response({"status": "ready", "checks": status})
