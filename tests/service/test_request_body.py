"""Large upload bodies, read from the socket straight into their buffer (service.body), spoken
to over raw sockets: the answer matches Sanic's own streaming path, a pipelined request after
the body is still parsed as one, ``Expect: 100-continue`` is honoured, and a body cut short gets
a 400 while the server keeps serving."""

from __future__ import annotations

import resource
import secrets
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import orjson
import psutil
import pytest

from tests.support import ServerProcess, clean_env, developer_with_key, tiny_dicom

ENDPOINT = "/api/dicom/read/file/"


@pytest.fixture(scope="module")
def upload() -> tuple[bytes, str]:
    """A multipart body of about 3 MB (six 512x512 16-bit frames) and its content type."""
    boundary = f"test{secrets.token_hex(8)}"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="return_format"\r\n\r\njpeg\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="ct.dcm"\r\n'
        "Content-Type: application/dicom\r\n\r\n"
    ).encode()
    body = head + tiny_dicom(rows=512, columns=512, frames=6) + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def request_head(server, key: str, content_type: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {ENDPOINT} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        f"Authorization: ApiKey {key}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Responses:
    """Reads HTTP/1.1 responses (Content-Length framed) off one socket, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body) of the next response."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


@pytest.fixture
def connection(server) -> Iterator[tuple[socket.socket, Responses]]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        yield sock, Responses(sock)


def key_of(api) -> str:
    return api[1]["Authorization"].removeprefix("ApiKey ")


def test_socket_read_body_answers_like_sanics_streaming_path(api, server, upload, connection):
    body, content_type = upload
    sock, responses = connection
    # Pipelined: the upload and a health check in one write. The health check must be parsed
    # from exactly where the body ends.
    sock.sendall(
        request_head(server, key_of(api), content_type, len(body))
        + body
        + f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    )
    status, _, answer = responses.next()
    assert status == 200, answer[:300]
    health_status, _, health = responses.next()
    assert health_status == 200 and orjson.loads(health)["status"] == "ok"

    # The same upload sent chunked takes Sanic's own streaming body: the same answer.
    client, headers = api
    chunked = client.post(
        ENDPOINT,
        content=(body[i : i + 65536] for i in range(0, len(body), 65536)),
        headers={**headers, "Content-Type": content_type},
    )
    assert chunked.status_code == 200
    assert "content-length" not in chunked.request.headers
    assert orjson.loads(answer) == chunked.json()
    assert len(chunked.json()["Images"]) == 6


def test_expect_100_continue_is_answered_before_the_body(api, server, upload, connection):
    body, content_type = upload
    sock, responses = connection
    sock.sendall(request_head(server, key_of(api), content_type, len(body), "Expect: 100-continue"))
    assert responses.next()[0] == 100
    sock.sendall(body)
    status, _, answer = responses.next()
    assert status == 200, answer[:300]
    assert len(orjson.loads(answer)["Images"]) == 6


def test_a_body_cut_short_gets_a_400_and_costs_no_quota(api, server, upload, connection):
    body, content_type = upload
    client, headers = api

    def remaining_after_upload() -> int:
        response = client.post(
            ENDPOINT, content=body, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code == 200
        return int(response.headers["ratelimit-remaining"])

    before = remaining_after_upload()
    sock, responses = connection
    sock.sendall(request_head(server, key_of(api), content_type, len(body)))
    sock.sendall(body[: len(body) // 2])
    time.sleep(0.5)  # the server is now reading the body from the socket itself
    sock.shutdown(socket.SHUT_WR)
    status, problem_headers, problem = responses.next()
    assert status == 400
    assert problem_headers["content-type"] == "application/problem+json"
    assert "shorter than its Content-Length" in orjson.loads(problem)["detail"]
    # The server still serves, and the cut-short upload gave its unit of the quota back.
    assert remaining_after_upload() == before - 1


def test_a_reset_mid_body_is_no_server_error(api, server, upload) -> None:
    body, content_type = upload
    errors_before = server.log().count("unhandled")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request_head(server, key_of(api), content_type, len(body)))
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.5)  # the server is now reading the body from the socket itself
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Closed with SO_LINGER 0: a reset. The server logs no error and keeps serving.
    client, headers = api
    response = client.post(
        ENDPOINT, content=body, headers={**headers, "Content-Type": content_type}
    )
    assert response.status_code == 200
    assert server.log().count("unhandled") == errors_before


@pytest.fixture(scope="module")
def impatient(tmp_path_factory) -> Iterator[tuple[ServerProcess, str]]:
    """A server that gives up on a request after 2 s without a byte, and an API key for it."""
    data_dir = tmp_path_factory.mktemp("impatient")
    env = clean_env({"DICOM_API_DATA_DIR": str(data_dir), "DICOM_API_RESPONSE_TIMEOUT": "2"})
    server = ServerProcess(env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            _, key = developer_with_key(client)
        yield server, key
    finally:
        server.stop()


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 200 * 1024], ids=["socket-read", "sanic-read"])
def test_a_stalled_upload_is_answered_503_and_closed(impatient, upload, size) -> None:
    server, key = impatient
    body, content_type = upload
    body = body[:size]  # what is declared; half of it is sent, then nothing
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request_head(server, key, content_type, len(body)))
        sock.sendall(body[: len(body) // 2])
        started = time.monotonic()
        status, _, problem = Responses(sock).next()
        waited = time.monotonic() - started
        assert status == 503, problem
        assert sock.recv(1) == b""  # and the connection is closed
    # Answered by the timeout, not by anything the client did (it never sent the rest).
    assert 1.5 < waited < 20
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").status_code == 200


def test_an_upload_too_large_for_memory_now_gets_a_503(impatient, upload) -> None:
    # The worker's address space is capped at what it uses plus 256 MB, so the 400 MB buffer
    # for the declared body cannot be mapped: a clear 503, and the worker carries on.
    server, key = impatient
    _, content_type = upload
    assert server.process is not None
    (worker,) = [
        process
        for process in psutil.Process(server.process.pid).children(recursive=True)
        if process.environ().get("SANIC_WORKER_NAME", "").startswith("Sanic-Server")
    ]
    headroom = worker.memory_info().vms + 256 * 1024 * 1024
    soft, hard = resource.prlimit(worker.pid, resource.RLIMIT_AS)
    resource.prlimit(worker.pid, resource.RLIMIT_AS, (headroom, hard))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(request_head(server, key, content_type, 400 * 1024 * 1024))
            status, headers, problem = Responses(sock).next()
        assert status == 503, problem
        assert headers.get("retry-after"), (headers, problem)
        assert "in memory" in orjson.loads(problem)["detail"]
    finally:
        resource.prlimit(worker.pid, resource.RLIMIT_AS, (soft, hard))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").status_code == 200
