"""Side-by-side benchmark: naive baseline vs this pipeline in-process vs HTTP (vs Orthanc).

    python -m loadtests.bench                      # all cases, embedded store, 2 workers
    python -m loadtests.bench --repeat 3 --orthanc --json out/bench.json
    python -m loadtests.bench --smoke              # tiny inputs, 1 repetition: CI, no claims
    python -m loadtests.bench --cases 0002-png,ct-series-jpeg --no-http

Rows per case: ``baseline`` (pydicom + Pillow + json, in-process), ``pipeline in-process``
(``service.dicom.pipeline.read_file_answer``, the server's read path from the multipart body
on), ``http 1 client`` (sequential, one keep-alive connection),
``http N clients`` (N threads at once; speed from throughput), and ``orthanc`` (CT series with
``--orthanc``). ``x baseline`` is the baseline's median time over the row's (effective) time;
``bytes/base`` compares the total image bytes before base64. The ``small-ct-rate`` case sends
small uploads over 16 connections and reports latency percentiles, the server's CPU time per
request (CPU seconds of the worker processes, from psutil, over requests served) and the
p50/p99/max of every ``Server-Timing`` metric (``auth``, ``quota``, ``auth+quota``, ...); with
``--orthanc`` the same load generator drives Orthanc (upload + PNG of frame 0 per request).
That generator is Python and costs about a core itself; when ``wrk`` is on PATH the case also
drives both servers with ``wrk -t1 -c16`` for ``--wrk-seconds`` (``loadtests.wrk``; Orthanc's
rate counts upload + fetch pairs), and the CPU-per-request and rate-vs-Orthanc targets are
judged on the wrk numbers (without wrk: on the Python generator's, with a note). A further
wrk run with py-spy sampling the workers (``loadtests.spy``; ``--no-profile`` skips it) gives
the CPU that auth + quota cost each request, on which that target is judged.
With ``ct-series-png`` over HTTP, a separate one-worker server serves ``--probe-uploads``
sequential uploads while a thread GETs ``/health`` every 10 ms (event-loop responsiveness).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests import client, inputs, measure, orthanc, probe, rates, targets, wrk
from loadtests.inprocess import baseline_row, pipeline_row, row_from_seconds
from loadtests.inputs import BenchInput
from loadtests.rates import RATE_CASE, RateBudget
from loadtests.report import HTTP_ONE, ORTHANC, RateResult, Report, Row, text, write_json
from loadtests.server import Backend, BenchServer, Developer, register_developer


@dataclass(frozen=True)
class Case:
    """One input rendered to one format."""

    name: str
    input: str
    fmt: str


CASES = {
    case.name: case
    for case in (
        Case("0002-png", "0002", "png"),
        Case("0002-jpeg", "0002", "jpeg"),
        Case("0002-gif", "0002", "gif"),
        Case("ct-series-png", "ct-series", "png"),
        Case("ct-series-jpeg", "ct-series", "jpeg"),
        Case("small-ct-png", "small-ct", "png"),
    )
}
PROBE_CASE = "ct-series-png"
ALL_CASES = (*CASES, RATE_CASE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke",
        "--quick",
        action="store_true",
        help="tiny inputs, 1 repetition, short rate run: proves it runs only",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (default 3)")
    parser.add_argument(
        "--cases",
        nargs="*",
        default=None,
        metavar="CASE",
        help=f"cases to run, comma or space separated: {', '.join(ALL_CASES)}",
    )
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument(
        "--clients", type=int, default=None, help="concurrent HTTP clients (default: --workers)"
    )
    parser.add_argument("--no-http", action="store_true", help="in-process rows only")
    parser.add_argument("--backend", choices=("embedded", "postgres-redis"), default="embedded")
    parser.add_argument(
        "--orthanc",
        action="store_true",
        help="compare the CT series with Orthanc (Debian's orthanc package)",
    )
    parser.add_argument("--rate-connections", type=int, default=16)
    parser.add_argument("--rate-requests", type=int, default=3000)
    parser.add_argument("--rate-seconds", type=float, default=30.0)
    parser.add_argument(
        "--wrk-seconds", type=float, default=10.0, help="wrk run length per server (default 10)"
    )
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk runs")
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the py-spy-sampled wrk run that measures the CPU auth + quota cost",
    )
    parser.add_argument(
        "--probe-uploads",
        type=int,
        default=5,
        help=f"{PROBE_CASE} uploads while /health is probed on a 1-worker server (default 5)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    args.cases = _selected_cases(args.cases, parser)
    if args.smoke:
        args.repeat, args.rate_requests, args.rate_seconds = 1, 48, 10.0
        args.wrk_seconds = min(args.wrk_seconds, 2.0)
        args.probe_uploads = 1
    args.clients = args.clients or args.workers
    return args


def _selected_cases(raw: list[str] | None, parser: argparse.ArgumentParser) -> list[str]:
    names = [n for item in raw or [] for n in item.split(",") if n] or list(ALL_CASES)
    unknown = [name for name in names if name not in ALL_CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(ALL_CASES)}")
    return names


def load_inputs(names: set[str], smoke: bool, report: Report) -> dict[str, BenchInput]:
    """Build (or read) every input the selected cases need; smoke mode uses tiny ones."""
    found: dict[str, BenchInput] = {}
    if "0002" in names:
        sample = inputs.sample_0002()
        if sample is None:
            report.notes.append(f"{inputs.SAMPLE_0002} is absent: the 0002 cases are skipped")
        else:
            found["0002"] = sample
    if "ct-series" in names:
        found["ct-series"] = inputs.ct_series(4, 64) if smoke else inputs.ct_series()
    if "small-ct" in names:
        found["small-ct"] = inputs.small_ct(64 if smoke else 128)
    return found


def attempt(
    report: Report, label: str, measure_rows: Callable[..., Row | list[Row]], *args: object
) -> None:
    """Add the row(s) of ``measure_rows(*args)``; a failure is recorded and the run goes on."""
    try:
        rows = measure_rows(*args)
    except Exception as exc:  # a broken case must not hide every other measurement
        report.failures.append(f"{label}: {type(exc).__name__}: {exc}")
        progress(f"{label} FAILED: {type(exc).__name__}: {exc}")
        return
    report.rows.extend(rows if isinstance(rows, list) else [rows])


def in_process_rows(
    cases: list[Case], items: dict[str, BenchInput], args: argparse.Namespace, report: Report
) -> None:
    """Baseline and pipeline rows for every case, in this process."""
    import accel

    accel.warm_up()
    with ThreadPoolExecutor(2, thread_name_prefix="encode") as pool:
        for case in cases:
            name, item, fmt, repeat = case.name, items[case.input], case.fmt, args.repeat
            progress(f"{name}: baseline, pipeline in-process")
            attempt(report, f"{name} baseline", baseline_row, name, item, fmt, repeat)
            attempt(report, f"{name} pipeline", pipeline_row, name, item, fmt, repeat, pool)


def http_rows(
    case: Case, item: BenchInput, server: BenchServer, dev: Developer, args: argparse.Namespace
) -> list[Row]:
    """One sequential client, then ``args.clients`` concurrent clients."""
    upload = client.PreparedUpload.build(item, case.fmt)
    sampler = measure.RssSampler(server.worker_processes)
    progress(f"{case.name}: http, 1 client")
    with sampler.running():
        seconds, body = client.sequential(server.url, upload, dev.key_header(), args.repeat)
    out_bytes = client.image_bytes(body)[1]
    rows = [row_from_seconds(case.name, HTTP_ONE, item, seconds, out_bytes, sampler.peak_mb)]
    if args.clients > 1:
        progress(f"{case.name}: http, {args.clients} clients")
        with sampler.running():
            result = client.concurrent(
                server.url, upload, dev.key_header(), args.clients, args.repeat
            )
        if result.errors:
            raise RuntimeError(f"{case.name}: {len(result.errors)} failed: {result.errors[0]}")
        rows.append(concurrent_row(case.name, item, result, out_bytes, sampler.peak_mb, args))
    return rows


def concurrent_row(
    name: str,
    item: BenchInput,
    result: client.ConcurrentResult,
    out_bytes: int,
    rss_mb: float,
    args: argparse.Namespace,
) -> Row:
    """Median latency, with frames/s, MB/s and the speedup taken from the throughput."""
    served = len(result.latencies)
    effective = result.wall / served if served else 0.0
    return Row(
        case=name,
        mode=f"http {args.clients} clients",
        median_ms=measure.median(result.latencies) * 1e3,
        frames_per_s=item.frames / effective if effective else 0.0,
        mb_per_s=item.megabytes / effective if effective else 0.0,
        out_bytes=out_bytes,
        peak_rss_mb=rss_mb,
        runs=served,
        extra={"effective_ms": effective * 1e3, "wall_s": result.wall},
    )


def rate_budget(args: argparse.Namespace) -> RateBudget:
    """The rate run's connections and bounds from the command line."""
    return RateBudget(args.rate_connections, args.rate_requests, args.rate_seconds)


