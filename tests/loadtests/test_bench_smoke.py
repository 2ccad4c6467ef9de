"""The benchmark and the locustfile keep running: smoke runs, no timing thresholds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests import report, targets
from loadtests.inputs import ct_series, small_ct
from loadtests.server import BenchServer

REPO = Path(__file__).resolve().parents[2]
SMOKE_CASES = "ct-series-png,ct-series-jpeg,small-ct-png,small-ct-rate"
MODES = ("baseline", "pipeline in-process", "http 1 client", "http 2 clients")


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command from the checkout, failing the test with its output on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOM_API_")}
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


@pytest.mark.slow
def test_bench_smoke_run_produces_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "loadtests.bench", "--smoke", "--cases", SMOKE_CASES]
    result = run([*command, "--workers", "2", "--json", str(out)], timeout=180)
    assert "| case" in result.stdout and "request rate small-ct-rate" in result.stdout
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] >= 1 and not data["failures"]
    rows = {(row["case"], row["mode"]): row for row in data["rows"]}
    for case in SMOKE_CASES.split(",")[:3]:
        for mode in MODES:
            row = rows[(case, mode)]
            assert row["median_ms"] > 0 and row["frames_per_s"] > 0 and row["mb_per_s"] > 0
            assert row["out_bytes"] > 0 and row["peak_rss_mb"] > 0 and row["speedup"] > 0
    rate = data["rate"]
    assert rate["requests"] > 0 and rate["errors"] == 0
    assert rate["p99_ms"] >= rate["p50_ms"] > 0 and rate["server_cpu_ms_per_request"] > 0


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
