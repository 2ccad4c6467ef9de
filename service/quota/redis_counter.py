"""QuotaCounter on Redis: one Lua script checks and counts atomically (EVALSHA, reloaded on
NOSCRIPT by redis-py's Script), keys hash-tagged per developer so it runs on Redis Cluster."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.quota.base import KeyRevoked, QuotaDecision, QuotaUnavailable
from service.quota.calendar import month_key, month_start, next_month_start, seconds_until_reset
from service.store import AccountStore, StoreUnavailable

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
# Counters outlive their month by a day so that clock skew between hosts never resets one early.
_EXPIRY_GRACE = timedelta(days=1)
REVOKED_KEYS_TTL = timedelta(days=1)

PendingUsage = Callable[[int, str], int]


def _script(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def counter_key(prefix: str, user_id: int, month: str) -> str:
    """The developer's month counter; ``{dev:N}`` is the Redis Cluster hash tag."""
    return f"{prefix}{{dev:{user_id}}}:quota:{month}"


def revoked_key(prefix: str, user_id: int) -> str:
    """The developer's set of deleted API key ids, in the same hash slot as the counters."""
    return f"{prefix}{{dev:{user_id}}}:revoked-keys"


class RedisQuotaCounter:
    """Monthly counters in Redis, rebuilt from the durable usage record when missing."""

    def __init__(
        self,
        client: aioredis.Redis,
        store: AccountStore,
        limit: int,
        prefix: str,
        pending_usage: PendingUsage | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.limit = limit
        self.prefix = prefix
        self._pending_usage = pending_usage or (lambda user_id, month: 0)
        self._reserve = client.register_script(_script("reserve.lua"))
        self._release = client.register_script(_script("release.lua"))

    @classmethod
    def from_url(
        cls,
        url: str,
        store: AccountStore,
        limit: int,
        prefix: str,
        pending_usage: PendingUsage | None = None,
    ) -> RedisQuotaCounter:
        """A counter with its own connection pool; short timeouts so an outage fails fast."""
        client = aioredis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=False
        )
        return cls(client, store, limit, prefix, pending_usage)

    async def reserve(self, user_id: int, key_id: int, now: datetime) -> QuotaDecision:
        month = month_key(now)
        keys = [counter_key(self.prefix, user_id, month), revoked_key(self.prefix, user_id)]
        # A relative TTL from the service's clock: Redis's own clock never decides the month.
        ttl = max(1, int((next_month_start(now) + _EXPIRY_GRACE - now).total_seconds()))
        try:
            granted, used = await self._reserve(keys=keys, args=[self.limit, ttl, "", key_id])
            if granted == -1:
                # The counter is gone (new month, restart, eviction; the revoked set may be gone
                # too): rebuild it from the database, and check the key there as well.
                seed = await self._durable_count(user_id, now)
                if not await self._key_exists(key_id):
                    raise KeyRevoked(key_id)
                granted, used = await self._reserve(keys=keys, args=[self.limit, ttl, seed, key_id])
        except _REDIS_DOWN as exc:
            raise QuotaUnavailable("Redis is unreachable") from exc
        if granted == -2:
            raise KeyRevoked(key_id)
        return QuotaDecision(
            granted=granted == 1,
            used=int(used),
            limit=self.limit,
            month=month,
            resets_in=seconds_until_reset(now),
        )

    async def _durable_count(self, user_id: int, now: datetime) -> int:
        """This month's successful requests from the database plus this worker's unflushed ones."""
        first = month_start(now)
        last = (next_month_start(now) - timedelta(days=1)).date()
        try:
            days = await self.store.daily_usage(user_id, first, last)
        except StoreUnavailable as exc:
            raise QuotaUnavailable("usage record is unreachable") from exc
        return sum(count for _, count in days) + self._pending_usage(user_id, month_key(now))

    async def _key_exists(self, key_id: int) -> bool:
        try:
            return await self.store.api_key_exists(key_id)
        except StoreUnavailable as exc:
            raise QuotaUnavailable("account database is unreachable") from exc

    async def revoke_key(self, user_id: int, key_id: int) -> None:
        """Mark a key deleted for every worker's next request (kept for a day, far longer than
        any worker caches a key)."""
        key = revoked_key(self.prefix, user_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.sadd(key, key_id)
                pipe.expire(key, int(REVOKED_KEYS_TTL.total_seconds()))
                await pipe.execute()
        except _REDIS_DOWN as exc:
            raise QuotaUnavailable("Redis is unreachable") from exc

    async def release(self, user_id: int, month: str) -> None:
        try:
            await self._release(keys=[counter_key(self.prefix, user_id, month)])
        except _REDIS_DOWN as exc:
            raise QuotaUnavailable("Redis is unreachable") from exc

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except _REDIS_DOWN as exc:
            raise QuotaUnavailable("Redis is unreachable") from exc

    async def close(self) -> None:
        await self.client.aclose()