def run_http(
    cases: list[Case], items: dict[str, BenchInput], args: argparse.Namespace, report: Report
) -> None:
    """Start a server, register a developer, and measure every case over HTTP."""
    progress(f"starting dicom-api: {args.workers} workers, {args.backend} backend")
    server = BenchServer(workers=args.workers, backend=Backend(args.backend))
    try:
        with server:
            dev = register_developer(server.url)
            for case in cases:
                item = items[case.input]
                attempt(report, f"{case.name} http", http_rows, case, item, server, dev, args)
            if RATE_CASE in args.cases and "small-ct" in items:
                progress(f"{RATE_CASE}: warm-up, then up to {args.rate_requests} requests")
                report.rate = rates.dicom_api_rate(
                    server.url,
                    items["small-ct"],
                    dev.key_header(),
                    server.worker_processes,
                    rate_budget(args),
                    unloaded_requests=min(args.rate_requests, 300),
                )
                if use_wrk(args):
                    item = items["small-ct"]
                    attempt_rate(
                        report, "wrk_rate", "dicom-api", wrk_dicom_api, server, dev, item, args
                    )
                    if not args.no_profile:
                        attempt_rate(
                            report, "profiled_rate", "dicom-api, py-spy", wrk_dicom_api,
                            server, dev, item, args, True,
                        )  # fmt: skip
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        report.failures.append(f"HTTP rows stopped: {exc}\n{server.log()}")


