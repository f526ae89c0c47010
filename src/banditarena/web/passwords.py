"""Password hashing with Argon2id (argon2-cffi, its RFC 9106 low-memory profile by default)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256


@lru_cache(maxsize=1)
def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: str) -> str:
    """``password`` if it is acceptable; else ValueError with a message for the person choosing it."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"Please choose a password of at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"Please choose a password of at most {MAX_PASSWORD_CHARS} characters.")
    if len(set(password)) < 4:
        raise ValueError("Please choose a password with more different characters.")
    return password


def hash_password(password: str) -> str:
    """The Argon2id hash string (salt and parameters included) of ``password``."""
    return str(_hasher().hash(password))


def verify_password(hashed: str | None, password: str) -> bool:
    """Whether ``password`` matches ``hashed``. With ``hashed=None`` (no such account) a dummy hash is checked,
    so an unknown account takes as long as a wrong password and says nothing about whether it exists."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    target = hashed if hashed else _dummy_hash()
    try:
        ok = bool(_hasher().verify(target, password[:MAX_PASSWORD_CHARS]))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    return ok and bool(hashed)


def needs_rehash(hashed: str) -> bool:
    return bool(_hasher().check_needs_rehash(hashed))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not a password: equalises the time of unknown accounts")
