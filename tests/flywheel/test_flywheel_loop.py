"""The flywheel end to end on a tiny random model: battles, selection, TRL training, evaluation, resume."""

import json

import pandas as pd
import pytest

from banditarena.errors import ConfigError, DataError
from banditarena.flywheel.loop import Flywheel
from banditarena.flywheel.recipe import FlywheelRecipe, load_flywheel_recipe
from banditarena.judges import ReferenceSimilarityJudge
from banditarena.prompts.embed import HashEmbedder


def recipe(tiny, **over):
    d = {
        "name": "fw-test", "seed": 0,
        "target": {"name": "tiny", "backend": "local", "model": str(tiny), "batch_size": 8},
        "opponents": [
            {"name": "gpt-4-0314", "backend": "replay", "path": "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"},
            {"name": "gpt-3.5", "backend": "replay", "path": "data:arena_hard_v0.1/model_answer/gpt-3.5-turbo-0125.jsonl"},
        ],
        "strategies": {"plain": {"max_tokens": 12}, "expert": {"system_prompt": "Be an expert.", "max_tokens": 12}},
        "pool": {"source": "arena_hard", "limit": 60, "reference_from": "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"},
        "cluster_field": "category",
        "iterations": 2, "battles_per_iteration": 8,
        "bandit": {"batch": 4},
        "selection": {"sft_margin": 0.5, "dpo_margin": 0.5, "decontaminate": False},
        "training": {"epochs": 1, "batch_size": 4, "max_length": 96, "max_steps": 2},
        "eval": {"testset": {"source": "arena_hard", "ids": None, "limit": 4,
                             "reference_from": "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}, "bootstrap": 20},
    }
    for k, v in over.items():
        d[k] = v
    return FlywheelRecipe.model_validate(d)


def judge():
    return ReferenceSimilarityJudge(embedder=HashEmbedder())


@pytest.mark.slow
def test_flywheel_runs_trains_and_resumes(tiny_llama, tmp_path, capsys):
    rec = recipe(tiny_llama)
    fw = Flywheel(rec, tmp_path / "run", judge=judge())
    res = fw.run()
    assert [s.iteration for s in res.iterations] == [1, 2]
    assert all(s.battles == 8 for s in res.iterations)
    assert list(res.elo["iteration"]) == [0, 1, 2]
    assert (res.elo["ci_low"] <= res.elo["rating"]).all() and (res.elo["rating"] <= res.elo["ci_high"]).all()
    # data exported in TRL formats and a new checkpoint per iteration
    for it in (1, 2):
        d = tmp_path / "run" / "data" / f"it{it}"
        assert (d / "sft.jsonl").exists() and (d / "dpo.jsonl").exists()
        done = json.loads((tmp_path / "run" / "checkpoints" / f"it{it}" / "DONE").read_text())
        assert (tmp_path / "run" / "checkpoints" / f"it{it}").exists() and done["checkpoint"]
    assert res.iterations[1].checkpoint != res.iterations[0].checkpoint
    # every decision logged with a propensity, per dimension
    dec = res.decisions
    assert set(dec["dimension"]) == {"clusters", "opponents", "strategies", "prompts"}
    assert ((dec["propensity"] > 0) & (dec["propensity"] <= 1)).all() and len(dec) == 4 * 16
    table = res.table()
    assert list(table["iteration"]) == [0, 1, 2] and table["allocation"].iloc[1]
    # each checkpoint also battled the earlier ones on every test prompt (answers reused, judge calls only)
    ev = fw.store.battles("eval")
    pairs = {frozenset((a, b)) for a, b in zip(ev["model_a"], ev["model_b"])}
    assert {frozenset(("tiny-it1", "tiny-it0")), frozenset(("tiny-it2", "tiny-it0")),
            frozenset(("tiny-it2", "tiny-it1"))} <= pairs
    assert len(ev) == 4 * (2 + 3 + 4)  # 4 test prompts x (it0: 2 opponents; it1: 2 + it0; it2: 2 + it0 + it1)
    # the gain over iteration 0 comes with a paired bootstrap CI that holds it
    assert res.elo["gain"].iloc[0] == 0
    for r in res.elo.itertuples():
        assert r.gain_low <= r.gain + 1e-9 and r.gain - 1e-9 <= r.gain_high
        assert abs(r.gain - (r.rating - res.elo["rating"].iloc[0])) < 1e-6

    # the closing table and the report with its three plots
    from banditarena.flywheel.report import print_table, write_flywheel_report

    print_table(res)
    out = capsys.readouterr().out
    assert "gain vs it0" in out and "mean of all models = 1000" in out
    # the style-controlled gain sits beside the raw one, with its own paired CI
    assert "style-controlled gain" in out and res.elo["style_gain"].iloc[0] == 0
    for r in res.elo.itertuples():
        assert r.style_gain_low <= r.style_gain + 1e-9 <= r.style_gain_high + 2e-9
    it2 = res.elo.iloc[2]
    assert f"{it2.rating:.0f} ({it2.ci_low:.0f}..{it2.ci_high:.0f})" in out
    html = write_flywheel_report(tmp_path / "run", res)
    assert html.exists()
    for png in ("elo_over_iterations.png", "arm_pulls.png", "yield_per_arm.png"):
        assert (tmp_path / "run" / "figures" / png).stat().st_size > 1000

    counts = fw.store.counts()
    # a rerun of the same recipe pays for nothing: same stored rows, same result
    fw2 = Flywheel(rec, tmp_path / "run", judge=judge())
    res2 = fw2.run()
    assert fw2.store.counts() == counts
    assert res2.elo.equals(res.elo)
    # a changed training setting never reuses (or overwrites) a checkpoint trained under the old one
    before = (tmp_path / "run" / "data" / "it1" / "sft.jsonl").read_text()
    changed = recipe(tiny_llama, training={"epochs": 1, "batch_size": 4, "max_length": 96, "max_steps": 2,
                                           "learning_rate": 1e-5})
    with pytest.raises(ConfigError, match=r"checkpoints/it1: this checkpoint was trained on other data or training"):
        Flywheel(changed, tmp_path / "run", judge=judge()).run()
    assert (tmp_path / "run" / "data" / "it1" / "sft.jsonl").read_text() == before
    assert (tmp_path / "run" / "checkpoints" / "it1" / "DONE").exists()


def test_recipe_errors_name_the_field(tmp_path, tiny_llama):
    p = tmp_path / "r.yaml"
    (tmp_path / "x.jsonl").write_text("")  # the replay files exist: each case fails on its own field
    local = "target: {name: t, backend: local}\n"
    replay_opp = "opponents: [{name: o, backend: replay, path: x.jsonl}]\n"
    cases = [
        (local + replay_opp + "cluster_field: flavour\n", "r.yaml.*cluster_field"),
        ("target: {name: t, backend: replay, path: x.jsonl}\n" + replay_opp, "replay target cannot be retrained"),
        (local + replay_opp + "eval: {anchor: gpt-9}\n", "eval.anchor.*gpt-9"),
        (local + "opponents: [{name: o, backend: local, strategy: terse}]\n", "unknown strategy 'terse'"),
        (local + replay_opp + "bandit: {prompts: {policy: best}}\n", "r.yaml.*bandit.prompts.policy"),
        (local + "opponents: []\n", "at least one opponent"),
        (local + "opponents: [{name: o, backend: replay, path: nope.jsonl}]\n",
         "r.yaml: field 'opponents.0.path': replay answer file 'nope.jsonl' not found"),
        (local + replay_opp + "cluster_field: 'kmeans:many'\n", "K in kmeans:K must be a whole number"),
        (local + replay_opp + "bandit: {clusters: {policy: greedy}}\n", "unknown bandit policy 'greedy'"),
        (local + replay_opp + "bandit: {opponents: {policy: ucb1, params: {alpha: -1}}}\n", "bandit.opponents"),
        (local + replay_opp + "pool: {source: missing.jsonl}\n", "prompts file 'missing.jsonl' not found"),
    ]
    for text, match in cases:
        p.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_flywheel_recipe(p)


def test_elo_anchor_and_snapshots_off(tmp_path, tiny_llama):
    rec = recipe(tiny_llama, iterations=1, training={"enabled": False},
                 eval={"testset": {"source": "arena_hard", "limit": 4,
                                   "reference_from": "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"},
                       "bootstrap": 20, "anchor": "gpt-4-0314", "snapshots": False})
    fw = Flywheel(rec, tmp_path / "run", judge=judge())
    res = fw.run()
    assert res.leaderboard.loc["gpt-4-0314", "rating"] == pytest.approx(1000)
    assert res.leaderboard.attrs["anchor"] == "gpt-4-0314"
    ev = fw.store.battles("eval")
    assert len(ev) == 4 * 2 * 2  # it0 and it1, each against the two opponents only
    assert not (ev["model_a"].str.startswith("tiny") & ev["model_b"].str.startswith("tiny")).any()


def test_empty_pool_is_reported(tmp_path, tiny_llama):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    rec = recipe(tiny_llama, pool={"source": str(empty)})
    with pytest.raises(DataError, match="empty"):
        Flywheel(rec, tmp_path / "run", judge=judge())


def test_snapshot_equal_to_an_opponent_is_battled_once(tmp_path, tiny_llama):
    """Iteration 0 and a frozen copy of the base model give the same answers: iteration 0 is evaluated as
    that opponent (its row is the opponent's), so no evidence is counted twice."""
    frozen = {"name": "tiny-frozen", "backend": "local", "model": str(tiny_llama), "batch_size": 8, "strategy": "plain"}
    base = recipe(tiny_llama)
    rec = recipe(tiny_llama, iterations=1, training={"enabled": False},
                 opponents=[o.model_dump(mode="json", exclude_none=True) for o in base.opponents] + [frozen],
                 eval={"testset": {"source": "arena_hard", "limit": 4,
                                   "reference_from": "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"},
                       "bootstrap": 20, "anchor": "tiny-frozen"})
    fw = Flywheel(rec, tmp_path / "run", judge=judge())
    res = fw.run()
    ev = fw.store.battles("eval")
    names = set(ev["model_a"]) | set(ev["model_b"])
    # untrained, iteration 1 is the same model too: both checkpoints are the frozen opponent
    assert "tiny-it0" not in names and "tiny-it1" not in names and "tiny-frozen" in names
    assert len(ev) == 4 * 2  # the frozen model against the two replayed opponents, once
    assert not (ev["model_a"] == ev["model_b"]).any()
    e = res.elo.set_index("iteration")
    assert list(e["evaluated_as"]) == ["tiny-frozen", "tiny-frozen"]
    assert e.loc[0, "rating"] == pytest.approx(1000) and e.loc[0, "ci_low"] == pytest.approx(1000)  # the anchor
    assert e.loc[1, "gain"] == 0


class RecordingJudge(ReferenceSimilarityJudge):
    """The offline judge, keeping every request it was asked to judge."""

    def __init__(self):
        super().__init__(embedder=HashEmbedder())
        self.seen = []

    def judge_batch(self, requests):
        self.seen.extend(requests)
        return super().judge_batch(requests)


def test_simulated_user_personas_are_strategy_arms_of_multi_turn_battles(tmp_path, tiny_llama):
    from tests.support.openai_server import FakeOpenAIServer

    frozen = {"name": "tiny-frozen", "backend": "local", "model": str(tiny_llama), "batch_size": 8, "strategy": "plain"}
    with FakeOpenAIServer() as srv:  # the simulated user behind an OpenAI-compatible endpoint
        rec = recipe(tiny_llama, iterations=1, battles_per_iteration=12, training={"enabled": False},
                     opponents=[frozen], strategies={"plain": {"max_tokens": 8}},
                     user_simulator={"endpoint": {"backend": "openai", "model": "user-sim", "base_url": srv.base_url},
                                     "turns": 3, "max_tokens": 16,
                                     "personas": {"curious": "You are a curious student.",
                                                  "skeptic": "You are a skeptical engineer."}},
                     bandit={"batch": 6, "strategies": {"policy": "uniform"}})
        j = RecordingJudge()
        fw = Flywheel(rec, tmp_path / "run", judge=j, evaluate=False)
        res = fw.run()
        sent = srv.attempts
        assert sent > 0
        # a rerun replays the stored follow-ups and battles: nothing is sent again
        Flywheel(rec, tmp_path / "run", judge=RecordingJudge(), evaluate=False).run()
        assert srv.attempts == sent
    assert not [w for w in res.warnings if "simulated user" in w]
    dec = res.decisions
    arms = set(dec.loc[dec["dimension"] == "strategies", "arm"])
    assert {"curious", "skeptic"} & arms  # personas compete with the plain strategy as arms
    persona = [r for r in j.seen if r.prompt.meta.get("persona")]
    assert persona, "no persona battle was judged"
    for r in persona:
        # the simulated user continued the conversation to 3 user turns; both sides answered every turn,
        # and the judge received the whole dialogue (all user turns, all answers of both sides)
        assert len(r.prompt.user_turns) == 3
        assert len(r.first.turns) == 3 and len(r.second.turns) == 3
        assert r.prompt.meta["base_prompt"] in r.prompt.id
        assert all(t.startswith("[user-sim]") for t in r.prompt.user_turns[1:])  # written by the simulator


def test_simulated_user_without_follow_up_is_reported(tmp_path, tiny_llama):
    frozen = {"name": "tiny-frozen", "backend": "local", "model": str(tiny_llama), "batch_size": 8, "strategy": "plain"}
    # the tiny random model as the simulated user writes only whitespace: conversations end early, counted
    rec = recipe(tiny_llama, iterations=1, battles_per_iteration=6, training={"enabled": False}, opponents=[frozen],
                 strategies={"plain": {"max_tokens": 8}},
                 user_simulator={"endpoint": {"backend": "local", "model": str(tiny_llama)}, "turns": 2,
                                 "max_tokens": 8, "personas": {"curious": "You are a curious student."}},
                 bandit={"batch": 6, "strategies": {"policy": "uniform"}})
    res = Flywheel(rec, tmp_path / "run", judge=RecordingJudge(), evaluate=False).run()
    assert any("simulated user wrote no follow-up" in w and "curious" in w for w in res.warnings)


def test_used_up_arms_fall_back_and_the_budget_is_spent(tmp_path, tiny_llama):
    """A greedy opponent policy keeps picking one opponent; once its prompts are used up, battles go to the
    other opponent (logged as fallbacks) instead of ending the iteration early."""
    d = "data:arena_hard_v0.1/model_answer/"
    rec = recipe(tiny_llama, iterations=1, battles_per_iteration=12, training={"enabled": False},
                 target={"name": "t35", "backend": "replay", "path": f"{d}gpt-3.5-turbo-0125.jsonl"},
                 opponents=[{"name": "g4", "backend": "replay", "path": f"{d}gpt-4-0314.jsonl"},
                            {"name": "g4b", "backend": "replay", "path": f"{d}gpt-4-0613.jsonl"}],
                 strategies={"plain": {"max_tokens": 12}},
                 pool={"source": "arena_hard", "limit": 10,
                       "reference_from": "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"},
                 cluster_field="kmeans:2",
                 bandit={"batch": 4, "opponents": {"policy": "epsilon_greedy", "params": {"epsilon": 0.0}}})
    fw = Flywheel(rec, tmp_path / "run", judge=judge(), evaluate=False)
    res = fw.run()
    n_pool = len(fw.splits[0])
    assert n_pool < 12  # one opponent alone cannot take the whole budget
    assert res.iterations[0].battles == min(12, 2 * n_pool)
    dec = res.decisions
    opp = dec[dec["dimension"] == "opponents"]
    assert len(opp) == res.iterations[0].battles
    fb = opp["meta"].map(lambda m: json.loads(m).get("fallback", False))
    assert fb.any() and not fb.all()
    # no (prompt, opponent) pair is fought twice
    pid = opp["meta"].map(lambda m: json.loads(m)["prompt_id"])
    assert not pd.Series(list(zip(pid, opp["arm"]))).duplicated().any()
    # the prompt inside each cluster is a logged decision too (Thompson over the prompts' records by default)
    pr = dec[dec["dimension"] == "prompts"]
    assert len(pr) == len(opp) and set(pr["policy"]) == {"thompson"}
    assert list(pr["arm"]) == list(pr["meta"].map(lambda m: json.loads(m)["prompt_id"]))
    assert ((pr["propensity"] > 0) & (pr["propensity"] <= 1)).all()


def test_pool_max_chars_drops_long_prompts(tmp_path, tiny_llama):
    ref = "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"
    rec = recipe(tiny_llama, pool={"source": "arena_hard", "max_chars": 300, "reference_from": ref})
    fw = Flywheel(rec, tmp_path / "run", judge=judge(), evaluate=False)
    assert fw.pool and max(sum(len(t) for t in p.user_turns) for p in fw.pool) <= 300
    rec = recipe(tiny_llama, pool={"source": "arena_hard", "max_chars": 3, "reference_from": ref})
    with pytest.raises(DataError, match="max_chars 3: none of the 500 prompts"):
        Flywheel(rec, tmp_path / "run2", judge=judge(), evaluate=False)
