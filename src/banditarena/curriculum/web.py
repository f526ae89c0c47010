"""The tutor as a local web app: FastAPI with plain HTML (Jinja2 templates, no JavaScript needed).

FastAPI and server-rendered HTML were chosen over Gradio because the pages are a few plain forms a child can
use on any browser (and a school's locked-down tablets), every state change is a POST that the server
validates and stores before answering, and the pages are easy to test end to end in a headless browser.

Pages: ``/`` (type a name and a grade, or resume), ``/learn/{name}`` (the problem, feedback, a hint button),
``/teacher`` (every learner's mastery estimates, the policy's recent choices with their propensities, and every
hint with why a generated one was rejected). ``/api/learners/{name}`` returns the teacher view as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from banditarena.curriculum.items import MAX_ANSWER_CHARS, AnswerError
from banditarena.curriculum.tutor import NameError_, Tutor

TEMPLATES = Path(__file__).parent / "templates"


def create_app(tutor: Tutor, title: str | None = None) -> Any:
    """The FastAPI app serving ``tutor``."""
    from fastapi import FastAPI, Form
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.0f}%"
    env.filters["q"] = lambda s: quote(str(s), safe="")
    app = FastAPI(title=title or f"banditarena tutor: {tutor.curriculum.title}", docs_url=None, redoc_url=None)
    app.state.tutor = tutor
    base = {"title": title or tutor.curriculum.title, "max_chars": MAX_ANSWER_CHARS}

    def page(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(template).render(**base, **ctx), status_code=status)

    def to_learner(name: str) -> RedirectResponse:
        return RedirectResponse(f"/learn/{quote(name, safe='')}", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return page("home.html", learners=tutor.learners(), grade=tutor.default_grade, error=None, name="")

    @app.post("/start")
    def start(name: str = Form(""), grade: str = Form("")) -> Any:
        try:
            n = tutor.start(name, grade)
        except NameError_ as exc:
            return page("home.html", 400, learners=tutor.learners(), grade=tutor.default_grade, error=str(exc),
                        name=name[:40])
        return to_learner(n)

    def learn_page(name: str, error: str | None = None, typed: str = "", status: int = 200) -> Any:
        try:
            cur = tutor.current(name)
        except KeyError:
            return RedirectResponse("/", status_code=303)
        return page("learn.html", status, cur=cur, error=error, typed=typed[:MAX_ANSWER_CHARS])

    @app.get("/learn/{name}")
    def learn(name: str) -> Any:
        return learn_page(name)

    @app.post("/learn/{name}/answer")
    def answer(name: str, answer: str = Form(""), item_id: str = Form("")) -> Any:
        try:
            tutor.answer(name, answer, item_id or None)
        except AnswerError as exc:
            return learn_page(name, error=str(exc), typed=answer, status=422)
        except KeyError:
            return RedirectResponse("/", status_code=303)
        return to_learner(name)

    @app.post("/learn/{name}/hint")
    def hint(name: str, answer: str = Form("")) -> Any:
        try:
            tutor.hint(name, answer.strip()[:MAX_ANSWER_CHARS] or None)
        except KeyError:
            return RedirectResponse("/", status_code=303)
        return to_learner(name)

    @app.get("/teacher", response_class=HTMLResponse)
    def teacher() -> HTMLResponse:
        views = [tutor.learner_view(n) for n in tutor.learners()]
        return page("teacher.html", learners=views, hints=tutor.hint_log(), stats=tutor.hint_stats(),
                    policy=tutor.policy.label, scorer=getattr(tutor.hints, "scorer_name", "-"))

    @app.get("/api/learners/{name}")
    def api_learner(name: str) -> Any:
        try:
            return tutor.learner_view(name)
        except KeyError:
            return JSONResponse({"error": f"unknown learner {name!r}"}, status_code=404)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(recipe: str | Path, run_dir: str | Path, host: str | None = None, port: int | None = None,
          hints: bool = True) -> None:  # pragma: no cover - runs a server until interrupted
    """Start the web tutor for ``recipe`` (blocks)."""
    import uvicorn

    tutor, rec = build_tutor(recipe, run_dir, hints=hints)
    app = create_app(tutor, f"{rec.name}: {tutor.curriculum.title}")
    uvicorn.run(app, host=host or rec.serve.host, port=port or rec.serve.port, log_level="warning")


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