def run_health_probe(item: BenchInput, args: argparse.Namespace, report: Report) -> None:
    """``/health`` latency during CT-series uploads, on a dedicated one-worker server.

    With several workers the probe could land on an idle worker and prove nothing; one worker
    makes the probe and the upload share an event loop.
    """
    progress(f"{PROBE_CASE}: /health probe on a 1-worker server, {args.probe_uploads} uploads")
    server = BenchServer(workers=1, backend=Backend(args.backend))
    try:
        with server:
            dev = register_developer(server.url)
            upload = client.PreparedUpload.build(item, "png")
            report.health = probe.health_during_uploads(
                server.url, upload, dev.key_header(), args.probe_uploads, PROBE_CASE
            )
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        report.failures.append(f"/health probe stopped: {exc}\n{server.log()}")


def run_orthanc(
    cases: list[Case], items: dict[str, BenchInput], args: argparse.Namespace, report: Report
) -> None:
    """Orthanc upload + rendered fetch for the CT-series cases and the small-CT request rate;
    a note when it cannot run."""
    chosen = [c for c in cases if c.input == "ct-series"]
    with_rate = RATE_CASE in args.cases and "small-ct" in items
    if not chosen and not with_rate:
        return
    binary = orthanc.find_binary()
    if binary is None:
        report.notes.append("Orthanc is not installed (apt-get install -y orthanc): no peer rows")
        return
    try:
        with orthanc.OrthancPeer(binary) as peer:
            for case in chosen:
                item = items[case.input]
                attempt(report, f"{case.name} orthanc", orthanc_row, case, item, peer, args)
            if with_rate:
                progress(f"{RATE_CASE}: orthanc, up to {args.rate_requests} requests")
                report.orthanc_rate = rates.orthanc_rate(peer, items["small-ct"], rate_budget(args))
                report.notes.append(
                    "Orthanc rate: every request re-uploads the same SOP instance; Orthanc stores "
                    "it once and then answers AlreadyStored (parsed, not rewritten): measured as is"
                )
                if use_wrk(args):
                    item = items["small-ct"]
                    attempt_rate(
                        report, "orthanc_wrk_rate", "Orthanc", wrk_orthanc, peer, item, args
                    )
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        report.notes.append(f"Orthanc could not run: {exc}")


def use_wrk(args: argparse.Namespace) -> bool:
    """Whether the rate case also runs under wrk (installed and not turned off)."""
    return not args.no_wrk and wrk.find_binary() is not None


def attempt_rate(
    report: Report, field: str, label: str, measure_rate: Callable[..., RateResult], *args: object
) -> None:
    """Set ``report.<field>`` to ``measure_rate(*args)``; a failure is recorded, not raised."""
    try:
        setattr(report, field, measure_rate(*args))
    except (RuntimeError, OSError, ValueError, httpx.HTTPError) as exc:
        report.failures.append(f"{RATE_CASE} wrk ({label}): {type(exc).__name__}: {exc}")
        progress(f"{RATE_CASE} wrk ({label}) FAILED: {exc}")


