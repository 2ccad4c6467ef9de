"""API keys: ``/api-keys/`` (list, create) and ``/api-keys/delete/<pk>/``."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from service.auth.api_keys import generate_api_key, hash_secret
from service.auth.guards import bearer_required, caller
from service.auth.key_cache import ApiKeyCache
from service.errors import NotFound
from service.http import Fields, json_object, json_response, parse_id
from service.quota import QuotaCounter
from service.store import AccountStore, ApiKeyRecord
from service.store.profiles import require_profile

bp = Blueprint("keys")


def key_summary(record: ApiKeyRecord) -> dict[str, Any]:
    """What a listing shows of a key: never its secret or hash."""
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "created_at": record.created_at.isoformat(),
        "last_used_at": record.last_used_at.isoformat() if record.last_used_at else None,
    }


async def create_key(store: AccountStore, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Issue a key; the full key is returned this once and only its hash is stored."""
    fields = Fields(data)
    name = fields.string("name", max_length=100)
    fields.check()
    await require_profile(store, user_id)
    new_key = generate_api_key()
    record = await store.create_api_key(user_id, name, new_key.prefix, hash_secret(new_key.secret))
    return {
        "id": record.id,
        "name": record.name,
        "key": new_key.key,
        "prefix": record.prefix,
        "created_at": record.created_at.isoformat(),
    }


async def list_keys(store: AccountStore, user_id: int) -> list[dict[str, Any]]:
    """The caller's keys, oldest first."""
    await require_profile(store, user_id)
    return [key_summary(record) for record in await store.list_api_keys(user_id)]


async def delete_key(
    store: AccountStore, quota: QuotaCounter, cache: ApiKeyCache, user_id: int, pk: str
) -> None:
    """Delete one of the caller's keys; anyone else's, or a missing one, is a 404.

    The key is marked revoked for the quota step first, so that no worker's cached copy of it
    is honoured once this returns.
    """
    key_id = parse_id(pk)
    records = await store.list_api_keys(user_id) if key_id is not None else []
    record = next((r for r in records if r.id == key_id), None)
    if record is None:
        raise NotFound("No API key with that id.")
    await quota.revoke_key(user_id, record.id)
    if not await store.delete_api_key(user_id, record.id):
        raise NotFound("No API key with that id.")
    cache.discard(record.prefix)


@bp.get("/api-keys/", ctx_no_store=True)
@bearer_required
async def list_handler(request: Request) -> HTTPResponse:
    return json_response(await list_keys(request.app.ctx.store, caller(request).user_id))


@bp.post("/api-keys/", ctx_no_store=True)
@bearer_required
async def create_handler(request: Request) -> HTTPResponse:
    body = await create_key(request.app.ctx.store, caller(request).user_id, json_object(request))
    return json_response(body, 201)


@bp.delete("/api-keys/delete/<pk:str>/")
@bearer_required
async def delete_handler(request: Request, pk: str) -> HTTPResponse:
    ctx = request.app.ctx
    await delete_key(ctx.store, ctx.quota, ctx.key_cache, caller(request).user_id, pk)
    return HTTPResponse(status=204)
