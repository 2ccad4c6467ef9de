"""The issue's performance targets, checked against a report (over HTTP, one client)."""

from __future__ import annotations

from loadtests.report import HTTP_ONE, ORTHANC, UNLOADED, Report, Target
from loadtests.wrk import AUTH_QUOTA_CPU

# (case, minimum speedup vs baseline, maximum image bytes vs baseline or None)
BASELINE_TARGETS = (
    ("0002-png", 25.0, 1.25),
    ("0002-jpeg", 20.0, None),
    ("0002-gif", 3.0, 1.1),
)
ORTHANC_TARGETS = (("ct-series-png", 4.0), ("ct-series-jpeg", 4.0))
CPU_MS_PER_REQUEST = 1.5
ORTHANC_RATE_RATIO = 2.0
AUTH_QUOTA_MS = 1.0  # judged on CPU per request under wrk (py-spy), else on Server-Timing
HEALTH_MS = 50.0  # judged on the p99 of /health during the CT-series uploads (max is shown)


def _baseline_target(report: Report, case: str, speedup: float, max_bytes: float | None) -> Target:
    wanted = f">= {speedup:g}x baseline" + (f", bytes <= {max_bytes:g}x" if max_bytes else "")
    row = report.find(case, HTTP_ONE)
    if row is None or row.speedup is None or row.bytes_ratio is None:
        return Target(case, wanted, "-", None)
    met = row.speedup >= speedup and (max_bytes is None or row.bytes_ratio <= max_bytes)
    measured = f"{row.speedup:.2f}x, bytes {row.bytes_ratio:.2f}x"
    return Target(case, wanted, measured, met)


def _orthanc_target(report: Report, case: str, speedup: float) -> Target:
    wanted = f">= {speedup:g}x faster than Orthanc upload+rendered fetch"
    ours, peer = report.find(case, HTTP_ONE), report.find(case, ORTHANC)
    if ours is None or peer is None or ours.median_ms <= 0:
        return Target(f"{case} vs Orthanc", wanted, "-", None)
    ratio = peer.median_ms / ours.median_ms
    return Target(f"{case} vs Orthanc", wanted, f"{ratio:.2f}x", ratio >= speedup)


def _cpu_target(report: Report) -> Target:
    """Judged on the wrk run when there is one (the generator barely competes for the cores)."""
    rate, generator = (report.wrk_rate, "under wrk") if report.wrk_rate else (report.rate, "")
    wanted = f"server CPU <= {CPU_MS_PER_REQUEST:g} ms/request"
    if rate is None:
        return Target("small-ct request rate", wanted, "-", None)
    cpu = rate.server_cpu_ms_per_request
    measured = f"{cpu:.3f} ms" + (f" ({generator})" if generator else " (Python generator)")
    return Target("small-ct request rate", wanted, measured, cpu <= CPU_MS_PER_REQUEST)


def _rate_vs_orthanc_target(report: Report) -> Target:
    """Both servers driven by wrk when both wrk runs exist, else by the Python generator."""
    wanted = f">= {ORTHANC_RATE_RATIO:g}x Orthanc's req/s (upload + rendered frame)"
    if report.wrk_rate_ratio() is not None:
        ratio, ours, peer, generator = (
            report.wrk_rate_ratio(),
            report.wrk_rate,
            report.orthanc_wrk_rate,
            "same generator: wrk",
        )
    else:
        ratio, ours, peer, generator = (
            report.rate_ratio(),
            report.rate,
            report.orthanc_rate,
            "same generator: Python",
        )
    if ratio is None or ours is None or peer is None:
        return Target("small-ct request rate vs Orthanc", wanted, "-", None)
    measured = f"{ratio:.2f}x ({generator})"
    if peer.client_bound():
        measured += " (Orthanc run client-bound: an upper bound)"
    if ours.client_bound():
        measured += " (dicom-api run client-bound: a lower bound)"
    if peer.errors or ours.errors:
        measured += f" (errors: dicom-api {ours.errors}, Orthanc {peer.errors})"
    return Target("small-ct request rate vs Orthanc", wanted, measured, ratio >= ORTHANC_RATE_RATIO)


def _auth_quota_target(report: Report) -> Target:
    """The cost is CPU per request under wrk, from py-spy samples (loadtests.spy), when that run
    exists; else the Server-Timing p99, which under load also counts waiting for the loop."""
    wanted = f"auth + quota <= {AUTH_QUOTA_MS:g} ms of each request"
    spread = report.rate.server_timing.get("auth+quota") if report.rate else None
    profiled = report.profiled_rate.detail if report.profiled_rate else {}
    cpu = profiled.get(AUTH_QUOTA_CPU, {}).get("auth+quota")
    parts = []
    if cpu is not None:
        parts.append(f"{cpu:.3f} ms CPU per request under wrk (py-spy)")
    if spread:
        parts.append(
            f"Server-Timing span p50 {spread['p50']:.3f} ms, p99 {spread['p99']:.3f} ms "
            "at 16 connections (includes waiting for the event loop)"
        )
    alone = report.rate.detail.get(UNLOADED, {}).get("auth+quota") if report.rate else None
    if alone:
        parts.append(f"span p99 {alone['p99']:.3f} ms at 1 connection")
    if not parts:
        return Target("auth + quota cost", wanted, "-", None)
    met = (
        cpu <= AUTH_QUOTA_MS if cpu is not None else bool(spread and spread["p99"] <= AUTH_QUOTA_MS)
    )
    return Target("auth + quota cost", wanted, "; ".join(parts), met)


def _health_target(report: Report) -> Target:
    wanted = f"/health p99 < {HEALTH_MS:g} ms while the CT series renders"
    health = report.health
    if health is None or not health.probes:
        return Target("event-loop responsiveness", wanted, "-", None)
    measured = f"p50 {health.p50_ms:.2f} ms, p99 {health.p99_ms:.2f} ms, max {health.max_ms:.2f} ms"
    return Target("event-loop responsiveness", wanted, measured, health.p99_ms < HEALTH_MS)


def evaluate(report: Report) -> list[Target]:
    """Every target, measured or not, in the issue's order."""
    targets = [_baseline_target(report, *spec) for spec in BASELINE_TARGETS]
    targets += [_orthanc_target(report, *spec) for spec in ORTHANC_TARGETS]
    targets.append(_cpu_target(report))
    targets.append(_rate_vs_orthanc_target(report))
    targets.append(_auth_quota_target(report))
    targets.append(_health_target(report))
    return targets
