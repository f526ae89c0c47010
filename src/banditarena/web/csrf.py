"""CSRF tokens bound to the session: an HMAC of the session id under a CSRF key (no server state).

A form carries the token in a hidden field (``csrf_token``), a script in the ``X-CSRF-Token`` header. The id
rotates at sign-in and sign-out, so every token issued before that stops working.
"""

from __future__ import annotations

import hashlib
import hmac

from banditarena.web.sessions import _b64, derive_key

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"


def csrf_token(session_id: str, secret: bytes) -> str:
    """The CSRF token of the session ``session_id``."""
    return _b64(hmac.new(derive_key(secret, "csrf"), session_id.encode(), hashlib.sha256).digest())


def verify_csrf(session_id: str, token: str | None, secret: bytes) -> bool:
    """Whether ``token`` is the CSRF token of ``session_id`` (constant time)."""
    if not token or len(token) > 128:
        return False
    return hmac.compare_digest(token.encode("ascii", "replace"), csrf_token(session_id, secret).encode("ascii"))
