"""The typed contexts: ``app.ctx`` (everything a worker opens at start and closes at stop) and
``request.ctx`` (who the request acts for)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

from sanic import Request

from service.auth.key_cache import ApiKeyCache
from service.auth.passwords import Passwords
from service.auth.tokens import TokenIssuer
from service.clock import Clock
from service.dicom.pipeline import RenderPools
from service.quota import QuotaCounter
from service.settings import Settings
from service.store import AccountStore, ApiKeyRecord
from service.usage import UsageRecorder


@dataclass
class AppContext:
    """Per-worker state, created by the app factory and the start-up listeners."""

    settings: Settings
    clock: Clock
    tokens: TokenIssuer
    key_cache: ApiKeyCache = field(default_factory=ApiKeyCache)
    store: AccountStore = field(init=False)
    quota: QuotaCounter = field(init=False)
    usage: UsageRecorder = field(init=False)
    passwords: Passwords = field(init=False)
    pools: RenderPools = field(init=False)
    usage_task: asyncio.Task[None] = field(init=False)


def app_context(request: Request) -> AppContext:
    """The worker's :class:`AppContext`, typed (Sanic types ``app.ctx`` as a namespace)."""
    return cast(AppContext, request.app.ctx)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a developer's account, and the API key it came with, if any."""

    user_id: int
    api_key: ApiKeyRecord | None = None


@dataclass
class RequestContext:
    """Per-request state (``request.ctx``), set by the authentication guards."""

    principal: Principal | None = None


class ApiRequest(Request):
    """Sanic's request with a :class:`RequestContext` as ``request.ctx``."""

    @staticmethod
    def make_context() -> RequestContext:  # type: ignore[override]
        return RequestContext()


def request_context(request: Request) -> RequestContext:
    """The request's :class:`RequestContext`, typed."""
    return cast(RequestContext, request.ctx)
