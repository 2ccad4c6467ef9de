"""Text no field may hold (NUL and the other control characters), ids no table can hold, and
credentials carrying such bytes: a 400 naming the field, a 404 or a 401, never a 500, on both
backends (PostgreSQL refuses NUL in text and integers beyond 64 bits; SQLite stores the one and
overflows on the other)."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from service.http import CONTROL_CHARACTERS_MESSAGE, DATABASE_ID_MAX, parse_id
from tests.support import (
    PASSWORD,
    ServerProcess,
    bearer,
    developer_with_key,
    unique_email,
)


@pytest.fixture
def developer(client: httpx.Client) -> tuple[dict[str, str], str]:
    """(tokens, API key) of a fresh developer with a profile."""
    return developer_with_key(client)


MARKER = "Lovelace"  # put beside the control character: the answer must not echo the value


def assert_refused_for(response: httpx.Response, field: str) -> None:
    """A validation problem whose only complaint is the control character in ``field``."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/validation-error" and body["status"] == 400
    assert body["errors"] == {field: [CONTROL_CHARACTERS_MESSAGE]}
    assert field in body["detail"]
    assert MARKER not in response.text and "\\u0000" not in response.text


# Every text field of every route, with NUL inside it: (route, field, payload).
NUL_CASES = [
    ("/api/token/", "email", {"email": "\u0000", "password": "x"}),  # the reported request
    ("/api/token/", "email", {"email": f"{MARKER}\u0000@example.com", "password": PASSWORD}),
    ("/api/token/", "password", {"email": "a@example.com", "password": f"{MARKER}\u0000x"}),
    ("/api/auth/register/", "email", {"email": f"a\u0000{MARKER}@example.com"}),
    ("/api/auth/register/", "password", {"password": f"{PASSWORD}\u0000{MARKER}"}),
    ("/api/auth/register/", "first_name", {"first_name": f"Ada\u0000{MARKER}"}),
    ("/api/auth/register/", "last_name", {"last_name": f"{MARKER}\u0000"}),
    ("/api/token/refresh/", "refresh", {"refresh": "\u0000"}),
    ("/api/token/refresh/", "refresh", {"refresh": f"eyJ\u0000{MARKER}.e30.x"}),
    ("/api/developer/profiles/", "organization", {"organization": f"{MARKER}\u0000Lab"}),
    ("/api/developer/profiles/", "purpose", {"purpose": "test\u0000ing"}),
    ("/api-keys/", "name", {"name": f"{MARKER}\u0000"}),
]
VALID = {
    "/api/auth/register/": lambda: {"email": unique_email(), "password": PASSWORD},
    "/api/developer/profiles/": lambda: {"purpose": "testing", "organization": "Lab"},
    "/api-keys/": lambda: {"name": "a key"},
}


@pytest.mark.parametrize(("route", "field", "payload"), NUL_CASES)
def test_nul_in_any_text_field_is_a_400_naming_the_field(
    client: httpx.Client,
    developer: tuple[dict[str, str], str],
    route: str,
    field: str,
    payload: dict[str, Any],
) -> None:
    body = VALID.get(route, dict)() | payload
    tokens, _ = developer
    response = client.post(route, json=body, headers=bearer(tokens))
    assert_refused_for(response, field)


@pytest.mark.parametrize(
    "character",
    ["\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"],
    ids=lambda c: f"U+{ord(c):04X}",
)
@pytest.mark.parametrize("field", ["first_name", "password"])
def test_other_control_characters_are_refused_too(
    client: httpx.Client, character: str, field: str
) -> None:
    email = unique_email()
    payload = {"email": email, "password": PASSWORD, field: f"{PASSWORD}{character}{MARKER}"}
    assert_refused_for(client.post("/api/auth/register/", json=payload), field)
    # Nothing was stored: the same email registers cleanly afterwards.
    retry = client.post("/api/auth/register/", json={"email": email, "password": PASSWORD})
    assert retry.status_code == 201, retry.text


def test_printable_unicode_and_spaces_are_kept(client: httpx.Client) -> None:
    email = unique_email()
    password = "  a pass phrase, with spaces: Zoë 李 ✓  "
    response = client.post(
        "/api/auth/register/",
        json={
            "email": email,
            "password": password,
            "first_name": "\tZoë\n",  # stripped first: no control character is left
            "last_name": "O'Brien-Łukasz 李",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == "Zoë"
    assert response.json()["last_name"] == "O'Brien-Łukasz 李"
    login = client.post("/api/token/", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    # Passwords are never stripped: the same words without the spaces are another password.
    stripped = client.post("/api/token/", json={"email": email, "password": password.strip()})
    assert stripped.status_code == 401


# ids in the path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pk",
    [
        str(10**30),
        str(2**63),  # one past the largest BIGINT
        str(2**63 - 1),
        "1" * 5000,  # longer than Python converts to an int by default
        "0",
        "-1",
        "+1",
        "1e3",
        "²",
        "\u0000",
    ],
)
def test_key_ids_no_table_can_hold_are_404(
    client: httpx.Client, developer: tuple[dict[str, str], str], pk: str
) -> None:
    tokens, _ = developer
    response = client.delete(f"/api-keys/delete/{quote(pk)}/", headers=bearer(tokens))
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert len(client.get("/api-keys/", headers=bearer(tokens)).json()) == 1


def test_only_ascii_digits_within_64_bits_are_ids() -> None:
    # Sanic hands path parameters over still percent-encoded, and refuses non-ASCII bytes in a
    # URL, but the parser does not count on either: int() reads U+0661 (Arabic-Indic one) as 1,
    # and raises on "²" although "²".isdigit() is true.
    assert [parse_id(text) for text in ("1", "42", "0042", str(DATABASE_ID_MAX))] == [
        1,
        42,
        42,
        DATABASE_ID_MAX,
    ]
    for text in (
        "",
        "0",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1_000",
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        "²",
        "\uff11",  # FULLWIDTH DIGIT ONE
        str(DATABASE_ID_MAX + 1),
    ):
        assert parse_id(text) is None, text
    assert parse_id("9" * 5000) is None
    assert parse_id("0" * 30 + "1") is None  # longer than any id is written


# credentials in headers --------------------------------------------------------------------


def raw_request(server: ServerProcess, method: str, path: str, authorization: bytes) -> bytes:
    """Send a request whose Authorization header holds bytes httpx refuses to send (NUL);
    returns the status line and headers."""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n".encode()
        + b"Authorization: "
        + authorization
        + b"\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    return answer.partition(b"\r\n\r\n")[0]


def test_credentials_with_nul_are_401(
    server: ServerProcess, developer: tuple[dict[str, str], str]
) -> None:
    tokens, key = developer
    prefix, _, secret = key.partition(".")
    cases = [
        ("POST", "/api/dicom/read/file/", f"ApiKey {prefix[:-1]}\0.{secret}", b"ApiKey"),
        ("POST", "/api/dicom/read/file/", f"ApiKey {prefix}.{secret[:-1]}\0", b"ApiKey"),
        ("POST", "/api/dicom/read/file/", f"ApiKey \0{key}", b"ApiKey"),
        ("GET", "/api-keys/", f"Bearer {tokens['access']}\0", b"Bearer"),
        ("GET", "/api-keys/", "Bearer \0", b"Bearer"),
    ]
    for method, path, authorization, scheme in cases:
        head = raw_request(server, method, path, authorization.encode())
        assert head.startswith(b"HTTP/1.1 401 "), head
        assert b"www-authenticate: " + scheme.lower() in head.lower()
