"""The service's one source of the current time.

Everything that reads the calendar (quota months, usage days, token expiry, stored timestamps,
Redis expiries) asks the ``Clock`` held in the app context, never ``datetime.now`` directly, so
a test can put the whole server at any instant: the last second of a month, a leap day.
Intervals (timeouts, cache ages) use ``time.monotonic`` and are not the clock's business.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from service.settings import Settings, SettingsError


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time: what production runs on."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until moved (for tests in the same process)."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _aware(at)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class FileClock:
    """A clock that reads the instant from a file (``DICOM_API_CLOCK_FILE``), for tests and
    drills that drive a running server through a month end; never set in production.

    The file holds one ISO 8601 instant (``2026-12-31T23:59:59Z``) and is read at every call
    (a few microseconds), so a test that rewrites it moves every worker of a server at once.
    Replace it atomically (write another file, then rename it over this one).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.now()  # an unreadable or malformed file is an error at start-up, not per request

    def now(self) -> datetime:
        return parse_instant(self.path.read_text())


def make_clock(settings: Settings) -> Clock:
    """The system clock, or the file clock that ``DICOM_API_CLOCK_FILE`` names (tests only)."""
    if settings.clock_file is None:
        return SystemClock()
    try:
        return FileClock(settings.clock_file)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"DICOM_API_CLOCK_FILE {settings.clock_file}: {exc}") from None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with a zone (``Z`` or an offset), as an aware UTC datetime."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        raise ValueError(f"{text.strip()!r} has no time zone; end it with Z or an offset")
    return value.astimezone(UTC)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("clock times must be timezone-aware")
    return at.astimezone(UTC)
