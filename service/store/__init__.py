"""AccountStore: one interface, two backends (embedded SQLite, PostgreSQL)."""

from __future__ import annotations

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


def make_store(settings: Settings) -> AccountStore:
    """The backend the settings ask for: PostgreSQL with DATABASE_URL, else embedded SQLite."""
    if settings.database_url:
        from service.store.postgres import PostgresStore

        return PostgresStore(settings.database_url, pool_size=settings.db_pool_size)
    from service.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path)
