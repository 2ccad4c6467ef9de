"""Monthly quotas: one QuotaCounter interface, a Redis backend and a store-backed one."""

from __future__ import annotations

from service.quota.base import KeyRevoked, QuotaCounter, QuotaDecision, QuotaUnavailable
from service.settings import Settings
from service.store import AccountStore
from service.usage import UsageRecorder

__all__ = [
    "KeyRevoked",
    "QuotaCounter",
    "QuotaDecision",
    "QuotaUnavailable",
    "make_counter",
]


def make_counter(settings: Settings, store: AccountStore, recorder: UsageRecorder) -> QuotaCounter:
    """Redis when REDIS_URL is set; otherwise counters in the account store itself."""
    if settings.redis_url:
        from service.quota.redis_counter import RedisQuotaCounter

        return RedisQuotaCounter.from_url(
            settings.redis_url,
            store,
            settings.monthly_quota,
            settings.redis_key_prefix,
            pending_usage=recorder.pending,
        )
    from service.quota.store_counter import StoreQuotaCounter

    return StoreQuotaCounter(store, settings.monthly_quota)
