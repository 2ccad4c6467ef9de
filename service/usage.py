"""Usage: the durable record of successful reads, and the activity summary read from it.

Successful reads per developer per day are written to the AccountStore before each read is
answered (so the activity summary is exact at once, from any worker of any instance); API
keys' ``last_used_at`` is batched about once a second.

Reads that succeed while a write is under way are written together by the next one (group
commit): under load one transaction carries many reads, at no cost in exactness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.quota.calendar import month_start, next_month_start
from service.store import AccountStore, StoreUnavailable
from service.store.profiles import require_profile

log = logging.getLogger(__name__)


class UsageRecorder:
    """Writes successful reads in group commits and key uses in batches; whatever a database
    outage keeps from being written waits here for the next write or flush."""

    def __init__(self, store: AccountStore, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._counts: Counter[tuple[int, date]] = Counter()
        self._key_uses: dict[int, datetime] = {}
        self._lock = asyncio.Lock()
        self._next_write: asyncio.Future[None] | None = None  # for the reads counted since
        self._writer: asyncio.Task[None] | None = None

    async def record_success(self, user_id: int, when: datetime) -> None:
        """Count one successful read for the developer on the (UTC) day of ``when`` (the moment
        its quota unit was reserved, so the read falls in the same month as that unit) and
        return once a write that holds it has ended.

        If the database is unreachable (with Redis counting, reads go on) the read is kept and
        written by a later write or flush."""
        self._counts[(user_id, when.astimezone(UTC).date())] += 1
        if self._next_write is None:
            self._next_write = asyncio.get_running_loop().create_future()
        written = self._next_write
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="usage-write")
        await asyncio.shield(written)  # a request that gives up does not stop the write

    async def _write_groups(self) -> None:
        """Write what is counted, again and again while reads keep arriving during writes."""
        while self._next_write is not None:
            written, self._next_write = self._next_write, None
            try:
                async with self._lock:
                    await self._write_counts()
            except StoreUnavailable:
                log.warning("usage write postponed: database unreachable")
            except Exception:  # never leave a read waiting; the rows stay for the next write
                log.exception("usage write failed")
            finally:
                written.set_result(None)

    async def _write_counts(self) -> None:
        """Write the counted reads (the lock held); on an outage put them back."""
        counts, self._counts = self._counts, Counter()
        if not counts:
            return
        try:
            await self.store.add_usage(counts)
        except BaseException:
            self._counts.update(counts)
            raise

    def record_key_use(self, key_id: int, when: datetime) -> None:
        """Remember the latest use of an API key."""
        self._key_uses[key_id] = when

    def pending(self, user_id: int, month: str) -> int:
        """Successful reads of that month that this process could not write yet."""
        return sum(
            n
            for (uid, day), n in self._counts.items()
            if uid == user_id and day.isoformat()[:7] == month
        )

    async def flush(self) -> None:
        """Write whatever is kept and the key uses; on an outage put them back."""
        async with self._lock:
            await self._write_counts()
            key_uses, self._key_uses = self._key_uses, {}
            if not key_uses:
                return
            try:
                await self.store.touch_api_keys(key_uses)
            except StoreUnavailable:
                for key_id, when in key_uses.items():
                    self._key_uses[key_id] = max(when, self._key_uses.get(key_id, when))
                raise

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except StoreUnavailable:
                log.warning("usage flush postponed: database unreachable")


async def activity_summary(
    store: AccountStore, usage: UsageRecorder, user_id: int, now: datetime
) -> dict[str, Any]:
    """Successful reads per day of the current UTC month, and their total."""
    await require_profile(store, user_id)
    with contextlib.suppress(StoreUnavailable):  # the read below then answers 503
        await usage.flush()  # reads this worker could not write during an outage
    first = month_start(now)
    last = (next_month_start(now) - timedelta(days=1)).date()
    days = await store.daily_usage(user_id, first, last)
    return {
        "daily_activity": [{"day": day.isoformat(), "count": count} for day, count in days],
        "monthly_total": sum(count for _, count in days),
    }
