"""JWT access and refresh tokens (HS256 pinned; claims sub, exp, iat, jti, typ)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import jwt

from service.clock import Clock, SystemClock

TokenType = Literal["access", "refresh"]
_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "typ"]


class InvalidToken(Exception):
    """A token that is malformed, forged, expired or of the wrong type."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    jti: str
    token_type: TokenType
    family: str | None


class TokenIssuer:
    """Signs and verifies the service's JWTs with one secret key; ``iat`` and ``exp`` are set
    and checked against ``clock`` (pyjwt's own expiry check, which reads the system time, is
    turned off)."""

    def __init__(
        self, secret_key: str, access_ttl: int, refresh_ttl: int, clock: Clock | None = None
    ) -> None:
        self._key = secret_key
        self.clock = clock or SystemClock()
        self._ttl = {
            "access": timedelta(seconds=access_ttl),
            "refresh": timedelta(seconds=refresh_ttl),
        }

    def issue(
        self,
        user_id: int,
        token_type: TokenType,
        family: str | None = None,
    ) -> IssuedToken:
        """A signed token; refresh tokens carry their rotation family in ``fam``."""
        issued_at = self.clock.now()
        expires_at = issued_at + self._ttl[token_type]
        jti = secrets.token_urlsafe(16)
        claims: dict[str, object] = {
            "sub": str(user_id),
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": jti,
            "typ": token_type,
        }
        if family is not None:
            claims["fam"] = family
        return IssuedToken(jwt.encode(claims, self._key, algorithm=_ALGORITHM), jti, expires_at)

    def verify(self, token: str, expected: TokenType) -> TokenClaims:
        """Decode with HS256 only, require every claim, and check the token's type."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": _REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise InvalidToken("token is invalid") from None
        expires = claims["exp"]
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise InvalidToken("token is invalid")
        if self.clock.now().timestamp() >= expires:
            raise InvalidToken("token has expired")
        if claims.get("typ") != expected:
            raise InvalidToken(f"an {expected} token is required")
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise InvalidToken("token is invalid") from None
        family = claims.get("fam")
        return TokenClaims(user_id, str(claims["jti"]), expected, str(family) if family else None)
