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

from loadtests import measure, orthanc, report, spy, targets, wrk
from loadtests.inputs import ct_series, small_ct
from loadtests.server import BenchServer, register_developer
from tests.support import PG_ADMIN_URL, REDIS_TEST_URL

REPO = Path(__file__).resolve().parents[2]
SMOKE_CASES = "ct-series-png,ct-series-jpeg,small-ct-png,small-ct-rate"
MODES = ("baseline", "pipeline in-process", "http 1 client", "http 2 clients")
HAS_ORTHANC = orthanc.find_binary() is not None
HAS_WRK = wrk.find_binary() is not None
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


def test_rss_sampler_lists_processes_once_per_refresh() -> None:
    # Listing a process tree scans /proc (ms of CPU); reading one RSS is cheap.
    listed = []

    def processes() -> list:
        listed.append(1)
        return measure.self_process()

    sampler = measure.RssSampler(processes, interval=0.001, refresh=60.0)
    with sampler.running():
        for _ in range(5):
            sampler.sample()
    assert len(listed) == 1 and sampler.peak_mb > 0
    with sampler.running():  # a new run lists them afresh
        pass
    assert len(listed) == 2
    eager = measure.RssSampler(processes, refresh=0.0)
    eager.sample()
    eager.sample()
    assert len(listed) == 4


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


# py-spy's raw output: folded stacks (outermost first) and their sample counts.
FOLDED = """\
handle_request (sanic/app.py:1);read_file (service/api/dicom.py:79);\
require_api_key (service/auth/guards.py:61) 3
handle_request (sanic/app.py:1);read_file (service/api/dicom.py:84);\
reserve_quota (service/api/dicom.py:41) 5
handle_request (sanic/app.py:1);read_file (service/api/dicom.py:90);\
read_file_answer (service/dicom/pipeline.py:80) 80
_run_server_forever (sanic/server/runners.py:210) 12
"""


def test_py_spy_samples_are_classified_into_auth_and_quota() -> None:
    stacks = spy.parse_folded(FOLDED)
    assert sum(stacks.values()) == 100
    assert spy.shares(stacks) == {"auth": 0.03, "quota": 0.05, "auth+quota": 0.08}
    assert spy.shares(spy.parse_folded("")) == {"auth": 0.0, "quota": 0.0, "auth+quota": 0.0}


def test_auth_quota_target_prefers_the_cpu_cost_to_the_span() -> None:
    slow_span = {"p50": 2.0, "p99": 18.0, "max": 40.0}  # waiting for the loop under load
    profiled = _rate(600.0, {})
    profiled.detail[wrk.AUTH_QUOTA_CPU] = {"auth": 0.01, "quota": 0.15, "auth+quota": 0.16}
    result = report.Report(rate=_rate(600.0, {"auth+quota": slow_span}), profiled_rate=profiled)
    target = next(t for t in targets.evaluate(result) if t.name == "auth + quota cost")
    assert target.met is True
    assert "0.160 ms CPU per request" in target.measured and "p99 18.000 ms" in target.measured
    profiled.detail[wrk.AUTH_QUOTA_CPU]["auth+quota"] = 1.2
    target = next(t for t in targets.evaluate(result) if t.name == "auth + quota cost")
    assert target.met is False


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


# wrk 4.1's summary with --latency (a run answered 401), then the scripts' done() JSON line.
WRK_TEXT = """Running 1s test @ http://127.0.0.1:47319/api/dicom/read/file/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.99ms   15.95ms   1.53s    94.90%
    Req/Sec    15.60k     7.12k   24.29k    70.00%
  Latency Distribution
     50%  683.00us
     75%    2.28ms
     90%    8.57ms
     99%    1.02s
  15493 requests in 1.00m, 3.93MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 15493
Requests/sec:  15486.08
Transfer/sec:      3.93MB
"""
WRK_JSON = (
    'WRK_JSON {"requests": 15493.000, "duration_us": 1000447.000, "bytes": 4121138.000, '
    '"errors": {"connect": 0.000, "read": 0.000, "write": 0.000, "status": 15493.000, '
    '"timeout": 0.000}, "latency_us": {"min": 61.000, "max": 152973.000, "mean": 4987.079, '
    '"percentiles": {"50": 683.000, "75": 2275.000, "90": 8570.000, "99": 97952.000, '
    '"99.9": 146775.000}}}\n'
)


