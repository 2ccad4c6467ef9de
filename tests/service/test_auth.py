"""Password hashing, JWTs and API keys as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from service.auth.api_keys import (
    BASE62,
    generate_api_key,
    hash_secret,
    secret_matches,
    split_api_key,
)
from service.auth.passwords import Passwords
from service.auth.tokens import InvalidToken, TokenIssuer
from service.clock import FrozenClock
from tests.support import ORDINARY_DAY

SECRET = "k" * 64


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords()


def test_passwords_use_argon2id_at_owasp_strength(passwords: Passwords) -> None:
    encoded = passwords.hash("correct horse battery")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(encoded, "correct horse battery")
    assert not passwords.verify(encoded, "wrong")
    assert not passwords.verify("not-a-hash", "anything")


def test_unknown_accounts_are_checked_against_an_equally_costly_hash(
    passwords: Passwords,
) -> None:
    # The dummy hash has the real parameters, so a login for an unknown email does the same
    # argon2id work as a wrong password for a known one.
    real = passwords.hash("x").rsplit("$", 2)[0]
    dummy = passwords._dummy_hash.rsplit("$", 2)[0]
    assert real == dummy
    assert passwords.verify(None, "anything") is False


def test_tokens_round_trip_and_types_are_enforced() -> None:
    issuer = TokenIssuer(SECRET, access_ttl=60, refresh_ttl=600)
    access = issuer.issue(42, "access")
    refresh = issuer.issue(42, "refresh", family="fam-1")
    assert issuer.verify(access.token, "access").user_id == 42
    claims = issuer.verify(refresh.token, "refresh")
    assert (claims.user_id, claims.family, claims.jti) == (42, "fam-1", refresh.jti)
    with pytest.raises(InvalidToken, match="refresh"):
        issuer.verify(access.token, "refresh")
    with pytest.raises(InvalidToken):
        TokenIssuer("x" * 64, 60, 600).verify(access.token, "access")


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "typ"])
def test_every_claim_is_required(missing: str) -> None:
    now = int(ORDINARY_DAY.timestamp())
    claims = {"sub": "1", "exp": now + 60, "iat": now, "jti": "j", "typ": "access"}
    issuer = TokenIssuer(SECRET, 60, 600, FrozenClock(ORDINARY_DAY))
    issuer.verify(jwt.encode(claims, SECRET, algorithm="HS256"), "access")  # complete: valid
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(token, "access")


def test_expiry_is_judged_by_the_service_clock() -> None:
    clock = FrozenClock(ORDINARY_DAY)
    issuer = TokenIssuer(SECRET, access_ttl=60, refresh_ttl=600, clock=clock)
    token = issuer.issue(1, "access").token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == int(ORDINARY_DAY.timestamp())
    assert claims["exp"] == claims["iat"] + 60
    clock.advance(timedelta(seconds=59))
    assert issuer.verify(token, "access").user_id == 1
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token, "access")
    # Years away from the real date, in either direction, only the service clock counts.
    for at in (datetime(2031, 2, 28, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC)):
        clock.set(at)
        fresh = issuer.issue(2, "refresh").token
        assert issuer.verify(fresh, "refresh").user_id == 2


@pytest.mark.parametrize("exp", ["soon", "1e30", True, None, [1]])
def test_a_malformed_expiry_is_an_invalid_token(exp: object) -> None:
    now = int(ORDINARY_DAY.timestamp())
    claims = {"sub": "1", "exp": exp, "iat": now, "jti": "j", "typ": "access"}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        TokenIssuer(SECRET, 60, 600, FrozenClock(ORDINARY_DAY)).verify(token, "access")


def test_api_keys_have_the_documented_shape() -> None:
    keys = {generate_api_key().key for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        prefix, _, secret = key.partition(".")
        assert len(prefix) == 8 and len(secret) >= 32
        assert set(prefix + secret) <= set(BASE62)
        assert split_api_key(key) == (prefix, secret)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nodot",
        "short.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "abcdefgh.tooshort",
        "abcdefgh." + "x" * 200,
        "abcd-fgh." + "x" * 40,
        "abcdefgh." + "é" * 40,
    ],
)
def test_malformed_keys_are_not_split(raw: str) -> None:
    assert split_api_key(raw) is None


def test_only_the_hash_is_compared() -> None:
    key = generate_api_key()
    stored = hash_secret(key.secret)
    assert key.secret not in stored
    assert secret_matches(key.secret, stored)
    assert not secret_matches(key.secret[:-1] + "0", stored)
