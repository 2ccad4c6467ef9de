"""Accounts and JWTs: ``/api/auth/register/``, ``/api/token/``, ``/api/token/refresh/``."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sanic import Blueprint, HTTPResponse, Request

from service.auth.guards import NO_SUCH_ACCOUNT, token_user
from service.auth.passwords import Passwords
from service.auth.tokens import InvalidToken, TokenIssuer
from service.errors import Unauthorized, ValidationFailed
from service.http import Fields, json_object, json_response
from service.store import AccountStore, DuplicateEmail, RotateOutcome

bp = Blueprint("accounts")

PASSWORD_MIN, PASSWORD_MAX = 8, 1024
BAD_CREDENTIALS = "No active account found with the given credentials."


async def register_user(
    store: AccountStore, passwords: Passwords, data: dict[str, Any]
) -> dict[str, Any]:
    """Validate and create an account; the password is stored only as an argon2id hash."""
    fields = Fields(data)
    email = fields.string("email", max_length=254)
    password = fields.string(
        "password", min_length=PASSWORD_MIN, max_length=PASSWORD_MAX, strip=False
    )
    first_name = fields.string("first_name", required=False, max_length=150)
    last_name = fields.string("last_name", required=False, max_length=150)
    if email and "email" not in fields.errors:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            fields.error("email", f"Enter a valid email address ({exc}).")
    fields.check()
    password_hash = await asyncio.get_running_loop().run_in_executor(None, passwords.hash, password)
    try:
        user = await store.create_user(email, password_hash, first_name, last_name)
    except DuplicateEmail:
        raise ValidationFailed({"email": ["An account with this email already exists."]}) from None
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


async def issue_token_pair(
    store: AccountStore, tokens: TokenIssuer, user_id: int
) -> dict[str, str]:
    """A fresh access token and a refresh token recorded in its rotation family."""
    access = tokens.issue(user_id, "access")
    family = secrets.token_urlsafe(16)
    refresh = tokens.issue(user_id, "refresh", family=family)
    await store.add_refresh_token(refresh.jti, user_id, family, refresh.expires_at)
    return {"refresh": refresh.token, "access": access.token}


async def obtain_tokens(
    store: AccountStore, passwords: Passwords, tokens: TokenIssuer, data: dict[str, Any]
) -> dict[str, str]:
    """Check credentials (same answer and cost whether or not the email exists)."""
    fields = Fields(data)
    email = fields.string("email", max_length=254)
    password = fields.string("password", max_length=PASSWORD_MAX, strip=False)
    fields.check()
    user = await store.get_user_by_email(email)
    matches = await asyncio.get_running_loop().run_in_executor(
        None, passwords.verify, user.password_hash if user else None, password
    )
    if user is None or not matches:
        raise Unauthorized(BAD_CREDENTIALS)
    return await issue_token_pair(store, tokens, user.id)


async def refresh_tokens(
    store: AccountStore, tokens: TokenIssuer, data: dict[str, Any]
) -> dict[str, str]:
    """Rotate a refresh token; re-using an already rotated one revokes its whole family. A
    token whose account does not exist is refused before anything is rotated."""
    fields = Fields(data)
    raw = fields.string("refresh", max_length=4096)
    fields.check()
    try:
        claims = tokens.verify(raw, "refresh")
    except InvalidToken as exc:
        raise Unauthorized(f"Refresh token rejected: {exc}.") from None
    if await token_user(store, claims.user_id) is None:
        raise Unauthorized(f"Refresh token rejected: {NO_SUCH_ACCOUNT}.")
    refresh = tokens.issue(claims.user_id, "refresh", family=claims.family)
    outcome = await store.rotate_refresh_token(
        claims.jti, refresh.jti, refresh.expires_at, tokens.clock.now()
    )
    if outcome is RotateOutcome.REUSED:
        raise Unauthorized(
            "Refresh token was already used; every token of its session has been revoked."
        )
    if outcome is not RotateOutcome.ROTATED:
        raise Unauthorized("Refresh token has been revoked or is unknown.")
    access = tokens.issue(claims.user_id, "access")
    return {"refresh": refresh.token, "access": access.token}


@bp.post("/api/auth/register/")
async def register(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return json_response(await register_user(ctx.store, ctx.passwords, json_object(request)), 201)


@bp.post("/api/token/", ctx_no_store=True)
async def token(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    body = await obtain_tokens(ctx.store, ctx.passwords, ctx.tokens, json_object(request))
    return json_response(body)


@bp.post("/api/token/refresh/", ctx_no_store=True)
async def token_refresh(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    return json_response(await refresh_tokens(ctx.store, ctx.tokens, json_object(request)))
