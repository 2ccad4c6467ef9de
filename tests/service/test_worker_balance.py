"""Connections are spread over the workers: each worker listens on its own SO_REUSEPORT socket.

With one listening socket shared by all workers, a burst of keep-alive connections could all be
accepted by one worker while the other idled. The kernel now spreads connections by a hash of
the client's address and port: 16 connections all landing on one of two workers has a
probability of 2**-15.
"""

from __future__ import annotations

import http.client
import os
import pickle
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import psutil
import pytest

from service.cli import listening_socket
from tests.support import ServerProcess, clean_env

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances connections on Linux only"
)

WORKERS = 2
CONNECTIONS = 16
STARTUP_SECONDS = 90  # only bounds the wait for both workers to warm up; nothing is timed


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param(
            "::1", marks=pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
        ),
    ],
)
def test_each_worker_gets_its_own_socket_on_a_reserved_address(host: str) -> None:
    reservation = listening_socket(host, 0, workers=WORKERS)
    assert reservation is not None
    with reservation:
        # Sanic gives the socket to each spawned worker by pickling it, as here.
        copies = [pickle.loads(ForkingPickler.dumps(reservation)) for _ in range(WORKERS)]
        try:
            for copy in copies:
                assert copy.fileno() != reservation.fileno()
                assert copy.getsockname() == reservation.getsockname()
                assert copy.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
                copy.listen()  # all of them at once: one accept queue each
            # The reservation never listens: connections handed to it would never be accepted.
            assert reservation.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
            # A second server on the same port still fails, as with a plain socket.
            port = reservation.getsockname()[1]
            with pytest.raises(OSError, match="in use"):
                listening_socket(host, port, workers=WORKERS)
        finally:
            for copy in copies:
                copy.close()


def test_one_worker_keeps_sanics_own_socket() -> None:
    assert listening_socket("127.0.0.1", 0, workers=1) is None


def sanic_workers(server: ServerProcess) -> list[psutil.Process]:
    """The server's worker processes (Sanic names them in ``SANIC_WORKER_NAME``)."""
    assert server.process is not None
    workers = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if child.environ().get("SANIC_WORKER_NAME", "").startswith("Sanic-Server"):
                workers.append(child)
        except psutil.NoSuchProcess:  # a helper process that has just exited
            pass
    return workers


def listening_inodes(process: psutil.Process, port: int) -> list[str]:
    """The sockets (``socket:[inode]``) on which ``process`` listens on ``port``."""
    return [
        os.readlink(f"/proc/{process.pid}/fd/{connection.fd}")
        for connection in process.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A two-worker server on the embedded store, once both workers accept connections."""
    data_dir: Path = tmp_path_factory.mktemp("worker-balance")
    proc = ServerProcess(clean_env({"DICOM_API_DATA_DIR": str(data_dir)}), workers=WORKERS)
    proc.start()
    try:
        # /health answered from one worker; the other may still be warming up, and a worker
        # listens (joins the balancing) only once it is ready.
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            workers = sanic_workers(proc)
            if len(workers) == WORKERS and all(listening_inodes(w, proc.port) for w in workers):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not all start listening:\n{proc.log()}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.stop()


@pytest.mark.slow
def test_workers_do_not_share_one_listening_socket(server: ServerProcess) -> None:
    assert server.process is not None
    workers = sanic_workers(server)
    inodes = [inode for worker in workers for inode in listening_inodes(worker, server.port)]
    assert len(inodes) == WORKERS, inodes
    assert len(set(inodes)) == WORKERS, f"workers share a listening socket: {inodes}"
    assert not listening_inodes(psutil.Process(server.process.pid), server.port)


@pytest.mark.slow
def test_simultaneous_keep_alive_connections_reach_every_worker(server: ServerProcess) -> None:
    connections = [
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for _ in range(CONNECTIONS)
    ]
    try:
        for connection in connections:  # open them all before any request, as wrk -c16 does
            connection.connect()
        for connection in connections:
            connection.request("GET", "/health")
        for connection in connections:
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close  # still open: each connection stays on its worker
        # Every connection has now been accepted and answered: find which worker holds it.
        client_ports = {connection.sock.getsockname()[1] for connection in connections}
        workers = sanic_workers(server)
        served_by = Counter(
            worker.pid
            for worker in workers
            for held in worker.net_connections(kind="tcp")
            if held.status == psutil.CONN_ESTABLISHED
            and held.laddr.port == server.port
            and held.raddr
            and held.raddr.port in client_ports
        )
        assert sum(served_by.values()) == CONNECTIONS, served_by
        assert all(served_by[worker.pid] > 0 for worker in workers), served_by
    finally:
        for connection in connections:
            connection.close()
