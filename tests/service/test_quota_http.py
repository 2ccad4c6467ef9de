"""Monthly quota over real HTTP: the spec's 429, RateLimit headers, failed reads not counted,
and exactness under concurrency on a two-worker server, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from service.quota.calendar import seconds_until_reset
from tests.conftest import BACKENDS, backend_env
from tests.support import (
    ORDINARY_DAY,
    ClockFile,
    ServerProcess,
    bearer,
    developer_with_key,
    tiny_dicom,
)

ENDPOINT = "/api/dicom/read/file/"
SUMMARY = "/api/developer/profiles/activity-summary/"


@pytest.fixture(scope="module", params=BACKENDS)
def small_quota_server(
    request: pytest.FixtureRequest, tmp_path_factory, pg_url: str, redis_prefix: str
) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp(f"quota-{request.param}")
    clock = ClockFile(data_dir / "now", ORDINARY_DAY)
    env = backend_env(
        request.param, data_dir, pg_url, redis_prefix, DICOM_API_MONTHLY_QUOTA="3", **clock.env()
    )
    proc = ServerProcess(env).start()
    yield proc
    proc.stop()


def upload(client: httpx.Client, key: str, content: bytes, name: str = "x.dcm") -> httpx.Response:
    return client.post(
        ENDPOINT,
        files={"file": (name, content, "application/dicom")},
        headers={"Authorization": f"ApiKey {key}"},
    )


def test_quota_is_enforced_with_the_spec_body(small_quota_server: ServerProcess) -> None:
    with httpx.Client(base_url=small_quota_server.url, timeout=60) as client:
        tokens, key = developer_with_key(client)
        dicom = tiny_dicom()
        # A failed read (not DICOM) releases its unit: it never counts.
        bad = upload(client, key, b"this is not dicom" * 20, "notes.dcm")
        assert bad.status_code == 400
        remaining = []
        for _ in range(3):
            response = upload(client, key, dicom)
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Limit"] == "3"
            remaining.append(int(response.headers["RateLimit-Remaining"]))
            assert int(response.headers["RateLimit-Reset"]) > 0
            timings = dict(
                item.strip().split(";dur=") for item in response.headers["Server-Timing"].split(",")
            )
            assert {"auth", "quota", "upload", "render"} <= timings.keys()
            assert all(float(value) >= 0 for value in timings.values())
        assert remaining == [2, 1, 0]
        refused = upload(client, key, dicom)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        body = refused.json()
        assert body["error"] == "Monthly API request for '/api/dicom/read/file/' limit exceeded."
        assert body["quota"] == 3 and body["requests_used"] == 4
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["RateLimit-Remaining"] == "0"
        summary = client.get(
            "/api/developer/profiles/activity-summary/", headers=bearer(tokens)
        ).json()
        today = ORDINARY_DAY.date().isoformat()
        assert summary == {"daily_activity": [{"day": today, "count": 3}], "monthly_total": 3}
        assert int(refused.headers["Retry-After"]) == seconds_until_reset(ORDINARY_DAY)


def test_over_quota_request_is_refused_before_the_upload_is_read(
    small_quota_server: ServerProcess,
) -> None:
    with httpx.Client(base_url=small_quota_server.url, timeout=60) as client:
        _, key = developer_with_key(client)
        for _ in range(3):
            assert upload(client, key, tiny_dicom()).status_code == 200
        # Garbage that would be a 400 if parsed: the quota answers first.
        assert upload(client, key, b"garbage").status_code == 429


def test_activity_summary_is_per_developer(small_quota_server: ServerProcess) -> None:
    with httpx.Client(base_url=small_quota_server.url, timeout=60) as client:
        alice, alice_key = developer_with_key(client)
        bob, _ = developer_with_key(client)
        assert upload(client, alice_key, tiny_dicom()).status_code == 200
        assert client.get(SUMMARY, headers=bearer(alice)).json()["monthly_total"] == 1
        assert client.get(SUMMARY, headers=bearer(bob)).json() == {
            "daily_activity": [],
            "monthly_total": 0,
        }


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_exactly_quota_requests_succeed_across_two_workers(
    backend: str, tmp_path_factory, pg_url: str, redis_prefix: str
) -> None:
    data_dir = tmp_path_factory.mktemp(f"concurrency-{backend}")
    clock = ClockFile(data_dir / "now")  # the summary's month must be the reads' month
    env = backend_env(
        backend, data_dir, pg_url, redis_prefix, DICOM_API_MONTHLY_QUOTA="50", **clock.env()
    )
    server = ServerProcess(env, workers=2).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            tokens, key = developer_with_key(client)
        statuses = asyncio.run(_concurrent_uploads(server.url, key, 80))
        assert statuses.count(200) == 50, statuses
        assert statuses.count(429) == 30, statuses
        # Exact at once, whichever worker answers (a new connection each time).
        for _ in range(8):
            assert_summary_total(server.url, tokens, 50)
    finally:
        server.stop()


def assert_summary_total(url: str, tokens: dict[str, str], total: int) -> None:
    """The activity summary, asked on a new connection, shows exactly ``total`` reads."""
    with httpx.Client(base_url=url, timeout=60) as client:
        summary = client.get(SUMMARY, headers=bearer(tokens)).json()
    assert summary["monthly_total"] == total, summary
    assert sum(day["count"] for day in summary["daily_activity"]) == total, summary


@pytest.mark.slow
def test_the_summary_is_exact_at_once_across_two_instances(
    tmp_path_factory, pg_url: str, redis_prefix: str
) -> None:
    """Two instances of two workers sharing PostgreSQL and Redis (the production shape)."""
    clock = ClockFile(tmp_path_factory.mktemp("clock") / "now")
    servers = [
        ServerProcess(
            backend_env(
                "postgres-redis",
                tmp_path_factory.mktemp("instance"),
                pg_url,
                redis_prefix,
                DICOM_API_MONTHLY_QUOTA="50",
                DICOM_API_SECRET_KEY="s" * 48,  # one key for both, as the README asks
                **clock.env(),
            ),
            workers=2,
        ).start()
        for _ in range(2)
    ]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=60) as client:
            tokens, key = developer_with_key(client)

        async def race() -> list[int]:
            halves = [_concurrent_uploads(server.url, key, 40) for server in servers]
            return [status for half in await asyncio.gather(*halves) for status in half]

        statuses = asyncio.run(race())
        assert statuses.count(200) == 50 and statuses.count(429) == 30, statuses
        for server in servers * 4:
            assert_summary_total(server.url, tokens, 50)
    finally:
        for server in servers:
            server.stop()


async def _concurrent_uploads(url: str, key: str, count: int) -> list[int]:
    dicom = tiny_dicom()
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one() -> int:
            response = await client.post(
                ENDPOINT,
                files={"file": ("ct.dcm", dicom, "application/dicom")},
                headers={"Authorization": f"ApiKey {key}"},
            )
            return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deleted_key_stops_working_on_every_worker_at_once(
    backend: str, tmp_path_factory, pg_url: str, redis_prefix: str
) -> None:
    data_dir = tmp_path_factory.mktemp(f"revocation-{backend}")
    server = ServerProcess(backend_env(backend, data_dir, pg_url, redis_prefix), workers=2).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            tokens, key = developer_with_key(client)
        # Enough concurrent requests that both workers authenticate (and cache) the key.
        assert set(asyncio.run(_concurrent_uploads(server.url, key, 20))) == {200}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            [entry] = client.get("/api-keys/", headers=bearer(tokens)).json()
            deleted = client.delete(f"/api-keys/delete/{entry['id']}/", headers=bearer(tokens))
            assert deleted.status_code == 204
        assert set(asyncio.run(_concurrent_uploads(server.url, key, 20))) == {401}
    finally:
        server.stop()
