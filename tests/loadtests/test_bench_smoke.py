"""The benchmark and the locustfile keep running: smoke runs, no timing thresholds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from loadtests import measure, orthanc, report, targets
from loadtests.inputs import ct_series, small_ct
from loadtests.server import BenchServer
from tests.support import PG_ADMIN_URL, REDIS_TEST_URL

REPO = Path(__file__).resolve().parents[2]
SMOKE_CASES = "ct-series-png,ct-series-jpeg,small-ct-png,small-ct-rate"
MODES = ("baseline", "pipeline in-process", "http 1 client", "http 2 clients")
HAS_ORTHANC = orthanc.find_binary() is not None
SPREAD = ("p50", "p99", "max")


def run(
    command: list[str], timeout: float, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command from the checkout, failing the test with its output on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOM_API_")}
    env.update(extra_env or {})
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_generated_inputs_are_deterministic_ct() -> None:
    first, second = ct_series(3, 32), ct_series(3, 32)
    assert first.frames == 3
    # UIDs differ per build; the pixel data (the last 3*32*32*2 bytes) must not.
    assert first.data[-3 * 32 * 32 * 2 :] == second.data[-3 * 32 * 32 * 2 :]
    assert 30_000 < len(small_ct().data) < 45_000


def test_targets_are_judged_from_rows() -> None:
    rows = [
        report.Row("0002-png", report.BASELINE, 100.0, 1, 1, 1000, 1, 1),
        report.Row("0002-png", report.HTTP_ONE, 2.0, 1, 1, 1100, 1, 1),
        report.Row("ct-series-png", report.HTTP_ONE, 10.0, 1, 1, 1, 1, 1),
        report.Row("ct-series-png", report.ORTHANC, 30.0, 1, 1, 1, 1, 1),
    ]
    result = report.Report(rows=rows)
    result.add_ratios()
    judged = {t.name: t.met for t in targets.evaluate(result)}
    assert judged["0002-png"] is True  # 50x faster, 1.1x bytes
    assert judged["ct-series-png vs Orthanc"] is False  # only 3x
    assert judged["0002-jpeg"] is None  # not measured
    assert "| 0002-png" in report.table(rows)


def test_server_timing_is_parsed_and_summarized() -> None:
    header = 'auth;dur=0.20, quota;dur=0.30, upload;dur=1.00, render;desc="x";dur=4, miss;dur=x'
    parsed = measure.parse_server_timing(header)
    assert parsed == {"auth": 0.2, "quota": 0.3, "upload": 1.0, "render": 4.0}
    assert measure.parse_server_timing("") == {}
    summary = measure.summarize_server_timing([parsed, {"auth": 0.1, "quota": 0.1}, {"x": 1.0}])
    assert list(summary) == ["auth", "quota", "upload", "render", "x", "auth+quota"]
    assert summary["auth+quota"]["max"] == pytest.approx(0.5)  # the sum per response
    assert summary["auth+quota"]["p50"] == pytest.approx(0.2)
    assert summary["upload"] == {"p50": 1.0, "p99": 1.0, "max": 1.0}
    assert measure.summarize_server_timing([]) == {}


def _rate(rps: float, server_timing: dict[str, dict[str, float]]) -> report.RateResult:
    return report.RateResult(
        "small-ct-rate", 16, 100, 0, 1.0, rps, 1.0, 2.0, 1.0, 100.0, server_timing=server_timing
    )


def test_rate_health_and_orthanc_targets_are_judged() -> None:
    fast = {"p50": 0.2, "p99": 0.8, "max": 3.0}
    health = report.ProbeResult("ct-series-png", 1, 10.0, 5, 300.0, 80, 0, 1.0, 60.0, 90.0)
    result = report.Report(
        rate=_rate(600.0, {"auth+quota": fast}),
        orthanc_rate=_rate(200.0, {}),
        health=health,
    )
    assert result.orthanc_rate is not None
    result.orthanc_rate.client_core_share = 0.97  # the load generator kept a core busy
    measured = {t.name: t.measured for t in targets.evaluate(result)}
    assert "Orthanc run client-bound" in measured["small-ct request rate vs Orthanc"]
    judged = {t.name: t.met for t in targets.evaluate(result)}
    assert judged["small-ct request rate vs Orthanc"] is True  # 3x
    assert judged["auth + quota cost"] is True  # p99 0.8 ms; the max is shown, not judged
    assert judged["event-loop responsiveness"] is False  # p99 60 ms
    printed = report.text(result)
    assert "dicom-api / Orthanc request rate: 3.00x" in printed
    assert "auth+quota 0.200/0.800/3.000" in printed and "max 90.00 ms" in printed
    assert "client-bound, the server's true rate is higher" in printed
    empty = {t.name: t.met for t in targets.evaluate(report.Report(rate=_rate(600.0, {})))}
    assert empty["small-ct request rate vs Orthanc"] is None
    assert empty["auth + quota cost"] is None and empty["event-loop responsiveness"] is None


async def test_orthanc_rate_request_uploads_then_fetches_frame_zero() -> None:
    """Orthanc's request, against a fake Orthanc: runs whether or not Orthanc is installed."""
    seen: list[tuple[str, str, str]] = []

    def fake_orthanc(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("accept", "")))
        if request.method == "POST":
            status = "Success" if len(seen) == 1 else "AlreadyStored"
            return httpx.Response(200, json={"ID": "abc", "Status": status})
        return httpx.Response(200, content=b"\x89PNG", headers={"Content-Type": "image/png"})

    send = orthanc.RateRequest(small_ct(16))
    transport = httpx.MockTransport(fake_orthanc)
    async with httpx.AsyncClient(transport=transport, base_url="http://orthanc") as http:
        assert await send(http) == {} and await send(http) == {}
    assert seen[:2] == [
        ("POST", "/instances", "*/*"),
        ("GET", "/instances/abc/frames/0/rendered", "image/png"),
    ]
    assert send.statuses == {"Success": 1, "AlreadyStored": 1}


