"""Request rates driven by ``wrk`` (C, Lua-scripted): a load generator that costs little CPU.

The async Python generator (``client.drive``) keeps about one core busy on its own, which caps
what it can measure on a small machine. ``wrk -t1 -c16`` drives the same two workloads:

* dicom-api: every request is the multipart ``POST /api/dicom/read/file/`` of the small CT with
  the ``ApiKey`` header;
* Orthanc: requests alternate ``POST /instances`` (raw DICOM) and
  ``GET /instances/{id}/frames/0/rendered`` (``Accept: image/png``); the instance id comes from
  one upload made here beforehand, so every timed upload answers ``AlreadyStored``. One
  "request" of the rate is an upload + fetch pair: wrk's requests / 2.

The Lua scripts are generated here (no package data); the request body goes to a temporary file
that the script reads in ``init``. A Lua ``done()`` prints the summary as one JSON line after
the marker :data:`JSON_MARK`; wrk's own text summary is parsed when that line is missing. The
CPU seconds of the server processes (psutil) and of wrk itself (``wait4`` rusage) are charged
to the requests served.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from loadtests import measure, spy
from loadtests.client import ENDPOINT, Connection, PreparedUpload
from loadtests.inputs import BenchInput
from loadtests.report import RateResult

JSON_MARK = "WRK_JSON "
AUTH_QUOTA_CPU = "CPU ms per request (py-spy share x server CPU)"
PROFILE_FAILED = "profile"
PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9)
GENERATOR = "wrk"
SOCKET_ERRORS = ("connect", "read", "write", "timeout")

_DONE = r"""
local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  return string.format("%.3f", x)
end

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    local value = 0
    if summary.requests > 0 then value = latency:percentile(q) end
    parts[#parts + 1] = string.format('"%s": %s', tostring(q), num(value))
  end
  io.write("WRK_JSON ", string.format(
    '{"requests": %s, "duration_us": %s, "bytes": %s, '
    .. '"errors": {"connect": %s, "read": %s, "write": %s, "status": %s, "timeout": %s}, '
    .. '"latency_us": {"min": %s, "max": %s, "mean": %s, "percentiles": {%s}}}',
    num(summary.requests), num(summary.duration), num(summary.bytes),
    num(e.connect), num(e.read), num(e.write), num(e.status), num(e.timeout),
    num(latency.min), num(latency.max), num(latency.mean), table.concat(parts, ", ")), "\n")
end
"""

_READ_BODY = r"""
local function read_body(path)
  local handle = assert(io.open(path, "rb"))
  local body = handle:read("*a")
  handle:close()
  return body
end
"""

#: dicom-api: args = body file, Authorization value, Content-Type value.
DICOM_API_SCRIPT = (
    _READ_BODY
    + r"""
local prepared
function init(args)
  local headers = {["Authorization"] = args[2], ["Content-Type"] = args[3]}
  prepared = wrk.format("POST", nil, headers, read_body(args[1]))
end

function request()
  return prepared
end
"""
    + _DONE
)

#: Orthanc: args = body file, instance id; upload and rendered fetch alternate.
ORTHANC_SCRIPT = (
    _READ_BODY
    + r"""
local upload, fetch
local turn = 0
function init(args)
  upload = wrk.format("POST", "/instances", {["Content-Type"] = "application/dicom"},
                      read_body(args[1]))
  fetch = wrk.format("GET", "/instances/" .. args[2] .. "/frames/0/rendered",
                     {["Accept"] = "image/png"})
end

function request()
  turn = turn + 1
  if turn % 2 == 1 then return upload end
  return fetch
end
"""
    + _DONE
)


def find_binary() -> str | None:
    """Path of the ``wrk`` executable, or None when it is not installed."""
    return shutil.which("wrk")


@dataclass
class WrkSummary:
    """What one wrk run reports: counts, duration and latency (milliseconds)."""

    requests: int
    duration_s: float
    bytes_read: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # connect/read/write/timeout/status
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50", "99", ..., "max"
    source: str = "json"  # "json" (the Lua done()) or "text" (wrk's own summary)

    @property
    def socket_errors(self) -> int:
        """Connect, read, write and timeout errors."""
        return sum(self.errors.get(k, 0) for k in SOCKET_ERRORS)

    @property
    def non_2xx(self) -> int:
        """Responses with a status above 399 (wrk's "Non-2xx or 3xx responses")."""
        return self.errors.get("status", 0)

    @property
    def requests_per_s(self) -> float:
        """Requests completed per second of the run."""
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def parse_json_line(output: str) -> WrkSummary | None:
    """The summary printed by the scripts' ``done()`` (the line after :data:`JSON_MARK`)."""
    for line in output.splitlines():
        if line.startswith(JSON_MARK):
            data = json.loads(line[len(JSON_MARK) :])
            latency = data.get("latency_us", {})
            ms = {key: float(v) / 1e3 for key, v in latency.get("percentiles", {}).items()}
            ms = {_percentile_key(key): v for key, v in ms.items() if v is not None}
            if latency.get("max") is not None:
                ms["max"] = float(latency["max"]) / 1e3
            return WrkSummary(
                requests=_int(data.get("requests")),
                duration_s=float(data.get("duration_us") or 0.0) / 1e6,
                bytes_read=_int(data.get("bytes")),
                errors={key: _int(v) for key, v in data.get("errors", {}).items()},
                latency_ms=ms,
                source="json",
            )
    return None


def _percentile_key(raw: str) -> str:
    """``"50"``, ``"50.0"``, ``"50%"`` -> ``"50"``; ``"99.9"`` stays."""
    value = float(raw.rstrip("%"))
    return f"{value:g}"


_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TOTALS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read")
_PERCENTILE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)(us|ms|s|m|h)\s*$")
_LATENCY = re.compile(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_summary_text(output: str) -> WrkSummary:
    """wrk's human-readable summary (as printed with ``--latency``); raises when it has none."""
    summary: WrkSummary | None = None
    errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    latency: dict[str, float] = {}
    for line in output.splitlines():
        if found := _TOTALS.match(line):
            count, span, unit, size, size_unit = found.groups()
            seconds = float(span) * _TIME_UNITS_MS[unit] / 1e3
            size_bytes = round(float(size) * _SIZE_UNITS[size_unit])
            summary = WrkSummary(int(count), seconds, size_bytes, source="text")
        elif found := _PERCENTILE.match(line):
            latency[_percentile_key(found[1])] = float(found[2]) * _TIME_UNITS_MS[found[3]]
        elif found := _LATENCY.match(line):
            latency["max"] = float(found[1]) * _TIME_UNITS_MS[found[2]]
        elif found := _SOCKET.search(line):
            errors.update(zip(SOCKET_ERRORS, map(int, found.groups()), strict=True))
        elif found := _NON_2XX.search(line):
            errors["status"] = int(found[1])
    if summary is None:
        raise ValueError(f"no wrk summary in the output:\n{output[-2000:]}")
    summary.errors, summary.latency_ms = errors, latency
    return summary


def parse_output(output: str) -> WrkSummary:
    """The JSON line of ``done()`` when present, else wrk's text summary."""
    return parse_json_line(output) or parse_summary_text(output)


@dataclass
class WrkRun:
    """One finished wrk run: its summary and wrk's own CPU seconds (user + system)."""

    summary: WrkSummary
    cpu_s: float
    wall_s: float
    output: str


def run(
    url: str,
    script: str,
    script_args: list[str],
    seconds: float,
    connections: int = 16,
    threads: int = 1,
    binary: str | None = None,
    timeout_s: float = 10.0,
) -> WrkRun:
    """``wrk -t<threads> -c<connections> -d<seconds>s --latency -s <script> <url> -- args``."""
    wrk = binary or find_binary()
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory(prefix="dicom-api-wrk-") as tmp:
        script_path, out_path = Path(tmp) / "script.lua", Path(tmp) / "wrk.out"
        script_path.write_text(script)
        command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", f"--timeout={max(1, round(timeout_s))}s", "-s", str(script_path)]
        command += [url, "--", *script_args]
        start = time.perf_counter()
        with out_path.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        status, cpu_s = _wait_with_rusage(process, deadline=start + seconds + timeout_s + 30.0)
        wall_s = time.perf_counter() - start
        output = out_path.read_text(errors="replace")
    if status != 0:
        raise RuntimeError(f"wrk exited with {status}:\n{output[-2000:]}")
    return WrkRun(parse_output(output), cpu_s, wall_s, output)


def _wait_with_rusage(process: subprocess.Popen[bytes], deadline: float) -> tuple[int, float]:
    """Reap ``process`` with ``wait4`` (its CPU from rusage); killed when past ``deadline``."""
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_utime + usage.ru_stime
        if time.perf_counter() > deadline:
            process.kill()
        time.sleep(0.02)


def _write_body(directory: Path, body: bytes) -> str:
    path = directory / "body.bin"
    path.write_bytes(body)
    return str(path)


def measure_wrk(
    url: str,
    script: str,
    script_args: list[str],
    processes: Callable[[], list[psutil.Process]],
    seconds: float,
    connections: int,
    server: str,
    per_rate_request: int = 1,
    warm_up_s: float = 1.0,
    profile: bool = False,
) -> RateResult:
    """A short warm-up run, then a timed wrk run charged with the server's CPU and RSS.

    ``per_rate_request`` HTTP requests make one request of the rate (2 for Orthanc's upload +
    fetch pairs); latency percentiles stay per HTTP request. With ``profile``, py-spy samples
    the server processes during the run (``loadtests.spy``): the detail then holds the CPU
    shares and the auth + quota CPU per request.
    """
    if warm_up_s > 0:
        run(url, script, script_args, warm_up_s, connections)
    served_by = processes()
    sampler = measure.RssSampler(processes, interval=0.1)
    server_before = measure.cpu_seconds(served_by)
    machine_before = psutil.cpu_times()
    with sampler.running(), ThreadPoolExecutor(1) as background:
        spied = (
            background.submit(spy.record, [p.pid for p in served_by], seconds) if profile else None
        )
        result = run(url, script, script_args, seconds, connections)
        stacks = spied.result() if spied is not None else None
    server_cpu = measure.cpu_seconds(served_by) - server_before
    machine = _machine_shares(machine_before, psutil.cpu_times())
    summary = result.summary
    wall = summary.duration_s or result.wall_s
    served = summary.requests // per_rate_request
    per_request = 1e3 / served if served else 0.0
    latency = summary.latency_ms
    return RateResult(
        case="small-ct-rate",
        server=server,
        connections=connections,
        requests=served,
        errors=summary.socket_errors + summary.non_2xx,
        wall_s=wall,
        requests_per_s=served / wall if wall else 0.0,
        p50_ms=latency.get("50", 0.0),
        p99_ms=latency.get("99", 0.0),
        server_cpu_ms_per_request=server_cpu * per_request,
        peak_rss_mb=sampler.peak_mb,
        client_cpu_ms_per_request=result.cpu_s * per_request,
        client_core_share=result.cpu_s / wall if wall else 0.0,
        detail={
            "generator": f"wrk -t1 -c{connections} -d{max(1, round(seconds))}s",
            "wrk latency ms (per HTTP request)": _latency_text(latency),
            "wrk HTTP requests": summary.requests,
            "non-2xx/3xx": summary.non_2xx,
            "socket errors": {k: v for k, v in summary.errors.items() if k != "status"},
            "wrk CPU s": round(result.cpu_s, 3),
            "wrk CPU share of one core": round(result.cpu_s / wall if wall else 0.0, 3),
            "server CPU s": round(server_cpu, 3),
            "server CPU share of the cores": round(
                server_cpu / wall / (os.cpu_count() or 1) if wall else 0.0, 3
            ),
            "machine CPU shares (all processes)": machine,
            **(_profile_detail(stacks, server_cpu * per_request) if profile else {}),
        },
    )


def _profile_detail(stacks: Counter[str] | None, cpu_ms: float) -> dict[str, Any]:
    if stacks is None:
        return {PROFILE_FAILED: "py-spy is not installed or could not attach to the workers"}
    share = spy.shares(stacks)
    return {
        "py-spy samples": sum(stacks.values()),
        "CPU shares (py-spy)": {name: round(value, 4) for name, value in share.items()},
        AUTH_QUOTA_CPU: {name: round(value * cpu_ms, 4) for name, value in share.items()},
    }


def _machine_shares(before: Any, after: Any) -> dict[str, float]:
    """Busy, idle and steal shares of every core between two ``psutil.cpu_times()``."""
    spent = {name: getattr(after, name) - getattr(before, name) for name in after._fields}
    total = sum(value for name, value in spent.items() if name not in ("guest", "guest_nice"))
    if total <= 0:
        return {}
    idle = spent.get("idle", 0.0) + spent.get("iowait", 0.0)
    return {
        "busy": round(1.0 - idle / total, 3),
        "idle": round(idle / total, 3),
        "steal": round(spent.get("steal", 0.0) / total, 3),
    }


def _latency_text(latency: dict[str, float]) -> str:
    keys = [f"{q:g}" for q in PERCENTILES] + ["max"]
    return ", ".join(
        f"p{k} {latency[k]:.2f}" if k != "max" else f"max {latency[k]:.2f}"
        for k in keys
        if k in latency and not math.isnan(latency[k])
    )


def dicom_api_rate(
    base_url: str,
    item: BenchInput,
    auth: dict[str, str],
    processes: Callable[[], list[psutil.Process]],
    seconds: float,
    connections: int = 16,
    warm_up_s: float = 1.0,
    profile: bool = False,
) -> RateResult:
    """wrk POSTs the small CT (multipart, ``return_format=png``) with the API key."""
    upload = PreparedUpload.build(item, "png")
    with tempfile.TemporaryDirectory(prefix="dicom-api-wrk-body-") as tmp:
        args = [_write_body(Path(tmp), upload.body), auth["Authorization"], upload.content_type]
        return measure_wrk(
            f"{base_url}{ENDPOINT}",
            DICOM_API_SCRIPT,
            args,
            processes,
            seconds,
            connections,
            f"dicom-api, {GENERATOR}: POST {ENDPOINT}"
            + (", profiled by py-spy" if profile else ""),
            warm_up_s=warm_up_s,
            profile=profile,
        )


def orthanc_instance(base_url: str, item: BenchInput) -> tuple[str, str]:
    """Upload ``item`` once; Orthanc's (instance id, store status)."""
    with Connection(base_url) as conn:
        status, body = conn.post("/instances", item.data, {"Content-Type": "application/dicom"})
    if status != 200:
        raise RuntimeError(f"Orthanc upload: {status} {body[:300]!r}")
    answer = json.loads(body)
    return str(answer["ID"]), str(answer.get("Status", "?"))


def orthanc_instance_count(base_url: str) -> int:
    """How many instances Orthanc stores (``/statistics``)."""
    with Connection(base_url) as conn:
        status, body = conn.request("GET", "/statistics")
    if status != 200:
        raise RuntimeError(f"Orthanc /statistics: {status}")
    return int(json.loads(body)["CountInstances"])


def orthanc_rate(
    base_url: str,
    item: BenchInput,
    processes: Callable[[], list[psutil.Process]],
    seconds: float,
    connections: int = 16,
    warm_up_s: float = 1.0,
) -> RateResult:
    """wrk alternates upload and rendered fetch; the rate counts (upload + fetch) pairs."""
    instance, first_status = orthanc_instance(base_url, item)
    with tempfile.TemporaryDirectory(prefix="dicom-api-wrk-body-") as tmp:
        result = measure_wrk(
            f"{base_url}/instances",
            ORTHANC_SCRIPT,
            [_write_body(Path(tmp), item.data), instance],
            processes,
            seconds,
            connections,
            f"orthanc, {GENERATOR}: POST /instances + GET /instances/{{id}}/frames/0/rendered "
            "(image/png) pairs",
            per_rate_request=2,
            warm_up_s=warm_up_s,
        )
    result.detail["orthanc instances stored after the run"] = orthanc_instance_count(base_url)
    result.detail["orthanc store status of the first upload"] = first_status
    result.detail["note"] = (
        "req/s and CPU are per upload + fetch pair (wrk requests / 2); every timed upload "
        "re-sends the stored SOP instance and answers AlreadyStored"
    )
    return result
