"""Store and quota-counter fixtures, parametrized over every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from service.clock import Clock, FrozenClock
from service.quota.redis_counter import RedisQuotaCounter
from service.quota.store_counter import StoreQuotaCounter
from service.store.base import AccountStore
from service.store.postgres import PostgresStore
from service.store.sqlite import SqliteStore
from tests.support import ORDINARY_DAY, REDIS_TEST_URL, ServerProcess, developer_with_key


async def open_store(
    kind: str, tmp_path: Path, pg_url: str, clock: Clock | None = None
) -> AccountStore:
    """A migrated store of that kind, its timestamps from ``clock`` (default: ORDINARY_DAY)."""
    clock = clock or FrozenClock(ORDINARY_DAY)
    store: AccountStore
    if kind == "sqlite":
        store = SqliteStore(tmp_path / "store.sqlite3", clock)
    else:
        store = PostgresStore(pg_url, clock, pool_size=20)
    await store.open()
    await store.migrate()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[AccountStore]:
    s = await open_store(request.param, tmp_path, pg_url)
    yield s
    await s.close()


@pytest.fixture(params=["sqlite-store", "postgres-store", "redis"])
async def counter_and_store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str, redis_prefix: str
) -> AsyncIterator[tuple[object, AccountStore]]:
    """(quota counter with limit 5, the store behind it)."""
    kind = request.param
    store = await open_store("sqlite" if kind == "sqlite-store" else "postgres", tmp_path, pg_url)
    if kind == "redis":
        client = aioredis.Redis.from_url(REDIS_TEST_URL)
        counter: object = RedisQuotaCounter(client, store, 5, redis_prefix)
    else:
        counter = StoreQuotaCounter(store, 5)
    yield counter, store
    await counter.close()  # type: ignore[attr-defined]
    await store.close()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """A client of the backend's server."""
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A client of the backend's server and the ApiKey header of a fresh developer."""
    with httpx.Client(base_url=server.url, timeout=120) as client:
        _, key = developer_with_key(client)
        yield client, {"Authorization": f"ApiKey {key}"}
