"""The AccountStore interface and the records it returns; backends live beside this module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Protocol


class StoreUnavailable(Exception):
    """The database cannot be reached right now; the request should be retried later."""


class DuplicateEmail(Exception):
    """An account with that email (compared case-insensitively) already exists."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    password_hash: str
    first_name: str
    last_name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: int
    purpose: str
    organization: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    user_id: int
    name: str
    prefix: str
    secret_hash: str
    created_at: datetime
    last_used_at: datetime | None


class RotateOutcome(Enum):
    """What happened to a refresh token presented for rotation."""

    ROTATED = "rotated"
    REUSED = "reused"  # already rotated once: the whole family is now revoked
    REVOKED = "revoked"  # its family was revoked earlier
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class QuotaReservation:
    """Result of one atomic check-and-count: ``granted`` and the month's count afterwards;
    ``key_exists`` is False when the API key making the request has been deleted."""

    granted: bool
    used: int
    key_exists: bool = True


class AccountStore(Protocol):
    """Accounts, profiles, API keys, refresh-token families, usage and quota counters."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self) -> list[int]: ...
    async def ping(self) -> None: ...

    async def create_user(
        self, email: str, password_hash: str, first_name: str, last_name: str
    ) -> User: ...
    async def get_user_by_email(self, email: str) -> User | None: ...
    async def get_user(self, user_id: int) -> User | None: ...

    async def save_profile(
        self, user_id: int, purpose: str, organization: str
    ) -> tuple[Profile, bool]: ...
    async def get_profile(self, user_id: int) -> Profile | None: ...

    async def create_api_key(
        self, user_id: int, name: str, prefix: str, secret_hash: str
    ) -> ApiKeyRecord: ...
    async def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]: ...
    async def delete_api_key(self, user_id: int, key_id: int) -> bool: ...
    async def find_api_key(self, prefix: str) -> ApiKeyRecord | None: ...
    async def api_key_exists(self, key_id: int) -> bool: ...
    async def touch_api_keys(self, last_used: Mapping[int, datetime]) -> None: ...

    async def add_refresh_token(
        self, jti: str, user_id: int, family_id: str, expires_at: datetime
    ) -> None: ...
    async def rotate_refresh_token(
        self, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> RotateOutcome: ...

    async def add_usage(self, counts: Mapping[tuple[int, date], int]) -> None: ...
    async def daily_usage(
        self, user_id: int, first_day: date, last_day: date
    ) -> list[tuple[date, int]]: ...

    async def reserve_quota(
        self, user_id: int, month: str, limit: int, key_id: int
    ) -> QuotaReservation: ...
    async def release_quota(self, user_id: int, month: str) -> None: ...


def normalise_email(email: str) -> str:
    """The key emails are unique by: trimmed and case-folded."""
    return email.strip().casefold()
