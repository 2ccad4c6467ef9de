"""Accounts, tokens, profiles and API keys over real HTTP, on both backends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest

from tests.service.test_outages import server_behind_proxy
from tests.support import (
    PASSWORD,
    ServerProcess,
    bearer,
    developer_with_key,
    register,
    tiny_dicom,
    unique_email,
)


def assert_problem(response: httpx.Response, status: int) -> dict:
    """Every error is RFC 9457 problem details with the documented members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body


# registration ------------------------------------------------------------------------------


def test_register_creates_an_account(client: httpx.Client) -> None:
    email = unique_email()
    response = client.post(
        "/api/auth/register/",
        json={"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "L"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email and body["first_name"] == "Ada" and isinstance(body["id"], int)
    assert "password" not in response.text


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "x" * 1025}, "password"),
        ({"password": PASSWORD}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": 12, "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": PASSWORD, "first_name": ["x"]}, "first_name"),
    ],
)
def test_register_rejects_bad_fields(client: httpx.Client, payload: dict, field: str) -> None:
    body = assert_problem(client.post("/api/auth/register/", json=payload), 400)
    assert field in body["errors"]


def test_register_accepts_long_passwords_without_composition_rules(client: httpx.Client) -> None:
    email = unique_email()
    response = client.post("/api/auth/register/", json={"email": email, "password": "a" * 1024})
    assert response.status_code == 201
    response = client.post("/api/token/", json={"email": email, "password": "a" * 1024})
    assert response.status_code == 200


def test_duplicate_email_is_refused_case_insensitively(client: httpx.Client) -> None:
    email = unique_email()
    register(client, email)
    response = client.post(
        "/api/auth/register/", json={"email": email.upper(), "password": PASSWORD}
    )
    body = assert_problem(response, 400)
    assert "already exists" in body["errors"]["email"][0]


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
def test_malformed_json_is_a_400(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/api/auth/register/", content=content, headers={"content-type": "application/json"}
    )
    assert "JSON" in assert_problem(response, 400)["detail"]


# tokens ------------------------------------------------------------------------------------


def test_wrong_credentials_look_the_same_for_known_and_unknown_emails(
    client: httpx.Client,
) -> None:
    email, _ = register(client)
    wrong_password = client.post("/api/token/", json={"email": email, "password": "x" * 12})
    unknown_email = client.post("/api/token/", json={"email": unique_email(), "password": PASSWORD})
    a, b = assert_problem(wrong_password, 401), assert_problem(unknown_email, 401)
    assert a == b | {"instance": a.get("instance")}


def test_tokens_carry_the_required_claims(client: httpx.Client) -> None:
    _, tokens = register(client)
    for kind in ("access", "refresh"):
        header = jwt.get_unverified_header(tokens[kind])
        claims = jwt.decode(tokens[kind], options={"verify_signature": False})
        assert header["alg"] == "HS256"
        assert {"sub", "exp", "iat", "jti", "typ"} <= claims.keys()
        assert claims["typ"] == kind
    access = jwt.decode(tokens["access"], options={"verify_signature": False})
    refresh = jwt.decode(tokens["refresh"], options={"verify_signature": False})
    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600


def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.Client) -> None:
    _, tokens = register(client)
    first = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh"] != tokens["refresh"] and rotated["access"]
    assert client.get("/api/developer/profiles/", headers=bearer(rotated)).status_code == 404
    replay = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert "already used" in assert_problem(replay, 401)["detail"]
    # The family is revoked: the token issued by the first rotation no longer works either.
    after = client.post("/api/token/refresh/", json={"refresh": rotated["refresh"]})
    assert_problem(after, 401)


def test_token_types_are_not_interchangeable(client: httpx.Client) -> None:
    _, tokens = register(client)
    response = client.post("/api/token/refresh/", json={"refresh": tokens["access"]})
    assert_problem(response, 401)
    response = client.get(
        "/api/developer/profiles/", headers={"Authorization": f"Bearer {tokens['refresh']}"}
    )
    assert_problem(response, 401)


