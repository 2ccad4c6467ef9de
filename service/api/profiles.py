"""Developer profiles: ``/api/developer/profiles/`` (create or update, read)."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from service.auth.guards import bearer_required, caller
from service.errors import NotFound
from service.http import Fields, json_object, json_response
from service.store import AccountStore, Profile

bp = Blueprint("profiles")

PURPOSES = ("testing", "research", "education", "commercial", "other")


def profile_body(profile: Profile) -> dict[str, Any]:
    """The profile as the spec shows it."""
    return {"purpose": profile.purpose, "organization": profile.organization}


async def save_profile(
    store: AccountStore, user_id: int, data: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Create or update the caller's profile; returns the body and whether it was created."""
    fields = Fields(data)
    purpose = fields.string("purpose", max_length=32).lower()
    organization = fields.string("organization", max_length=255)
    if purpose and "purpose" not in fields.errors and purpose not in PURPOSES:
        fields.error("purpose", f"Must be one of: {', '.join(PURPOSES)}.")
    fields.check()
    profile, created = await store.save_profile(user_id, purpose, organization)
    return profile_body(profile), created


@bp.post("/api/developer/profiles/")
@bearer_required
async def create_or_update(request: Request) -> HTTPResponse:
    body, created = await save_profile(
        request.app.ctx.store, caller(request).user_id, json_object(request)
    )
    return json_response(body, 201 if created else 200)


@bp.get("/api/developer/profiles/")
@bearer_required
async def read(request: Request) -> HTTPResponse:
    profile = await request.app.ctx.store.get_profile(caller(request).user_id)
    if profile is None:
        raise NotFound("You have no developer profile yet.")
    return json_response(profile_body(profile))
