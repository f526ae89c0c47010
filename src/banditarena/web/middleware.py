"""Pure ASGI middleware: request body size limits, security headers, and the session cookie."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from banditarena.web.security import WebSecurity

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# No inline script or style anywhere, nothing framed, forms post only to this site.
DEFAULT_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")
SESSION_SCOPE_KEY = "banditarena.session"


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int = 64 * 1024) -> None:
        self.app, self.max_bytes = app, int(max_bytes)
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    n = int(v)
                except ValueError:
                    await _plain(send, 400, "Bad Content-Length.")
                    return
                if n > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        too_large = started = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if too_large:           # whatever the app makes of the cut body (often a 400), the answer is 413
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                started = True
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        self.refused += 1
        await _plain(send, 413, f"Request too large (limit {self.max_bytes} bytes).")


class SecurityHeadersMiddleware:
    """Add CSP (no inline script), nosniff, no framing, no referrer and ``Cache-Control: no-store`` (pages hold
    personal data) to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, csp: str = DEFAULT_CSP, no_store: bool = True) -> None:
        self.app = app
        self.headers = [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
                        (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
                        (b"cross-origin-opener-policy", b"same-origin")]
        if no_store:
            self.headers.append((b"cache-control", b"no-store"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = [*msg.get("headers", []), *[(k, v) for k, v in self.headers if k not in have]]
            await send(msg)

        await self.app(scope, receive, with_headers)


class SessionMiddleware:
    """Read the signed session cookie into ``scope["banditarena.session"]`` (a fresh anonymous session when it
    is missing, forged or expired) and write the cookie back when the session changed."""

    def __init__(self, app: ASGIApp, security: WebSecurity) -> None:
        self.app, self.security = app, security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"cookie"), None)
        session = self.security.load_session(cookie)
        scope[SESSION_SCOPE_KEY] = session

        async def with_cookie(msg: Message) -> None:
            if msg["type"] == "http.response.start" and session.dirty:
                value = self.security.dump_session(session)
                msg["headers"] = [*msg.get("headers", []), (b"set-cookie", value.encode("latin-1"))]
            await send(msg)

        await self.app(scope, receive, with_cookie)
