"""The ``dicom-api`` console script: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Callable, Sequence
from ipaddress import ip_address
from typing import Any, TypeVar

from service.clock import make_clock
from service.settings import Settings, SettingsError, load_settings
from service.store import StoreUnavailable, make_store

_Socket = TypeVar("_Socket", bound=socket.socket)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; settings themselves come from the environment."""
    parser = argparse.ArgumentParser(
        prog="dicom-api",
        description="DICOM to metadata and images over HTTP. Configuration is read from the "
        "environment (DATABASE_URL, REDIS_URL, DICOM_API_*): see the README.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server (migrations applied first)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; see the README)"
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    commands.add_parser("migrate", help="apply database migrations and exit")
    return parser


async def run_migrations(settings: Settings) -> list[int]:
    """Apply pending migrations to the configured store."""
    store = make_store(settings, make_clock(settings))
    await store.open()
    try:
        return await store.migrate()
    finally:
        await store.close()


class PortReservation(socket.socket):
    """The main process's socket when several workers balance over SO_REUSEPORT.

    It is bound (so the port is taken, and stays taken across worker restarts) but never
    listens: the kernel would hand it a share of the connections, which no one accepts. Sanic
    gives the socket passed to ``prepare(sock=...)`` to every worker it spawns by pickling it;
    this class unpickles as a *new* socket bound to the same address with SO_REUSEPORT, on
    which that worker's server then listens. Each worker thus has its own accept queue, and
    Linux spreads new connections over the queues by a hash of the client's address and port.
    (Were Sanic's start method set to fork, nothing is pickled and the workers would all
    listen on this one socket: the shared queue, as without it.)
    """

    @classmethod
    def bind_to(cls, host: str, port: int) -> PortReservation:
        """Bind ``host:port``; fails if anything holds it, another dicom-api included."""
        try:
            family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
        except ValueError:  # a host name, bound as IPv4 as Sanic's own bind_socket does
            family = socket.AF_INET
        return _bind(cls(family, socket.SOCK_STREAM), (host, port), join=False)

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[Any, ...]]:
        return _worker_socket, (self.family, self.getsockname())


def _worker_socket(family: int, address: tuple[Any, ...]) -> socket.socket:
    """A worker's own socket on the reserved address, made as Sanic unpickles the reservation."""
    return _bind(socket.socket(family, socket.SOCK_STREAM), address, join=True)


def _bind(sock: _Socket, address: tuple[Any, ...], join: bool) -> _Socket:
    """Bind ``sock`` with SO_REUSEADDR and SO_REUSEPORT.

    SO_REUSEPORT set before binding lets ``sock`` join the sockets already on the address;
    set only after (``join=False``), the address must have been free, yet later SO_REUSEPORT
    sockets may still join this one.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if join:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int, workers: int) -> socket.socket | None:
    """The socket to give Sanic, or None to let Sanic bind its own.

    Sanic's own socket is bound once in the main process and shared by every worker: one
    accept queue, from which a worker whose event loop wakes first may take most of a burst
    of new connections (16 keep-alive connections opened at once all on one worker, the
    other idle). With several workers on Linux, a :class:`PortReservation` gives each worker
    its own queue instead. One worker has nothing to balance; other systems either lack
    SO_REUSEPORT or do not balance with it (macOS, the BSDs), so they keep the shared socket.
    """
    if workers < 2 or not sys.platform.startswith("linux"):
        return None
    return PortReservation.bind_to(host, port)


def serve(settings: Settings, host: str, port: int, workers: int, access_log: bool) -> None:
    """Start Sanic's worker manager with ``workers`` processes, each built by the app factory."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from service.app import create_app_from_env

    asyncio.run(run_migrations(settings))
    loader = AppLoader(factory=create_app_from_env)
    app = loader.load()
    app.prepare(
        host=host,
        port=port,
        sock=listening_socket(host, port, workers),
        workers=workers,
        access_log=access_log,
        motd=False,
    )
    Sanic.serve(primary=app, app_loader=loader)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dicom-api`` and ``python -m service``."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        make_clock(settings)  # a bad DICOM_API_CLOCK_FILE stops here, not in each worker
    except SettingsError as exc:
        print(f"dicom-api: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            applied = asyncio.run(run_migrations(settings))
            print(f"applied migrations: {applied or 'none (up to date)'} ({settings.backend_name})")
            return 0
        if args.workers < 1:
            print("dicom-api: --workers must be at least 1", file=sys.stderr)
            return 2
        serve(settings, args.host, args.port, args.workers, args.access_log)
    except StoreUnavailable as exc:
        print(f"dicom-api: database unreachable: {exc}", file=sys.stderr)
        return 1
    return 0
