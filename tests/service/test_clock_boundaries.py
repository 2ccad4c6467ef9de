"""Month, year and leap-day boundaries with the service's injected clock, on every backend.

Each moment below is set on the clock the service reads (a FrozenClock for the quota counters
and the usage record, a clock file for a running server); Redis and PostgreSQL are never asked
for their own time, so these tests give the same result on any day they run.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis

from service.clock import FrozenClock
from service.quota.calendar import month_key, next_month_start
from service.quota.redis_counter import RedisQuotaCounter, counter_key
from service.store.base import AccountStore
from service.usage import UsageRecorder, activity_summary
from tests.conftest import BACKENDS, backend_env
from tests.service.conftest import open_store
from tests.support import (
    REDIS_TEST_URL,
    ClockFile,
    ServerProcess,
    bearer,
    developer_with_key,
    tiny_dicom,
)

# (the last second of a month, the first second of the next)
BOUNDARIES = [
    pytest.param(
        datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        id="month-end",
    ),
    pytest.param(
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        id="year-end",
    ),
    pytest.param(
        datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
        datetime(2028, 3, 1, tzinfo=UTC),
        id="leap-day",
    ),
]
SUMMARY = "/api/developer/profiles/activity-summary/"
ENDPOINT = "/api/dicom/read/file/"


async def new_developer(store: AccountStore) -> tuple[int, int]:
    """(user id, API key id) of a fresh developer with a profile."""
    user = await store.create_user(f"dev-{uuid.uuid4().hex[:12]}@example.com", "h", "", "")
    await store.save_profile(user.id, "testing", "Org")
    key = await store.create_api_key(user.id, "k", uuid.uuid4().hex[:8], "h" * 64)
    return user.id, key.id


def one_day(moment: datetime, count: int = 1) -> dict[str, object]:
    return {
        "daily_activity": [{"day": moment.date().isoformat(), "count": count}],
        "monthly_total": count,
    }


@pytest.mark.parametrize(("last", "first"), BOUNDARIES)
async def test_a_month_ends_at_midnight_utc(counter_and_store, last, first) -> None:
    counter, store = counter_and_store
    usage = UsageRecorder(store)
    user_id, key_id = await new_developer(store)

    before = await counter.reserve(user_id, key_id, last)
    assert (before.month, before.used, before.resets_in) == (month_key(last), 1, 1)
    await usage.record_success(user_id, last)
    after = await counter.reserve(user_id, key_id, first)
    assert (after.month, after.used) == (month_key(first), 1)  # a fresh month
    assert after.resets_in == (next_month_start(first) - first).total_seconds()
    await usage.record_success(user_id, first)

    assert await activity_summary(store, usage, user_id, last) == one_day(last)
    assert await activity_summary(store, usage, user_id, first) == one_day(first)


async def test_the_leap_day_belongs_to_february(counter_and_store) -> None:
    counter, store = counter_and_store
    usage = UsageRecorder(store)
    user_id, key_id = await new_developer(store)
    eve, leap_day = datetime(2028, 2, 28, 23, 59, 59, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)
    for moment in (eve, leap_day):
        assert (await counter.reserve(user_id, key_id, moment)).month == "2028-02"
        await usage.record_success(user_id, moment)
    assert (await counter.reserve(user_id, key_id, leap_day)).used == 3
    assert await activity_summary(store, usage, user_id, leap_day) == {
        "daily_activity": [{"day": "2028-02-28", "count": 1}, {"day": "2028-02-29", "count": 1}],
        "monthly_total": 2,
    }


async def test_a_read_is_counted_in_the_month_of_its_reservation(counter_and_store) -> None:
    counter, store = counter_and_store
    usage = UsageRecorder(store)
    user_id, key_id = await new_developer(store)
    reserved_at = datetime(2026, 12, 31, 23, 59, 59, 900_000, tzinfo=UTC)
    completed_at = reserved_at + timedelta(seconds=1)  # 2027-01-01T00:00:00.9
    decision = await counter.reserve(user_id, key_id, reserved_at)
    await usage.record_success(user_id, reserved_at)  # what the handler passes on success
    assert decision.month == "2026-12"
    assert await activity_summary(store, usage, user_id, completed_at) == {
        "daily_activity": [],
        "monthly_total": 0,
    }
    assert await activity_summary(store, usage, user_id, reserved_at) == one_day(reserved_at)
    assert (await counter.reserve(user_id, key_id, completed_at)).used == 1


@pytest.mark.parametrize(("last", "first"), BOUNDARIES)
async def test_redis_counters_expire_by_the_service_clock(
    pg_url: str, tmp_path, redis_prefix: str, last, first
) -> None:
    store = await open_store("postgres", tmp_path, pg_url, FrozenClock(last))
    client = aioredis.Redis.from_url(REDIS_TEST_URL)
    counter = RedisQuotaCounter(client, store, 5, redis_prefix)
    try:
        user_id, key_id = await new_developer(store)
        for moment in (last, first):
            await counter.reserve(user_id, key_id, moment)
            ttl = await client.ttl(counter_key(redis_prefix, user_id, month_key(moment)))
            # A day after the month ends, counted from the service's moment, not Redis's clock.
            lives = (next_month_start(moment) + timedelta(days=1) - moment).total_seconds()
            assert lives - 5 <= ttl <= lives
    finally:
        await counter.close()
        await store.close()


# Over HTTP, against a running server whose clock is a file the test moves --------------------


@pytest.fixture(scope="module", params=BACKENDS)
def clocked_server(
    request: pytest.FixtureRequest, tmp_path_factory, pg_url: str, redis_prefix: str
) -> Iterator[tuple[ServerProcess, ClockFile]]:
    data_dir = tmp_path_factory.mktemp(f"clocked-{request.param}")
    clock = ClockFile(data_dir / "now")
    env = backend_env(
        request.param, data_dir, pg_url, redis_prefix, DICOM_API_MONTHLY_QUOTA="3", **clock.env()
    )
    server = ServerProcess(env).start()
    yield server, clock
    server.stop()


def read(client: httpx.Client, key: str) -> httpx.Response:
    return client.post(
        ENDPOINT,
        files={"file": ("ct.dcm", tiny_dicom(), "application/dicom")},
        headers={"Authorization": f"ApiKey {key}"},
    )


@pytest.mark.parametrize(("last", "first"), BOUNDARIES)
def test_reads_on_either_side_of_a_boundary_over_http(clocked_server, last, first) -> None:
    server, clock = clocked_server
    clock.set(last)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        tokens, key = developer_with_key(client)
        for _ in range(3):
            assert read(client, key).status_code == 200
        refused = read(client, key)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert client.get(SUMMARY, headers=bearer(tokens)).json() == one_day(last, 3)

        clock.set(first)  # one second later: a new month, a full quota
        fresh = read(client, key)
        assert fresh.status_code == 200
        assert fresh.headers["RateLimit-Remaining"] == "2"
        reset = int(fresh.headers["RateLimit-Reset"])
        assert reset == (next_month_start(first) - first).total_seconds()
        assert client.get(SUMMARY, headers=bearer(tokens)).json() == one_day(first)


def test_a_read_straddling_the_month_end_counts_where_it_was_admitted(clocked_server) -> None:
    """Reserved at 23:59:59 on 31 December, answered in January: it is December's read."""
    server, clock = clocked_server
    reserved_at = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    clock.set(reserved_at)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        tokens, key = developer_with_key(client)
    boundary = "straddle"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="ct.dcm"\r\n'
            "Content-Type: application/dicom\r\n\r\n"
        ).encode()
        + tiny_dicom()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        f"POST {ENDPOINT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ApiKey {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head)
        # The server asks for the body only after it has reserved the quota unit.
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        clock.set(datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        january = client.get(SUMMARY, headers=bearer(tokens)).json()
        assert january == {"daily_activity": [], "monthly_total": 0}
        assert read(client, key).headers["RateLimit-Remaining"] == "2"  # January's first read
        clock.set(reserved_at)
        assert client.get(SUMMARY, headers=bearer(tokens)).json() == one_day(reserved_at)
        assert read(client, key).headers["RateLimit-Remaining"] == "1"  # December: 2 of 3 used