def _forge_none_alg(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    encode = lambda part: base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")  # noqa: E731
    return (encode({"alg": "none", "typ": "JWT"}) + b"." + encode(claims) + b".").decode()


def test_forged_and_foreign_tokens_are_refused(client: httpx.Client) -> None:
    _, tokens = register(client)
    claims = jwt.decode(tokens["access"], options={"verify_signature": False})
    forged = [
        _forge_none_alg(tokens["access"]),
        jwt.encode(claims, "another-secret-" + "k" * 64, algorithm="HS256"),
        jwt.encode(claims, "another-secret-" + "k" * 64, algorithm="HS512"),
        # expired an hour before the server's own token, and signed with another key
        jwt.encode(claims | {"exp": claims["iat"] - 3600}, "x" * 64, algorithm="HS256"),
        "not.a.token",
    ]
    for token in forged:
        response = client.get(
            "/api/developer/profiles/", headers={"Authorization": f"Bearer {token}"}
        )
        assert_problem(response, 401)
    assert_problem(client.get("/api/developer/profiles/"), 401)


# tokens whose account does not exist ------------------------------------------------------

BEARER_ROUTES = [
    ("GET", "/api/developer/profiles/"),
    ("POST", "/api/developer/profiles/"),
    ("GET", "/api/developer/profiles/activity-summary/"),
    ("GET", "/api-keys/"),
    ("POST", "/api-keys/"),
    ("DELETE", "/api-keys/delete/1/"),
]
BODIES = {
    "/api/developer/profiles/": {"purpose": "testing", "organization": "Lab"},
    "/api-keys/": {"name": "a key"},
}


def server_secret(server: ServerProcess) -> str:
    """The key the server signs tokens with: from its environment, or kept in its data dir."""
    configured = server.env.get("DICOM_API_SECRET_KEY")
    if configured:
        return configured
    return (Path(server.env["DICOM_API_DATA_DIR"]) / "secret_key").read_text().strip()


def with_subject(server: ServerProcess, token: str, sub: str) -> str:
    """``token`` re-signed with the server's key and only its ``sub`` changed: exp, iat, jti
    (and fam) stay as the server's own clock and records made them."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims | {"sub": sub}, server_secret(server), algorithm="HS256")


def call(client: httpx.Client, method: str, path: str, access: str) -> httpx.Response:
    return client.request(
        method,
        path,
        json=BODIES.get(path) if method == "POST" else None,
        headers={"Authorization": f"Bearer {access}"},
    )


def assert_no_such_account(response: httpx.Response) -> None:
    """The same 401 as any other rejected Bearer token, saying why."""
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["detail"].endswith("rejected: its account does not exist.")


def delete_account(server: ServerProcess, email: str) -> None:
    """Delete an account behind the server's back, as an operator would in the database."""
    key = email.strip().casefold()
    database_url = server.env.get("DATABASE_URL")
    if database_url:

        async def delete() -> str:
            conn = await asyncpg.connect(database_url)
            try:
                return await conn.execute("DELETE FROM users WHERE email_key = $1", key)
            finally:
                await conn.close()

        assert asyncio.run(delete()) == "DELETE 1"
        return
    path = Path(server.env["DICOM_API_DATA_DIR"]) / "dicom-api.sqlite3"
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        conn.execute("PRAGMA foreign_keys = ON")
        assert conn.execute("DELETE FROM users WHERE email_key = ?", (key,)).rowcount == 1


@pytest.mark.parametrize("sub", ["999999999", str(10**30), str(2**63), "0", "-1"])
def test_signed_tokens_for_accounts_that_never_existed_are_401(
    client: httpx.Client, server: ServerProcess, sub: str
) -> None:
    _, tokens = register(client)
    genuine = jwt.decode(tokens["access"], options={"verify_signature": False})["sub"]
    # The re-signing is sound: with the genuine subject the token is honoured.
    resigned = with_subject(server, tokens["access"], genuine)
    assert_problem(call(client, "GET", "/api/developer/profiles/", resigned), 404)
    access = with_subject(server, tokens["access"], sub)
    for method, path in BEARER_ROUTES:
        assert_no_such_account(call(client, method, path, access))
    refresh = with_subject(server, tokens["refresh"], sub)
    assert_no_such_account(client.post("/api/token/refresh/", json={"refresh": refresh}))
    # Nothing was rotated: the genuine refresh token, of the same jti, still rotates.
    response = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert response.status_code == 200, response.text


def test_tokens_that_outlive_their_account_are_401(
    client: httpx.Client, server: ServerProcess
) -> None:
    email, tokens = register(client)
    delete_account(server, email)
    for method, path in BEARER_ROUTES:
        assert_no_such_account(call(client, method, path, tokens["access"]))
    response = client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})
    assert_no_such_account(response)


def test_bearer_routes_are_503_while_the_database_is_down(tmp_path: Path, pg_url: str) -> None:
    # The guard reads the account on every Bearer request: an outage is a 503, not a 401.
    with (
        server_behind_proxy(tmp_path, pg_url) as (server, proxy),
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        _, tokens = register(client)
        proxy.stop()
        for response in (
            client.get("/api/developer/profiles/", headers=bearer(tokens)),
            client.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}),
        ):
            assert_problem(response, 503)
            assert int(response.headers["retry-after"]) > 0


