"""Safety commands: ``banditarena safety train | score | info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from banditarena.cli.app import app, clean_errors, console

safety_app = typer.Typer(help="Safety scorers for generated training data: train, score, inspect.",
                         no_args_is_help=True)
app.add_typer(safety_app, name="safety")


@safety_app.command("train")
@clean_errors
def train_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Folder for safety-clf.npz/.json (default: the shipped artifact's folder).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (folds, solver).")] = 0,
    setting: Annotated[list[str], typer.Option("--set", help="Override a training setting, NAME=VALUE (repeatable).")] = (),
    cv: Annotated[bool, typer.Option("--cv", help="Also cross-validate (grouped folds) and print out-of-fold figures.")] = False,
) -> None:
    """Train the offline safety classifier from XSTest, HH-RLHF and AlpacaEval (seeded, reproducible)."""
    from banditarena.safety.train import settings_from_overrides, train

    settings = settings_from_overrides([*setting, f"seed={seed}"])
    c = console()
    path = train(out, settings, progress=lambda s: c.print(f"[dim]{s}[/dim]"))
    manifest = json.loads(path.read_text(encoding="utf-8"))
    typer.echo(f"{path}: version {manifest['version']}, thresholds text {manifest['thresholds']['text']['threshold']:.3f} "
               f"response {manifest['thresholds']['response']['threshold']:.3f}")
    if cv:
        from banditarena.safety.report import cv_table

        c.print(cv_table(settings, progress=lambda s: c.print(f"[dim]{s}[/dim]")))


def _read_inputs(texts: list[str], file: Path | None, text_field: str, prompt_field: str | None
                 ) -> tuple[list[str], list[str] | None]:
    from banditarena.errors import DataError

    if file is None:
        if not texts:
            raise DataError("safety score: give texts as arguments or --file FILE (JSONL or plain text, one per line)")
        return list(texts), None
    if not file.exists():
        raise DataError(f"{file}: file not found")
    out_t: list[str] = []
    out_p: list[str] = []
    if file.suffix == ".jsonl":
        from banditarena.text import iter_jsonl

        for i, row in iter_jsonl(file):
            try:
                out_t.append(str(row[text_field]))
                if prompt_field:
                    out_p.append(str(row[prompt_field]))
            except (KeyError, TypeError) as exc:
                raise DataError(f"{file}:{i}: expected a JSON object with '{text_field}'"
                                f"{' and ' + repr(prompt_field) if prompt_field else ''} ({exc})") from exc
    else:
        with file.open(encoding="utf-8") as fh:
            out_t.extend(line.rstrip("\n") for line in fh if line.strip())
    return out_t, (out_p if prompt_field else None)


@safety_app.command("score")
@clean_errors
def score_cmd(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to score (or --file).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="JSONL (objects) or plain text (one text a line).")] = None,
    text_field: Annotated[str, typer.Option(help="JSONL field holding the text.")] = "text",
    prompt_field: Annotated[str | None, typer.Option(help="JSONL field holding the prompt each text answers.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="The prompt every argument text answers.")] = None,
    scorer: Annotated[str, typer.Option(help="classifier, wordlist, llamaguard or cascade.")] = "classifier",
    wordlist: Annotated[bool, typer.Option(help="Also apply the word list + PII patterns.")] = False,
    artifact: Annotated[Path | None, typer.Option(help="Classifier manifest (default: the shipped one).")] = None,
    base_url: Annotated[str | None, typer.Option(help="llamaguard/cascade: OpenAI-compatible endpoint.")] = None,
    model: Annotated[str, typer.Option(help="llamaguard/cascade: the model name at the endpoint.")] = "llama-guard-3-8b",
    template: Annotated[str, typer.Option(help="llamaguard: 'task' (our Llama Guard prompt) or 'native'.")] = "task",
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="llamaguard: cache requests in this run store.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per text.")] = False,
) -> None:
    """Score texts: verdict, unsafe score and categories with reasons."""
    from banditarena.safety import make_scorer
    from banditarena.store import RunStore

    items, prompts = _read_inputs(list(texts or []), file, text_field, prompt_field)
    if prompt is not None:
        prompts = [prompt] * len(items)
    cfg: dict = {"scorer": scorer, "wordlist": wordlist, "template": template}
    if artifact is not None:
        cfg["artifact"] = str(artifact)
    if scorer in ("llamaguard", "cascade"):
        cfg["endpoint"] = {"backend": "openai", "model": model, "base_url": base_url}
    store = RunStore(run_dir) if run_dir is not None else None
    sc = make_scorer(cfg, store=store)
    results = sc.score(items, prompts=prompts)
    if as_json:
        for t, r in zip(items, results):
            typer.echo(json.dumps({"text": t[:200], **r.to_dict()}, ensure_ascii=False))
    else:
        from rich.table import Table

        tab = Table(title=f"safety: {sc.name} ({sc.version})")
        for col in ("#", "verdict", "score", "categories", "text"):
            tab.add_column(col, overflow="fold")
        for i, (t, r) in enumerate(zip(items, results), start=1):
            cats = "; ".join(f"{k}: {v}" for k, v in r.categories.items()) or (r.error or "")
            tab.add_row(str(i), r.verdict, f"{r.score:.2f}", cats, t[:80] + ("..." if len(t) > 80 else ""))
        console().print(tab)
    share = getattr(sc, "share_escalated", None)
    if share is None and hasattr(sc, "scorers"):
        share = next((s.share_escalated for s in sc.scorers if hasattr(s, "share_escalated")), None)
    if share is not None:
        typer.echo(f"escalated to the LLM classifier: {share:.0%} of {len(items)} texts")
    n_unc = sum(r.verdict == "uncertain" for r in results)
    if n_unc:
        typer.echo(f"{n_unc} text(s) uncertain (held back; rerun to retry failed classifications)")


@safety_app.command("info")
@clean_errors
def info_cmd(
    artifact: Annotated[Path | None, typer.Argument(help="Classifier manifest (default: the shipped one).")] = None,
) -> None:
    """Show the classifier artifact's manifest: version, feature set, thresholds, training data hashes."""
    from banditarena.safety import default_scorer

    sc = default_scorer(artifact)
    m = sc.manifest
    typer.echo(f"{sc.path}\n  version {m['version']}\n  features {json.dumps(m['features'])}")
    typer.echo(f"  thresholds {json.dumps(m['thresholds'])}\n  window {json.dumps(m['window'])}")
    typer.echo(f"  data {json.dumps(m['data']['counts'])}")
    for f, h in m["data"]["files_sha256"].items():
        typer.echo(f"    {f}  sha256 {h[:16]}")


