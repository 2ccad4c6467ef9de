"""Tuning sweep for the operator guide: server workers x ``DICOM_API_RENDER_THREADS``.

    python -m loadtests.tune                       # workers 1,2,4 x threads 1,2 (a few minutes)
    python -m loadtests.tune --quick               # fewer requests per configuration
    python -m loadtests.tune --smoke               # 1 worker x 1 thread, tiny inputs: CI only
    python -m loadtests.tune --workers 2 --threads 1 2 --json out/tune.json

Every configuration gets its own server (embedded store) and developer, then:

(a) the small 128x128 CT as PNG over 16 connections (the bench's ``small-ct-rate``): req/s,
    p50/p99 latency, server CPU per request and the p99 of Server-Timing auth+quota;
(b) ``0002.DCM`` as PNG from 4 concurrent clients: requests/s from the wall time;
(c) the 200-frame CT series as PNG from one client: median latency, and the peak RSS of any
    one worker meanwhile.

Numbers are for this machine only (see ``nproc`` in the JSON); rerun on the target host.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from loadtests import client, inputs, measure, rates
from loadtests.inputs import BenchInput
from loadtests.rates import RateBudget
from loadtests.report import machine_facts, markdown_table, num
from loadtests.server import BenchServer, register_developer

LARGE_CLIENTS = 4


@dataclass(frozen=True)
class Load:
    """Requests per configuration: rate run, per large-file client, CT-series repetitions."""

    rate_requests: int
    large_per_client: int
    ct_repeat: int


LOADS = {
    "full": Load(rate_requests=6000, large_per_client=12, ct_repeat=8),
    "quick": Load(rate_requests=600, large_per_client=2, ct_repeat=2),
    "smoke": Load(rate_requests=32, large_per_client=1, ct_repeat=1),
}


@dataclass(frozen=True)
class Uploads:
    """The three prepared request bodies (``large`` is None without ``0002.DCM``)."""

    small: BenchInput
    large: client.PreparedUpload | None
    ct: client.PreparedUpload

    @classmethod
    def build(cls, smoke: bool) -> Uploads:
        """Generate the CT inputs (tiny in smoke mode) and read the shared sample."""
        sample = inputs.sample_0002()
        series = inputs.ct_series(4, 64) if smoke else inputs.ct_series()
        return cls(
            small=inputs.small_ct(64 if smoke else 128),
            large=client.PreparedUpload.build(sample, "png") if sample else None,
            ct=client.PreparedUpload.build(series, "png"),
        )


@dataclass
class TuneRow:
    """What one (workers, render threads) configuration measured."""

    workers: int
    render_threads: int
    rate_req_per_s: float = 0.0
    rate_p50_ms: float = 0.0
    rate_p99_ms: float = 0.0
    cpu_ms_per_request: float = 0.0
    large_req_per_s: float | None = None
    ct_median_ms: float = 0.0
    ct_peak_rss_mb: float = 0.0
    errors: int = 0
    failure: str = ""
    auth_quota_p99_ms: float | None = None


def measure_config(workers: int, threads: int, uploads: Uploads, load: Load) -> TuneRow:
    """Start one server and run (a), (b) and (c) against it."""
    row = TuneRow(workers, threads)
    settings = {"DICOM_API_RENDER_THREADS": str(threads)}
    with BenchServer(workers=workers, settings=settings) as server:
        auth = register_developer(server.url).key_header()
        progress(f"{workers}w x {threads}t: small-CT rate, {load.rate_requests} requests")
        budget = RateBudget(16, load.rate_requests, 60.0)
        rate = rates.dicom_api_rate(
            server.url, uploads.small, auth, server.worker_processes, budget
        )
        row.rate_req_per_s = rate.requests_per_s
        row.rate_p50_ms, row.rate_p99_ms = rate.p50_ms, rate.p99_ms
        row.cpu_ms_per_request = rate.server_cpu_ms_per_request
        row.auth_quota_p99_ms = rate.server_timing.get("auth+quota", {}).get("p99")
        row.errors = rate.errors
        if uploads.large is not None:
            progress(f"{workers}w x {threads}t: 0002 png, {LARGE_CLIENTS} clients")
            large = client.concurrent(
                server.url, uploads.large, auth, LARGE_CLIENTS, load.large_per_client
            )
            row.errors += len(large.errors)
            row.large_req_per_s = len(large.latencies) / large.wall if large.wall else 0.0
        progress(f"{workers}w x {threads}t: CT series png, 1 client")
        sampler = measure.RssSampler(server.worker_processes)
        with sampler.running():
            seconds, _ = client.sequential(server.url, uploads.ct, auth, load.ct_repeat)
        row.ct_median_ms, row.ct_peak_rss_mb = measure.median(seconds) * 1e3, sampler.peak_mb
    return row


COLUMNS = (
    ("workers", ">"),
    ("render threads", ">"),
    ("small-CT req/s (16 conn)", ">"),
    ("p50 ms", ">"),
    ("p99 ms", ">"),
    ("server CPU ms/req", ">"),
    ("auth+quota p99 ms", ">"),
    (f"0002 png req/s ({LARGE_CLIENTS} clients)", ">"),
    ("CT series png ms (1 client)", ">"),
    ("peak worker RSS MB", ">"),
    ("errors", ">"),
)


def tune_table(rows: list[TuneRow]) -> str:
    """One Markdown table, a row per configuration (failed ones say so)."""
    lines = []
    for r in rows:
        if r.failure:
            cells = ["FAILED"] * 9 + [r.failure[:60]]
        else:
            cells = [
                num(r.rate_req_per_s, 0),
                num(r.rate_p50_ms, 2),
                num(r.rate_p99_ms, 2),
                num(r.cpu_ms_per_request, 3),
                num(r.auth_quota_p99_ms, 3),
                num(r.large_req_per_s, 2),
                num(r.ct_median_ms, 0),
                num(r.ct_peak_rss_mb, 0),
                str(r.errors),
            ]
        lines.append([str(r.workers), str(r.render_threads), *cells])
    return markdown_table(COLUMNS, lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.tune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer requests per configuration")
    size.add_argument("--smoke", action="store_true", help="1x1, tiny inputs: proves it runs")
    parser.add_argument("--workers", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--threads", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    args.load = "smoke" if args.smoke else "quick" if args.quick else "full"
    args.workers = args.workers or ([1] if args.smoke else [1, 2, 4])
    args.threads = args.threads or ([1] if args.smoke else [1, 2])
    return args


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the table."""
    print(f"[tune] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Sweep the configurations, print the table, optionally write JSON."""
    args = parse_args(argv)
    load = LOADS[args.load]
    progress("building inputs")
    uploads = Uploads.build(args.smoke)
    notes = [] if uploads.large else [f"{inputs.SAMPLE_0002} is absent: no 0002 column"]
    rows: list[TuneRow] = []
    for workers in args.workers:
        for threads in args.threads:
            try:
                rows.append(measure_config(workers, threads, uploads, load))
            except (RuntimeError, OSError, httpx.HTTPError) as exc:
                progress(f"{workers}w x {threads}t FAILED: {exc}")
                rows.append(TuneRow(workers, threads, failure=f"{type(exc).__name__}: {exc}"))
    facts = machine_facts()
    print(f"tuning sweep ({args.load}; {facts['nproc']} CPUs, {facts['cpu_model']})\n")
    print(tune_table(rows))
    for note in notes:
        print(f"\nnote: {note}")
    if args.json:
        payload = {"machine": facts, "load": asdict(load), "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps({**payload, "notes": notes}, indent=2) + "\n")
    return 1 if any(r.failure for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
