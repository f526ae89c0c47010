"""Offline-Diverse, Offline-Hard (rubric and margins), build_testset and decontamination."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from banditarena.errors import ConfigError, DataError
from banditarena.models.base import Backend, ChatRequest
from banditarena.prompts import (
    DifficultyScores,
    HashEmbedder,
    MarginScorer,
    RubricScorer,
    build_testset,
    decontaminate,
    load_prompts,
    offline_diverse,
    offline_hard,
    save_testset,
)
from banditarena.text import parse_difficulty
from banditarena.types import Completion, Prompt, Strategy

TOPICS = {
    "cooking": [
        "How do I bake sourdough bread at home?",
        "What is the best way to roast vegetables in the oven?",
        "Give me a recipe for a chocolate cake.",
        "How long should I boil an egg for a soft yolk?",
        "How do I make fresh pasta dough by hand?",
    ],
    "networks": [
        "Explain the difference between TCP and UDP.",
        "How does a DNS lookup work step by step?",
        "What is a subnet mask used for in IP networking?",
        "Why do routers use BGP between networks?",
        "How does TLS protect data sent over the internet?",
    ],
    "football": [
        "Who has won the most FIFA World Cups?",
        "Explain the offside rule in soccer.",
        "What formation does a 4-3-3 football team use?",
        "How long is a professional football match?",
        "What does a goalkeeper do during a penalty kick?",
    ],
    "astronomy": [
        "Why is the planet Mars red?",
        "How far away is the nearest star from the Sun?",
        "What is a black hole made of?",
        "Why does the Moon have phases?",
        "How do astronomers detect exoplanets around other stars?",
    ],
}


def P(i: str, text: str, **kw) -> Prompt:
    return Prompt(id=i, messages=[{"role": "user", "content": text}], **kw)


def topic_pool() -> list[Prompt]:
    return [P(f"{t}{i}", s, category=t) for t, ss in TOPICS.items() for i, s in enumerate(ss)]


# ------------------------------------------------------------------ diverse
def test_diverse_covers_every_cluster(minilm):
    pool = topic_pool()
    out = offline_diverse(pool, n_clusters=4, per_cluster=2, embedder=minilm, seed=0)
    assert len(out) == 8
    # the MiniLM clusters are the four topics: two picks from each
    assert sorted(p.category for p in out) == sorted([t for t in TOPICS for _ in range(2)])
    by_cluster: dict[str, list[Prompt]] = {}
    for p in out:
        by_cluster.setdefault(p.meta["testset"]["cluster"], []).append(p)
        assert p.meta["testset"]["subset"] == "diverse" and p.cluster == p.meta["testset"]["cluster"]
    assert len(by_cluster) == 4
    for ps in by_cluster.values():  # nearest to the centroid first
        assert [q.meta["testset"]["rank"] for q in ps] == [0, 1]
        assert ps[0].meta["testset"]["distance"] <= ps[1].meta["testset"]["distance"]
    assert all(p.cluster is None for p in pool)  # the pool itself is untouched
    again = offline_diverse(pool, 4, 2, minilm, seed=0)
    assert [p.id for p in again] == [p.id for p in out]


def test_diverse_random_and_existing_clusters():
    pool = load_prompts("arena_hard")
    out = offline_diverse(pool, n_clusters=None, per_cluster=1, embedder=None, seed=1, method="random")
    assert len(out) == 250 and len({p.cluster for p in out}) == 250
    out2 = offline_diverse(pool, None, 1, None, seed=1, method="random")
    out3 = offline_diverse(pool, None, 1, None, seed=2, method="random")
    assert [p.id for p in out2] == [p.id for p in out]
    assert [p.id for p in out3] != [p.id for p in out]
    lim = offline_diverse(pool, None, 2, None, seed=0, method="random", limit=300)
    assert len(lim) == 300 and len({p.cluster for p in lim}) == 250
    with pytest.raises(ConfigError, match="n_clusters=None needs Prompt.cluster"):
        offline_diverse(topic_pool(), None, 1, HashEmbedder())


# ------------------------------------------------------------------ hard by margins
def battles_with_planted_hard() -> tuple[list[Prompt], pd.DataFrame, set[str]]:
    rng = np.random.default_rng(0)
    pool = [P(f"q{i}", f"question {i}") for i in range(30)]
    hard = {"q3", "q11", "q17", "q25"}
    rows = []
    models = ["m1", "m2", "m3"]
    for p in pool:
        for a in range(3):
            for b in range(a + 1, 3):
                big = p.id in hard
                margin = float(rng.choice([-1, 1]) * (rng.uniform(5, 8) if big else rng.uniform(0, 1.5)))
                winner = "model_a" if margin > 0.5 else "model_b" if margin < -0.5 else "tie"
                rows.append(
                    {
                        "prompt_id": p.id,
                        "model_a": models[a],
                        "model_b": models[b],
                        "winner": winner,
                        "margin": margin,
                    }
                )
    rows.append(
        {"prompt_id": "q0", "model_a": "m1", "model_b": "m2", "winner": None, "margin": 100.0}
    )  # invalid: ignored
    return pool, pd.DataFrame(rows), hard


def test_hard_by_margins_picks_planted_prompts():
    pool, df, hard = battles_with_planted_hard()
    out = offline_hard(pool, 4, MarginScorer(df))
    assert {p.id for p in out} == hard
    diffs = [p.meta["testset"]["difficulty"] for p in out]
    assert diffs == sorted(diffs, reverse=True) and out[0].meta["testset"]["method"] == "margins:decisive"
    contested = offline_hard(pool, 4, MarginScorer(df, mode="contested"))
    assert not hard & {p.id for p in contested}
    # no margin column: the winner's sign is the margin
    ds = MarginScorer(df.drop(columns="margin")).score(pool)
    assert ds.details["q3"]["mean_abs_margin"] >= 0.99


def test_margin_scorer_exclusions_and_bad_table():
    pool, df, _ = battles_with_planted_hard()
    pool.append(P("unseen", "never battled"))
    ds = MarginScorer(df, min_battles=3).score(pool)
    assert ds.excluded == {"unseen": "no battles"}
    assert ds.summary()["scored"] == 30
    ds4 = MarginScorer(df, min_battles=4).score(pool)
    assert len(ds4.excluded) == 31
    # a list of Battle objects (as the store returns them) works too; invalid battles are ignored
    from banditarena.types import Battle

    bs = [
        Battle("q1", "a", "b", "model_a", 3.0),
        Battle("q1", "a", "c", "tie", 0.2),
        Battle("q2", "a", "b", None),
    ]
    ds_b = MarginScorer(bs).score(pool[:3])
    assert ds_b.scores == {"q1": pytest.approx(1.6)} and ds_b.excluded == {
        "q0": "no battles",
        "q2": "no battles",
    }
    with pytest.raises(DataError, match=r"lacks column\(s\) \['winner'\]"):
        MarginScorer(df.drop(columns="winner"))


# ------------------------------------------------------------------ hard by rubric (fake backend)
class CannedJudge(Backend):
    """Answers difficulty requests with canned text chosen by the prompt; records every request."""

    kind = "fake"

    def __init__(self, replies: dict[str, list[str]], fail: set[str] = frozenset()) -> None:
        super().__init__("canned-judge")
        self.replies = replies
        self.fail = fail
        self.calls: list[ChatRequest] = []

    async def acomplete(self, requests, strategy, progress=None):
        out = []
        for r in requests:
            self.calls.append(r)
            if r.prompt_id in self.fail:
                out.append(Completion(error="HTTP 503 after 3 retries"))
                continue
            n_prev = sum(1 for m in r.messages if m["role"] == "assistant")
            seq = self.replies[r.prompt_id]
            out.append(Completion(text=seq[min(n_prev, len(seq) - 1)]))
        return out


@pytest.mark.parametrize(
    "text,value",
    [
        ("Meets complexity and precision.\nDifficulty: 8", 8.0),
        ("**Difficulty:** 7/10", 7.0),
        ("The difficulty score is 6.", 6.0),
        ("On a 1-10 scale... Difficulty: 9", 9.0),
        ("Rating: [[4]]", 4.0),
        ('{"difficulty": 3, "why": "easy"}', 3.0),
        ("5", 5.0),
        ("I'd say 7/10 overall.", 7.0),
        ("Difficulty: 2\n...on reflection\nDifficulty: 5", 5.0),
        ("Difficulty: 11", None),
        ("Difficulty: 100", None),
        ("Difficulty: 1-10", None),
        ("This request is quite hard.", None),
        ("", None),
    ],
)
def test_parse_difficulty(text, value):
    assert parse_difficulty(text) == value


def test_rubric_scorer_parses_retries_and_excludes():
    pool = [
        P("easy", "hi"),
        P("hard", "prove the Riemann hypothesis"),
        P("retry", "write a compiler"),
        P("junk", "something"),
        P("down", "anything"),
    ]
    judge = CannedJudge(
        {
            "easy": ["Just a greeting.\nDifficulty: 1"],
            "hard": ["Deep maths, proof needed.\n**Difficulty:** 10"],
            "retry": ["Compilers are involved.", "Difficulty: 8"],
            "junk": ["no idea", "still no number"],
            "down": ["unused"],
        },
        fail={"down"},
    )
    scorer = RubricScorer(judge, Strategy(name="j", max_tokens=64))
    ds = scorer.score(pool)
    assert ds.scores == {"easy": 1.0, "hard": 10.0, "retry": 8.0}
    assert ds.excluded["junk"].startswith("unparsable")
    assert ds.excluded["down"] == "backend error: HTTP 503 after 3 retries"
    assert ds.details["retry"]["attempts"] == 2 and ds.details["junk"]["raw"] == [
        "no idea",
        "still no number",
    ]
    assert ds.summary()["excluded_by_reason"] == {"unparsable": 1, "backend error": 1}
    # the rubric is the system prompt, the request is shown to the judge, the retry reminds of the format
    first = judge.calls[0]
    assert first.messages[0]["role"] == "system" and "Difficulty: N" in first.messages[0]["content"]
    assert "hi" in first.messages[1]["content"]
    retry_call = [c for c in judge.calls if c.prompt_id == "retry"][1]
    assert retry_call.messages[-2] == {"role": "assistant", "content": "Compilers are involved."}
    assert len([c for c in judge.calls if c.prompt_id == "easy"]) == 1
    out = offline_hard(pool, 2, ds)
    assert [p.id for p in out] == ["hard", "retry"]
    no_retry = RubricScorer(CannedJudge({"retry": ["Compilers.", "Difficulty: 8"]}), retries=0).score(
        [pool[2]]
    )
    assert no_retry.scores == {} and "retry" in no_retry.excluded


def test_offline_hard_with_a_mapping_breaks_ties_by_pool_order():
    pool = [P(f"p{i}", f"t{i}") for i in range(5)]
    out = offline_hard(pool, 3, {"p0": 1.0, "p1": 5.0, "p2": 5.0, "p4": 9.0})
    assert [p.id for p in out] == ["p4", "p1", "p2"]


# ------------------------------------------------------------------ build
def test_build_testset_manifest_and_no_overlap(tmp_path):
    pool = topic_pool() + [P("cooking0-dup", TOPICS["cooking"][0] + "  ")]
    scores = DifficultyScores(scores={p.id: float(len(p.text)) for p in pool}, method="length")
    ts = build_testset(
        pool, n_diverse=4, per_cluster=1, n_hard=3, embedder=HashEmbedder(), scorer=scores, seed=0
    )
    prompts, manifest = ts
    ids = [p.id for p in prompts]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert "cooking0-dup" not in ids
    assert (
        manifest["dedup"]["removed"] == 1
        and manifest["pool_size"] == 21
        and manifest["pool_after_dedup"] == 20
    )
    assert manifest["diverse"]["n"] == 4 and manifest["diverse"]["n_clusters"] == 4
    assert manifest["hard"]["n"] == 3 and manifest["hard"]["method"] == "length"
    assert manifest["diverse"]["ids"] + manifest["hard"]["ids"] == ids
    rest = [p for p in pool if p.id not in manifest["diverse"]["ids"] and p.id != "cooking0-dup"]
    longest = sorted(rest, key=lambda p: -len(p.text))[:3]
    assert manifest["hard"]["ids"] == [p.id for p in longest]
    again = build_testset(pool, 4, 1, 3, embedder=HashEmbedder(), scorer=scores, seed=0)
    assert json.dumps(again.manifest, sort_keys=True) == json.dumps(manifest, sort_keys=True)
    path = save_testset(ts, tmp_path / "ts")
    assert [p.to_dict() for p in load_prompts(path)] == [p.to_dict() for p in prompts]
    assert json.loads((tmp_path / "ts/manifest.json").read_text())["n_prompts"] == 7
    with pytest.raises(ConfigError, match="needs a scorer"):
        build_testset(pool, 2, 1, 2, embedder=HashEmbedder())


# ------------------------------------------------------------------ decontamination
def test_decontaminate_removes_planted_paraphrases_and_copies(minilm):
    test = [
        P("t1", "How does a DNS lookup work step by step?"),
        P("t2", "Give me a recipe for a chocolate cake."),
        P("t3", "Why does the Moon have phases?"),
    ]
    train = [
        P("copy", "How does a DNS lookup work step by step?"),
        P("para", "Can you give me a recipe for chocolate cake?"),
        P("para2", "Why does the moon have phases?!"),
        P("near-topic", "What is the tallest mountain in the Alps?"),
        P("other", "Write a haiku about autumn leaves."),
        P("other2", "How do I invest in index funds?"),
    ]
    kept, removed = decontaminate(train, test, minilm, threshold=0.85)
    assert [p.id for p in kept] == ["near-topic", "other", "other2"]
    got = {r.prompt.id: (r.test_id, r.cosine) for r in removed}
    assert got.keys() == {"copy", "para", "para2"}
    assert got["copy"][0] == "t1" and got["copy"][1] > 0.999
    assert got["para"][0] == "t2" and got["para2"][0] == "t3"
    # chunking does not change the answer
    kept2, removed2 = decontaminate(train, test, minilm, threshold=0.85, chunk=2)
    assert [p.id for p in kept2] == [p.id for p in kept] and len(removed2) == 3
