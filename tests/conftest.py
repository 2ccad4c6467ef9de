"""Shared fixtures: a fresh PostgreSQL database and Redis key prefix per test run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.servers import admin_sql
from tests.support import PG_ADMIN_URL, REDIS_TEST_URL, ServerProcess, clean_env

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database created for this test run and dropped after it."""
    name = f"dicom_api_test_{RUN_ID}"
    try:
        admin_sql(f'CREATE DATABASE "{name}"', PG_ADMIN_URL)
    except OSError as exc:
        pytest.exit(f"PostgreSQL is needed at {PG_ADMIN_URL} (set DICOM_API_TEST_PG): {exc}", 3)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', PG_ADMIN_URL)


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix for this run; its keys are deleted afterwards."""
    prefix = f"dicom-api-test-{RUN_ID}:"
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.exit(f"Redis is needed at {REDIS_TEST_URL} (set DICOM_API_TEST_REDIS): {exc}", 3)
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


BACKENDS = ("embedded", "postgres-redis")


def backend_env(
    backend: str, data_dir: Path, pg_url: str, redis_prefix: str, **extra: str
) -> dict[str, str]:
    """Environment for a server on one backend: embedded SQLite, or PostgreSQL and Redis."""
    env = {"DICOM_API_DATA_DIR": str(data_dir), **extra}
    if backend == "postgres-redis":
        env.update(
            DATABASE_URL=pg_url, REDIS_URL=REDIS_TEST_URL, DICOM_API_REDIS_PREFIX=redis_prefix
        )
    return clean_env(env)


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_url: str,
    redis_prefix: str,
) -> Iterator[ServerProcess]:
    """A running server per backend, shared by the contract suite."""
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    proc = ServerProcess(backend_env(request.param, data_dir, pg_url, redis_prefix)).start()
    yield proc
    proc.stop()
