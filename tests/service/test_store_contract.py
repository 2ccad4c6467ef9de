"""The AccountStore contract, run against embedded SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from service.clock import FrozenClock
from service.store.base import AccountStore, DuplicateEmail, RotateOutcome
from service.store.sqlite import SqliteStore
from tests.support import ORDINARY_DAY, unique_email


async def new_user(store: AccountStore) -> int:
    user = await store.create_user(unique_email(), "hash", "Ada", "Lovelace")
    return user.id


async def test_migrations_are_idempotent(store: AccountStore) -> None:
    assert await store.migrate() == []


async def test_both_backends_have_the_same_schema(tmp_path: Path, pg_url: str) -> None:
    lite = SqliteStore(tmp_path / "schema.sqlite3", FrozenClock(ORDINARY_DAY))
    await lite.open()
    await lite.migrate()
    await lite.close()
    conn = sqlite3.connect(tmp_path / "schema.sqlite3")
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    sqlite_schema = {
        table: sorted(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
        for table in tables
        if not table.startswith("sqlite_")
    }
    conn.close()
    pg = await asyncpg.connect(pg_url)
    from service.store.postgres import PostgresStore

    store = PostgresStore(pg_url, FrozenClock(ORDINARY_DAY))
    await store.open()
    await store.migrate()
    await store.close()
    rows = await pg.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public'"
    )
    await pg.close()
    pg_schema: dict[str, list[str]] = {}
    for row in rows:
        pg_schema.setdefault(row["table_name"], []).append(row["column_name"])
    assert sqlite_schema == {table: sorted(cols) for table, cols in pg_schema.items()}


async def test_emails_are_unique_case_insensitively(store: AccountStore) -> None:
    email = unique_email()
    user = await store.create_user(email, "hash", "", "")
    with pytest.raises(DuplicateEmail):
        await store.create_user(email.upper(), "hash", "", "")
    found = await store.get_user_by_email(f"  {email.upper()} ")
    assert found is not None and found.id == user.id and found.email == email
    assert (await store.get_user(user.id)) == found
    assert await store.get_user_by_email(unique_email()) is None


async def test_profile_is_created_then_updated(store: AccountStore) -> None:
    user_id = await new_user(store)
    assert await store.get_profile(user_id) is None
    profile, created = await store.save_profile(user_id, "testing", "Org A")
    assert created and profile.purpose == "testing" and profile.organization == "Org A"
    profile, created = await store.save_profile(user_id, "research", "Org B")
    assert not created and (profile.purpose, profile.organization) == ("research", "Org B")
    assert await store.get_profile(user_id) == profile


async def test_api_keys_belong_to_their_owner(store: AccountStore) -> None:
    alice, bob = await new_user(store), await new_user(store)
    prefix = uuid.uuid4().hex[:8]
    key = await store.create_api_key(alice, "ci", prefix, "h" * 64)
    assert key.last_used_at is None
    assert [k.id for k in await store.list_api_keys(alice)] == [key.id]
    assert await store.list_api_keys(bob) == []
    assert await store.find_api_key(prefix) == key
    assert not await store.delete_api_key(bob, key.id)  # not Bob's
    assert await store.find_api_key(prefix) is not None
    when = ORDINARY_DAY
    await store.touch_api_keys({key.id: when})
    touched = await store.find_api_key(prefix)
    assert touched is not None and touched.last_used_at is not None
    assert abs((touched.last_used_at - when).total_seconds()) < 1
    assert await store.delete_api_key(alice, key.id)
    assert await store.find_api_key(prefix) is None
    assert not await store.delete_api_key(alice, key.id)


async def test_refresh_rotation_and_reuse_revokes_the_family(store: AccountStore) -> None:
    user_id = await new_user(store)
    family, first, second, third = (uuid.uuid4().hex for _ in range(4))
    expires = ORDINARY_DAY + timedelta(days=7)
    now = ORDINARY_DAY
    await store.add_refresh_token(first, user_id, family, expires)
    assert await store.rotate_refresh_token(first, second, expires, now) is RotateOutcome.ROTATED
    # Replaying the first token is theft: the family, including the live second token, dies.
    assert await store.rotate_refresh_token(first, third, expires, now) is RotateOutcome.REUSED
    assert await store.rotate_refresh_token(second, third, expires, now) is RotateOutcome.REVOKED
    assert await store.rotate_refresh_token("nope", third, expires, now) is RotateOutcome.UNKNOWN


async def test_concurrent_rotation_lets_exactly_one_win(store: AccountStore) -> None:
    user_id = await new_user(store)
    family, first = uuid.uuid4().hex, uuid.uuid4().hex
    expires = ORDINARY_DAY + timedelta(days=7)
    await store.add_refresh_token(first, user_id, family, expires)
    outcomes = await asyncio.gather(
        *(
            store.rotate_refresh_token(first, uuid.uuid4().hex, expires, ORDINARY_DAY)
            for _ in range(5)
        )
    )
    assert outcomes.count(RotateOutcome.ROTATED) == 1


async def test_usage_accumulates_per_day(store: AccountStore) -> None:
    user_id, other = await new_user(store), await new_user(store)
    d1, d2 = date(2026, 11, 1), date(2026, 11, 3)
    await store.add_usage({(user_id, d1): 2, (user_id, d2): 1, (other, d1): 9})
    await store.add_usage({(user_id, d1): 3})
    assert await store.daily_usage(user_id, date(2026, 11, 1), date(2026, 11, 30)) == [
        (d1, 5),
        (d2, 1),
    ]
    assert await store.daily_usage(user_id, date(2026, 12, 1), date(2026, 12, 31)) == []


async def test_quota_reservation_is_exact_under_concurrency(store: AccountStore) -> None:
    user_id = await new_user(store)
    key_id = (await store.create_api_key(user_id, "k", uuid.uuid4().hex[:8], "h" * 64)).id
    results = await asyncio.gather(
        *(store.reserve_quota(user_id, "2026-11", 50, key_id) for _ in range(80))
    )
    assert sum(r.granted for r in results) == 50
    assert max(r.used for r in results) == 50
    await store.release_quota(user_id, "2026-11")
    again = await store.reserve_quota(user_id, "2026-11", 50, key_id)
    assert again.granted and again.used == 50
    # Months are separate, and a zero quota grants nothing.
    assert (await store.reserve_quota(user_id, "2026-12", 50, key_id)).used == 1
    assert not (await store.reserve_quota(user_id, "2027-01", 0, key_id)).granted


async def test_quota_reservation_checks_the_key(store: AccountStore) -> None:
    alice, bob = await new_user(store), await new_user(store)
    key = await store.create_api_key(alice, "k", uuid.uuid4().hex[:8], "h" * 64)
    assert await store.api_key_exists(key.id)
    assert (await store.reserve_quota(alice, "2026-11", 5, key.id)).granted
    refused = await store.reserve_quota(bob, "2026-11", 5, key.id)  # not Bob's key
    assert not refused.granted and not refused.key_exists
    assert await store.delete_api_key(alice, key.id)
    assert not await store.api_key_exists(key.id)
    gone = await store.reserve_quota(alice, "2026-11", 5, key.id)
    assert not gone.granted and not gone.key_exists
    over = await store.reserve_quota(
        alice,
        "2026-11",
        0,
        (await store.create_api_key(alice, "k2", uuid.uuid4().hex[:8], "h" * 64)).id,
    )
    assert not over.granted and over.key_exists
