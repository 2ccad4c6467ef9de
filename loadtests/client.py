"""HTTP clients for the benchmark: one sequential client, N concurrent clients, an async rate run.

Request bodies are built once per case (multipart by hand) and sent with the stdlib
``http.client`` (one ``sendall``), so the client's own CPU time is spent on the wire, not on
re-encoding or re-chunking a 100 MB upload. The rate runs use one async load generator
(:func:`drive`, httpx's async client) for dicom-api and Orthanc alike.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson

from loadtests.inputs import BenchInput
from loadtests.measure import parse_server_timing

ENDPOINT = "/api/dicom/read/file/"
TIMEOUT_S = 600.0
TIMEOUT = httpx.Timeout(TIMEOUT_S, connect=10.0)


@dataclass(frozen=True)
class PreparedUpload:
    """A ready-to-send multipart body for one input and one ``return_format``."""

    body: bytes
    content_type: str

    @classmethod
    def build(cls, item: BenchInput, fmt: str) -> PreparedUpload:
        """Encode ``file`` and ``return_format`` as multipart/form-data."""
        boundary = f"bench{secrets.token_hex(12)}"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="return_format"\r\n\r\n'
            f"{fmt}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{item.filename}"\r\n'
            "Content-Type: application/dicom\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        return cls(head + item.data + tail, f"multipart/form-data; boundary={boundary}")

    def headers(self, auth: dict[str, str]) -> dict[str, str]:
        """Request headers: the API key plus the multipart content type."""
        return {**auth, "Content-Type": self.content_type}


def image_bytes(body: bytes) -> tuple[int, int]:
    """(number of images, total decoded image bytes) of a read-file JSON answer."""
    images = orjson.loads(body).get("Images", [])
    return len(images), sum(len(base64.b64decode(image)) for image in images)


class Connection:
    """One keep-alive HTTP/1.1 connection (stdlib ``http.client``).

    The stdlib client sends a prepared body with a single ``sendall`` and reads the answer in
    one go; httpx's chunked writes cost about 0.5 s of client CPU per 100 MB upload, which would
    be charged to the server in the large-file rows.
    """

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        if url.hostname is None:
            raise ValueError(f"no host in {base_url!r}")
        self._conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT_S)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer: (status, body)."""
        self._conn.request(method, path, body=body, headers=headers or {})
        response = self._conn.getresponse()
        return response.status, response.read()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST a prepared body: (status, answer body)."""
        return self.request("POST", path, body, headers)

    def close(self) -> None:
        """Close the socket."""
        self._conn.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def post_upload(conn: Connection, upload: PreparedUpload, auth: dict[str, str]) -> bytes:
    """One upload; raises on any status but 200 so that errors never count as fast answers."""
    status, body = conn.post(ENDPOINT, upload.body, upload.headers(auth))
    if status != 200:
        raise RuntimeError(f"upload answered {status}: {body[:300]!r}")
    return body


def sequential(
    base_url: str, upload: PreparedUpload, auth: dict[str, str], repeat: int
) -> tuple[list[float], bytes]:
    """One client, one keep-alive connection: one warm-up, then ``repeat`` timed requests."""
    seconds: list[float] = []
    with Connection(base_url) as conn:
        body = post_upload(conn, upload, auth)
        for _ in range(repeat):
            start = time.perf_counter()
            body = post_upload(conn, upload, auth)
            seconds.append(time.perf_counter() - start)
    return seconds, body


@dataclass
class ConcurrentResult:
    """Latencies of every request and the wall time of the whole concurrent run."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)


def concurrent(
    base_url: str, upload: PreparedUpload, auth: dict[str, str], clients: int, repeat: int
) -> ConcurrentResult:
    """``clients`` threads, each with its own connection, each sending ``repeat`` requests."""
    result = ConcurrentResult()
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def run() -> None:
        with Connection(base_url) as conn:
            try:
                post_upload(conn, upload, auth)  # warm-up on this connection
            finally:
                ready.wait()
            for _ in range(repeat):
                start = time.perf_counter()
                try:
                    post_upload(conn, upload, auth)
                except (RuntimeError, OSError, http.client.HTTPException) as exc:
                    with lock:
                        result.errors.append(str(exc))
                    continue
                with lock:
                    result.latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=run, name=f"client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall = time.perf_counter() - start
    return result


#: One "request" of a rate run: whatever HTTP exchanges it takes on the shared async client.
#: Returns the response's Server-Timing durations (ms; ``{}`` when there are none) on success,
#: ``None`` on failure.
RateRequest = Callable[[httpx.AsyncClient], Awaitable[dict[str, float] | None]]


@dataclass
class RateResult:
    """Outcome of a bounded request-rate run."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall: float = 0.0
    timings: list[dict[str, float]] = field(default_factory=list)


async def _drive(
    base_url: str, send: RateRequest, connections: int, requests: int, seconds: float
) -> RateResult:
    """``connections`` coroutines share one pooled client; each sends until the budget ends."""
    result = RateResult()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    remaining = requests

    async with httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, limits=limits) as client:

        async def worker(deadline: float) -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                start = time.perf_counter()
                try:
                    timing = await send(client)
                except httpx.HTTPError:
                    timing = None
                if timing is None:
                    result.errors += 1
                    continue
                result.latencies.append(time.perf_counter() - start)
                if timing:
                    result.timings.append(timing)

        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds) for _ in range(connections)))
        result.wall = time.perf_counter() - start
    return result


def drive(
    base_url: str,
    send: RateRequest,
    connections: int = 16,
    requests: int = 2000,
    seconds: float = 30.0,
) -> RateResult:
    """The async load generator: up to ``requests`` calls of ``send`` over ``connections``
    keep-alive connections, for at most ``seconds``. Used for dicom-api and Orthanc alike."""
    return asyncio.run(_drive(base_url, send, connections, requests, seconds))


def read_file_request(upload: PreparedUpload, auth: dict[str, str]) -> RateRequest:
    """One dicom-api upload; success is a 200, and its ``Server-Timing`` header is kept."""
    headers = upload.headers(auth)

    async def send(client: httpx.AsyncClient) -> dict[str, float] | None:
        response = await client.post(ENDPOINT, content=upload.body, headers=headers)
        if response.status_code != 200:
            return None
        return parse_server_timing(response.headers.get("server-timing", ""))

    return send


def rate(
    base_url: str,
    upload: PreparedUpload,
    auth: dict[str, str],
    connections: int = 16,
    requests: int = 2000,
    seconds: float = 30.0,
) -> RateResult:
    """Send up to ``requests`` uploads over ``connections`` connections for at most ``seconds``."""
    return drive(base_url, read_file_request(upload, auth), connections, requests, seconds)