def test_wrk_text_summary_is_parsed() -> None:
    summary = wrk.parse_summary_text(WRK_TEXT)
    assert summary.source == "text" and summary.requests == 15493
    assert summary.duration_s == pytest.approx(60.0)  # "1.00m"
    assert summary.bytes_read == round(3.93 * 1024**2)
    assert summary.latency_ms == pytest.approx(
        {"50": 0.683, "75": 2.28, "90": 8.57, "99": 1020.0, "max": 1530.0}
    )
    assert summary.errors == {"connect": 1, "read": 2, "write": 3, "timeout": 4, "status": 15493}
    assert summary.socket_errors == 10 and summary.non_2xx == 15493
    clean = wrk.parse_summary_text(WRK_TEXT.replace("  Socket errors", "  #").replace("Non", "#"))
    assert clean.socket_errors == 0 and clean.non_2xx == 0
    with pytest.raises(ValueError, match="no wrk summary"):
        wrk.parse_summary_text("wrk: connection refused\n")


def test_wrk_done_json_is_preferred_to_the_text() -> None:
    summary = wrk.parse_output(WRK_TEXT + WRK_JSON)
    assert summary.source == "json" and summary.requests == 15493
    assert summary.duration_s == pytest.approx(1.000447)
    assert summary.requests_per_s == pytest.approx(15493 / 1.000447)
    assert summary.latency_ms["50"] == pytest.approx(0.683)
    assert summary.latency_ms["99.9"] == pytest.approx(146.775)
    assert summary.latency_ms["max"] == pytest.approx(152.973)
    assert summary.non_2xx == 15493 and summary.socket_errors == 0
    assert wrk.parse_output(WRK_TEXT).source == "text"  # no done() line: wrk's own summary
    assert wrk.parse_json_line(WRK_TEXT) is None


def test_wrk_scripts_carry_done_and_the_requests() -> None:
    for script in (wrk.DICOM_API_SCRIPT, wrk.ORTHANC_SCRIPT):
        assert "function done(" in script and wrk.JSON_MARK in script
        assert "function init(args)" in script and "function request()" in script
    assert '"/frames/0/rendered"' in wrk.ORTHANC_SCRIPT and "image/png" in wrk.ORTHANC_SCRIPT
    assert "application/dicom" in wrk.ORTHANC_SCRIPT


def test_rate_targets_prefer_the_wrk_runs() -> None:
    python_run, wrk_run = _rate(300.0, {}), _rate(1500.0, {})
    python_run.server_cpu_ms_per_request, wrk_run.server_cpu_ms_per_request = 2.0, 1.2
    result = report.Report(
        rate=python_run,
        orthanc_rate=_rate(250.0, {}),
        wrk_rate=wrk_run,
        orthanc_wrk_rate=_rate(500.0, {}),
    )
    judged = {t.name: (t.met, t.measured) for t in targets.evaluate(result)}
    assert judged["small-ct request rate"] == (True, "1.200 ms (under wrk)")
    assert judged["small-ct request rate vs Orthanc"] == (True, "3.00x (same generator: wrk)")
    printed = report.text(result)
    assert "dicom-api / Orthanc request rate: 1.20x" in printed
    assert "dicom-api / Orthanc request rate (both driven by wrk): 3.00x" in printed
    result.wrk_rate = result.orthanc_wrk_rate = None  # no wrk: the Python runs are judged
    judged = {t.name: (t.met, t.measured) for t in targets.evaluate(result)}
    assert judged["small-ct request rate"] == (False, "2.000 ms (Python generator)")
    assert judged["small-ct request rate vs Orthanc"] == (False, "1.20x (same generator: Python)")


@pytest.mark.slow
def test_short_wrk_run_against_dicom_api() -> None:
    """With wrk: 1 s against a real server, no errors. Without: the canned output is parsed."""
    if not HAS_WRK:
        summary = wrk.parse_output(WRK_TEXT.replace("Non-2xx", "#"))
        assert summary.requests > 0 and summary.non_2xx == 0 and summary.source == "text"
        return
    with BenchServer(workers=1) as server:
        dev = register_developer(server.url)
        rate = wrk.dicom_api_rate(
            server.url, small_ct(64), dev.key_header(), server.worker_processes, 1.0, 4, 0.0
        )
    assert rate.requests > 0 and rate.errors == 0 and rate.requests_per_s > 0
    assert rate.detail["non-2xx/3xx"] == 0 and not any(rate.detail["socket errors"].values())
    assert rate.p99_ms >= rate.p50_ms > 0 and rate.server_cpu_ms_per_request > 0
    assert rate.client_cpu_ms_per_request >= 0 and rate.wall_s > 0


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
    if HAS_WRK:
        assert data["wrk_rate"]["requests"] > 0 and data["wrk_rate"]["errors"] == 0
        assert "(both driven by wrk)" in result.stdout or not HAS_ORTHANC
        profiled = data["profiled_rate"]["detail"]
        if spy.find_binary() is not None:  # the load extra installs it
            assert profiled["py-spy samples"] > 0
            assert profiled[wrk.AUTH_QUOTA_CPU]["auth+quota"] > 0
        else:
            assert wrk.PROFILE_FAILED in profiled
    else:
        assert data["wrk_rate"] is None and any("wrk is not on PATH" in n for n in data["notes"])
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
