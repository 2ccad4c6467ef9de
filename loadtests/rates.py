"""Request-rate runs: the same async load generator against dicom-api or Orthanc.

Each run warms up (two requests per connection), then sends a bounded number of requests while
sampling the server's worker RSS, and charges the CPU seconds of the server processes (and of
this load-generating process) to the requests served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import psutil

from loadtests import client, measure, orthanc
from loadtests.inputs import BenchInput
from loadtests.report import UNLOADED, RateResult

RATE_CASE = "small-ct-rate"


@dataclass(frozen=True)
class RateBudget:
    """How hard and how long to drive a server."""

    connections: int = 16
    requests: int = 3000
    seconds: float = 30.0


def measure_rate(
    base_url: str,
    send: client.RateRequest,
    processes: Callable[[], list[psutil.Process]],
    budget: RateBudget,
    server: str,
    after_warm_up: Callable[[], None] | None = None,
) -> RateResult:
    """Warm up, call ``after_warm_up``, then one timed run of ``send``.

    ``processes`` lists the server's processes (for CPU and RSS).
    """
    warm = 2 * budget.connections
    client.drive(base_url, send, budget.connections, warm, budget.seconds)
    if after_warm_up is not None:
        after_warm_up()
    served_by = processes()
    sampler = measure.RssSampler(processes)
    server_before = measure.cpu_seconds(served_by)
    client_before = measure.cpu_seconds(measure.self_process())
    with sampler.running():
        result = client.drive(base_url, send, budget.connections, budget.requests, budget.seconds)
    server_cpu = measure.cpu_seconds(served_by) - server_before
    client_cpu = measure.cpu_seconds(measure.self_process()) - client_before
    served = len(result.latencies)
    per_request = 1e3 / served if served else 0.0
    return RateResult(
        case=RATE_CASE,
        server=server,
        connections=budget.connections,
        requests=served,
        errors=result.errors,
        wall_s=result.wall,
        requests_per_s=served / result.wall if result.wall else 0.0,
        p50_ms=measure.percentile(result.latencies, 50) * 1e3,
        p99_ms=measure.percentile(result.latencies, 99) * 1e3,
        server_cpu_ms_per_request=server_cpu * per_request,
        client_cpu_ms_per_request=client_cpu * per_request,
        client_core_share=client_cpu / result.wall if result.wall else 0.0,
        peak_rss_mb=sampler.peak_mb,
        timed_responses=len(result.timings),
        server_timing=measure.summarize_server_timing(result.timings),
    )


def dicom_api_rate(
    base_url: str,
    item: BenchInput,
    auth: dict[str, str],
    processes: Callable[[], list[psutil.Process]],
    budget: RateBudget,
    unloaded_requests: int = 0,
) -> RateResult:
    """``POST /api/dicom/read/file/`` of ``item`` as PNG; Server-Timing parsed per response.

    With ``unloaded_requests``, as many more go over a single connection afterwards: their
    auth/quota durations, without 15 other requests sharing the event loop, land in ``detail``.
    """
    send = client.read_file_request(client.PreparedUpload.build(item, "png"), auth)
    result = measure_rate(base_url, send, processes, budget, "dicom-api")
    if unloaded_requests:
        alone = client.drive(base_url, send, 1, unloaded_requests, budget.seconds)
        spreads = measure.summarize_server_timing(alone.timings)
        result.detail[UNLOADED] = {
            name: spreads[name] for name in ("auth", "quota", "auth+quota") if name in spreads
        }
    return result


def orthanc_rate(peer: orthanc.OrthancPeer, item: BenchInput, budget: RateBudget) -> RateResult:
    """Orthanc upload + PNG of frame 0 per request; store statuses of the timed run in detail."""
    send = orthanc.RateRequest(item)
    name = "orthanc: POST /instances + GET /instances/{id}/frames/0/rendered (image/png)"
    result = measure_rate(peer.url, send, peer.processes, budget, name, send.statuses.clear)
    result.detail["orthanc store statuses (timed run)"] = dict(send.statuses)
    return result
