"""Production AccountStore on PostgreSQL through an asyncpg connection pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime

import asyncpg

from service.clock import Clock
from service.store.base import (
    ApiKeyRecord,
    DuplicateEmail,
    Profile,
    QuotaReservation,
    RotateOutcome,
    StoreUnavailable,
    User,
    normalise_email,
)
from service.store.migrations import load_migrations

# Errors that mean "the database is not reachable right now", as opposed to a bug in a query.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)
_MIGRATION_LOCK = 0x6469636F6D  # pg_advisory_xact_lock key: "dicom"


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        created_at=row["created_at"],
    )


def _profile(row: asyncpg.Record) -> Profile:
    return Profile(
        user_id=row["user_id"],
        purpose=row["purpose"],
        organization=row["organization"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _key(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


class PostgresStore:
    """AccountStore on PostgreSQL; every statement runs on a pooled connection."""

    def __init__(
        self, dsn: str, clock: Clock, pool_size: int = 10, command_timeout: float = 10.0
    ) -> None:
        self._dsn = dsn
        self.clock = clock
        self._pool_size = pool_size
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                command_timeout=self._command_timeout,
                timeout=5.0,
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreUnavailable("PostgreSQL pool is not open")
        try:
            async with self._pool.acquire(timeout=5.0) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailable("PostgreSQL is unreachable") from exc

    async def migrate(self) -> list[int]:
        async with self._connection() as conn, conn.transaction():
            # One migrator at a time, however many workers and hosts start together.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in load_migrations("postgres"):
                if migration.version in done:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
                applied.append(migration.version)
            return applied

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    # users -------------------------------------------------------------------------------

    async def create_user(
        self, email: str, password_hash: str, first_name: str, last_name: str
    ) -> User:
        async with self._connection() as conn:
            try:
                row = await conn.fetchrow(
                    "INSERT INTO users (email, email_key, password_hash, first_name, last_name,"
                    " created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
                    email,
                    normalise_email(email),
                    password_hash,
                    first_name,
                    last_name,
                    self.clock.now(),
                )
            except asyncpg.UniqueViolationError:
                raise DuplicateEmail(email) from None
        return _user(row)

    async def get_user_by_email(self, email: str) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM users WHERE email_key = $1", normalise_email(email)
            )
        return _user(row) if row else None

    async def get_user(self, user_id: int) -> User | None:
        async with self._connection() as conn:
            row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return _user(row) if row else None

    # profiles ----------------------------------------------------------------------------

    async def save_profile(
        self, user_id: int, purpose: str, organization: str
    ) -> tuple[Profile, bool]:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "INSERT INTO developer_profiles (user_id, purpose, organization, created_at,"
                " updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id) DO UPDATE"
                " SET purpose = excluded.purpose, organization = excluded.organization,"
                " updated_at = excluded.updated_at RETURNING *, (xmax = 0) AS inserted",
                user_id,
                purpose,
                organization,
                self.clock.now(),
            )
        return _profile(row), bool(row["inserted"])

    async def get_profile(self, user_id: int) -> Profile | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM developer_profiles WHERE user_id = $1", user_id
            )
        return _profile(row) if row else None

    # api keys ----------------------------------------------------------------------------

    async def create_api_key(
        self, user_id: int, name: str, prefix: str, secret_hash: str
    ) -> ApiKeyRecord:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "INSERT INTO api_keys (user_id, name, prefix, secret_hash, created_at)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING *",
                user_id,
                name,
                prefix,
                secret_hash,
                self.clock.now(),
            )
        return _key(row)

    async def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM api_keys WHERE user_id = $1 ORDER BY id", user_id
            )
        return [_key(row) for row in rows]

    async def delete_api_key(self, user_id: int, key_id: int) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(
                "DELETE FROM api_keys WHERE id = $1 AND user_id = $2", key_id, user_id
            )
        return status == "DELETE 1"

    async def find_api_key(self, prefix: str) -> ApiKeyRecord | None:
        async with self._connection() as conn:
            row = await conn.fetchrow("SELECT * FROM api_keys WHERE prefix = $1", prefix)
        return _key(row) if row else None

    async def api_key_exists(self, key_id: int) -> bool:
        async with self._connection() as conn:
            return bool(await conn.fetchval("SELECT 1 FROM api_keys WHERE id = $1", key_id))

    async def touch_api_keys(self, last_used: Mapping[int, datetime]) -> None:
        async with self._connection() as conn:
            await conn.executemany(
                "UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1",
                list(last_used.items()),
            )

    # refresh tokens ----------------------------------------------------------------------

    async def add_refresh_token(
        self, jti: str, user_id: int, family_id: str, expires_at: datetime
    ) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                jti,
                user_id,
                family_id,
                expires_at,
            )

    async def rotate_refresh_token(
        self, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> RotateOutcome:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT user_id, family_id, used_at, revoked_at FROM refresh_tokens"
                " WHERE jti = $1 FOR UPDATE",
                old_jti,
            )
            if row is None:
                return RotateOutcome.UNKNOWN
            if row["revoked_at"] is not None:
                return RotateOutcome.REVOKED
            if row["used_at"] is not None:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1",
                    row["family_id"],
                    now,
                )
                return RotateOutcome.REUSED
            await conn.execute(
                "UPDATE refresh_tokens SET used_at = $2 WHERE jti = $1", old_jti, now
            )
            await conn.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                new_jti,
                row["user_id"],
                row["family_id"],
                expires_at,
            )
            return RotateOutcome.ROTATED

    # usage and quota ---------------------------------------------------------------------

    async def add_usage(self, counts: Mapping[tuple[int, date], int]) -> None:
        async with self._connection() as conn:
            await conn.executemany(
                "INSERT INTO usage_daily (user_id, day, count) VALUES ($1, $2, $3)"
                " ON CONFLICT (user_id, day) DO UPDATE"
                " SET count = usage_daily.count + excluded.count",
                [(user_id, day, n) for (user_id, day), n in counts.items()],
            )

    async def daily_usage(
        self, user_id: int, first_day: date, last_day: date
    ) -> list[tuple[date, int]]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT day, count FROM usage_daily WHERE user_id = $1"
                " AND day BETWEEN $2 AND $3 ORDER BY day",
                user_id,
                first_day,
                last_day,
            )
        return [(row["day"], row["count"]) for row in rows]

    async def reserve_quota(
        self, user_id: int, month: str, limit: int, key_id: int
    ) -> QuotaReservation:
        async with self._connection() as conn:
            # One statement checks the key still exists and counts: a deleted key is refused
            # at once, whatever any process has cached.
            used = await conn.fetchval(
                "INSERT INTO quota_months (user_id, month, used)"
                " SELECT $1, $2, 1 WHERE $3 > 0 AND EXISTS"
                " (SELECT 1 FROM api_keys WHERE id = $4 AND user_id = $1)"
                " ON CONFLICT (user_id, month) DO UPDATE SET used = quota_months.used + 1"
                " WHERE quota_months.used < $3 RETURNING used",
                user_id,
                month,
                limit,
                key_id,
            )
            if used is not None:
                return QuotaReservation(granted=True, used=used)
            row = await conn.fetchrow(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $3 AND user_id = $1) AS key,"
                " (SELECT used FROM quota_months WHERE user_id = $1 AND month = $2) AS used",
                user_id,
                month,
                key_id,
            )
        return QuotaReservation(granted=False, used=row["used"] or 0, key_exists=row["key"])

    async def release_quota(self, user_id: int, month: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE quota_months SET used = used - 1"
                " WHERE user_id = $1 AND month = $2 AND used > 0",
                user_id,
                month,
            )
