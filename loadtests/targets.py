"""The issue's performance targets, checked against a report (over HTTP, one client)."""

from __future__ import annotations

from loadtests.report import HTTP_ONE, ORTHANC, Report, Target

# (case, minimum speedup vs baseline, maximum image bytes vs baseline or None)
BASELINE_TARGETS = (
    ("0002-png", 25.0, 1.25),
    ("0002-jpeg", 20.0, None),
    ("0002-gif", 3.0, 1.1),
)
ORTHANC_TARGETS = (("ct-series-png", 4.0), ("ct-series-jpeg", 4.0))
CPU_MS_PER_REQUEST = 1.5


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
    wanted = f"server CPU <= {CPU_MS_PER_REQUEST:g} ms/request"
    if report.rate is None:
        return Target("small-ct request rate", wanted, "-", None)
    cpu = report.rate.server_cpu_ms_per_request
    return Target("small-ct request rate", wanted, f"{cpu:.3f} ms", cpu <= CPU_MS_PER_REQUEST)


def evaluate(report: Report) -> list[Target]:
    """Every target, measured or not, in the issue's order."""
    targets = [_baseline_target(report, *spec) for spec in BASELINE_TARGETS]
    targets += [_orthanc_target(report, *spec) for spec in ORTHANC_TARGETS]
    targets.append(_cpu_target(report))
    return targets
