"""One web-security module for every banditarena web app (the tutor, the human vote page).

Pieces, each usable alone:

* **Sessions** (``sessions``): :class:`SessionSigner` signs a small JSON payload with HMAC-SHA256 and a
  timestamp (``sign(data) -> token``, ``unsign(token) -> data | None``; expired, forged or garbled tokens
  give ``None``). :class:`Session` is one browser's session (a random ``id``, ``data`` with ``role`` and
  ``sub``); ``session.sign_in(role, subject)`` binds it and rotates the id, ``sign_out()`` clears it.
  :class:`CookieSettings` writes the cookie HttpOnly, SameSite=Lax, optionally Secure, with a max age.
  :func:`load_or_create_secret` keeps the server secret in a 0600 file.
* **CSRF** (``csrf``): ``csrf_token(session_id, secret)`` and ``verify_csrf(session_id, token, secret)``, an
  HMAC of the session id (no server state; new tokens at every sign-in). Forms send it as ``csrf_token``,
  scripts as the ``X-CSRF-Token`` header.
* **Rate limits** (``ratelimit``): :class:`RateLimiter` (token bucket per key, counting refusals),
  :class:`RateLimit` (one bucket per session or signed-in subject and one per client address for an action),
  :class:`FailureThrottle` (after ``free`` failures each further attempt waits twice as long: wrong
  passwords and brute-forced codes slow down, and the refusals are counted).
* **Passwords** (``passwords``): :func:`hash_password` / :func:`verify_password` with Argon2id
  (argon2-cffi); ``verify_password(None, pw)`` checks a dummy hash so unknown accounts cost the same time.
* **Admin tokens** (``admin``): :class:`AdminToken` (``issue()`` a one-time, expiring token for a set-up
  link, ``from_env(var)`` for an operator's token; only its SHA-256 is kept).
* **Middleware** (``middleware``, pure ASGI): :class:`BodySizeLimitMiddleware` (413 over a limit, also for
  chunked bodies), :class:`SecurityHeadersMiddleware` (CSP without inline script or style,
  ``X-Content-Type-Options: nosniff``, ``frame-ancestors 'none'``, no referrer, ``Cache-Control: no-store``),
  :class:`SessionMiddleware` (the signed cookie in and out).
* **FastAPI wiring** (``security``): :class:`WebSecurity` bundles them::

      sec = WebSecurity(load_or_create_secret(run_dir / "web.secret"), max_body_bytes=16_384)
      app = FastAPI(dependencies=[Depends(sec.guard)])      # CSRF (and Origin) on every unsafe request
      sec.install(app)                                       # size limit, headers, session cookie
      votes = RateLimit.of("votes", session=(0.5, 10), address=(10.0, 200))

      @app.post("/vote", dependencies=[Depends(sec.limit(votes, "votes"))])
      def vote(request: Request, choice: str = Form(...)):
          session = WebSecurity.session(request)               # .id, .role, .subject
          ...

  ``sec.require(request, "teacher")`` returns the signed-in subject or raises :class:`Refused` (401);
  ``sec.csrf_token(session)`` is the value for the hidden form field. Apps render :class:`Refused`
  (status, one message, ``Retry-After``) with their own exception handler.
"""

from banditarena.web.admin import AdminToken
from banditarena.web.csrf import FORM_FIELD as CSRF_FIELD
from banditarena.web.csrf import csrf_token, verify_csrf
from banditarena.web.middleware import (
    DEFAULT_CSP,
    BodySizeLimitMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
)
from banditarena.web.passwords import check_password, hash_password, needs_rehash, verify_password
from banditarena.web.ratelimit import FailureThrottle, RateLimit, RateLimiter
from banditarena.web.security import Refused, WebSecurity
from banditarena.web.sessions import (
    CookieSettings,
    Session,
    SessionSigner,
    load_or_create_secret,
    new_secret,
)

__all__ = [
    "CSRF_FIELD", "DEFAULT_CSP", "AdminToken", "BodySizeLimitMiddleware", "CookieSettings", "FailureThrottle",
    "RateLimit", "RateLimiter", "Refused", "SecurityHeadersMiddleware", "Session", "SessionMiddleware",
    "SessionSigner", "WebSecurity", "check_password", "csrf_token", "hash_password", "load_or_create_secret",
    "needs_rehash", "new_secret", "verify_csrf", "verify_password",
]
