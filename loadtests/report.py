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
CLIENT_BOUND_SHARE = 0.9
UNLOADED = "Server-Timing ms p50/p99/max at 1 connection"


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
    """The small-CT request-rate case against one server (dicom-api or Orthanc).

    ``server_timing`` holds p50/p99/max (ms) per ``Server-Timing`` metric over every response
    that carried the header (``timed_responses`` of them), plus ``auth+quota`` per response.
    ``client_cpu_ms_per_request`` is the load generator's own CPU (same machine, same cores);
    the generator is one asyncio thread, so a ``client_core_share`` near 1.0 means the rate was
    capped by the client, not the server (see :meth:`client_bound`).
    """

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
    server: str = "dicom-api"
    client_cpu_ms_per_request: float = 0.0
    client_core_share: float = 0.0  # load-generator CPU seconds per wall second
    timed_responses: int = 0
    server_timing: dict[str, dict[str, float]] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def client_bound(self) -> bool:
        """Whether the single-threaded load generator kept one core (nearly) busy."""
        return self.client_core_share >= CLIENT_BOUND_SHARE


@dataclass
class ProbeResult:
    """``GET /health`` latencies sampled while large uploads run on a one-worker server."""

    case: str
    workers: int
    interval_ms: float
    uploads: int
    upload_median_ms: float
    probes: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float


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
    orthanc_rate: RateResult | None = None
    wrk_rate: RateResult | None = None  # dicom-api driven by wrk (see loadtests.wrk)
    orthanc_wrk_rate: RateResult | None = None  # Orthanc upload + fetch pairs driven by wrk
    profiled_rate: RateResult | None = None  # dicom-api under wrk with py-spy (loadtests.spy)
    health: ProbeResult | None = None
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def find(self, case: str, mode: str) -> Row | None:
        """The row of ``case`` measured in ``mode``, if any."""
        return next((r for r in self.rows if r.case == case and r.mode == mode), None)

    def rate_ratio(self) -> float | None:
        """dicom-api's small-CT request rate over Orthanc's, when both were measured."""
        return _ratio(self.rate, self.orthanc_rate)

    def wrk_rate_ratio(self) -> float | None:
        """The same ratio with both servers driven by wrk, when both were measured."""
        return _ratio(self.wrk_rate, self.orthanc_wrk_rate)

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


def _ratio(ours: RateResult | None, peer: RateResult | None) -> float | None:
    if ours is None or peer is None or peer.requests_per_s <= 0:
        return None
    return ours.requests_per_s / peer.requests_per_s


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


def num(value: float | None, digits: int = 1) -> str:
    """A number with thousands separators, or ``-`` for None."""
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
        num(row.median_ms, 2),
        num(row.frames_per_s),
        num(row.mb_per_s),
        f"{row.out_bytes:,}",
        num(row.peak_rss_mb, 0),
        num(row.speedup, 2),
        num(row.bytes_ratio, 2),
    ]


def markdown_table(columns: tuple[tuple[str, str], ...], lines: list[list[str]]) -> str:
    """A fixed-width Markdown table; ``columns`` holds (header, ``"<"`` or ``">"`` alignment)."""
    cells = [[name for name, _ in columns], *lines]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]

    def render(line: list[str]) -> str:
        parts = [
            cell.ljust(width) if align == "<" else cell.rjust(width)
            for cell, width, (_, align) in zip(line, widths, columns, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == ">" else "-" * (w + 2)
            for w, (_, a) in zip(widths, columns, strict=True)
        )
        + "|"
    )
    return "\n".join([render(cells[0]), rule, *(render(line) for line in cells[1:])])


def table(rows: list[Row]) -> str:
    """A fixed-width text table (also valid Markdown) of the rows."""
    return markdown_table(COLUMNS, [_cells(row) for row in rows])


def rate_lines(r: RateResult) -> list[str]:
    """The request-rate summary of one server, with its Server-Timing breakdown if any."""
    lines = [
        f"request rate {r.case} ({r.server}): {r.requests} requests over {r.connections} "
        f"connections in {r.wall_s:.2f} s = {r.requests_per_s:,.0f} req/s, p50 {r.p50_ms:.2f} ms, "
        f"p99 {r.p99_ms:.2f} ms, server CPU {r.server_cpu_ms_per_request:.3f} ms/request, "
        f"client CPU {r.client_cpu_ms_per_request:.3f} ms/request, errors {r.errors}, "
        f"peak server RSS {r.peak_rss_mb:.0f} MB"
    ]
    if r.client_bound():
        lines.append(
            f"  load generator busy {r.client_core_share:.0%} of a core: client-bound, the "
            "server's true rate is higher than this"
        )
    if r.server_timing:
        lines.append(
            f"  Server-Timing ms p50/p99/max over {r.timed_responses} responses: "
            + _spans(r.server_timing)
        )
    lines.extend(f"  {key}: {_detail(value)}" for key, value in r.detail.items())
    return lines


def _spans(spreads: dict[str, dict[str, float]]) -> str:
    """``auth 0.100/0.500/0.700, quota ...``: p50/p99/max per metric, in ms."""
    return ", ".join(
        f"{name} {v['p50']:.3f}/{v['p99']:.3f}/{v['max']:.3f}" for name, v in spreads.items()
    )


def _detail(value: Any) -> str:
    """A detail value: p50/p99/max spreads compactly, anything else as is."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return _spans(value)
    return str(value)


def probe_line(h: ProbeResult) -> str:
    """The event-loop responsiveness summary."""
    return (
        f"GET /health every {h.interval_ms:g} ms during {h.case} 'http 1 client' "
        f"({h.uploads} uploads, median {h.upload_median_ms:.0f} ms, {h.workers}-worker server): "
        f"{h.probes} probes, p50 {h.p50_ms:.2f} ms, p99 {h.p99_ms:.2f} ms, "
        f"max {h.max_ms:.2f} ms, errors {h.errors}"
    )


def text(report: Report) -> str:
    """The whole human-readable report."""
    out = [table(report.rows)]
    for rate in (report.rate, report.orthanc_rate):
        if rate is not None:
            out.append("")
            out.extend(rate_lines(rate))
    ratio = report.rate_ratio()
    if ratio is not None:
        out.append(f"  dicom-api / Orthanc request rate: {ratio:.2f}x")
    for rate in (report.wrk_rate, report.orthanc_wrk_rate):
        if rate is not None:
            out.append("")
            out.extend(rate_lines(rate))
    if report.profiled_rate is not None:
        out.append("")
        out.extend(rate_lines(report.profiled_rate))
    ratio = report.wrk_rate_ratio()
    if ratio is not None:
        out.append(f"  dicom-api / Orthanc request rate (both driven by wrk): {ratio:.2f}x")
    if report.health is not None:
        out.append("\n" + probe_line(report.health))
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
