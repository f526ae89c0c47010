"""The pieces wired into a FastAPI app: :class:`WebSecurity`."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from banditarena.web.csrf import FORM_FIELD, HEADER, csrf_token, verify_csrf
from banditarena.web.middleware import (
    DEFAULT_CSP,
    SESSION_SCOPE_KEY,
    BodySizeLimitMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
)
from banditarena.web.ratelimit import RateLimit
from banditarena.web.sessions import CookieSettings, Session, SessionSigner, derive_key, read_cookie

try:  # FastAPI resolves the dependencies' annotations by name in this module
    from starlette.requests import Request
except ImportError:  # pragma: no cover - the pure pieces work without the web extra
    Request = Any  # type: ignore[misc,assignment]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Refused(Exception):
    """A request the security layer (or the app) refuses: an HTTP status and one message for the person.

    ``install`` registers a plain handler; an app registers its own to render a page.
    """

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = int(status), message, retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after)))} if self.retry_after else {}


class WebSecurity:
    """Sessions, CSRF, rate limits, size limits and headers for one FastAPI app.

    Args:
        secret: 32+ random bytes (:func:`banditarena.web.load_or_create_secret`); sessions and CSRF tokens
            derive separate keys from it.
        cookie: the session cookie's name and flags (HttpOnly, SameSite=Lax; ``secure=True`` behind HTTPS).
        max_body_bytes: larger request bodies get 413.
        csp: the Content-Security-Policy header.
    """

    def __init__(self, secret: bytes, *, cookie: CookieSettings | None = None, max_body_bytes: int = 64 * 1024,
                 csp: str = DEFAULT_CSP) -> None:
        self.cookie = cookie or CookieSettings()
        self.signer = SessionSigner(secret, max_age_s=self.cookie.max_age_s)
        self._csrf_secret = derive_key(secret, "csrf-root")
        self.max_body_bytes = int(max_body_bytes)
        self.csp = csp
        self.csrf_refused = 0

    # ------------------------------------------------------------------------------------------ sessions
    def load_session(self, cookie_header: str | None) -> Session:
        return Session.from_payload(self.signer.unsign(read_cookie(cookie_header, self.cookie.name)))

    def dump_session(self, session: Session) -> str:
        """The ``Set-Cookie`` header value for ``session``."""
        return self.cookie.header(self.signer.sign(session.to_payload()))

    @staticmethod
    def session(request: Any) -> Session:
        """The request's session (a FastAPI dependency: ``Depends(WebSecurity.session)``)."""
        s = request.scope.get(SESSION_SCOPE_KEY)
        if s is None:
            raise RuntimeError("WebSecurity.install(app) was not called: no session middleware")
        return s

    def require(self, request: Any, role: str) -> str:
        """The subject of a session signed in as ``role``; else :class:`Refused` 401."""
        s = self.session(request)
        if s.role != role or not s.subject:
            raise Refused(401, "Please sign in first.")
        return s.subject

    # ---------------------------------------------------------------------------------------------- CSRF
    def csrf_token(self, session: Session) -> str:
        return csrf_token(session.id, self._csrf_secret)

    async def guard(self, request: Request) -> None:
        """Global dependency: every request other than GET/HEAD/OPTIONS must carry the session's CSRF token
        (form field ``csrf_token`` or header ``X-CSRF-Token``) and, when it sends an Origin, come from this
        site. Use as ``FastAPI(dependencies=[Depends(security.guard)])`` so no route can forget it."""
        if request.method in SAFE_METHODS:
            return
        origin = request.headers.get("origin")
        if origin and origin != "null":
            host = request.headers.get("host", "")
            if urlsplit(origin).netloc != host:
                self.csrf_refused += 1
                raise Refused(403, "This form came from another site and was refused.")
        token = request.headers.get(HEADER)
        if token is None and "form" in request.headers.get("content-type", ""):
            form = await request.form()
            v = form.get(FORM_FIELD)
            token = v if isinstance(v, str) else None
        if not verify_csrf(self.session(request).id, token, self._csrf_secret):
            self.csrf_refused += 1
            raise Refused(403, "This form has expired. Please go back, reload the page and try again.")

    # ------------------------------------------------------------------------------------------ limits
    @staticmethod
    def client_address(request: Any) -> str:
        """The client's address as the server sees it (behind a proxy, run uvicorn with --proxy-headers)."""
        return request.client.host if request.client else "unknown"

    @staticmethod
    def address_tag(address: str) -> str:
        """A short hash of an address, for logs that must not hold addresses."""
        return hashlib.sha256(address.encode()).hexdigest()[:10]

    def check_rate(self, request: Any, limit: RateLimit, what: str = "requests") -> None:
        """Take a token of ``limit`` for this session (or signed-in subject) and address; 429 if none."""
        s = self.session(request)
        key = f"{s.role}:{s.subject}" if s.subject else s.id
        wait = limit.check(key, self.client_address(request))
        if wait:
            raise Refused(429, f"Too many {what}. Please wait {max(1, round(wait))} seconds and try again.", wait)

    def limit(self, limit: RateLimit, what: str = "requests") -> Any:
        """A FastAPI dependency applying ``limit``: ``dependencies=[Depends(security.limit(answers))]``."""
        def dependency(request: Request) -> None:
            self.check_rate(request, limit, what)

        return dependency

    # ------------------------------------------------------------------------------------------ wiring
    def install(self, app: Any) -> Any:
        """Add the middleware (size limit outermost, then headers, then sessions) and a plain handler for
        :class:`Refused`. Pass ``dependencies=[Depends(security.guard)]`` when creating the app."""
        from fastapi.responses import JSONResponse

        app.add_middleware(SessionMiddleware, security=self)
        app.add_middleware(SecurityHeadersMiddleware, csp=self.csp)
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=self.max_body_bytes)

        async def refused(request: Any, exc: Refused) -> Any:
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

        if Refused not in app.exception_handlers:
            app.add_exception_handler(Refused, refused)
        app.state.security = self
        return app
