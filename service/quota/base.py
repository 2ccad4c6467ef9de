"""The QuotaCounter interface and the decision it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class QuotaUnavailable(Exception):
    """The quota backend cannot be reached; the request must not be served unmetered."""


class KeyRevoked(Exception):
    """The API key making the request was deleted (checked atomically with the count)."""


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    """Outcome of one atomic check-and-count for a developer's month."""

    granted: bool
    used: int  # units counted this month after this decision (reservations included)
    limit: int
    month: str
    resets_in: int  # seconds until the next month starts

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def headers(self) -> dict[str, str]:
        """RateLimit-* headers (IETF draft) describing the monthly window."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.resets_in),
        }


class QuotaCounter(Protocol):
    """Counts a developer's requests per calendar month, atomically across workers and hosts.

    The same atomic step confirms that the API key making the request has not been deleted,
    which lets workers cache verified keys: ``revoke_key`` runs before a key is deleted.
    """

    limit: int

    async def reserve(self, user_id: int, key_id: int, now: datetime) -> QuotaDecision: ...
    async def release(self, user_id: int, month: str) -> None: ...
    async def revoke_key(self, user_id: int, key_id: int) -> None: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
