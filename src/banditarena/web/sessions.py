"""Signed session cookies: an HMAC-SHA256 signed, timestamped JSON payload, and the cookie header around it.

The payload is readable by the client (base64 JSON) but cannot be changed or forged without the server's
secret; keep nothing secret in it (ids and a role only). A token older than ``max_age_s`` is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Literal

MAX_TOKEN_CHARS = 4096


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A separate key per purpose (sessions, CSRF, code lookup...) from one secret."""
    return hmac.new(secret, b"banditarena:" + purpose.encode(), hashlib.sha256).digest()


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def load_or_create_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret kept in ``path`` (64 hex characters, mode 0600), created on first use."""
    p = Path(path)
    if p.exists():
        raw = p.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise ValueError(f"{p}: not a secret written by banditarena (64 hex characters)") from None
        if len(key) < 32:
            raise ValueError(f"{p}: secret too short ({len(key)} bytes, need 32)")
        return key
    p.parent.mkdir(parents=True, exist_ok=True)
    key = new_secret()
    fd = os.open(str(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


class SessionSigner:
    """Sign and verify small JSON payloads (the session cookie's value).

    Args:
        secret: at least 32 random bytes (:func:`load_or_create_secret`).
        max_age_s: a token signed longer ago than this is refused.
        purpose: separates keys, so a token signed for one use never verifies for another.
    """

    def __init__(self, secret: bytes, *, max_age_s: float = 12 * 3600, purpose: str = "session") -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 bytes")
        self._key = derive_key(secret, purpose)
        self.max_age_s = float(max_age_s)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, data: Mapping[str, Any], now: float | None = None) -> str:
        t = int(time.time() if now is None else now)
        payload = _b64(json.dumps({"d": dict(data), "t": t}, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, token: str | None, now: float | None = None) -> dict[str, Any] | None:
        """The payload of a valid, unexpired token; ``None`` for anything else (never raises)."""
        if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        payload, mac = token.split(".")
        try:
            if not hmac.compare_digest(mac.encode("ascii"), self._mac(payload).encode("ascii")):
                return None
            obj = json.loads(_unb64(payload))
        except (ValueError, UnicodeError):
            return None
        t = time.time() if now is None else now
        if not isinstance(obj, dict) or not isinstance(obj.get("d"), dict) or not isinstance(obj.get("t"), int):
            return None
        if t - obj["t"] > self.max_age_s or obj["t"] > t + 300:
            return None
        return obj["d"]


def new_session_id() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class Session:
    """One browser's session: a random ``id`` (rotated at sign-in) and a small ``data`` dict.

    ``data`` by convention holds ``role`` (e.g. ``"teacher"``, ``"learner"``, ``"voter"``) and ``sub`` (the
    account or learner id) once signed in. Changing it marks the session ``dirty``: the cookie is rewritten.
    """

    id: str = field(default_factory=new_session_id)
    data: dict[str, Any] = field(default_factory=dict)
    dirty: bool = False
    cleared: bool = False

    @property
    def role(self) -> str | None:
        r = self.data.get("role")
        return r if isinstance(r, str) else None

    @property
    def subject(self) -> str | None:
        s = self.data.get("sub")
        return None if s is None else str(s)

    def sign_in(self, role: str, subject: str | int, **extra: Any) -> None:
        """Bind the session to ``subject``; the id is rotated (no session fixation)."""
        self.id = new_session_id()
        self.data = {"role": role, "sub": str(subject), **extra}
        self.dirty, self.cleared = True, False

    def sign_out(self) -> None:
        self.id = new_session_id()
        self.data = {}
        self.dirty = True

    def to_payload(self) -> dict[str, Any]:
        return {"sid": self.id, **self.data}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> Session:
        if not payload or not isinstance(payload.get("sid"), str):
            return cls(dirty=True)                     # a new anonymous session: its cookie gets written
        data = {k: v for k, v in payload.items() if k != "sid"}
        return cls(id=payload["sid"], data=data)


@dataclass(frozen=True)
class CookieSettings:
    """How the session cookie is written: HttpOnly always; SameSite Lax by default (sent on top-level links,
    never on cross-site POSTs); ``secure`` for HTTPS deployments."""

    name: str = "ba_session"
    secure: bool = False
    samesite: Literal["lax", "strict"] = "lax"
    path: str = "/"
    max_age_s: int = 12 * 3600

    def header(self, value: str) -> str:
        """The ``Set-Cookie`` header value (``value`` empty: delete the cookie)."""
        parts = [f"{self.name}={value}", f"Path={self.path}", "HttpOnly", f"SameSite={self.samesite.capitalize()}"]
        parts.append(f"Max-Age={self.max_age_s if value else 0}")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)


def read_cookie(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` request header (``None``: absent or unparsable)."""
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return None if morsel is None else morsel.value
