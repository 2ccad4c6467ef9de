"""Authentication for handlers: Bearer JWTs (the ``bearer_required`` decorator) and API keys
(:func:`require_api_key`, called by the DICOM read handler)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from sanic import HTTPResponse, Request

from service.auth.api_keys import secret_matches, split_api_key
from service.auth.key_cache import ApiKeyCache
from service.auth.tokens import InvalidToken, TokenIssuer
from service.context import Principal, app_context, request_context
from service.errors import ServiceUnavailable, Unauthorized
from service.http import is_database_id
from service.store import AccountStore, ApiKeyRecord, StoreUnavailable, User

Handler = Callable[..., Awaitable[HTTPResponse | None]]  # None: answered by request.respond
KEY_REJECTED = "API key is invalid or has been deleted."
NO_SUCH_ACCOUNT = "its account does not exist"
DATABASE_UNREACHABLE = "The account database is unreachable; retry shortly."


def _credential(request: Request, scheme: str) -> str | None:
    """The credential after ``<scheme> `` in the Authorization header, if that is the scheme."""
    header = request.headers.get("authorization", "")
    given, _, credential = header.strip().partition(" ")
    if given.lower() != scheme.lower():
        return None
    return credential.strip()


def bearer_user_id(request: Request, tokens: TokenIssuer) -> int | None:
    """The user id of a valid access token, None without a Bearer header."""
    token = _credential(request, "Bearer")
    if token is None:
        return None
    try:
        return tokens.verify(token, "access").user_id
    except InvalidToken as exc:
        raise Unauthorized(f"Bearer token rejected: {exc}.", scheme="Bearer") from None


async def require_api_key(
    request: Request, store: AccountStore, cache: ApiKeyCache
) -> ApiKeyRecord:
    """The stored key matching the ``ApiKey`` header (cached per worker); 401 without one or
    for a bad one. Authentication only: the caller records the key's use."""
    raw = _credential(request, "ApiKey")
    if raw is None:
        raise Unauthorized(
            "Authentication required: send 'Authorization: ApiKey <key>'.", scheme="ApiKey"
        )
    parts = split_api_key(raw)
    if parts is None:
        raise Unauthorized("API key is malformed.", scheme="ApiKey")
    prefix, secret = parts
    record = cache.get(prefix)
    if record is None:
        try:
            record = await store.find_api_key(prefix)
        except StoreUnavailable:
            raise ServiceUnavailable(DATABASE_UNREACHABLE) from None
    if record is None or not secret_matches(secret, record.secret_hash):
        raise Unauthorized(KEY_REJECTED, scheme="ApiKey")
    cache.put(record)
    request_context(request).principal = Principal(record.user_id, api_key=record)
    return record


async def token_user(store: AccountStore, user_id: int) -> User | None:
    """The account a verified token names, None if there is none: a validly signed token may
    outlive its account, or (signed with a leaked key) name any number at all. An id outside
    the database's integer range is answered without asking the database."""
    if not is_database_id(user_id):
        return None
    try:
        return await store.get_user(user_id)
    except StoreUnavailable:
        raise ServiceUnavailable(DATABASE_UNREACHABLE) from None


def bearer_required(handler: Handler) -> Handler:
    """Require a valid access token for an existing account; the handler finds who it acts for
    with :func:`caller`."""

    @wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse | None:
        ctx = app_context(request)
        user_id = bearer_user_id(request, ctx.tokens)
        if user_id is None:
            raise Unauthorized(
                "Authentication required: send 'Authorization: Bearer <access token>'."
            )
        user = await token_user(ctx.store, user_id)
        if user is None:
            raise Unauthorized(f"Bearer token rejected: {NO_SUCH_ACCOUNT}.")
        request_context(request).principal = Principal(user.id)
        return await handler(request, *args, **kwargs)

    return wrapper


def caller(request: Request) -> Principal:
    """Who an authenticated request acts for (set by :func:`bearer_required` or
    :func:`require_api_key`)."""
    principal = request_context(request).principal
    if principal is None:  # a handler without a guard: a bug, never the client's fault
        raise RuntimeError("caller() on a request that was not authenticated")
    return principal
