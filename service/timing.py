"""``Server-Timing`` (W3C) for the DICOM endpoint: where a request's time went, server-side."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class ServerTiming:
    """Named durations of one request, rendered as a ``Server-Timing`` header value."""

    def __init__(self, **seconds: float) -> None:
        self.seconds: dict[str, float] = dict(seconds)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Time the block and record it under ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - started

    def header(self) -> str:
        """e.g. ``auth;dur=0.21, quota;dur=0.18, render;dur=41.50`` (milliseconds)."""
        return ", ".join(f"{name};dur={value * 1000:.2f}" for name, value in self.seconds.items())
