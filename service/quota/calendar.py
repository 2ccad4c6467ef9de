"""Calendar-month arithmetic for quotas: months are UTC calendar months."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def month_key(now: datetime) -> str:
    """The month a moment belongs to, as ``YYYY-MM`` (UTC)."""
    return now.astimezone(UTC).strftime("%Y-%m")


def month_start(now: datetime) -> date:
    """The first day of the moment's month (UTC)."""
    return now.astimezone(UTC).date().replace(day=1)


def next_month_start(now: datetime) -> datetime:
    """Midnight UTC at the start of the following month: when the quota resets."""
    first = month_start(now)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(following.year, following.month, 1, tzinfo=UTC)


def seconds_until_reset(now: datetime) -> int:
    """Whole seconds (at least 1) from ``now`` to the next month's start."""
    return max(1, int((next_month_start(now) - now).total_seconds() + 0.999))