def _check_rate(rate: dict[str, object]) -> None:
    """A dicom-api rate run: served requests, every one with auth/quota Server-Timing."""
    assert rate["requests"] > 0 and rate["errors"] == 0
    assert rate["p99_ms"] >= rate["p50_ms"] > 0 and rate["server_cpu_ms_per_request"] >= 0
    assert rate["timed_responses"] == rate["requests"]
    for name in ("auth", "quota", "auth+quota", "render"):
        spread = rate["server_timing"][name]
        assert spread["max"] >= spread["p99"] >= spread["p50"] >= 0
    unloaded = rate["detail"]["Server-Timing ms p50/p99/max at 1 connection"]
    assert set(unloaded) == {"auth", "quota", "auth+quota"}


def _check_health(health: dict[str, object]) -> None:
    assert health["workers"] == 1 and health["probes"] >= 1 and health["errors"] == 0
    assert health["max_ms"] >= health["p99_ms"] >= health["p50_ms"] > 0


@pytest.mark.slow
def test_bench_smoke_run_produces_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # --orthanc either way: without the binary the run must still succeed, with a note.
    command = [sys.executable, "-m", "loadtests.bench", "--smoke", "--orthanc"]
    command += ["--cases", SMOKE_CASES]
    result = run([*command, "--workers", "2", "--json", str(out)], timeout=240)
    assert "| case" in result.stdout and "request rate small-ct-rate" in result.stdout
    assert "GET /health every 10 ms" in result.stdout
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] >= 1 and not data["failures"]
    rows = {(row["case"], row["mode"]): row for row in data["rows"]}
    for case in SMOKE_CASES.split(",")[:3]:
        for mode in MODES:
            row = rows[(case, mode)]
            assert row["median_ms"] > 0 and row["frames_per_s"] > 0 and row["mb_per_s"] > 0
            assert row["out_bytes"] > 0 and row["peak_rss_mb"] > 0 and row["speedup"] > 0
    _check_rate(data["rate"])
    assert data["rate"]["server_cpu_ms_per_request"] > 0
    _check_health(data["health"])
    if HAS_ORTHANC:
        peer = data["orthanc_rate"]
        assert peer["requests"] > 0 and peer["errors"] == 0 and not peer["server_timing"]
        statuses = peer["detail"]["orthanc store statuses (timed run)"]
        assert statuses == {"AlreadyStored": peer["requests"]}  # the warm-up stored it
        assert "dicom-api / Orthanc request rate" in result.stdout
    else:
        assert data["orthanc_rate"] is None
        assert any("Orthanc is not installed" in note for note in data["notes"])


@pytest.mark.slow
def test_bench_smoke_on_postgres_and_redis(tmp_path: Path) -> None:
    """The postgres-redis backend end to end: own database and Redis prefix, then dropped."""
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "loadtests.bench", "--smoke", "--backend", "postgres-redis"]
    command += ["--workers", "1", "--cases", "ct-series-png,small-ct-rate", "--json", str(out)]
    env = {"DICOM_API_BENCH_PG": PG_ADMIN_URL, "DICOM_API_BENCH_REDIS": REDIS_TEST_URL}
    run(command, timeout=180, extra_env=env)
    data = json.loads(out.read_text())
    assert not data["failures"] and data["settings"]["backend"] == "postgres-redis"
    _check_rate(data["rate"])
    _check_health(data["health"])


@pytest.mark.slow
def test_tune_smoke_prints_one_configuration(tmp_path: Path) -> None:
    out = tmp_path / "tune.json"
    result = run([sys.executable, "-m", "loadtests.tune", "--smoke", "--json", str(out)], 180)
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert len(table) == 3 and "render threads" in table[0]  # header, rule, one row
    (row,) = json.loads(out.read_text())["rows"]
    assert (row["workers"], row["render_threads"], row["failure"], row["errors"]) == (1, 1, "", 0)
    assert row["rate_req_per_s"] > 0 and row["rate_p99_ms"] >= row["rate_p50_ms"] > 0
    assert row["cpu_ms_per_request"] > 0 and row["ct_median_ms"] > 0 and row["ct_peak_rss_mb"] > 0
    assert row["auth_quota_p99_ms"] is not None
    if row["large_req_per_s"] is not None:  # None when the shared 0002.DCM is absent
        assert row["large_req_per_s"] > 0


def test_locustfile_imports_with_gevent() -> None:
    code = "import gevent, locust, loadtests.locustfile as f; assert f.SMALL.data and f.LARGE.data"
    run([sys.executable, "-c", code], timeout=60)


@pytest.mark.slow
def test_locust_headless_run_succeeds(tmp_path: Path) -> None:
    with BenchServer(workers=1) as server:
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "loadtests/locustfile.py",
            "--headless",
            "--only-summary",
        ]
        command += ["-u", "2", "-r", "2", "-t", "5s", "--host", server.url]
        run([*command, "--csv", str(tmp_path / "locust")], timeout=90)
    with (tmp_path / "locust_stats.csv").open() as handle:
        stats = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(stats["Aggregated"]["Request Count"]) > 0
    assert int(stats["Aggregated"]["Failure Count"]) == 0
    assert any(name.startswith("read small") for name in stats)
