"""The human vote page: FastAPI with plain HTML (Jinja2, no JavaScript), on :mod:`banditarena.web`.

Routes: ``/`` a battle (a prompt, two anonymous answers, four buttons), ``POST /vote``, ``/battle/{id}``
(your vote, names revealed), ``/leaderboard`` (the human Bradley-Terry leaderboard, 95% bootstrap CIs),
``/admin`` (counts, refusals by reason) and ``/admin/export/conv.jsonl`` / ``/admin/export/clean_battle.json``
behind the admin token (``Authorization: Bearer TOKEN``, or signed in at ``/admin/login``).

Security, all from :mod:`banditarena.web`: the voter id lives in a signed, HttpOnly, SameSite=Lax cookie; every
POST needs the session's CSRF token (and a same-site Origin); votes and pages are rate limited per voter and
per address; bodies over :data:`MAX_BODY_BYTES` get 413; every page carries a CSP without inline script or
style. Answers and prompts are sanitized markdown (:mod:`banditarena.votes.markdown`). A vote needs a battle
ticket this server signed for this voter (:mod:`banditarena.votes.service`). The server keeps no address: the
access log is off and rate-limit buckets live in memory only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditarena.votes.records import new_voter_id
from banditarena.votes.service import VoteRefused, VoteService
from banditarena.web import AdminToken, CookieSettings, RateLimit, Refused, WebSecurity

try:  # FastAPI resolves the routes' annotations by name in this module
    from fastapi import Form, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
except ImportError:  # pragma: no cover - the web extra is not installed
    Request = Any  # type: ignore[misc,assignment]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 8 * 1024
log = logging.getLogger("banditarena.votes.web")


@dataclass
class VoteLimits:
    """(rate per second, burst) per voter and per address. Many voters can share an address (a lab, a NAT), so
    the address buckets are wider."""

    pages: RateLimit = field(default_factory=lambda: RateLimit.of("pages", (2.0, 30), (50.0, 600)))
    votes: RateLimit = field(default_factory=lambda: RateLimit.of("votes", (1.0, 10), (20.0, 300)))
    admin: RateLimit = field(default_factory=lambda: RateLimit.of("admin", (0.5, 10), (1.0, 20)))

    def refused(self) -> dict[str, int]:
        return {"pages": self.pages.refused, "votes": self.votes.refused, "admin": self.admin.refused}


def create_app(service: VoteService, *, secret: bytes, admin_token: AdminToken | None = None,
               limits: VoteLimits | None = None, secure_cookies: bool = False, title: str = "banditarena arena",
               leaderboard_bootstrap: int = 100) -> Any:
    """The FastAPI app serving ``service``. ``admin_token``: None disables the admin pages and exports."""
    from fastapi import Depends, FastAPI
    from fastapi.staticfiles import StaticFiles
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    sec = WebSecurity(secret, cookie=CookieSettings(name="vote_session", secure=secure_cookies),
                      max_body_bytes=MAX_BODY_BYTES)
    lim = limits or VoteLimits()
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(sec.guard)])
    sec.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.state.service, app.state.limits = service, lim
    board: dict[str, Any] = {"at": -1e9, "n": -1, "rows": None}

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = WebSecurity.session(request)
        html = env.get_template(template).render(title=title, csrf=sec.csrf_token(s), about=service.about,
                                                 admin=s.role == "admin", **ctx)
        return HTMLResponse(html, status_code=status)

    async def refused(request: Request, exc: Refused) -> Response:
        if wants_json(request) or request.url.path.startswith("/admin/export"):
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        return page(request, "message.html", exc.status, message=exc.message)

    app.add_exception_handler(Refused, refused)  # type: ignore[arg-type]

    def voter(request: Request) -> str:
        """The voter of this browser: a random pseudonym in the signed cookie, made on the first page."""
        s = WebSecurity.session(request)
        if s.role != "voter" or not s.subject:
            s.sign_in("voter", new_voter_id())
        return str(s.subject)

    def current_voter(request: Request) -> str | None:
        s = WebSecurity.session(request)
        return s.subject if s.role == "voter" else None

    def is_admin(request: Request) -> bool:
        if admin_token is None:
            return False
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and admin_token.verify(auth[7:].strip()):
            return True
        return WebSecurity.session(request).role == "admin"

    def require_admin(request: Request) -> None:
        sec.check_rate(request, lim.admin, "admin requests")
        if not is_admin(request):
            raise Refused(401, "Admin pages need the admin token.")

    # ------------------------------------------------------------------------------------------- voting
    def battle_page(request: Request, vid: str, status: int = 200, notice: str | None = None) -> Response:
        sec.check_rate(request, lim.pages, "pages")
        offer = service.pick(vid)
        if offer is None:
            return page(request, "message.html", status,
                        message="You have voted on every battle here. Thank you! See the leaderboard.")
        p = offer.prompt
        return page(request, "vote.html", status, offer=offer, notice=notice,
                    prompt_html=[service.html(t) for t in p.user_turns],
                    a_html=[service.html(t) for t in offer.gen_a.turns],
                    b_html=[service.html(t) for t in offer.gen_b.turns], votes=service.n_votes)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        return battle_page(request, voter(request))

    @app.post("/vote")
    async def vote(request: Request, ticket: str = Form(""), choice: str = Form("")) -> Response:
        vid = current_voter(request)
        if vid is None:     # no voter cookie: nothing was shown to this browser
            service.refused["no voter session"] += 1
            raise Refused(403, "This battle was not shown to you. Please load a new one.")
        sec.check_rate(request, lim.votes, "votes")
        try:
            row = service.vote(vid, ticket, choice)
        except VoteRefused as exc:
            if wants_json(request):
                return JSONResponse({"error": exc.message, "reason": exc.reason}, status_code=exc.status)
            return battle_page(request, vid, exc.status, notice=exc.message)
        if wants_json(request):
            return JSONResponse({"stored": True, "vote_id": row["vote_id"], "model_a": row["model_a"],
                                 "model_b": row["model_b"], "type": row["type"]})
        return RedirectResponse(f"/battle/{row['vote_id']}", status_code=303)

    @app.get("/battle/{vote_id}", response_class=HTMLResponse)
    async def result(request: Request, vote_id: str) -> Response:
        vid = current_voter(request)
        sec.check_rate(request, lim.pages, "pages")
        v = service.voted(vid, vote_id[:64]) if vid else None
        if v is None:
            raise Refused(404, "No such vote of yours.")
        gens = service.store.get_generations([v["gen_a"], v["gen_b"]])
        p = service.prompts.get(v["prompt_id"])
        ga, gb = gens.get(v["gen_a"]), gens.get(v["gen_b"])
        return page(request, "result.html", v=v, prompt_html=[service.html(t) for t in (p.user_turns if p else [])],
                    a_html=[service.html(t) for t in (ga.turns if ga else [])],
                    b_html=[service.html(t) for t in (gb.turns if gb else [])],
                    said={"leftvote": "A is better", "rightvote": "B is better", "tievote": "a tie",
                          "bothbad_vote": "both are bad"}[v["type"]])

    # -------------------------------------------------------------------------------------- leaderboard
    @app.get("/leaderboard", response_class=HTMLResponse)
    def leaderboard(request: Request) -> Response:
        sec.check_rate(request, lim.pages, "pages")
        rows, error = human_board(service, board, leaderboard_bootstrap)
        return page(request, "leaderboard.html", rows=rows, error=error, votes=service.n_votes)

    # -------------------------------------------------------------------------------------------- admin
    @app.get("/admin/login", response_class=HTMLResponse)
    async def admin_login_page(request: Request) -> Response:
        if admin_token is None:
            raise Refused(404, "The admin pages are off (start the server with an admin token).")
        return page(request, "admin_login.html", error=None)

    @app.post("/admin/login")
    async def admin_login(request: Request, token: str = Form("")) -> Response:
        sec.check_rate(request, lim.admin, "admin requests")
        if admin_token is None or not admin_token.verify(token):
            log.warning("admin sign-in refused (client %s)", sec.address_tag(sec.client_address(request)))
            return page(request, "admin_login.html", 401, error="Wrong admin token.")
        WebSecurity.session(request).sign_in("admin", "admin")
        return RedirectResponse("/admin", status_code=303)

    @app.get("/admin", response_class=HTMLResponse)
    async def admin(request: Request) -> Response:
        require_admin(request)
        st = service.stats()
        refusals = {**{f"vote: {k}": n for k, n in st["refused"].items()},
                    **{f"rate limit: {k}": n for k, n in lim.refused().items()},
                    "forms without a valid CSRF token": sec.csrf_refused}
        return page(request, "admin.html", stats=st, refusals=refusals)

    @app.get("/admin/export/conv.jsonl")
    def export_conv(request: Request) -> Response:
        require_admin(request)
        return Response(_export(service, "conv"), media_type="application/x-ndjson",
                        headers={"Content-Disposition": 'attachment; filename="conv.jsonl"'})

    @app.get("/admin/export/clean_battle.json")
    def export_clean(request: Request) -> Response:
        require_admin(request)
        return Response(_export(service, "clean"), media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="clean_battle.json"'})

    return app


def _export(service: VoteService, fmt: str) -> str:
    """An export through its own read-only connection (this runs in a worker thread, beside the event loop
    that writes votes on the service's connection)."""
    import tempfile

    from banditarena.errors import DataError
    from banditarena.store import RunStore
    from banditarena.votes.fastchat import export_clean, export_conv

    with tempfile.TemporaryDirectory() as d, RunStore(service.store.run_dir, create=False) as ro:
        out = Path(d) / "out"
        try:
            export_conv(ro, out) if fmt == "conv" else export_clean(ro, out)
        except DataError:
            return "" if fmt == "conv" else "[]\n"
        return out.read_text(encoding="utf-8")


def human_board(service: VoteService, cache: dict[str, Any], bootstrap: int) -> tuple[list[dict[str, Any]], str | None]:
    """Rows of the human leaderboard (refitted at most every 10 s, and only after new votes)."""
    fresh = cache["n"] == service.n_votes or (bool(cache["rows"]) and time.monotonic() - cache["at"] < 10)
    if cache["rows"] is not None and fresh:
        return cache["rows"], cache.get("error")
    import pandas as pd

    from banditarena.ratings import fit_bt

    rows: list[dict[str, Any]] = []
    error = None
    battles = pd.DataFrame(list(service.outcomes), columns=["model_a", "model_b", "winner"])
    if battles.empty:
        error = "No votes yet."
    else:
        try:
            lb = fit_bt(battles, bootstrap=bootstrap, seed=0)
            for m, r in lb.sort_values("rating", ascending=False).iterrows():
                rows.append({"model": m, "rank": int(r["rank"]), "rating": f"{r['rating']:.0f}",
                             "ci": f"{r['ci_low']:.0f} to {r['ci_high']:.0f}", "battles": int(r["battles"])})
        except ValueError as exc:
            error = f"Not enough votes to rate yet ({json.dumps(str(exc))[:120]})."
    cache.update(at=time.monotonic(), n=service.n_votes, rows=rows, error=error)
    return rows, error
