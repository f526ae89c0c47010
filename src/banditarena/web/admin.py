"""Admin tokens: a random secret shown once (a one-time set-up link, an admin API key), kept only hashed."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time


class AdminToken:
    """Verify a presented token against the SHA-256 of the real one; optionally expiring and one-time.

    ``AdminToken.issue()`` returns ``(token, plaintext)``: print the plaintext once (e.g. a set-up link) and
    keep the object. ``AdminToken.from_env("VOTE_ADMIN_TOKEN")`` uses a token an operator configured.
    """

    def __init__(self, digest: bytes, *, expires_at: float | None = None, one_time: bool = False) -> None:
        self._digest = digest
        self.expires_at = expires_at
        self.one_time = one_time
        self.used = False
        self._lock = threading.Lock()

    @staticmethod
    def _hash(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "replace")).digest()

    @classmethod
    def issue(cls, *, ttl_s: float | None = 3600.0, one_time: bool = True) -> tuple[AdminToken, str]:
        plain = secrets.token_urlsafe(24)
        exp = None if ttl_s is None else time.time() + ttl_s
        return cls(cls._hash(plain), expires_at=exp, one_time=one_time), plain

    @classmethod
    def from_env(cls, var: str) -> AdminToken | None:
        """The token in environment variable ``var`` (at least 16 characters), or ``None`` if unset."""
        value = os.environ.get(var, "")
        if not value:
            return None
        if len(value) < 16:
            raise ValueError(f"${var}: an admin token needs at least 16 characters")
        return cls(cls._hash(value))

    @property
    def active(self) -> bool:
        return not (self.used or (self.expires_at is not None and time.time() > self.expires_at))

    def verify(self, presented: str | None) -> bool:
        if not presented or len(presented) > 256 or not self.active:
            return False
        return hmac.compare_digest(self._hash(presented), self._digest)

    def consume(self, presented: str | None) -> bool:
        """Verify and, for a one-time token, use it up (a second use fails)."""
        with self._lock:
            ok = self.verify(presented)
            if ok and self.one_time:
                self.used = True
            return ok
