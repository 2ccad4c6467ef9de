"""Embedded AccountStore: one SQLite file (WAL), one connection per process on its own thread.

Every write runs in a ``BEGIN IMMEDIATE`` transaction, so check-and-count steps such as quota
reservation are atomic across all worker processes sharing the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _key(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        prefix=row["prefix"],
        secret_hash=row["secret_hash"],
        created_at=datetime.fromisoformat(row["created_at"]),
        last_used_at=_ts(row["last_used_at"]),
    )


class SqliteStore:
    """AccountStore on a single SQLite database file."""

    def __init__(self, path: Path, clock: Clock, busy_timeout_ms: int = 10_000) -> None:
        self.path = path
        self.clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._connect)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)
        self._executor.shutdown(wait=True)

    def _connect(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created owner-only before SQLite opens it: SQLite gives its -wal and -shm files the
        # database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"embedded database error: {exc}") from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one BEGIN IMMEDIATE transaction (takes the file's write lock first)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _now(self) -> str:
        return self.clock.now().isoformat()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("embedded database is not open")
        return self._conn

    async def migrate(self) -> list[int]:
        def migrate(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for migration in load_migrations("sqlite"):
                if migration.version in done:
                    continue
                for statement in migration.sql.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, self._now()),
                )
                applied.append(migration.version)
            return applied

        return await self._run(self._write, migrate)

    async def ping(self) -> None:
        await self._run(lambda: self._connection().execute("SELECT 1").fetchone())

    # users -------------------------------------------------------------------------------

    async def create_user(
        self, email: str, password_hash: str, first_name: str, last_name: str
    ) -> User:
        def create(conn: sqlite3.Connection) -> User:
            try:
                row = conn.execute(
                    "INSERT INTO users (email, email_key, password_hash, first_name, last_name,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                    (
                        email,
                        normalise_email(email),
                        password_hash,
                        first_name,
                        last_name,
                        self._now(),
                    ),
                ).fetchone()
            except sqlite3.IntegrityError:
                raise DuplicateEmail(email) from None
            return _user(row)

        return await self._run(self._write, create)

    async def get_user_by_email(self, email: str) -> User | None:
        def get() -> User | None:
            row = (
                self._connection()
                .execute("SELECT * FROM users WHERE email_key = ?", (normalise_email(email),))
                .fetchone()
            )
            return _user(row) if row else None

        return await self._run(get)

    async def get_user(self, user_id: int) -> User | None:
        def get() -> User | None:
            row = (
                self._connection()
                .execute("SELECT * FROM users WHERE id = ?", (user_id,))
                .fetchone()
            )
            return _user(row) if row else None

        return await self._run(get)

    # profiles ----------------------------------------------------------------------------

    async def save_profile(
        self, user_id: int, purpose: str, organization: str
    ) -> tuple[Profile, bool]:
        def save(conn: sqlite3.Connection) -> tuple[Profile, bool]:
            now = self._now()
            existed = conn.execute(
                "SELECT 1 FROM developer_profiles WHERE user_id = ?", (user_id,)
            ).fetchone()
            row = conn.execute(
                "INSERT INTO developer_profiles (user_id, purpose, organization, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET"
                " purpose = excluded.purpose, organization = excluded.organization,"
                " updated_at = excluded.updated_at RETURNING *",
                (user_id, purpose, organization, now, now),
            ).fetchone()
            return _profile(row), existed is None

        return await self._run(self._write, save)

    async def get_profile(self, user_id: int) -> Profile | None:
        def get() -> Profile | None:
            row = (
                self._connection()
                .execute("SELECT * FROM developer_profiles WHERE user_id = ?", (user_id,))
                .fetchone()
            )
            return _profile(row) if row else None

        return await self._run(get)

    # api keys ----------------------------------------------------------------------------

    async def create_api_key(
        self, user_id: int, name: str, prefix: str, secret_hash: str
    ) -> ApiKeyRecord:
        def create(conn: sqlite3.Connection) -> ApiKeyRecord:
            row = conn.execute(
                "INSERT INTO api_keys (user_id, name, prefix, secret_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING *",
                (user_id, name, prefix, secret_hash, self._now()),
            ).fetchone()
            return _key(row)

        return await self._run(self._write, create)

    async def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        def list_keys() -> list[ApiKeyRecord]:
            rows = self._connection().execute(
                "SELECT * FROM api_keys WHERE user_id = ? ORDER BY id", (user_id,)
            )
            return [_key(row) for row in rows]

        return await self._run(list_keys)

    async def delete_api_key(self, user_id: int, key_id: int) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id)
            )
            return cursor.rowcount == 1

        return await self._run(self._write, delete)

    async def find_api_key(self, prefix: str) -> ApiKeyRecord | None:
        def find() -> ApiKeyRecord | None:
            row = (
                self._connection()
                .execute("SELECT * FROM api_keys WHERE prefix = ?", (prefix,))
                .fetchone()
            )
            return _key(row) if row else None

        return await self._run(find)

    async def api_key_exists(self, key_id: int) -> bool:
        def exists() -> bool:
            row = (
                self._connection()
                .execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,))
                .fetchone()
            )
            return row is not None

        return await self._run(exists)

    async def touch_api_keys(self, last_used: Mapping[int, datetime]) -> None:
        rows = [(when.isoformat(), key_id) for key_id, when in last_used.items()]

        def touch(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE api_keys SET last_used_at = ? WHERE id = ?", rows)

        await self._run(self._write, touch)

    # refresh tokens ----------------------------------------------------------------------

    async def add_refresh_token(
        self, jti: str, user_id: int, family_id: str, expires_at: datetime
    ) -> None:
        def add(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (jti, user_id, family_id, expires_at.isoformat()),
            )

        await self._run(self._write, add)

    async def rotate_refresh_token(
        self, old_jti: str, new_jti: str, expires_at: datetime, now: datetime
    ) -> RotateOutcome:
        def rotate(conn: sqlite3.Connection) -> RotateOutcome:
            row = conn.execute(
                "SELECT user_id, family_id, used_at, revoked_at FROM refresh_tokens WHERE jti = ?",
                (old_jti,),
            ).fetchone()
            if row is None:
                return RotateOutcome.UNKNOWN
            if row["revoked_at"] is not None:
                return RotateOutcome.REVOKED
            if row["used_at"] is not None:
                conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ?",
                    (now.isoformat(), row["family_id"]),
                )
                return RotateOutcome.REUSED
            conn.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE jti = ?", (now.isoformat(), old_jti)
            )
            conn.execute(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (new_jti, row["user_id"], row["family_id"], expires_at.isoformat()),
            )
            return RotateOutcome.ROTATED

        return await self._run(self._write, rotate)

    # usage and quota ---------------------------------------------------------------------

    async def add_usage(self, counts: Mapping[tuple[int, date], int]) -> None:
        rows = [(user_id, day.isoformat(), n) for (user_id, day), n in counts.items()]

        def add(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO usage_daily (user_id, day, count) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, day) DO UPDATE SET count = count + excluded.count",
                rows,
            )

        await self._run(self._write, add)

    async def daily_usage(
        self, user_id: int, first_day: date, last_day: date
    ) -> list[tuple[date, int]]:
        def usage() -> list[tuple[date, int]]:
            rows = self._connection().execute(
                "SELECT day, count FROM usage_daily WHERE user_id = ? AND day BETWEEN ? AND ?"
                " ORDER BY day",
                (user_id, first_day.isoformat(), last_day.isoformat()),
            )
            return [(date.fromisoformat(day), count) for day, count in rows]

        return await self._run(usage)

    async def reserve_quota(
        self, user_id: int, month: str, limit: int, key_id: int
    ) -> QuotaReservation:
        def reserve(conn: sqlite3.Connection) -> QuotaReservation:
            # The key is checked in the same transaction as the count: a deleted key is refused
            # at once, whatever any process has cached.
            key = conn.execute(
                "SELECT 1 FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id)
            ).fetchone()
            if key is None:
                return QuotaReservation(granted=False, used=0, key_exists=False)
            row = conn.execute(
                "SELECT used FROM quota_months WHERE user_id = ? AND month = ?", (user_id, month)
            ).fetchone()
            used = row[0] if row else 0
            if used >= limit:
                return QuotaReservation(granted=False, used=used)
            conn.execute(
                "INSERT INTO quota_months (user_id, month, used) VALUES (?, ?, 1)"
                " ON CONFLICT (user_id, month) DO UPDATE SET used = used + 1",
                (user_id, month),
            )
            return QuotaReservation(granted=True, used=used + 1)

        return await self._run(self._write, reserve)

    async def release_quota(self, user_id: int, month: str) -> None:
        def release(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE quota_months SET used = used - 1"
                " WHERE user_id = ? AND month = ? AND used > 0",
                (user_id, month),
            )

        await self._run(self._write, release)


def _profile(row: sqlite3.Row) -> Profile:
    return Profile(
        user_id=row["user_id"],
        purpose=row["purpose"],
        organization=row["organization"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )
