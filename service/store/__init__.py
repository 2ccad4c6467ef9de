"""AccountStore: one interface, two backends (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

from service.clock import Clock
from service.settings import Settings
from service.store.base import (
    AccountStore,
    ApiKeyRecord,
    DuplicateEmail,
    Profile,
    QuotaReservation,
    RotateOutcome,
    StoreUnavailable,
    User,
)

__all__ = [
    "AccountStore",
    "ApiKeyRecord",
    "DuplicateEmail",
    "Profile",
    "QuotaReservation",
    "RotateOutcome",
    "StoreUnavailable",
    "User",
    "make_store",
]


def make_store(settings: Settings, clock: Clock) -> AccountStore:
    """The backend the settings ask for: PostgreSQL with DATABASE_URL, else embedded SQLite.

    Stored timestamps (``created_at``, ``updated_at``) are taken from ``clock``."""
    if settings.database_url:
        from service.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, clock, pool_size=settings.db_pool_size)
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path, clock)
