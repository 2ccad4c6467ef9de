"""Where the workers' CPU goes under load: py-spy samples, classified by the frames they hold.

The auth + quota cost of a request is measured here as CPU: the share of the workers' samples
that sit in API-key authentication (``require_api_key``) or in the quota reservation
(``reserve_quota``), times the server CPU per request of the same run. The ``Server-Timing``
span of that work is wall time: under saturation it mostly counts the time a request waits for
its event loop while other requests' work runs, not work of its own.

py-spy (PyPI, listed in the ``load`` extra) attaches to running processes with ptrace; where it
cannot (no permission, not installed), :func:`record` returns None and the bench says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

AUTH_FRAMES = ("require_api_key",)
QUOTA_FRAMES = ("reserve_quota",)
SAMPLE_RATE = 200


def find_binary() -> str | None:
    """The py-spy executable, if installed."""
    return shutil.which("py-spy")


def record(pids: Iterable[int], seconds: float, rate: int = SAMPLE_RATE) -> Counter[str] | None:
    """Sample every process in ``pids`` for ``seconds``; folded stacks -> sample counts.

    Returns None when py-spy is missing or could not sample a process.
    """
    binary = find_binary()
    if binary is None:
        return None
    stacks: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="dicom-api-spy-") as tmp:
        spies = []
        for pid in pids:
            out = Path(tmp) / f"{pid}.txt"
            command = [binary, "record", "-p", str(pid), "-d", str(max(1, round(seconds)))]
            command += ["-r", str(rate), "-f", "raw", "--nonblocking", "-o", str(out)]
            spies.append((subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL), out))  # fmt: skip
        for process, out in spies:
            if process.wait(timeout=seconds + 60) != 0 or not out.exists():
                return None
            stacks.update(parse_folded(out.read_text(errors="replace")))
    return stacks


def parse_folded(text: str) -> Counter[str]:
    """py-spy's raw (folded) output: one ``frame;frame;... count`` line per distinct stack."""
    stacks: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def _holds(stack: str, names: tuple[str, ...]) -> bool:
    return any(frame.split(" (", 1)[0] in names for frame in stack.split(";"))


def shares(stacks: Counter[str]) -> dict[str, float]:
    """Shares of all samples in auth, in quota, and in both together."""
    total = sum(stacks.values())
    if not total:
        return {"auth": 0.0, "quota": 0.0, "auth+quota": 0.0}
    auth = sum(n for stack, n in stacks.items() if _holds(stack, AUTH_FRAMES))
    quota = sum(n for stack, n in stacks.items() if _holds(stack, QUOTA_FRAMES))
    return {"auth": auth / total, "quota": quota / total, "auth+quota": (auth + quota) / total}
