"""Security headers, on both backends. ``X-Content-Type-Options: nosniff`` is on every answer:
handlers' responses, problems (Sanic's own 404, 405 and 413 among them) and the DICOM answer
written in pieces. ``Cache-Control: no-store`` is on the answers of the routes that hand out
tokens or keys, and not elsewhere."""

from __future__ import annotations

import io
import socket

import httpx
import numpy as np
import orjson
import pydicom
import pytest

from service.errors import ApiError, ServiceUnavailable, Unauthorized, ValidationFailed
from service.problems import problem_response
from tests.support import (
    PASSWORD,
    ServerProcess,
    bearer,
    developer_with_key,
    register,
    tiny_dicom,
    unique_email,
)

READ = "/api/dicom/read/file/"


def read(client: httpx.Client, key: str, content: bytes, **form: str) -> httpx.Response:
    return client.post(
        READ,
        files={"file": ("file.dcm", content, "application/octet-stream")},
        data=form,
        headers={"Authorization": f"ApiKey {key}"},
    )


def assert_nosniff(response: httpx.Response) -> None:
    assert response.headers.get("x-content-type-options") == "nosniff", (
        response.request.method,
        response.request.url.path,
        response.status_code,
    )


def test_every_kind_of_answer_says_nosniff(client: httpx.Client) -> None:
    tokens, key = developer_with_key(client)
    [entry] = client.get("/api-keys/", headers=bearer(tokens)).json()
    json_header = {"content-type": "application/json"}
    answers = {
        "health": client.get("/health"),
        "ready": client.get("/ready"),
        "unknown route": client.get("/no/such/route"),
        "wrong method": client.get("/api/token/"),
        "too large": client.post("/api/token/", content=b"{" + b" " * 200_000, headers=json_header),
        "not JSON": client.post("/api/auth/register/", content=b"{x", headers=json_header),
        "invalid field": client.post("/api/auth/register/", json={"email": "x"}),
        "registered": client.post(
            "/api/auth/register/", json={"email": unique_email(), "password": PASSWORD}
        ),
        "no credentials": client.get("/api/developer/profiles/"),
        "profile": client.get("/api/developer/profiles/", headers=bearer(tokens)),
        "summary": client.get("/api/developer/profiles/activity-summary/", headers=bearer(tokens)),
        "small read": read(client, key, tiny_dicom()),
        "not DICOM": read(client, key, b"not a DICOM file at all" * 20),
        "no key": client.post(READ, files={"file": ("f.dcm", tiny_dicom())}),
        "deleted": client.delete(f"/api-keys/delete/{entry['id']}/", headers=bearer(tokens)),
    }
    assert answers["health"].status_code == 200 and answers["small read"].status_code == 200
    assert answers["deleted"].status_code == 204 and answers["too large"].status_code == 413
    assert {answers[name].status_code for name in ("unknown route", "wrong method")} == {404, 405}
    for response in answers.values():
        assert_nosniff(response)


def test_errors_found_by_the_http_parser_say_nosniff(server: ServerProcess) -> None:
    # A request line with a raw non-ASCII byte never reaches a route: Sanic answers it itself,
    # through the problem handler.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /health/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 400 "), head
    assert b"\r\nx-content-type-options: nosniff" in head


def test_read_answers_say_nosniff_and_no_store_even_in_pieces(client: httpx.Client) -> None:
    # Answers of a megabyte or more are written by service.http.send_answer after their
    # headers, through request.respond rather than a returned response.
    _, key = developer_with_key(client)
    rng = np.random.default_rng(11)
    ds = pydicom.dcmread(io.BytesIO(tiny_dicom(rows=256, columns=256, frames=24)))
    ds.PixelData = rng.integers(0, 4096, (24, 256, 256), dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    response = read(client, key, buffer.getvalue(), window="2048,4096")
    assert response.status_code == 200, response.text
    assert int(response.headers["content-length"]) == len(response.content) > 1024 * 1024
    assert_nosniff(response)
    assert response.headers["cache-control"] == "no-store"  # patient data
    small = read(client, key, tiny_dicom())
    assert small.status_code == 200 and small.headers["cache-control"] == "no-store"


def test_answers_carrying_tokens_or_keys_are_not_stored(client: httpx.Client) -> None:
    email, tokens = register(client)
    developer, _ = developer_with_key(client)
    answers = [
        client.post("/api/token/", json={"email": email, "password": PASSWORD}),
        client.post("/api/token/", json={"email": email, "password": "wrong password"}),
        client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}),
        client.post("/api-keys/", json={"name": "another"}, headers=bearer(developer)),
        client.get("/api-keys/", headers=bearer(developer)),
    ]
    assert [response.status_code for response in answers] == [200, 401, 200, 201, 200]
    assert "key" in answers[3].json() and "access" in answers[0].json()
    for response in answers:
        assert response.headers.get("cache-control") == "no-store", response.request.url
        assert_nosniff(response)


def test_other_answers_leave_caching_alone(client: httpx.Client) -> None:
    _, tokens = register(client)
    answers = [
        client.get("/health"),
        client.post("/api/auth/register/", json={"email": unique_email(), "password": PASSWORD}),
        client.post(
            "/api/developer/profiles/",
            json={"purpose": "testing", "organization": "Lab"},
            headers=bearer(tokens),
        ),
        client.get("/no/such/route"),
    ]
    assert [response.status_code for response in answers] == [200, 201, 201, 404]
    for response in answers:
        assert "cache-control" not in response.headers, response.request.url


@pytest.mark.parametrize(
    "error",
    [
        ValidationFailed({"email": ["is wrong"]}),
        Unauthorized("no", scheme="ApiKey"),
        ServiceUnavailable("down", retry_after=7),
    ],
    ids=lambda e: type(e).__name__,
)
def test_problems_carry_nosniff_without_the_middleware(error: ApiError) -> None:
    # Sanic runs response middleware once per request: a problem answered after a handler has
    # called request.respond skips it, so problem_response sets the header itself.
    response = problem_response(error, "/x")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for name, value in error.headers.items():  # the error's own headers are kept
        assert response.headers[name] == value
    assert orjson.loads(response.body)["status"] == error.status
