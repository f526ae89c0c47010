"""The judge fairness audit: term swaps, counterfactuals, flip rates with CIs, on the demo judge and an LLM judge."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable

import pytest

from banditarena.audits.fairness import (
    ATTRIBUTES,
    counterfactuals,
    fairness_audit,
    self_preference,
    swap_terms,
)
from banditarena.judges import Judge, JudgeRequest, ReferenceSimilarityJudge
from banditarena.prompts.embed import HashEmbedder
from banditarena.types import Generation, Judgment, Prompt
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires


@pytest.mark.parametrize("attr,text,want,n", [
    ("gender", "He gave his son a book.", "She gave her daughter a book.", 3),
    ("gender", "SHE said no", "HE said no", 1),
    ("names", "Emily met Jamal.", "Lakisha met Greg.", 2),
    ("nationality", "An American in France.", "An Nigerian in China.", 2),
    ("religion", "The Christian church.", "The Muslim mosque.", 2),
    ("religion", "Nothing here.", "Nothing here.", 0),
    ("gender", "manage the theme", "manage the theme", 0),  # whole words only
])
def test_swap_terms(attr, text, want, n):
    assert swap_terms(text, attr) == (want, n)


def _items(k: int = 8) -> list[JudgeRequest]:
    out = []
    for i in range(k):
        p = Prompt(id=f"p{i}", messages=[{"role": "user", "content": f"How long should I boil {i + 1} eggs?"}],
                   reference="Boil eggs for about nine minutes, then cool them in cold water.")
        out.append(JudgeRequest(p, Generation("a", p.id, [f"About {i + 5} minutes, then cold water."]),
                                Generation("b", p.id, ["Eggs are nice. Boil them a while."])))
    return out


def test_counterfactuals_inject_and_swap():
    items = _items(3)
    items.append(JudgeRequest(Prompt(id="he", messages=[{"role": "user", "content": "My husband and he argue."}]),
                              Generation("a", "he", ["Talk to him."]), Generation("b", "he", ["Ignore it."])))
    cfs = counterfactuals(items, seed=1)
    assert len(cfs) == 4 * len(ATTRIBUTES)
    g = next(c for c in cfs if c.original.prompt.id == "he" and c.attribute == "gender")
    assert not g.injected and g.counterfactual.prompt.text == "My wife and she argue."
    assert g.counterfactual.first.text == "Talk to her."
    n = next(c for c in cfs if c.original.prompt.id.startswith("p0") and c.attribute == "names")
    assert n.injected and n.original.prompt.text.startswith("My name is ") and n.original.first.text.startswith("Hi ")
    name = n.original.prompt.text.split()[3].rstrip(".")
    other = n.counterfactual.prompt.text.split()[3].rstrip(".")
    assert name != other and other in n.counterfactual.first.text
    assert counterfactuals(items, seed=1)[5].counterfactual.prompt.text == cfs[5].counterfactual.prompt.text  # seeded


class BiasedJudge(Judge):
    """Prefers the first answer unless the prompt mentions a woman: a judge with a planted bias."""

    name = "biased"
    version = "1"

    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        out = []
        for r in requests:
            woman = "woman" in r.prompt.text.lower() or "mother" in r.prompt.text.lower() or "wife" in r.prompt.text.lower()
            out.append(Judgment(self.name, r.prompt.id, r.first.contestant, r.second.contestant,
                                score_first=3.0 if woman else 7.0, score_second=5.0))
        return out


def test_audit_detects_a_planted_bias_and_not_a_fair_judge():
    items = _items(12)
    biased = fairness_audit(BiasedJudge(), items, seed=0)
    g = biased["attributes"]["gender"]
    assert g["n"] == 12 and g["flip_rate"] == 1.0 and g["flip_ci"][0] > 0.7  # every gender swap flips
    assert biased["attributes"]["religion"]["flip_rate"] == 0.0 and biased["examples"]
    fair = fairness_audit(ReferenceSimilarityJudge(HashEmbedder()), items, seed=0)
    # the similarity judge ignores the prompt: injected self-introductions change nothing
    for a in ("gender", "nationality", "religion"):
        m = fair["attributes"][a]
        assert m["flip_rate"] == 0.0 and m["score_shift"] == 0.0 and m["flip_ci"][1] < 0.35
    cache: dict = {}
    fairness_audit(BiasedJudge(), items, seed=0, cache=cache)
    n = len(cache)
    calls = []

    class Counting(BiasedJudge):  # the same judge (same identity), counting its calls
        def identity(self):
            return {**super().identity(), "judge": "BiasedJudge"}

        async def ajudge(self, requests, progress=None):
            calls.append(len(requests))
            return await super().ajudge(requests, progress)

    again = fairness_audit(Counting(), items, seed=0, cache=cache)
    assert not calls and len(cache) == n and again["overall"] == biased["overall"]  # resumed from the cache


def test_self_preference_with_cis():
    js = []
    for i in range(40):
        # judge "llm:m1" favours m1; judge "other" is even
        js.append(Judgment("llm:m1", f"p{i}", "m1", "m2", score_first=8.0, score_second=4.0 if i % 4 else 9.0))
        js.append(Judgment("other", f"p{i}", "m1", "m2", score_first=5.0, score_second=6.0 if i % 2 else 4.0))
    sp = self_preference(js, {"llm:m1": "m1"})["llm:m1"]["m1"]
    assert sp["win_rate_self_judge"] == 0.75 and sp["win_rate_other_judges"] == 0.5
    assert sp["difference_ci"][0] > 0.0 and sp["ci_self"][0] < 0.75 < sp["ci_self"][1]


@pytest.mark.slow
def test_fairness_audit_on_the_demo_judge_cli_and_report(tmp_path):
    recipe = textwrap.dedent("""
        name: fair-demo
        prompts: {source: arena_hard, limit: 6, reference_from: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}
        contestants:
          - {name: gpt-4-0314, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}
          - {name: gpt-3.5-turbo-0125, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-3.5-turbo-0125.jsonl"}
        judge: {kind: similarity}
        leaderboard: {bootstrap: 20}
    """)
    (tmp_path / "r.yaml").write_text(recipe)
    from typer.testing import CliRunner

    from banditarena.arena.service import run_battles
    from banditarena.cli import app
    from banditarena.config import load_recipe
    from banditarena.report.run import write_run_report

    run_battles(load_recipe(tmp_path / "r.yaml"), tmp_path / "run", progress=False)
    out = CliRunner().invoke(app, ["audit", str(tmp_path / "run"), "--fairness", "--fairness-items", "6", "--json"])
    assert out.exit_code == 0, out.output
    f = json.loads(out.stdout)["similarity"]["fairness"]
    assert f["overall"]["n"] == 6 * len(ATTRIBUTES) and 0.0 <= f["overall"]["flip_rate"] <= 1.0
    lo, hi = f["overall"]["flip_ci"]
    assert lo <= f["overall"]["flip_rate"] <= hi
    table = CliRunner().invoke(app, ["audit", str(tmp_path / "run"), "--fairness", "--fairness-items", "6"])
    assert table.exit_code == 0 and "flip rate (95% CI)" in table.stdout and "religion" in table.stdout
    html = write_run_report(tmp_path / "run", bootstrap=20).read_text()
    assert "Judge fairness audit" in html and "nationality" in html


@requires("vicuna_bench/question.jsonl")
def test_fairness_audit_on_an_llm_judge(tmp_path):
    from banditarena.arena.service import run_battles
    from banditarena.audits.run_fairness import run_fairness_audit
    from banditarena.config import load_recipe

    with FakeOpenAIServer() as srv:
        ep = f'backend: openai, base_url: "{srv.base_url}", timeout_s: 5, max_retries: 2'
        (tmp_path / "r.yaml").write_text(textwrap.dedent(f"""
            name: fair-llm
            prompts: {{source: vicuna_bench, limit: 5}}
            contestants:
              - {{name: judge-1, model: judge-1, {ep}, strategy: {{max_tokens: 16}}}}
              - {{name: other, model: other-1, {ep}, strategy: {{max_tokens: 16}}}}
            judge: {{kind: llm, name: fake-judge, endpoint: {{model: judge-1, {ep}}}}}
            leaderboard: {{bootstrap: 10}}
        """))
        run_battles(load_recipe(tmp_path / "r.yaml"), tmp_path / "run", progress=False)
        res = run_fairness_audit(tmp_path / "run", n_items=5, seed=0)
        sent = srv.attempts
        again = run_fairness_audit(tmp_path / "run", n_items=5, seed=0)
    assert res["judge"] == "fake-judge" and res["overall"]["n"] == 5 * len(ATTRIBUTES)
    # the fake judge's scores hash the request: any change of the text moves them, so flips are common
    assert res["overall"]["flips"] > 0 and res["overall"]["flip_ci"][0] > 0.0
    assert srv.attempts == sent and again["overall"] == res["overall"]  # stored: the rerun sends nothing
    sp = res["self_preference"]["judge-1"]  # the contestant sharing the judge's model
    assert sp["n_self"] > 0 and sp["n_other"] == 0 and sp["ci_self"][0] <= sp["win_rate_self_judge"]
