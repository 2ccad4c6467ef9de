"""Batched, durable usage recording: successful reads per developer per day, and API keys'
``last_used_at``, written to the AccountStore about once a second instead of per request."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import date, datetime

from service.store import AccountStore, StoreUnavailable

log = logging.getLogger(__name__)


class UsageRecorder:
    """Buffers usage in memory and flushes it; a failed flush keeps the data for the next one."""

    def __init__(self, store: AccountStore, interval: float = 1.0) -> None:
        self.store = store
        self.interval = interval
        self._counts: Counter[tuple[int, date]] = Counter()
        self._key_uses: dict[int, datetime] = {}
        self._lock = asyncio.Lock()

    def record_success(self, user_id: int, when: datetime) -> None:
        """Count one successful read for the developer on that (UTC) day."""
        self._counts[(user_id, when.date())] += 1

    def record_key_use(self, key_id: int, when: datetime) -> None:
        """Remember the latest use of an API key."""
        self._key_uses[key_id] = when

    def pending(self, user_id: int, month: str) -> int:
        """Successful reads of that month not yet flushed by this process."""
        return sum(
            n
            for (uid, day), n in self._counts.items()
            if uid == user_id and day.isoformat()[:7] == month
        )

    async def flush(self) -> None:
        """Write what is buffered; on an outage put it back so nothing is lost."""
        async with self._lock:
            counts, self._counts = self._counts, Counter()
            key_uses, self._key_uses = self._key_uses, {}
            try:
                if counts:
                    await self.store.add_usage(counts)
                    counts = Counter()
                if key_uses:
                    await self.store.touch_api_keys(key_uses)
            except StoreUnavailable:
                self._counts.update(counts)
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
