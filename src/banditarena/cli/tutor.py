"""Tutoring commands: simulated classrooms, the web tutor, curricula, BKT fits, off-policy comparisons, hints."""

from __future__ import annotations

from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors, console

tutor_app = typer.Typer(help="Tutoring with ZPDES: simulated classrooms, a web tutor, curricula, hints.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(tutor_app, name="tutor")


def _print_df(df, title: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in df.columns:
        t.add_column(str(c), justify="left" if df[c].dtype == object else "right")
    for _, r in df.iterrows():
        t.add_row(*[str(v) for v in r.tolist()])
    console().print(t)


@tutor_app.command()
@clean_errors
def simulate(
    recipe: Path = typer.Argument(..., help="Tutoring recipe (YAML), e.g. src/banditarena/recipes/tutor-arith.yaml."),
    run_dir: Path = typer.Option(Path("runs/tutor"), "--run-dir", help="Where tables, figures and runs go (rerun resumes)."),
    learners: int = typer.Option(None, "--learners", min=1, help="Learners per population (default: the recipe's)."),
    steps: int = typer.Option(None, "--steps", min=1, help="Items per learner (default: the recipe's)."),
    workers: int = typer.Option(None, "--workers", min=1, help="Processes (default: CPU cores)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run every policy on every simulated population side by side; print the table, write CSVs and figures."""
    from banditarena.curriculum.classroom import format_table, run_classrooms

    res = run_classrooms(recipe, run_dir, n_learners=learners, n_steps=steps, workers=workers, progress=progress)
    base = res.summary.attrs.get("baseline") or _baseline(recipe)
    _print_df(format_table(res.summary, base), "Simulated classrooms (mean over learners, 95% CIs)")
    piv = res.groups.pivot_table(index=["population", "profile"], columns="policy", values="final_mastery",
                                 sort=False).round(3).reset_index()
    _print_df(piv, "Final mastery per learner profile")
    typer.echo(f"tables: {run_dir / 'summary.csv'}, {run_dir / 'groups.csv'}, {run_dir / 'curves.csv'}")
    typer.echo(f"figures: {run_dir / 'figures'} ({len(res.figures)} files)")


def _baseline(recipe: Path) -> str:
    from banditarena.curriculum.recipe import load_recipe

    rec, _ = load_recipe(recipe)
    return rec.simulate.baseline if rec.simulate else "expert"


@tutor_app.command()
@clean_errors
def serve(
    recipe: Path = typer.Argument(..., help="Tutoring recipe (YAML)."),
    run_dir: Path = typer.Option(Path("runs/tutor"), "--run-dir", help="Holds the tutor's SQLite database."),
    host: str = typer.Option(None, "--host", help="Address to listen on (default: the recipe's, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default: the recipe's, 8000)."),
    hints: bool = typer.Option(True, help="Generate hints with the recipe's backend (else template hints only)."),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark the session cookie Secure (serve "
                                        "behind HTTPS)."),
) -> None:
    """Start the web tutor: learners sign in at / with their code, teachers at /teacher/login."""
    import uvicorn

    from banditarena.curriculum.accounts import Accounts
    from banditarena.curriculum.web import build_tutor, create_app, secret_path
    from banditarena.web import AdminToken

    tutor, rec = build_tutor(recipe, run_dir, hints=hints)
    secret = _secret(tutor)
    h, p = host or rec.serve.host, port or rec.serve.port
    token = None
    typer.echo(f"tutor '{rec.name}' ({tutor.curriculum.title}, policy {tutor.policy.label}) on http://{h}:{p}/ "
               f"- teachers http://{h}:{p}/teacher/login - database {tutor.path} (secret {secret_path(tutor)})")
    if not Accounts(tutor, secret).has_teachers():
        token, plain = AdminToken.issue(ttl_s=3600, one_time=True)
        typer.echo(f"no teacher account yet: open this one-time link within an hour to create one: "
                   f"http://{h}:{p}/setup?token={plain}")
    app = create_app(tutor, f"{tutor.curriculum.title}", secret=secret, setup_token=token,
                     secure_cookies=secure_cookies, retention_days=rec.serve.retention_days)
    uvicorn.run(app, host=h, port=p, log_level="warning", access_log=False)


def _secret(tutor) -> bytes:
    from banditarena.curriculum.web import secret_path
    from banditarena.errors import StoreError
    from banditarena.web import load_or_create_secret

    try:
        return load_or_create_secret(secret_path(tutor))
    except (ValueError, OSError) as exc:
        raise StoreError(str(exc)) from None


admin_app = typer.Typer(help="Accounts and records of the web tutor: teachers, export, deletion, retention.",
                        no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
tutor_app.add_typer(admin_app, name="admin")

RECIPE_ARG = typer.Argument(..., help="Tutoring recipe (YAML) the tutor is served with.")
RUN_DIR_OPT = typer.Option(Path("runs/tutor"), "--run-dir", help="The tutor's run directory (its database).")


def _open(recipe: Path, run_dir: Path):
    from banditarena.curriculum.recipe import load_recipe
    from banditarena.curriculum.web import build_tutor
    from banditarena.errors import DataError
    from banditarena.paths import resolve_path

    rec, _ = load_recipe(recipe)
    db = resolve_path(rec.serve.db, Path(run_dir))
    if not db.exists():
        raise DataError(f"{db}: no tutor database here (start 'banditarena tutor serve' with this --run-dir)")
    tutor, _ = build_tutor(recipe, run_dir, hints=False)
    return tutor


@admin_app.command("create-teacher")
@clean_errors
def create_teacher(
    recipe: Path = RECIPE_ARG,
    run_dir: Path = RUN_DIR_OPT,
    username: str = typer.Option(..., "--username", help="The teacher's username (3-64 letters, digits, ._@+-)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input "
                                        "(one line) instead of prompting."),
) -> None:
    """Create a teacher account (the password is asked twice, hidden, and stored as an Argon2id hash)."""
    import sys

    from banditarena.curriculum.accounts import AccountError, Accounts
    from banditarena.curriculum.web import build_tutor
    from banditarena.errors import ConfigError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    tutor, _ = build_tutor(recipe, run_dir, hints=False)
    try:
        tid = Accounts(tutor, _secret(tutor)).create_teacher(username, password)
    except AccountError as exc:
        raise ConfigError(f"--username/password: {exc}") from None
    typer.echo(f"teacher {username!r} created (id {tid}) in {tutor.path}")


@admin_app.command("export")
@clean_errors
def export_learner(
    recipe: Path = RECIPE_ARG,
    run_dir: Path = RUN_DIR_OPT,
    learner: str = typer.Option(..., "--learner", help="The learner's id (l_..., shown in the teacher's exports)."),
    out: Path = typer.Option(..., "--out", help="File to write (.json: everything; .csv: one row per answer)."),
) -> None:
    """Write everything stored about one learner to a file (nothing is written for an unknown learner)."""
    import json

    from banditarena.curriculum.web import export_csv_text
    from banditarena.errors import DataError
    from banditarena.paths import write_text_atomic

    tutor = _open(recipe, run_dir)
    try:
        data = tutor.export_learner(learner)
    except KeyError:
        raise DataError(f"--learner: no learner {learner!r} in {tutor.path}") from None
    text = export_csv_text(data) if out.suffix.lower() == ".csv" else json.dumps(data, indent=1, ensure_ascii=False)
    write_text_atomic(out, text)
    typer.echo(f"wrote {out} ({len(data['answers'])} answers, {len(data['hints'])} hints)")


@admin_app.command("delete-learner")
@clean_errors
def delete_learner_cmd(
    recipe: Path = RECIPE_ARG,
    run_dir: Path = RUN_DIR_OPT,
    learner: str = typer.Option(..., "--learner", help="The learner's id (l_...)."),
) -> None:
    """Delete a learner and every answer and hint stored for them."""
    from banditarena.errors import DataError

    tutor = _open(recipe, run_dir)
    if not tutor.delete_learner(learner):
        raise DataError(f"--learner: no learner {learner!r} in {tutor.path}")
    typer.echo(f"deleted learner {learner} and their records from {tutor.path}")


@admin_app.command("purge")
@clean_errors
def purge(
    recipe: Path = RECIPE_ARG,
    run_dir: Path = RUN_DIR_OPT,
    inactive_days: float = typer.Option(..., "--inactive-days", min=0.0, help="Delete learners (with all their "
                                        "records) not active for this many days."),
) -> None:
    """Delete the records of every learner inactive for a number of days (a retention period)."""
    tutor = _open(recipe, run_dir)
    n = tutor.purge_inactive(inactive_days)
    typer.echo(f"deleted {n} learners inactive for {inactive_days:g} days from {tutor.path}")


@tutor_app.command()
@clean_errors
def curriculum(
    source: str = typer.Argument(..., help="Built-in curriculum (arith, gsm8k) or a curriculum YAML file."),
) -> None:
    """Check a curriculum and list its activities, prerequisites and items."""
    import pandas as pd

    from banditarena.curriculum.spec import load_curriculum

    cur = load_curriculum(source, Path.cwd())
    _print_df(pd.DataFrame(cur.describe()), f"{cur.title}: {cur.n_skills} skills, {cur.n_activities} activities")
    typer.echo("expert sequence: " + " -> ".join(cur.activities[i].id for i in cur.expert_sequence))


@tutor_app.command("fit-bkt")
@clean_errors
def fit_bkt_cmd(
    source: Path = typer.Argument(..., help="A response log: CSV (user_id, skill_name, order_id, correct), a "
                                            "simulated run (.npz under RUN_DIR/runs) or a tutor database (.sqlite)."),
    out: Path = typer.Option(None, "--out", help="Write the fitted parameters to this CSV."),
    no_forgets: bool = typer.Option(False, "--no-forgets", help="Fit without forgetting."),
    learners: int = typer.Option(None, "--learners", min=1, help="Use only the first N learners of a simulated run."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fit BKT parameters (prior, learn, guess, slip, forget) per activity from a response log."""
    import sqlite3

    from banditarena.curriculum.bktfit import fit_bkt, log_from_run, log_from_tutor, read_log
    from banditarena.curriculum.sim import ClassroomRun
    from banditarena.errors import DataError

    if not source.exists():
        raise DataError(f"{source}: file not found")
    if source.suffix == ".npz":
        run = ClassroomRun.load(source)
        acts = run.meta.get("activities") or [str(i) for i in range(int(run.acts.max()) + 1)]
        log = log_from_run(run, acts, learners)
    elif source.suffix in (".sqlite", ".db"):
        con = sqlite3.connect(str(source))
        con.row_factory = sqlite3.Row
        try:
            events = [dict(r) for r in con.execute("SELECT learner, activity, correct FROM events ORDER BY id")]
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{source}: not a tutor database ({exc})") from None
        finally:
            con.close()
        log = log_from_tutor(events)
    else:
        log = read_log(source)
    res = fit_bkt(log, forgets=not no_forgets, seed=seed)
    _print_df(res.round(3), f"BKT fit ({len(log)} answers)")
    if out is not None:
        res.to_csv(out, index=False)
        typer.echo(f"wrote {out}")


@tutor_app.command()
@clean_errors
def ope(
    recipe: Path = typer.Argument(..., help="The tutoring recipe the classrooms were simulated with."),
    run_dir: Path = typer.Option(Path("runs/tutor"), "--run-dir", help="The simulate command's run directory."),
    population: str = typer.Option(..., "--population", help="Population name."),
    logged: str = typer.Option("random", "--logged", help="Policy whose logged decisions are used."),
    target: str = typer.Option("zpdes", "--target", help="Policy to evaluate off-policy (a policy of the recipe)."),
    reward: str = typer.Option("correct", "--reward", help="gain (simulation only), correct or lp."),
) -> None:
    """Estimate a policy's one-step value from another policy's logged decisions (IPS, SNIPS, DR)."""
    import pandas as pd

    from banditarena.curriculum.classroom import make_tasks
    from banditarena.curriculum.ope import estimates_table, off_policy_estimates, replay_probabilities
    from banditarena.curriculum.recipe import load_recipe
    from banditarena.curriculum.sim import ClassroomRun
    from banditarena.errors import ConfigError, DataError

    rec, cur = load_recipe(recipe)
    if rec.simulate is None:
        raise ConfigError(f"{recipe}: no 'simulate' section")
    pols = {p.label: p for p in rec.simulate.policies}
    for name in (logged, target):
        if name not in pols:
            raise ConfigError(f"{recipe}: no policy named '{name}' (policies: {', '.join(pols)})")
    tasks = [t for t in make_tasks(rec, cur.fingerprint) if t.population.name == population]
    if not tasks:
        raise ConfigError(f"{recipe}: no population named '{population}'")
    files = sorted((run_dir / "runs").glob(f"{population}__{logged}__*.npz"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise DataError(f"{run_dir / 'runs'}: no logged run of '{logged}' on '{population}'; run tutor simulate first")
    run = ClassroomRun.load(files[-1])
    tp = replay_probabilities(run, cur, pols[target].kind, pols[target].params, seed=rec.seed)
    res = off_policy_estimates(run, tp, reward=reward)
    df = pd.DataFrame(estimates_table(res)).round(4)
    _print_df(df, f"'{target}' estimated from '{logged}' logs on '{population}' ({res['n']:,} decisions, "
                  f"reward {reward}; logged value {res['logged_value']:.4f})")


@tutor_app.command()
@clean_errors
def hints(
    recipe: Path = typer.Argument(..., help="Tutoring recipe (its hints section names the backend)."),
    items: int = typer.Option(16, "--items", min=1, help="Hints to ask for."),
    grade: int = typer.Option(None, "--grade", help="Learner's grade (default: each activity's)."),
    batch: int = typer.Option(8, "--batch", min=1, help="Hints generated together."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Try the hint pipeline: how many generated hints pass (safety, readability...) and how long they take."""
    import numpy as np
    import pandas as pd

    from banditarena.curriculum.hints import STAGES, build_hint_service, hint_trial
    from banditarena.curriculum.recipe import load_recipe

    rec, cur = load_recipe(recipe)
    service = build_hint_service(rec.hints, rec.base_dir)
    res, its = hint_trial(cur, service, items, grade, seed, batch)
    df = pd.DataFrame([{"activity": it.activity, "shown": r.source, "stage": r.stage or "-",
                        "grade": "-" if r.grade_level is None else f"{r.grade_level:.1f}",
                        "text": (r.generated or "")[:70]} for r, it in zip(res, its)])
    _print_df(df, f"Hints from {rec.hints.endpoint.backend}:{rec.hints.endpoint.model} (safety: {service.scorer_name})")
    c = service.counts
    lat = np.array([r.latency_s for r in res])
    typer.echo(f"shown from the model: {c['model']}/{c['requests']}; rejected: " + ", ".join(
        f"{k} {c[k]}" for k in STAGES) +
        f"; wait per hint: median {np.median(lat):.2f} s, p90 {np.quantile(lat, 0.9):.2f} s (batches of {batch})")
