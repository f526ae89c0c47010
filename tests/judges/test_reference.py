"""Offline reference-guided judges on real data: GSM8K verification and MiniLM similarity on Arena-Hard."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from banditarena.judges import (
    JudgeRequest,
    ReferenceSimilarityJudge,
    VerifierJudge,
    combine,
    make_judge,
)
from banditarena.paths import data_file
from banditarena.text import extract_answer, is_correct
from banditarena.types import Generation, Prompt
from tests.support.shared import need


def _gsm8k(n: int) -> list[dict]:
    path = need("gsm8k/test.jsonl") / "gsm8k" / "test.jsonl"
    with path.open() as f:
        return [json.loads(line) for _, line in zip(range(n), f)]


def _perturb(worked: str) -> str:
    """The same worked answer with the final answer changed (+1)."""
    body, final = worked.rsplit("####", 1)
    value = float(final.strip().replace(",", ""))
    return body + f"#### {value + 1:g}"


def _as_model_answer(worked: str) -> str:
    """A worked answer rewritten the way a chat model writes it: no calculator tags, "The answer is $n."."""
    body, final = worked.rsplit("####", 1)
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f"{body}\nThe answer is ${final.strip()}."


@pytest.mark.parametrize(
    "text,expected",
    [
        ("He pays 3 * 6 = 18\n#### 18", "18"),
        ("So the total is $1,234.50.", "1234.5"),
        ("The final answer is 50%.", "50"),
        ("Thus \\boxed{\\frac{3}{4}} of the cake.", "0.75"),
        ("The answer is \\boxed{x+1}.", "x+1"),
        ("It takes 2 1/2 hours in total.", "2.5"),
        ("He ends with -$5 in his account.", "-5"),
        ("First 12, then 15 apples.", "15"),
        ("16-3-4=9", "9"),
        ("Answer: 3/4", "0.75"),
        ("no number here", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_is_correct_compares_values() -> None:
    assert is_correct("so it is 0.75", "3/4")
    assert is_correct("The answer is $1,200.00.", "worked...\n#### 1200")
    assert not is_correct("13", "#### 12")
    assert not is_correct("1450001", "#### 1,450,000")  # large integers compare exactly
    assert not is_correct("no idea", "#### 12") and not is_correct("12", None)


def test_real_gsm8k_worked_answers_verify_and_perturbed_do_not() -> None:
    rows = _gsm8k(300)
    for r in rows:
        a = r["answer"]
        assert is_correct(a, a), a[-60:]
        assert is_correct(_as_model_answer(a), a), a[-60:]
        assert not is_correct(_perturb(a), a), a[-60:]


def test_verifier_judge_scores_and_ties_on_gsm8k() -> None:
    rows = _gsm8k(40)
    judge = VerifierJudge()
    reqs, expected = [], []
    for i, r in enumerate(rows):
        p = Prompt(id=f"gsm{i}", messages=[{"role": "user", "content": r["question"]}], reference=r["answer"])
        right = Generation("right", p.id, [_as_model_answer(r["answer"])])
        wrong = Generation("wrong", p.id, [_perturb(r["answer"])])
        pair = [(right, wrong), (wrong, right), (right, right), (wrong, wrong)][i % 4]
        reqs.append(JudgeRequest(p, *pair))
        expected.append((float(pair[0].contestant == "right"), float(pair[1].contestant == "right")))
    out = judge.judge(reqs)
    assert [(j.score_first, j.score_second) for j in out] == expected
    assert all(j.ok and j.judge == "verifier" for j in out)
    # position-independent: both orders of (right, wrong) make one consistent battle
    [swapped] = judge.judge([JudgeRequest(reqs[0].prompt, reqs[0].second, reqs[0].first)])
    assert (swapped.score_first, swapped.score_second) == (0.0, 1.0)
    b = combine(out[0], swapped, "right", "wrong", judge.name)
    assert b.winner == "model_a" and not b.inconsistent and b.margin == 1.0
    # both right (or both wrong) is a tie
    assert out[2].preferred == "tie" and out[3].preferred == "tie"
    assert judge.judge(reqs[:1])[0] == out[0]  # deterministic


def test_verifier_without_reference_is_invalid() -> None:
    p = Prompt(id="noref", messages=[{"role": "user", "content": "hi"}])
    [j] = VerifierJudge().judge([JudgeRequest(p, Generation("a", "noref", ["1"]), Generation("b", "noref", ["2"]))])
    assert not j.ok and "noref" in (j.error or "") and j.preferred is None
    assert j.raw  # a final invalid judgment (not a transient failure to retry)


# ------------------------------------------------------------------------------ similarity (real MiniLM)


def _arena_hard(model: str) -> dict[str, str]:
    path = data_file(f"arena_hard_v0.1/model_answer/{model}.jsonl")  # the demos' answers are packaged too
    if not path.exists():
        need(f"arena_hard_v0.1/model_answer/{model}.jsonl")
    out = {}
    for line in path.open():
        d = json.loads(line)
        out[d["uid"]] = d["messages"][-1]["content"]["answer"]
    return out


@pytest.fixture(scope="module")
def similarity_judge() -> ReferenceSimilarityJudge:
    pytest.importorskip("sentence_transformers")
    from banditarena.models.hub import minilm_path

    try:
        minilm_path()
    except Exception as exc:  # noqa: BLE001 - the embedded model wheel is missing on this machine
        pytest.skip(f"all-MiniLM-L6-v2 not available: {exc}")
    return ReferenceSimilarityJudge(reference_contestant="gpt-4-0314")


def test_similarity_prefers_the_answer_to_the_same_prompt(similarity_judge: ReferenceSimilarityJudge) -> None:
    ref, cand = _arena_hard("gpt-4-0314"), _arena_hard("gpt-4-0613")
    uids = sorted(set(ref) & set(cand))
    rng = np.random.default_rng(0)
    chosen = [uids[i] for i in rng.choice(len(uids), size=12, replace=False)]
    n_added = similarity_judge.set_references(
        [Generation("gpt-4-0314", u, [ref[u]]) for u in chosen] + [Generation("someone-else", chosen[0], ["x"])]
    )
    assert n_added == len(chosen)  # only the reference contestant's answers are used
    reqs_ab, reqs_ba = [], []
    for k, u in enumerate(chosen):
        other = chosen[(k + 5) % len(chosen)]
        p = Prompt(id=u, messages=[{"role": "user", "content": "?"}])
        same = Generation("gpt-4-0613", u, [cand[u]])
        off = Generation("off-topic", u, [cand[other]])
        reqs_ab.append(JudgeRequest(p, same, off))
        reqs_ba.append(JudgeRequest(p, off, same))
    out_ab, out_ba = similarity_judge.judge(reqs_ab), similarity_judge.judge(reqs_ba)
    battles = [combine(x, y, "gpt-4-0613", "off-topic", similarity_judge.name) for x, y in zip(out_ab, out_ba)]
    wins = sum(b.winner == "model_a" for b in battles)
    assert wins >= 11, [b.margin for b in battles]
    assert not any(b.inconsistent for b in battles)  # position-independent by construction
    for x, y in zip(out_ab, out_ba):  # swapping the order swaps the scores exactly
        assert (x.score_first, x.score_second) == (y.score_second, y.score_first)
        assert 1.0 <= x.score_first <= 10.0 and "proxy" in x.rationale


def test_similarity_scale_ties_and_missing_reference(similarity_judge: ReferenceSimilarityJudge) -> None:
    p = Prompt(id="s1", messages=[{"role": "user", "content": "Capital of France?"}],
               reference="The capital of France is Paris.")
    a = Generation("a", "s1", ["Paris is the capital of France."])
    b = Generation("b", "s1", ["I like turtles and the ocean."])
    raw = ReferenceSimilarityJudge(embedder=similarity_judge.embedder, scale="cosine")
    [j] = raw.judge([JudgeRequest(p, a, b)])
    assert 0.8 < j.score_first <= 1.0 and j.score_second < 0.5 and j.preferred == "first"
    [t] = raw.judge([JudgeRequest(p, a, Generation("c", "s1", ["Paris is the capital of France."]))])
    assert t.preferred == "tie"
    q = Prompt(id="s2", messages=[{"role": "user", "content": "?"}])
    [bad] = raw.judge([JudgeRequest(q, a, b)])
    assert not bad.ok and "s2" in (bad.error or "")
    # the reference text is part of the cache key
    p2 = Prompt(id="s1", messages=p.messages, reference="Something else.")
    assert raw.cache_key(JudgeRequest(p, a, b)) != raw.cache_key(JudgeRequest(p2, a, b))
    assert isinstance(make_judge("similarity", embedder=raw.embedder), ReferenceSimilarityJudge)
