"""Human votes: ``banditarena vote serve | import | export`` (the page, FastChat logs in and out)."""

from __future__ import annotations

from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors

vote_app = typer.Typer(help="Human votes: a live arena page, FastChat vote logs in and out.", no_args_is_help=True)
app.add_typer(vote_app, name="vote")

ADMIN_ENV = "BANDITARENA_VOTE_ADMIN_TOKEN"


def _secret(run_dir: Path) -> bytes:
    from banditarena.errors import ConfigError
    from banditarena.web import load_or_create_secret

    try:
        return load_or_create_secret(run_dir / "web.secret")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@vote_app.command("serve")
@clean_errors
def serve(
    recipe: Path = typer.Argument(..., help="Arena recipe (YAML): its prompt pool and contestants."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory: votes are stored in its run store."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8000, help="Port."),
    sampler: str = typer.Option("variance", help="Which battle a voter sees: variance (Chatbot Arena's active "
                                "sampling over the votes so far), uncertain (where the run's AI judges are least "
                                "certain; run 'banditarena battle' on the run dir first) or uniform."),
    secure_cookies: bool = typer.Option(False, help="Mark the voter cookie Secure (serve behind HTTPS)."),
    progress: bool = typer.Option(True, help="Show progress while the answers are generated or replayed."),
) -> None:
    """Serve the vote page: a prompt from the recipe's pool and two anonymous answers; A is better / B is
    better / Tie / Both are bad; names shown after the vote; a leaderboard page. The admin page and exports
    need the token in $BANDITARENA_VOTE_ADMIN_TOKEN (else one is made and printed once)."""
    import uvicorn

    from banditarena.config import load_recipe
    from banditarena.errors import ConfigError
    from banditarena.votes.service import SAMPLERS, build_service
    from banditarena.votes.web import create_app
    from banditarena.web import AdminToken

    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: must be one of {', '.join(SAMPLERS)}, got '{sampler}'")
    if not 0 < port < 65536:
        raise ConfigError(f"--port: must be 1..65535, got {port}")
    try:
        token = AdminToken.from_env(ADMIN_ENV)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    rec = load_recipe(recipe)
    service = build_service(rec, run_dir, lambda: _secret(run_dir), sampler=sampler, progress=progress)
    secret = _secret(run_dir)
    plain = None
    if token is None:
        token, plain = AdminToken.issue(ttl_s=None, one_time=False)
    web = create_app(service, secret=secret, admin_token=token, secure_cookies=secure_cookies,
                     title=f"banditarena arena: {rec.name}")
    st = service.stats()
    typer.echo(f"{st['prompts']} prompts, {st['models']} models, {st['pairs']} pairs, {st['votes']} votes stored; "
               f"serving http://{host}:{port}/ (Ctrl-C stops; every acknowledged vote is already stored)")
    if host not in ("127.0.0.1", "localhost", "::1") and not secure_cookies:
        typer.echo(f"note: serving on {host}: put the server behind HTTPS and add --secure-cookies")
    if plain:
        typer.echo(f"admin token for /admin and the exports (shown once; set ${ADMIN_ENV} to choose one): {plain}")
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    finally:
        service.store.close()


@vote_app.command("import")
@clean_errors
def import_cmd(
    logs: list[Path] = typer.Argument(..., help="FastChat conv.json vote logs (JSONL) and/or clean_battle*.json."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory to store the votes in."),
    recipe: Path | None = typer.Option(None, help="Arena recipe: battles naming a model that is not one of its "
                                       "contestants are skipped, and its pool's prompt ids are reused."),
) -> None:
    """Import FastChat vote logs with FastChat's cleaning rules (anonymous battles only, no identity words, no
    empty turns, one vote per voter per battle); prints one line: imported, and skipped by reason."""
    from banditarena.config import load_recipe
    from banditarena.errors import DataError
    from banditarena.prompts import load_pool
    from banditarena.store import RunStore
    from banditarena.votes.fastchat import import_logs, read_logs

    for p in logs:
        if not p.is_file():
            raise DataError(f"{p}: no such vote log")
    records = read_logs(logs)
    models = pool = None
    if recipe is not None:
        rec = load_recipe(recipe)
        models = [c.name for c in rec.build_contestants()]
        pool = load_pool(rec.prompts, seed=rec.seed, base_dir=rec.base_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    key = _secret(run_dir)
    with RunStore(run_dir) as store:
        report = import_logs(store, logs, key=key, models=models, pool=pool or (), records=records)
    typer.echo(report.summary() + ("" if recipe else "; no --recipe: every model accepted"))


@vote_app.command("export")
@clean_errors
def export_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    conv: Path | None = typer.Option(None, "--conv", help="Write FastChat conv.json vote lines here."),
    clean: Path | None = typer.Option(None, "--clean", help="Write a FastChat clean_battle JSON list here."),
) -> None:
    """Export the run's human votes in FastChat's formats (the voter pseudonym in 'ip' / 'judge')."""
    from banditarena.errors import ConfigError
    from banditarena.store import RunStore
    from banditarena.votes.fastchat import export_clean, export_conv

    if conv is None and clean is None:
        raise ConfigError("vote export: give --conv FILE and/or --clean FILE")
    store = RunStore(run_dir, create=False)
    if conv is not None:
        n, left = export_conv(store, conv)
        typer.echo(f"{conv}: {n} votes" + (f" ({left} imported without conversations left out)" if left else ""))
    if clean is not None:
        typer.echo(f"{clean}: {export_clean(store, clean)} battles")


def print_agreement(run_dir: Path, *, as_json: bool = False, seed: int = 0) -> None:
    """``banditarena audit RUN --against human``: each AI judge against the human votes."""
    import json

    from banditarena.store import RunStore
    from banditarena.votes.agreement import agreement_against_human

    res = agreement_against_human(RunStore(run_dir, create=False), seed=seed)
    if as_json:
        typer.echo(json.dumps(res, indent=2, default=float))
        return

    def rate(r: dict) -> str:
        lo, hi = r["ci"]
        return f"{r['value']:.3f} (95% CI {lo:.3f}-{hi:.3f}, n={r['n']})"

    for judge, r in res.items():
        typer.echo(f"judge {judge} against {r['matched_votes']} of {r['human_votes']} human votes (same prompt and pair):")
        typer.echo(f"  agreement without ties      {rate(r['agreement'])}")
        typer.echo(f"  agreement with ties         {rate(r['agreement_with_ties'])}")
        typer.echo(f"  tie rate                    judge {r['judge_tie_rate']:.3f}, people {r['human_tie_rate']:.3f}")
        if r.get("human_vs_human"):
            hh = r["human_vs_human"]
            typer.echo(f"  people with each other      {hh['agreement']:.3f} ({hh['pairs']} pairs of votes)")
        for c in r["by_category"][:5]:
            typer.echo(f"  least agreement: {c['category'][:40]:<40} {c['agreement']:.3f} (n={c['n']})")
        for b in r["by_length"]:
            typer.echo(f"  {b['bin']:<26} agreement {b['agreement']:.3f} (n={b['n']}, |length diff| <= "
                       f"{b['max_abs_diff_chars']:.0f} chars)")
        d = r.get("disagreements_longer_chosen")
        if d and d["n"]:
            typer.echo(f"  when they disagree ({d['n']}): the judge chose the longer answer {d['judge']:.0%}, "
                       f"people {d['human']:.0%}")