# profiles ----------------------------------------------------------------------------------


def test_profile_create_update_and_read(client: httpx.Client) -> None:
    _, tokens = register(client)
    assert_problem(client.get("/api/developer/profiles/", headers=bearer(tokens)), 404)
    payload = {"purpose": "testing", "organization": "My Organization"}
    response = client.post("/api/developer/profiles/", json=payload, headers=bearer(tokens))
    assert response.status_code == 201 and response.json() == payload
    update = {"purpose": "research", "organization": "Lab"}
    response = client.post("/api/developer/profiles/", json=update, headers=bearer(tokens))
    assert response.status_code == 200 and response.json() == update
    assert client.get("/api/developer/profiles/", headers=bearer(tokens)).json() == update


def test_profile_purpose_must_be_known(client: httpx.Client) -> None:
    _, tokens = register(client)
    response = client.post(
        "/api/developer/profiles/",
        json={"purpose": "mining", "organization": "X"},
        headers=bearer(tokens),
    )
    assert "purpose" in assert_problem(response, 400)["errors"]


# api keys ----------------------------------------------------------------------------------


def test_api_keys_need_a_developer_profile(client: httpx.Client) -> None:
    _, tokens = register(client)
    body = assert_problem(client.get("/api-keys/", headers=bearer(tokens)), 403)
    assert "profile" in body["detail"]
    response = client.post("/api-keys/", json={"name": "k"}, headers=bearer(tokens))
    assert_problem(response, 403)


def test_api_key_create_list_delete(client: httpx.Client) -> None:
    tokens, key = developer_with_key(client)
    prefix, _, secret = key.partition(".")
    assert len(prefix) == 8 and len(secret) >= 32 and (prefix + secret).isalnum()
    listing = client.get("/api-keys/", headers=bearer(tokens))
    assert listing.status_code == 200
    [entry] = listing.json()
    assert set(entry) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert entry["prefix"] == prefix and secret not in listing.text
    response = client.delete(f"/api-keys/delete/{entry['id']}/", headers=bearer(tokens))
    assert response.status_code == 204 and response.content == b""
    assert client.get("/api-keys/", headers=bearer(tokens)).json() == []
    assert_problem(client.delete(f"/api-keys/delete/{entry['id']}/", headers=bearer(tokens)), 404)


def test_nobody_touches_another_users_keys(client: httpx.Client) -> None:
    alice, _alice_key = developer_with_key(client)
    bob, _ = developer_with_key(client)
    [alice_entry] = client.get("/api-keys/", headers=bearer(alice)).json()
    bob_listing = client.get("/api-keys/", headers=bearer(bob)).json()
    assert alice_entry["id"] not in {entry["id"] for entry in bob_listing}
    response = client.delete(f"/api-keys/delete/{alice_entry['id']}/", headers=bearer(bob))
    assert_problem(response, 404)
    assert len(client.get("/api-keys/", headers=bearer(alice)).json()) == 1
    for pk in ("abc", "-1", "1.5", "99999999999999999999999"):
        assert_problem(client.delete(f"/api-keys/delete/{pk}/", headers=bearer(bob)), 404)


def test_api_key_name_is_required(client: httpx.Client) -> None:
    tokens, _ = developer_with_key(client)
    response = client.post("/api-keys/", json={}, headers=bearer(tokens))
    assert "name" in assert_problem(response, 400)["errors"]


def test_deleted_key_stops_working_at_once(client: httpx.Client) -> None:
    tokens, key = developer_with_key(client)
    files = {"file": ("tiny.dcm", tiny_dicom(), "application/dicom")}
    response = client.post(
        "/api/dicom/read/file/", files=files, headers={"Authorization": f"ApiKey {key}"}
    )
    assert response.status_code == 200, response.text
    [entry] = client.get("/api-keys/", headers=bearer(tokens)).json()
    client.delete(f"/api-keys/delete/{entry['id']}/", headers=bearer(tokens))
    response = client.post(
        "/api/dicom/read/file/", files=files, headers={"Authorization": f"ApiKey {key}"}
    )
    assert_problem(response, 401)


# health ------------------------------------------------------------------------------------


def test_health_and_ready(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_unknown_routes_and_methods_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.get("/api/token/"), 405)


def test_oversized_bodies_on_json_routes_are_413(client: httpx.Client) -> None:
    big = b'{"email": "' + b"a" * 200_000 + b'"}'
    response = client.post("/api/token/", content=big, headers={"content-type": "application/json"})
    assert_problem(response, 413)
    assert client.get("/health").status_code == 200
