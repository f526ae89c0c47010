"""The tutor as a local web app: FastAPI with plain HTML (Jinja2 templates, no JavaScript), safe for a class.

FastAPI and server-rendered HTML were chosen over Gradio because the pages are a few plain forms a child can
use on any browser (and a school's locked-down tablets), every state change is a POST that the server
validates and stores before answering, and the pages are easy to test end to end in a headless browser.

Access (the pieces come from :mod:`banditarena.web`, shared with the human vote page):

* A **learner** signs in at ``/`` with the sign-in code their teacher printed for them; the session (a
  signed, HttpOnly, SameSite cookie) is bound to that learner, so ``/learn`` and its forms only ever act for
  them. No URL carries a name.
* A **teacher** signs in at ``/teacher/login`` (Argon2id password); ``/teacher``, the class pages, the JSON
  API ``/api/learners/{id}``, exports and deletion show and touch only that teacher's classes. The first
  teacher is made with ``banditarena tutor admin create-teacher`` or the one-time ``/setup`` link printed
  by ``tutor serve`` while there is none.
* Every POST needs the session's CSRF token; answers, hints and sign-ins are rate limited per session and
  per address; wrong codes and passwords get one message and slow down (the refusals are counted on the
  teacher page); bodies over 16 KiB get 413; pages carry a CSP without inline script.

Every route other than the sign-in pages and ``/static`` refuses a request without the right session
(``PUBLIC_ROUTES``; a test walks all routes). Server logs hold no names, codes or answers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditarena.curriculum.accounts import AccountError, Accounts
from banditarena.curriculum.items import MAX_ANSWER_CHARS, AnswerError
from banditarena.curriculum.tutor import NameError_, Tutor
from banditarena.web import AdminToken, CookieSettings, FailureThrottle, RateLimit, Refused, WebSecurity

try:  # FastAPI resolves the routes' annotations by name in this module
    from fastapi import Form, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
except ImportError:  # pragma: no cover - the web extra is not installed
    Request = Any  # type: ignore[misc,assignment]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 16 * 1024
PUBLIC_ROUTES = {("GET", "/"), ("POST", "/signin"), ("GET", "/teacher/login"), ("POST", "/teacher/login"),
                 ("GET", "/setup"), ("POST", "/setup"), ("GET", "/static/tutor.css")}
"""The routes open without a signed-in session (``/setup`` needs the one-time token instead)."""

WRONG_CODE = "That sign-in code did not work. Please check it and try again."
WRONG_LOGIN = "Wrong username or password."
log = logging.getLogger("banditarena.tutor.web")


@dataclass
class Limits:
    """Rate limits of the tutor: (rate per second, burst) per session and per address. A classroom often
    shares one address, so the address buckets are wide; sign-in failures are throttled per address and
    (teachers) per username: after ``free`` failures each try waits twice as long, up to 15 minutes."""

    answers: RateLimit = field(default_factory=lambda: RateLimit.of("answers", (1.0, 10), (20.0, 300)))
    hints: RateLimit = field(default_factory=lambda: RateLimit.of("hints", (0.2, 3), (3.0, 60)))
    signin: RateLimit = field(default_factory=lambda: RateLimit.of("sign-ins", (0.5, 20), (2.0, 60)))
    learner_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle(free=10, base_s=1.0))
    teacher_failures: FailureThrottle = field(default_factory=lambda: FailureThrottle(free=5, base_s=1.0))

    def refused(self) -> dict[str, int]:
        return {"answers": self.answers.refused, "hints": self.hints.refused, "sign-ins": self.signin.refused,
                "wrong codes slowed down": self.learner_failures.refused,
                "wrong passwords slowed down": self.teacher_failures.refused}


def create_app(tutor: Tutor, title: str | None = None, *, secret: bytes, setup_token: AdminToken | None = None,
               limits: Limits | None = None, secure_cookies: bool = False, retention_days: float | None = None
               ) -> Any:
    """The FastAPI app serving ``tutor``.

    Args:
        secret: the server secret (sessions, CSRF tokens, sign-in code hashes): keep it across restarts
            (:func:`banditarena.web.load_or_create_secret`), or every code and session stops working.
        setup_token: the one-time token of the ``/setup`` link that creates a teacher account.
        limits: rate limits (tests shrink them).
        secure_cookies: mark the session cookie Secure (behind HTTPS).
        retention_days: delete learners inactive for this long (checked when a teacher opens /teacher).
    """
    from fastapi import Depends, FastAPI
    from fastapi.staticfiles import StaticFiles
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.0f}%"
    sec = WebSecurity(secret, cookie=CookieSettings(name="tutor_session", secure=secure_cookies),
                      max_body_bytes=MAX_BODY_BYTES)
    lim = limits or Limits()
    accounts = Accounts(tutor, secret)
    app = FastAPI(title=title or f"banditarena tutor: {tutor.curriculum.title}", docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[Depends(sec.guard)])
    sec.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.state.tutor, app.state.accounts, app.state.limits = tutor, accounts, lim
    base = {"title": title or tutor.curriculum.title, "max_chars": MAX_ANSWER_CHARS}

    def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = WebSecurity.session(request)
        html = env.get_template(template).render(**base, csrf=sec.csrf_token(s), role=s.role, **ctx)
        return HTMLResponse(html, status_code=status)

    async def refused(request: Request, exc: Refused) -> Response:
        if request.url.path.startswith("/api/") or "json" in request.headers.get("accept", ""):
            return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)
        s = WebSecurity.session(request)
        if exc.status == 401 and request.method == "GET":     # a page that needs a session: go sign in
            target = "/teacher/login" if request.url.path.startswith(("/teacher", "/api")) else "/"
            return RedirectResponse(target, status_code=303)
        html = env.get_template("message.html").render(**base, csrf=sec.csrf_token(s), role=s.role,
                                                       message=exc.message, status=exc.status)
        return HTMLResponse(html, status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(Refused, refused)  # type: ignore[arg-type]

    def go(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def learner_id(request: Request) -> str:
        lid = sec.require(request, "learner")
        if tutor.learner_meta(lid) is None:                  # deleted by the teacher meanwhile
            WebSecurity.session(request).sign_out()
            raise Refused(401, "Please sign in first.")
        return lid

    def teacher_id(request: Request) -> int:
        tid = sec.require(request, "teacher")
        if accounts.teacher(tid) is None:
            WebSecurity.session(request).sign_out()
            raise Refused(401, "Please sign in first.")
        return int(tid)

    def own_learner(tid: int, lid: str) -> dict[str, Any]:
        meta = accounts.learner_of(tid, lid)
        if meta is None:
            raise Refused(404, "No such learner in your classes.")
        return meta

    def throttle(request: Request, th: FailureThrottle, *keys: str) -> None:
        wait = max(th.wait_s(k) for k in keys)
        if wait > 0:
            log.warning("sign-in refused: too many failures (client %s)",
                        sec.address_tag(sec.client_address(request)))
            raise Refused(429, f"Too many tries. Please wait {max(1, round(wait))} seconds and try again.", wait)

    # --------------------------------------------------------------------------------------- learners
    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        if WebSecurity.session(request).role == "learner":
            return go("/learn")
        return page(request, "home.html", error=None)

    @app.post("/signin")
    def signin(request: Request, code: str = Form("")) -> Response:
        sec.check_rate(request, lim.signin, "sign-ins")
        addr = "a:" + sec.client_address(request)
        throttle(request, lim.learner_failures, addr)
        lid = accounts.learner_for_code(code)
        if lid is None:
            lim.learner_failures.failure(addr)
            return page(request, "home.html", 401, error=WRONG_CODE)
        lim.learner_failures.success(addr)
        WebSecurity.session(request).sign_in("learner", lid)
        return go("/learn")

    @app.post("/signout")
    def signout(request: Request) -> Response:
        s = WebSecurity.session(request)
        if s.role is None:
            raise Refused(401, "Please sign in first.")
        was = s.role
        s.sign_out()
        return go("/teacher/login" if was == "teacher" else "/")

    def learn_page(request: Request, lid: str, error: str | None = None, typed: str = "", status: int = 200
                   ) -> Response:
        return page(request, "learn.html", status, cur=tutor.current(lid), error=error,
                    typed=typed[:MAX_ANSWER_CHARS])

    @app.get("/learn")
    def learn(request: Request) -> Response:
        return learn_page(request, learner_id(request))

    @app.post("/learn/answer")
    def answer(request: Request, answer: str = Form(""), item_id: str = Form("")) -> Response:
        lid = learner_id(request)
        sec.check_rate(request, lim.answers, "answers")
        try:
            tutor.answer(lid, answer, item_id or None)
        except AnswerError as exc:
            return learn_page(request, lid, error=str(exc), typed=answer, status=422)
        return go("/learn")

    @app.post("/learn/hint")
    def hint(request: Request, answer: str = Form("")) -> Response:
        lid = learner_id(request)
        sec.check_rate(request, lim.hints, "hints")
        tutor.hint(lid, answer.strip()[:MAX_ANSWER_CHARS] or None)
        return go("/learn")

    # ---------------------------------------------------------------------------------------- teachers
    @app.get("/teacher/login", response_class=HTMLResponse)
    def teacher_login_page(request: Request) -> Response:
        if WebSecurity.session(request).role == "teacher":
            return go("/teacher")
        return page(request, "login.html", error=None, username="")

    @app.post("/teacher/login")
    def teacher_login(request: Request, username: str = Form(""), password: str = Form("")) -> Response:
        sec.check_rate(request, lim.signin, "sign-ins")
        keys = ("a:" + sec.client_address(request), "u:" + username.strip().lower()[:64])
        throttle(request, lim.teacher_failures, *keys)
        tid = accounts.authenticate(username, password)
        if tid is None:
            for k in keys:
                lim.teacher_failures.failure(k)
            return page(request, "login.html", 401, error=WRONG_LOGIN, username=username[:64])
        for k in keys:
            lim.teacher_failures.success(k)
        WebSecurity.session(request).sign_in("teacher", tid)
        return go("/teacher")

    def setup_allowed(token: str) -> None:
        if setup_token is None or not setup_token.verify(token):
            raise Refused(403, "This set-up link is not valid (it works once, for one hour). Ask the person "
                               "running the tutor for a new one, or use 'banditarena tutor admin create-teacher'.")

    @app.get("/setup", response_class=HTMLResponse)
    def setup_page(request: Request, token: str = "") -> Response:
        setup_allowed(token)
        return page(request, "setup.html", error=None, token=token, username="")

    @app.post("/setup")
    def setup(request: Request, token: str = Form(""), username: str = Form(""), password: str = Form(""),
              password2: str = Form("")) -> Response:
        sec.check_rate(request, lim.signin, "sign-ins")
        setup_allowed(token)
        if password != password2:
            return page(request, "setup.html", 422, error="The two passwords differ.", token=token,
                        username=username[:64])
        try:
            tid = accounts.create_teacher(username, password)
        except AccountError as exc:
            return page(request, "setup.html", 422, error=str(exc), token=token, username=username[:64])
        assert setup_token is not None
        setup_token.consume(token)
        WebSecurity.session(request).sign_in("teacher", tid)
        return go("/teacher")

    @app.get("/teacher", response_class=HTMLResponse)
    def teacher(request: Request) -> Response:
        tid = teacher_id(request)
        if retention_days:
            tutor.purge_inactive(retention_days)
        ids = accounts.teacher_learners(tid)
        views = [tutor.learner_view(n) for n in ids]
        return page(request, "teacher.html", teacher=accounts.teacher(tid), classes=accounts.classes(tid),
                    learners=views, hints=tutor.hint_log(learners=ids), stats=tutor.hint_stats(learners=ids),
                    policy=tutor.policy.label, scorer=getattr(tutor.hints, "scorer_name", "-"),
                    refused={**lim.refused(), "forms without a valid token": sec.csrf_refused},
                    retention_days=retention_days, error=None)

    @app.post("/teacher/classes")
    def new_class(request: Request, name: str = Form("")) -> Response:
        tid = teacher_id(request)
        try:
            cid = accounts.create_class(tid, name)
        except AccountError as exc:
            raise Refused(422, str(exc)) from None
        return go(f"/teacher/classes/{cid}")

    def class_page(request: Request, tid: int, cid: str, status: int = 200, **ctx: Any) -> Response:
        klass = accounts.class_of(tid, cid)
        if klass is None:
            raise Refused(404, "No such class among yours.")
        learners = [tutor.learner_meta(k) for k in tutor.class_learners([cid])]
        ctx.setdefault("new_codes", [])
        ctx.setdefault("error", None)
        return page(request, "class.html", status, klass=klass, learners=learners, grade=tutor.default_grade,
                    **ctx)

    @app.get("/teacher/classes/{cid}", response_class=HTMLResponse)
    def show_class(request: Request, cid: str) -> Response:
        return class_page(request, teacher_id(request), cid)

    @app.post("/teacher/classes/{cid}/learners", response_class=HTMLResponse)
    def add_learners(request: Request, cid: str, names: str = Form(""), grade: str = Form("")) -> Response:
        tid = teacher_id(request)
        if accounts.class_of(tid, cid) is None:
            raise Refused(404, "No such class among yours.")
        try:
            made = accounts.add_learners(tid, cid, names, grade)
        except (AccountError, NameError_) as exc:
            return class_page(request, tid, cid, 422, error=str(exc))
        return class_page(request, tid, cid, new_codes=made)

    @app.post("/teacher/learners/{lid}/code", response_class=HTMLResponse)
    def new_code(request: Request, lid: str) -> Response:
        tid = teacher_id(request)
        meta = own_learner(tid, lid)
        code = accounts.new_code(tid, lid)
        return class_page(request, tid, meta["class_id"], new_codes=[{"id": lid, "name": meta["display"],
                                                                      "code": code}])

    @app.post("/teacher/learners/{lid}/delete")
    def delete(request: Request, lid: str) -> Response:
        tid = teacher_id(request)
        meta = own_learner(tid, lid)
        accounts.delete_learner(tid, lid)
        return go(f"/teacher/classes/{meta['class_id']}")

    @app.get("/teacher/learners/{lid}/export.json")
    def export_json(request: Request, lid: str) -> Response:
        own_learner(teacher_id(request), lid)
        body = json.dumps(tutor.export_learner(lid), indent=1, ensure_ascii=False)
        return Response(body, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{lid}.json"'})

    @app.get("/teacher/learners/{lid}/export.csv")
    def export_csv(request: Request, lid: str) -> Response:
        own_learner(teacher_id(request), lid)
        return Response(export_csv_text(tutor.export_learner(lid)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{lid}.csv"'})

    @app.get("/api/learners/{lid}")
    def api_learner(request: Request, lid: str) -> Response:
        own_learner(teacher_id(request), lid)
        return JSONResponse(tutor.learner_view(lid))

    return app


CSV_FIELDS = ["learner", "name", "step", "time", "activity", "question", "expected", "answer", "correct",
              "propensity", "policy"]


def export_csv_text(export: dict[str, Any]) -> str:
    """One row per answer of an exported learner (the JSON export has the mastery estimates and hints too).
    Cells that a spreadsheet would run as a formula are prefixed with a quote."""
    out = io.StringIO()
    w = csv.DictWriter(out, CSV_FIELDS)
    w.writeheader()
    who = export["learner"]

    def cell(v: Any) -> Any:
        return "'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v

    for e in export["answers"]:
        w.writerow({k: cell(v) for k, v in {
            "learner": who["id"], "name": who["name"], "step": e["step"], "time": e["ts"],
            "activity": e["activity"], "question": e["question"], "expected": e["expected"], "answer": e["answer"],
            "correct": e["correct"], "propensity": e["propensity"], "policy": e["policy"]}.items()})
    return out.getvalue()


def build_tutor(recipe: str | Path, run_dir: str | Path, hints: bool = True, scorer: Any = None
                ) -> tuple[Tutor, Any]:
    """The :class:`Tutor` a recipe describes (its database under ``run_dir``)."""
    from banditarena.curriculum.hints import build_hint_service
    from banditarena.curriculum.recipe import load_recipe
    from banditarena.paths import resolve_path

    rec, cur = load_recipe(recipe)
    spec = rec.hints if hints else rec.hints.model_copy(update={"enabled": False})
    service = build_hint_service(spec, rec.base_dir, scorer)
    db = resolve_path(rec.serve.db, Path(run_dir))
    return Tutor(cur, db, rec.serve.policy, service, seed=rec.seed, default_grade=rec.serve.grade), rec


def secret_path(tutor: Tutor) -> Path:
    """Where the server secret of a tutor database lives: beside it, ``NAME.secret`` (mode 0600)."""
    return tutor.path.with_suffix(".secret")
