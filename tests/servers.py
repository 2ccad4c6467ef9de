"""Process and database helpers shared by the tests and the checkout's benchmark (loadtests/).

Only the standard library, httpx and asyncpg: ``python -m loadtests.bench`` imports this module
and must not need pytest or the test fixtures' other dependencies.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress

import httpx


def free_port() -> int:
    """A currently free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any dicom-api settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DICOM_API_") and key not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(extra)
    return env


def admin_sql(sql: str, url: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the PostgreSQL server at ``url``."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def wait_until_answering(
    process: subprocess.Popen[bytes], url: str, timeout: float, name: str, log: Callable[[], str]
) -> None:
    """Poll ``url`` until it answers 200; raise (with ``log()``) if ``process`` exits first or
    ``timeout`` seconds pass. Used for dicom-api servers and for Orthanc."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log()}")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {url} in {timeout:.0f} s:\n{log()}")


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """Stop a child process politely (SIGTERM), then firmly (SIGKILL) if it will not go."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
