"""QuotaCounter kept in the AccountStore itself (used when no REDIS_URL is configured)."""

from __future__ import annotations

from datetime import datetime

from service.quota.base import KeyRevoked, QuotaDecision, QuotaUnavailable
from service.quota.calendar import month_key, seconds_until_reset
from service.store import AccountStore, StoreUnavailable


class StoreQuotaCounter:
    """Atomic per-month counters in the store's ``quota_months`` table."""

    def __init__(self, store: AccountStore, limit: int) -> None:
        self.store = store
        self.limit = limit

    async def reserve(self, user_id: int, key_id: int, now: datetime) -> QuotaDecision:
        month = month_key(now)
        try:
            result = await self.store.reserve_quota(user_id, month, self.limit, key_id)
        except StoreUnavailable as exc:
            raise QuotaUnavailable("quota store is unreachable") from exc
        if not result.key_exists:
            raise KeyRevoked(key_id)
        return QuotaDecision(
            granted=result.granted,
            used=result.used,
            limit=self.limit,
            month=month,
            resets_in=seconds_until_reset(now),
        )

    async def release(self, user_id: int, month: str) -> None:
        try:
            await self.store.release_quota(user_id, month)
        except StoreUnavailable as exc:
            raise QuotaUnavailable("quota store is unreachable") from exc

    async def revoke_key(self, user_id: int, key_id: int) -> None:
        """Nothing to do: ``reserve`` reads the key's row in the same transaction as the count."""

    async def ping(self) -> None:
        await self.store.ping()

    async def close(self) -> None:
        """Nothing to close: the store is closed by its owner."""