def wrk_dicom_api(
    server: BenchServer,
    dev: Developer,
    item: BenchInput,
    args: argparse.Namespace,
    profile: bool = False,
) -> RateResult:
    """dicom-api's small-CT rate with wrk as the load generator (sampled by py-spy when
    ``profile``: a separate run, so that the sampling does not touch the rate above)."""
    how = " with py-spy sampling the workers" if profile else ""
    progress(f"{RATE_CASE}: wrk -t1 -c{args.rate_connections} against dicom-api{how}")
    return wrk.dicom_api_rate(
        server.url,
        item,
        dev.key_header(),
        server.worker_processes,
        args.wrk_seconds,
        args.rate_connections,
        profile=profile,
    )


def wrk_orthanc(
    peer: orthanc.OrthancPeer, item: BenchInput, args: argparse.Namespace
) -> RateResult:
    """Orthanc's upload + rendered fetch pairs with wrk as the load generator."""
    progress(f"{RATE_CASE}: wrk -t1 -c{args.rate_connections} against Orthanc")
    return wrk.orthanc_rate(peer.url, item, peer.processes, args.wrk_seconds, args.rate_connections)


def orthanc_row(
    case: Case, item: BenchInput, peer: orthanc.OrthancPeer, args: argparse.Namespace
) -> Row:
    """Median of upload + all rendered frames (fetched over ``args.workers`` connections)."""
    progress(f"{case.name}: orthanc upload + rendered fetch")

    def once() -> None:
        instance = orthanc.upload_and_render(peer, item, case.fmt, args.workers)
        orthanc.delete_instance(peer, instance)

    once()  # warm-up
    seconds: list[float] = []
    sampler = measure.RssSampler(peer.processes)
    with sampler.running():
        for _ in range(args.repeat):
            spent, instance = measure.timed(
                lambda: orthanc.upload_and_render(peer, item, case.fmt, args.workers), 1
            )
            seconds += spent
            orthanc.delete_instance(peer, str(instance))
    return row_from_seconds(
        case.name, ORTHANC, item, seconds, peer.last_image_bytes, sampler.peak_mb
    )


def wrk_notes(args: argparse.Namespace, report: Report) -> None:
    """Say which generator the request-rate targets were judged on, and flag peer errors."""
    if args.no_wrk:
        report.notes.append("--no-wrk: the request-rate targets use the Python generator's runs")
    elif wrk.find_binary() is None:
        report.notes.append(
            "wrk is not on PATH (apt-get install -y wrk): the request-rate targets use the Python "
            "generator's runs, which keep about one core busy themselves (client-bound)"
        )
    elif report.wrk_rate is not None:
        report.notes.append(
            "wrk runs: the CPU-per-request and rate-vs-Orthanc targets use them; the Python "
            "generator's runs above give the Server-Timing percentiles"
        )
    peer = report.orthanc_wrk_rate
    if peer is not None and peer.errors:
        report.notes.append(
            f"Orthanc under wrk answered {peer.errors} of {peer.detail.get('wrk HTTP requests')} "
            "HTTP requests with an error status (in this project's runs Orthanc 1.10 logged "
            "'Error while accessing the filesystem' 500s under concurrent re-uploads of one "
            "instance): counted as errors, not retried"
        )


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and print the table (and write JSON when asked)."""
    args = parse_args(argv)
    report = Report(settings={k: str(v) for k, v in vars(args).items()})
    needed = {CASES[n].input for n in args.cases if n in CASES}
    with_rate = RATE_CASE in args.cases and (args.orthanc or not args.no_http)
    needed |= {"small-ct"} if with_rate else set()
    items = load_inputs(needed, args.smoke, report)
    cases = [CASES[n] for n in args.cases if n in CASES and CASES[n].input in items]
    in_process_rows(cases, items, args, report)
    if not args.no_http:
        run_http(cases, items, args, report)
        if PROBE_CASE in [case.name for case in cases]:
            run_health_probe(items["ct-series"], args, report)
    if args.orthanc:
        run_orthanc(cases, items, args, report)
    if with_rate and "small-ct" in items:
        wrk_notes(args, report)
    report.rows.sort(key=lambda row: list(CASES).index(row.case))
    report.add_ratios()
    if args.smoke:
        report.notes.append("smoke run: tiny inputs, one repetition: no timing claims, no targets")
    else:
        report.targets = targets.evaluate(report)
    print(text(report))
    if args.json:
        write_json(report, args.json)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
