"""Measurement primitives: timers, percentiles, Server-Timing parsing, and an RSS sampler."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

import psutil

MB = 1e6
T = TypeVar("T")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: list[float]) -> float:
    """The median, 0.0 for no values."""
    return statistics.median(values) if values else 0.0


def spread_ms(values_s: list[float]) -> dict[str, float]:
    """p50, p99 and max of durations in seconds, as milliseconds (all 0.0 for no values)."""
    return {
        "p50": percentile(values_s, 50) * 1e3,
        "p99": percentile(values_s, 99) * 1e3,
        "max": max(values_s, default=0.0) * 1e3,
    }


def parse_server_timing(header: str) -> dict[str, float]:
    """``auth;dur=0.21, quota;dur=0.18`` -> ``{"auth": 0.21, "quota": 0.18}`` (milliseconds).

    Metrics without a ``dur`` parameter, and unparsable durations, are left out.
    """
    found: dict[str, float] = {}
    for metric in header.split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if name and key.strip().lower() == "dur":
                with suppress(ValueError):
                    found[name] = float(value.strip().strip('"'))
    return found


def summarize_server_timing(
    timings: list[dict[str, float]], combined: tuple[str, ...] = ("auth", "quota")
) -> dict[str, dict[str, float]]:
    """p50/p99/max (ms) per metric over every response, plus the per-response sum of
    ``combined`` (``auth+quota``) for the responses that carry all of them."""
    names = list(dict.fromkeys(name for timing in timings for name in timing))
    summary = {name: spread_ms([t[name] / 1e3 for t in timings if name in t]) for name in names}
    sums = [sum(t[n] for n in combined) / 1e3 for t in timings if all(n in t for n in combined)]
    if sums:
        summary["+".join(combined)] = spread_ms(sums)
    return summary


def timed(function: Callable[[], T], repeat: int) -> tuple[list[float], T | None]:
    """Call ``function`` ``repeat`` times; returns (seconds per call, the last result, None when
    ``repeat`` is 0)."""
    seconds: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds consumed so far by these processes (gone ones count 0)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


@dataclass
class RssSampler:
    """Samples the resident set size of some processes every ``interval`` seconds.

    ``processes`` is a callable so that a server's worker list is re-read while sampling, but
    only every ``refresh`` seconds: listing a process tree scans all of /proc (about 2 ms of
    CPU, a core's 10% at a 20 ms interval, taken from the server being measured), where one
    RSS reading costs about 12 us. The result is the peak RSS seen per process id.
    """

    processes: Callable[[], list[psutil.Process]]
    interval: float = 0.02
    refresh: float = 1.0
    peaks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _known: list[psutil.Process] = field(default_factory=list)
    _listed_at: float = -math.inf

    def sample(self) -> None:
        """Record one sample of every process."""
        if time.monotonic() - self._listed_at >= self.refresh:
            self._known = self.processes()
            self._listed_at = time.monotonic()
        for process in self._known:
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        """Sample in a daemon thread for the duration of the ``with`` block."""
        self.peaks.clear()
        self._listed_at = -math.inf
        self._stop.clear()
        self.sample()
        thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.sample()

    @property
    def peak_mb(self) -> float:
        """The largest peak RSS of any one sampled process, in MB."""
        return max(self.peaks.values(), default=0) / MB


def self_process() -> list[psutil.Process]:
    """This benchmark process, for the in-process rows."""
    return [psutil.Process()]
