"""The usage record: every successful read is in the database when ``record_success`` returns,
concurrent reads share a write (group commit), and an outage loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from service.store.base import AccountStore, StoreUnavailable
from service.usage import UsageRecorder
from tests.support import ORDINARY_DAY


class CountingWrites:
    """A real store whose usage writes are counted, and can be made to fail like an outage."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store
        self.writes = 0
        self.down = False

    async def add_usage(self, counts) -> None:
        self.writes += 1
        if self.down:
            raise StoreUnavailable("database unreachable (simulated outage)")
        await self.store.add_usage(counts)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


async def new_user(store: AccountStore) -> int:
    return (await store.create_user(f"u-{uuid.uuid4().hex[:12]}@example.com", "h", "", "")).id


async def month_total(store: AccountStore, user_id: int) -> int:
    first = ORDINARY_DAY.date().replace(day=1)
    days = await store.daily_usage(user_id, first, first + timedelta(days=30))
    return sum(count for _, count in days)


async def test_each_read_is_stored_before_record_success_returns(store: AccountStore) -> None:
    usage = UsageRecorder(store)
    user_id = await new_user(store)
    for expected in range(1, 4):
        await usage.record_success(user_id, ORDINARY_DAY)
        assert await month_total(store, user_id) == expected


async def test_concurrent_reads_share_writes(store: AccountStore) -> None:
    counting = CountingWrites(store)
    usage = UsageRecorder(counting)  # type: ignore[arg-type]
    users = [await new_user(store) for _ in range(3)]
    await asyncio.gather(*(usage.record_success(users[i % 3], ORDINARY_DAY) for i in range(60)))
    assert [await month_total(store, user) for user in users] == [20, 20, 20]
    assert counting.writes <= 3  # the first read's write, then one for all that came meanwhile


async def test_an_outage_keeps_the_reads_for_the_next_flush(store: AccountStore) -> None:
    counting = CountingWrites(store)
    usage = UsageRecorder(counting)  # type: ignore[arg-type]
    user_id = await new_user(store)
    counting.down = True
    await asyncio.gather(*(usage.record_success(user_id, ORDINARY_DAY) for _ in range(5)))
    assert await month_total(store, user_id) == 0
    assert usage.pending(user_id, ORDINARY_DAY.strftime("%Y-%m")) == 5
    counting.down = False
    await usage.flush()
    assert await month_total(store, user_id) == 5
    assert usage.pending(user_id, ORDINARY_DAY.strftime("%Y-%m")) == 0
