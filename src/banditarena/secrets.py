"""Redaction of configured secrets (API keys) from every text we store or print.

A backend that reads an API key from the environment registers it here; :func:`redact` replaces every
registered value (and its Bearer header form) in a text with ``***``. Errors that quote a server's reply
(a gateway that echoes the key in a 401 body) pass through :func:`redact` before they are stored in the run
store or shown on the console.
"""

from __future__ import annotations

import threading

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_MIN_LEN = 4  # shorter values would redact ordinary words


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` hides it."""
    if value and len(value) >= _MIN_LEN:
        with _LOCK:
            _SECRETS.add(value)


def redact(text: str | None) -> str | None:
    """``text`` with every registered secret replaced by ``***`` (None stays None)."""
    if not text or not _SECRETS:
        return text
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return text
