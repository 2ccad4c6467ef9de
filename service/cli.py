"""The ``dicom-api`` console script: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from service.settings import Settings, SettingsError, load_settings
from service.store import StoreUnavailable, make_store


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
    store = make_store(settings)
    await store.open()
    try:
        return await store.migrate()
    finally:
        await store.close()


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
