"""Event-loop responsiveness: ``GET /health`` every ~10 ms while large uploads are served.

The probe runs in a thread of the benchmark process on its own keep-alive connection. It is
meant for a one-worker server, where the probe and the upload share the worker's event loop:
a handler that blocks the loop (parsing or rendering on it instead of in the thread pool)
shows up as a /health latency as long as the block. Each probe waits for its answer, so one
blocked stretch is one long sample, not many queued ones.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from loadtests import client, measure
from loadtests.report import ProbeResult

INTERVAL_S = 0.010


@dataclass
class HealthProbe:
    """Samples ``GET /health`` latency in a background thread (see the module docstring)."""

    base_url: str
    interval: float = INTERVAL_S
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _get(self, conn: client.Connection) -> None:
        start = time.perf_counter()
        try:
            status, _ = conn.request("GET", "/health")
        except (OSError, http.client.HTTPException):
            self.errors += 1
            return
        if status == 200:
            self.latencies.append(time.perf_counter() - start)
        else:
            self.errors += 1

    def _run(self, ready: threading.Event) -> None:
        with client.Connection(self.base_url) as conn:
            conn.request("GET", "/health")  # open the connection before sampling starts
            ready.set()
            while True:  # at least one sample, however short the block
                started = time.perf_counter()
                self._get(conn)
                if self._stop.wait(max(0.0, self.interval - (time.perf_counter() - started))):
                    return

    @contextmanager
    def running(self) -> Iterator[HealthProbe]:
        """Probe for the duration of the ``with`` block (sampling has begun when it is entered)."""
        ready = threading.Event()
        self._stop.clear()
        thread = threading.Thread(target=self._run, args=(ready,), name="health-probe")
        thread.start()
        try:
            if not ready.wait(30.0):
                raise RuntimeError("the /health probe could not connect")
            yield self
        finally:
            self._stop.set()
            thread.join()


def health_during_uploads(
    base_url: str,
    upload: client.PreparedUpload,
    auth: dict[str, str],
    uploads: int,
    case: str,
    workers: int = 1,
) -> ProbeResult:
    """One untimed upload, then ``uploads`` sequential ones while probing ``/health``."""
    with client.Connection(base_url) as conn:
        client.post_upload(conn, upload, auth)
        probe = HealthProbe(base_url)
        with probe.running():
            seconds, _ = measure.timed(lambda: client.post_upload(conn, upload, auth), uploads)
    spread = measure.spread_ms(probe.latencies)
    return ProbeResult(
        case=case,
        workers=workers,
        interval_ms=probe.interval * 1e3,
        uploads=uploads,
        upload_median_ms=measure.median(seconds) * 1e3,
        probes=len(probe.latencies),
        errors=probe.errors,
        p50_ms=spread["p50"],
        p99_ms=spread["p99"],
        max_ms=spread["max"],
    )
