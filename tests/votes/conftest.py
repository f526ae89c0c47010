"""Fixtures for the human-vote tests: a run store with prompts and answers, a vote service, a signed-in voter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from banditarena.store import RunStore
from banditarena.types import Generation, Prompt, stable_hash

SECRET = b"v" * 32
MODELS = ("alpha-7b", "beta-13b", "gamma-70b")
HOSTILE = ('<script>window.__pwned = 1; document.title = "pwned"</script>'
           '<img src=x onerror="window.__pwned = 2; document.title = \'pwned\'">'
           ' [click](javascript:window.__pwned=3) <iframe src="https://example.com"></iframe> **bold** end')


def make_prompts(n: int = 6) -> list[Prompt]:
    return [Prompt(f"p{i}", [{"role": "user", "content": f"Question number {i}: how do I sort a list?"}],
                   category="coding" if i % 2 else "writing", cluster=f"c{i % 3}") for i in range(n)]


def answer_text(model: str, pid: str) -> str:
    return f"Answer of {model[:1].upper()} to {pid}:\n\n* use `sorted(xs)`\n* or `xs.sort()`\n\n" + "more " * (
        1 + 10 * MODELS.index(model))


def fill_store(store: RunStore, prompts: list[Prompt], models=MODELS, hostile: str | None = None
               ) -> dict[tuple[str, str], Generation]:
    store.add_prompts(prompts)
    answers = {}
    for p in prompts:
        for m in models:
            text = hostile if (hostile is not None and m == models[0]) else answer_text(m, p.id)
            g = Generation(m, p.id, [text], cache_key=stable_hash({"m": m, "p": p.id, "t": text}))
            store.put_generation(g)
            answers[(m, p.id)] = g
    return answers


def make_service(run_dir: Path, *, hostile: str | None = None, n_prompts: int = 6, **kw):
    from banditarena.votes.service import VoteService

    store = RunStore(run_dir)
    prompts = make_prompts(n_prompts)
    answers = fill_store(store, prompts, hostile=hostile)
    return VoteService(store, prompts, answers, SECRET, seed=0, **kw)


@pytest.fixture()
def service(tmp_path):
    svc = make_service(tmp_path / "run")
    yield svc
    svc.store.close()


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert m, f"no {name} on the page"
    return m.group(1)


def vote_rows(run_dir: Path) -> int:
    import sqlite3

    with sqlite3.connect(run_dir / "run.sqlite") as con:
        return con.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