def print_fairness(run_dir: Path, n_items: int, seed: int, *, quiet: bool = False) -> dict:
    """Run (or resume) the fairness audit of a run's judge and print its table (used by ``audit --fairness``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from banditarena.audits.fairness import fairness_table
    from banditarena.audits.run_fairness import run_fairness_audit

    with Progress(TextColumn("fairness audit"), BarColumn(), MofNCompleteColumn(), disable=quiet,
                  transient=True) as prog:
        task = prog.add_task("fairness", total=None)

        def step(k: int, total: int) -> None:
            prog.update(task, total=total, advance=k)

        res = run_fairness_audit(run_dir, n_items=n_items, seed=seed, progress=step)
    if quiet:
        return res
    from rich.table import Table

    t = Table(title=f"Judge fairness: {res['judge']} (counterfactual demographic swaps, {res['n_items']} battles)")
    for col in ("attribute", "items", "flips", "flip rate (95% CI)", "mean |score shift| (95% CI)"):
        t.add_column(col, justify="left" if col == "attribute" else "right")
    for r in fairness_table([res]).to_dict("records"):
        fr = "-" if r["flip_rate"] != r["flip_rate"] else (
            f"{r['flip_rate']:.1%} ({r['flip_ci_low']:.1%}..{r['flip_ci_high']:.1%})")
        sh = "-" if r["score_shift"] != r["score_shift"] else (
            f"{r['score_shift']:.3f} ({r['shift_ci_low']:.3f}..{r['shift_ci_high']:.3f})")
        t.add_row(r["attribute"], str(r["items"]), str(r["flips"]), fr, sh)
    console().print(t)
    if res["invalid"]:
        typer.echo(f"  {res['invalid']} counterfactual pair(s) left out: a judgment was invalid or failed "
                   f"({res['failed_requests']} failed requests; rerun to retry)")
    for c, sp in (res.get("self_preference") or {}).items():
        other = "no other judge in this run" if not sp["n_other"] else (
            f"{sp['win_rate_other_judges']:.1%} under the other judges; difference {sp['difference']:+.1%} "
            f"({sp['difference_ci'][0]:+.1%}..{sp['difference_ci'][1]:+.1%})")
        typer.echo(f"  self-preference: '{c}' (the judge's own model) wins {sp['win_rate_self_judge']:.1%} "
                   f"({sp['ci_self'][0]:.1%}..{sp['ci_self'][1]:.1%}, n={sp['n_self']}) under this judge; {other}")
    return res
