"""Benchmark results: rows, ratios against the baseline, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BASELINE = "baseline"
HTTP_ONE = "http 1 client"
ORTHANC = "orthanc"


@dataclass
class Row:
    """One measured (case, mode): medians over the timed repetitions.

    For concurrent modes ``median_ms`` is the median latency, while ``frames_per_s``,
    ``mb_per_s`` and ``speedup`` come from the throughput (wall time / requests served).
    """

    case: str
    mode: str
    median_ms: float
    frames_per_s: float
    mb_per_s: float
    out_bytes: int
    peak_rss_mb: float
    runs: int
    speedup: float | None = None
    bytes_ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RateResult:
    """The small-CT request-rate case."""

    case: str
    connections: int
    requests: int
    errors: int
    wall_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float
    peak_rss_mb: float


@dataclass
class Target:
    """One of the issue's targets, with the measured value and whether it is met."""

    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass
class Report:
    """Everything one benchmark run measured."""

    rows: list[Row] = field(default_factory=list)
    rate: RateResult | None = None
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def find(self, case: str, mode: str) -> Row | None:
        """The row of ``case`` measured in ``mode``, if any."""
        return next((r for r in self.rows if r.case == case and r.mode == mode), None)

    def add_ratios(self) -> None:
        """Fill ``speedup`` and ``bytes_ratio`` of every row against its case's baseline."""
        for row in self.rows:
            base = self.find(row.case, BASELINE)
            if base is None:
                continue
            effective_ms = row.extra.get("effective_ms", row.median_ms)
            if effective_ms > 0:
                row.speedup = base.median_ms / effective_ms
            if base.out_bytes > 0:
                row.bytes_ratio = row.out_bytes / base.out_bytes


def machine_facts() -> dict[str, Any]:
    """CPU count and model, Python and OS: the context every number needs."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


COLUMNS = (
    ("case", "<"),
    ("mode", "<"),
    ("median ms", ">"),
    ("frames/s", ">"),
    ("MB/s in", ">"),
    ("out bytes", ">"),
    ("peak RSS MB", ">"),
    ("x baseline", ">"),
    ("bytes/base", ">"),
)


def _cells(row: Row) -> list[str]:
    return [
        row.case,
        row.mode,
        _num(row.median_ms, 2),
        _num(row.frames_per_s),
        _num(row.mb_per_s),
        f"{row.out_bytes:,}",
        _num(row.peak_rss_mb, 0),
        _num(row.speedup, 2),
        _num(row.bytes_ratio, 2),
    ]


def table(rows: list[Row]) -> str:
    """A fixed-width text table (also valid Markdown) of the rows."""
    lines = [[name for name, _ in COLUMNS], *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]

    def render(cells: list[str]) -> str:
        parts = [
            cell.ljust(width) if align == "<" else cell.rjust(width)
            for cell, width, (_, align) in zip(cells, widths, COLUMNS, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == ">" else "-" * (w + 2)
            for w, (_, a) in zip(widths, COLUMNS, strict=True)
        )
        + "|"
    )
    return "\n".join([render(lines[0]), rule, *(render(cells) for cells in lines[1:])])


def text(report: Report) -> str:
    """The whole human-readable report."""
    out = [table(report.rows)]
    if report.rate is not None:
        r = report.rate
        out.append(
            f"\nrequest rate {r.case}: {r.requests} requests over {r.connections} connections "
            f"in {r.wall_s:.2f} s = {r.requests_per_s:,.0f} req/s, p50 {r.p50_ms:.2f} ms, "
            f"p99 {r.p99_ms:.2f} ms, server CPU {r.server_cpu_ms_per_request:.3f} ms/request, "
            f"errors {r.errors}, peak worker RSS {r.peak_rss_mb:.0f} MB"
        )
    if report.targets:
        out.append("\ntargets:")
        for t in report.targets:
            verdict = {True: "MET", False: "NOT MET", None: "not measured"}[t.met]
            out.append(f"  {t.name}: want {t.wanted}; measured {t.measured} -> {verdict}")
    if report.notes:
        out.append("\nnotes:")
        out.extend(f"  - {note}" for note in report.notes)
    if report.failures:
        out.append("\nFAILED:")
        out.extend(f"  - {failure}" for failure in report.failures)
    return "\n".join(out)


def write_json(report: Report, path: Path) -> None:
    """Save the report (with machine facts) as JSON."""
    payload = {"machine": machine_facts(), **asdict(report)}
    path.write_text(json.dumps(payload, indent=2) + "\n")
