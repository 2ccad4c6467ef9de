"""A per-worker cache of verified API keys, so that authenticating costs no database query.

A cached key may have been deleted since: the quota step that follows authentication checks the
key atomically with the count (``QuotaCounter.reserve``), so a deleted key is still refused at
once on every worker; entries also expire after ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from service.store import ApiKeyRecord


class ApiKeyCache:
    """Least-recently-used map of key prefix -> stored record, with a time to live."""

    def __init__(self, max_entries: int = 10_000, ttl: float = 300.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[ApiKeyRecord, float]] = OrderedDict()

    def get(self, prefix: str) -> ApiKeyRecord | None:
        """The cached record, if present and fresh."""
        entry = self._entries.get(prefix)
        if entry is None:
            return None
        record, expires = entry
        if expires < time.monotonic():
            del self._entries[prefix]
            return None
        self._entries.move_to_end(prefix)
        return record

    def put(self, record: ApiKeyRecord) -> None:
        """Remember a record whose secret was just verified against the database."""
        self._entries[record.prefix] = (record, time.monotonic() + self.ttl)
        self._entries.move_to_end(record.prefix)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, prefix: str) -> None:
        """Forget a key (deleted, or found revoked)."""
        self._entries.pop(prefix, None)
