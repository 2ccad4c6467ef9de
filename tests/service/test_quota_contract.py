"""The QuotaCounter contract on every backend: store-backed (SQLite, PostgreSQL) and Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import pytest
import redis.asyncio as aioredis

from service.clock import FrozenClock
from service.quota.base import KeyRevoked, QuotaDecision
from service.quota.calendar import next_month_start, seconds_until_reset
from service.quota.redis_counter import RedisQuotaCounter, counter_key
from service.store.base import AccountStore
from service.store.postgres import PostgresStore
from tests.support import REDIS_TEST_URL, unique_email

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def new_developer(store: AccountStore) -> tuple[int, int]:
    """(user id, API key id) of a fresh developer."""
    user = await store.create_user(unique_email(), "hash", "", "")
    key = await store.create_api_key(user.id, "k", uuid.uuid4().hex[:8], "h" * 64)
    return user.id, key.id


async def test_exactly_the_limit_is_granted_concurrently(counter_and_store) -> None:
    counter, store = counter_and_store
    user_id, key_id = await new_developer(store)
    decisions = await asyncio.gather(*(counter.reserve(user_id, key_id, NOW) for _ in range(12)))
    assert sum(d.granted for d in decisions) == 5
    refused = [d for d in decisions if not d.granted]
    assert all(d.used == 5 and d.remaining == 0 for d in refused)
    assert sorted(d.used for d in decisions if d.granted) == [1, 2, 3, 4, 5]


async def test_release_gives_the_unit_back(counter_and_store) -> None:
    counter, store = counter_and_store
    user_id, key_id = await new_developer(store)
    for _ in range(5):
        assert (await counter.reserve(user_id, key_id, NOW)).granted
    assert not (await counter.reserve(user_id, key_id, NOW)).granted
    await counter.release(user_id, "2026-11")
    decision = await counter.reserve(user_id, key_id, NOW)
    assert decision.granted and decision.used == 5


async def test_months_are_counted_separately(counter_and_store) -> None:
    counter, store = counter_and_store
    user_id, key_id = await new_developer(store)
    for _ in range(5):
        await counter.reserve(user_id, key_id, NOW)
    december = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    decision = await counter.reserve(user_id, key_id, december)
    assert decision.granted and decision.used == 1 and decision.month == "2026-12"


async def test_developers_do_not_share_counters(counter_and_store) -> None:
    counter, store = counter_and_store
    alice, bob = await new_developer(store), await new_developer(store)
    for _ in range(5):
        await counter.reserve(*alice, NOW)
    assert (await counter.reserve(*bob, NOW)).granted


def test_decision_headers_describe_the_window() -> None:
    decision = QuotaDecision(granted=True, used=3, limit=10, month="2026-11", resets_in=42)
    assert decision.headers() == {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "7",
        "RateLimit-Reset": "42",
    }
    assert next_month_start(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)).year == 2027
    assert seconds_until_reset(NOW) == 2 * 86400 - 12 * 3600


@pytest.fixture
async def redis_counter(pg_url: str, tmp_path, redis_prefix: str):
    """A Redis counter (limit 5) over PostgreSQL, the production pairing."""
    store = PostgresStore(pg_url, FrozenClock(NOW))
    await store.open()
    await store.migrate()
    counter = RedisQuotaCounter(aioredis.Redis.from_url(REDIS_TEST_URL), store, 5, redis_prefix)
    yield counter, store
    await counter.close()
    await store.close()


async def test_redis_counter_is_rebuilt_from_the_durable_record(
    redis_counter, redis_prefix: str
) -> None:
    counter, store = redis_counter
    user_id, key_id = await new_developer(store)
    await store.add_usage({(user_id, date(2026, 11, 2)): 3, (user_id, date(2026, 10, 30)): 9})
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    key = counter_key(redis_prefix, user_id, "2026-11")
    assert f"{{dev:{user_id}}}" in key
    decision = await counter.reserve(
        user_id, key_id, NOW
    )  # counter missing: seeded with 3 from the DB
    assert decision.granted and decision.used == 4
    ttl = await client.ttl(key)
    assert 2 * 86400 < ttl <= 3 * 86400 + 60  # expires a day after the month ends
    await client.delete(key)  # as if Redis restarted or evicted it
    decision = await counter.reserve(user_id, key_id, NOW)
    assert decision.used == 4  # rebuilt from the record (3), not reset to zero
    await client.aclose()


async def test_redis_counter_survives_a_script_flush(redis_counter) -> None:
    counter, store = redis_counter
    user_id, key_id = await new_developer(store)
    assert (await counter.reserve(user_id, key_id, NOW)).used == 1
    await counter.client.script_flush()  # the next EVALSHA gets NOSCRIPT and reloads
    assert (await counter.reserve(user_id, key_id, NOW)).used == 2


async def test_a_deleted_key_is_refused_by_the_counting_step(counter_and_store) -> None:
    counter, store = counter_and_store
    user_id, key_id = await new_developer(store)
    assert (await counter.reserve(user_id, key_id, NOW)).granted
    await counter.revoke_key(user_id, key_id)
    assert await store.delete_api_key(user_id, key_id)
    with pytest.raises(KeyRevoked):
        await counter.reserve(user_id, key_id, NOW)
    # Another key of the same developer keeps working.
    other = await store.create_api_key(user_id, "k2", uuid.uuid4().hex[:8], "h" * 64)
    assert (await counter.reserve(user_id, other.id, NOW)).granted


async def test_a_deleted_key_is_refused_after_redis_lost_its_data(redis_counter) -> None:
    counter, store = redis_counter
    user_id, key_id = await new_developer(store)
    assert (await counter.reserve(user_id, key_id, NOW)).granted
    assert await store.delete_api_key(user_id, key_id)  # revoked set never written
    await counter.client.delete(counter_key(counter.prefix, user_id, "2026-11"))
    with pytest.raises(KeyRevoked):  # the rebuild checks the key in the database
        await counter.reserve(user_id, key_id, NOW)
