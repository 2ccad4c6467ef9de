"""A dicom-api server started by the benchmark: process, backend, and a registered developer."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from loadtests.inputs import CHECKOUT
from tests.servers import admin_sql, clean_env, free_port, terminate, wait_until_answering

PG_ADMIN_URL = os.environ.get("DICOM_API_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DICOM_API_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = "bench password 1234"
HIGH_QUOTA = 100_000_000


@dataclass
class Backend:
    """The storage the server runs on: embedded SQLite, or its own Postgres DB + Redis prefix."""

    kind: str = "embedded"
    database: str = ""
    redis_prefix: str = ""

    def setup(self) -> dict[str, str]:
        """Create what the backend needs; returns the server environment entries for it."""
        if self.kind == "embedded":
            return {}
        token = secrets.token_hex(5)
        self.database = f"dicom_api_bench_{token}"
        self.redis_prefix = f"dicom-api-bench-{token}:"
        admin_sql(f'CREATE DATABASE "{self.database}"', PG_ADMIN_URL)
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return {
            "DATABASE_URL": f"{base}/{self.database}",
            "REDIS_URL": REDIS_URL,
            "DICOM_API_REDIS_PREFIX": self.redis_prefix,
        }

    def teardown(self) -> None:
        """Drop the database and delete the Redis keys this run created."""
        if self.kind == "embedded" or not self.database:
            return
        admin_sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)', PG_ADMIN_URL)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@dataclass
class BenchServer:
    """``python -m service serve`` on a free loopback port with a temporary data directory.

    ``settings`` adds dicom-api environment settings, e.g. ``{"DICOM_API_RENDER_THREADS": "1"}``.
    """

    workers: int = 2
    backend: Backend = field(default_factory=Backend)
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    _tempdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The parent environment minus dicom-api settings, plus this server's settings."""
        assert self.data_dir is not None
        return clean_env(
            {
                "DICOM_API_DATA_DIR": str(self.data_dir),
                "DICOM_API_MONTHLY_QUOTA": str(HIGH_QUOTA),
                **self.backend.setup(),
                **self.settings,
            }
        )

    def start(self, timeout: float = 120.0) -> BenchServer:
        """Start the server and wait until ``/health`` answers 200; clean up if it cannot."""
        self._tempdir = tempfile.TemporaryDirectory(prefix="dicom-api-bench-")
        self.data_dir = Path(self._tempdir.name)
        try:
            self._spawn()
            self._wait_until_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        assert self.data_dir is not None
        command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        with (self.data_dir / "server.log").open("wb") as log:
            self.process = subprocess.Popen(
                command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT, cwd=CHECKOUT
            )

    def _wait_until_healthy(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        wait_until_answering(self.process, f"{self.url}/health", timeout, "server", self.log)
        self._wait_for_workers(deadline)

    def _wait_for_workers(self, deadline: float) -> None:
        """With several workers, /health may answer before every worker has warmed up."""
        while len(self.worker_processes()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5 if self.workers > 1 else 0.0)

    def log(self) -> str:
        """The server's combined stdout/stderr so far."""
        if self.data_dir is None or not (self.data_dir / "server.log").exists():
            return ""
        return (self.data_dir / "server.log").read_text(errors="replace")[-4000:]

    def all_processes(self) -> list[psutil.Process]:
        """The server's main process and all its descendants."""
        if self.process is None or self.process.poll() is not None:
            return []
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.Error:
            return []

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that serve requests (Sanic names them in ``SANIC_WORKER_NAME``).

        ``--workers 1`` still forks one ``Sanic-Server-0-0`` child under the manager; the main
        process only counts when no such child exists (a true single-process server).
        """
        processes = self.all_processes()
        served_by = [process for process in processes[1:] if _is_sanic_server(process)]
        return served_by or processes[:1]

    def stop(self) -> None:
        """Terminate the server, wait for it, and remove its data and backend."""
        terminate(self.process)
        self.backend.teardown()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _is_sanic_server(process: psutil.Process) -> bool:
    try:
        return process.environ().get("SANIC_WORKER_NAME", "").startswith("Sanic-Server")
    except psutil.Error:
        return False


@dataclass(frozen=True)
class Developer:
    """A registered developer: JWT tokens and one API key."""

    email: str
    access: str
    refresh: str
    api_key: str

    def key_header(self) -> dict[str, str]:
        """Headers authenticating a DICOM upload."""
        return {"Authorization": f"ApiKey {self.api_key}"}

    def bearer_header(self) -> dict[str, str]:
        """Headers authenticating account endpoints."""
        return {"Authorization": f"Bearer {self.access}"}


def _expect(response: httpx.Response, status: int) -> dict[str, str]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )
    return dict(response.json())


def register_developer(base_url: str, organization: str = "Benchmark") -> Developer:
    """The spec's flow: register, get tokens, create a profile, create an API key."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        _expect(client.post("/api/auth/register/", json=credentials), 201)
        tokens = _expect(client.post("/api/token/", json=credentials), 200)
        bearer = {"Authorization": f"Bearer {tokens['access']}"}
        profile = {"purpose": "testing", "organization": organization}
        _expect(client.post("/api/developer/profiles/", json=profile, headers=bearer), 201)
        key = _expect(client.post("/api-keys/", json={"name": "bench"}, headers=bearer), 201)
    return Developer(email, tokens["access"], tokens["refresh"], key["key"])
