"""The rule every developer-only operation shares: a developer profile must exist first."""

from __future__ import annotations

from service.errors import Forbidden
from service.store.base import AccountStore, Profile


async def require_profile(store: AccountStore, user_id: int) -> Profile:
    """The caller's developer profile, or 403 telling them to create one first."""
    profile = await store.get_profile(user_id)
    if profile is None:
        raise Forbidden(
            "Create a developer profile first: POST /api/developer/profiles/ "
            "with {purpose, organization}."
        )
    return profile
