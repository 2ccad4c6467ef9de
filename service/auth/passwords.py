"""Password hashing with argon2id (OWASP minimum: m=19456 KiB, t=2, p=1)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hashes and verifies passwords; unknown accounts are checked against a dummy hash."""

    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verifying this costs the same as a real account, so timing reveals no emails.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """An encoded argon2id hash (salt and parameters included)."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if the password matches; with no hash, burns the same time and returns False."""
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(
                password_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
