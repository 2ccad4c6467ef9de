"""Dependencies going away: Redis or PostgreSQL unreachable gives 503 with Retry-After (never an
unmetered read, never a 500), /ready says 503, and service resumes by itself."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, clean_env, developer_with_key, free_port, tiny_dicom

ENDPOINT = "/api/dicom/read/file/"


class RedisServer:
    """A private redis-server on a free port, so the test may stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()


class TcpProxy:
    """A loopback TCP forwarder that can cut every connection, to simulate a database outage."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._listener is not listener:
                client.close()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()


def upload(client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        ENDPOINT,
        files={"file": ("ct.dcm", tiny_dicom(), "application/dicom")},
        headers={"Authorization": f"ApiKey {key}"},
    )


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required for the outage tests")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_outage_gives_503_then_recovers(
    private_redis: RedisServer, tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    env = clean_env(
        {
            "DICOM_API_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": pg_url,
            "REDIS_URL": private_redis.url,
            "DICOM_API_REDIS_PREFIX": redis_prefix,
        }
    )
    server = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            _, key = developer_with_key(client)
            assert upload(client, key).status_code == 200
            private_redis.stop()
            down = upload(client, key)
            assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
            assert down.headers["content-type"] == "application/problem+json"
            assert client.get("/ready").status_code == 503
            assert client.get("/health").status_code == 200
            private_redis.start()  # empty: the month counter is rebuilt from the database
            assert wait_for(lambda: upload(client, key).status_code == 200)
            assert client.get("/ready").status_code == 200
            remaining = int(upload(client, key).headers["RateLimit-Remaining"])
            assert remaining == 1000 - 3  # three successful reads, none lost with Redis
    finally:
        server.stop()


@contextlib.contextmanager
def server_behind_proxy(tmp_path: Path, pg_url: str) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    """A server on PostgreSQL reached through a proxy the test can cut (``proxy.stop()``)."""
    proxy = TcpProxy(5432)
    proxy.start()
    proxied = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    env = clean_env({"DICOM_API_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": proxied})
    server = ServerProcess(env).start()
    try:
        yield server, proxy
    finally:
        server.stop()
        proxy.stop()


def test_database_outage_gives_503_then_recovers(tmp_path: Path, pg_url: str) -> None:
    with (
        server_behind_proxy(tmp_path, pg_url) as (server, proxy),
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        _tokens, key = developer_with_key(client)
        assert upload(client, key).status_code == 200
        proxy.stop()
        down = upload(client, key)
        assert down.status_code == 503 and "Retry-After" in down.headers, down.text
        login = client.post("/api/token/", json={"email": "a@example.com", "password": "x" * 9})
        assert login.status_code == 503
        assert client.get("/ready").status_code == 503
        proxy.start()
        assert wait_for(lambda: upload(client, key).status_code == 200)
        assert client.get("/ready").status_code == 200
