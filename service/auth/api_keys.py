"""API keys: ``<prefix>.<secret>``; only a SHA-256 of the secret is stored, looked up by prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

BASE62 = string.ascii_letters + string.digits
PREFIX_LENGTH = 8
SECRET_LENGTH = 40  # ~238 bits of entropy: a fast hash is the right tool, not a password hash


@dataclass(frozen=True, slots=True)
class NewApiKey:
    prefix: str
    secret: str

    @property
    def key(self) -> str:
        return f"{self.prefix}.{self.secret}"


def generate_api_key() -> NewApiKey:
    """A fresh key from the OS CSPRNG."""
    prefix = "".join(secrets.choice(BASE62) for _ in range(PREFIX_LENGTH))
    secret = "".join(secrets.choice(BASE62) for _ in range(SECRET_LENGTH))
    return NewApiKey(prefix, secret)


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_api_key(raw: str) -> tuple[str, str] | None:
    """``(prefix, secret)`` for a well-formed key, else None."""
    prefix, dot, secret = raw.strip().partition(".")
    if not dot or len(prefix) != PREFIX_LENGTH or len(secret) < 32 or len(secret) > 128:
        return None
    if not (prefix.isascii() and prefix.isalnum() and secret.isascii() and secret.isalnum()):
        return None
    return prefix, secret


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
