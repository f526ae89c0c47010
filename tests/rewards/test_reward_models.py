"""Each reward model on small real inputs (GSM8K-style worked answers), counters, NaN and load failures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import ConfigError, ModelError
from banditarena.models.base import Backend
from banditarena.rewards.reward_models import (
    CorruptedRM,
    LikelihoodRM,
    LLMJudgeRM,
    NoisyRM,
    ReferenceSimilarityRM,
    SequenceClassifierRM,
    VerifierRM,
)
from banditarena.text import parse_rating
from banditarena.types import Completion

Q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
REF = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
GOOD = "In May she sold 48 / 2 = 24 clips. Altogether 48 + 24 = 72. The answer is 72."
BAD = "She sold 48 + 48 = 96 clips. The answer is 96."


def test_verifier_scores_and_counts() -> None:
    rm = VerifierRM()
    s = rm.score(Q, [GOOD, BAD, "I am not sure."], reference=REF)
    assert s.tolist() == [1.0, 0.0, 0.0]
    assert rm.calls == 3 and rm.requests == 1 and rm.nan_count == 0
    missing = rm.score(Q, [GOOD, BAD])  # no reference: NaN, counted, never a guess
    assert np.isnan(missing).all() and rm.nan_count == 2 and rm.calls == 5


def test_reference_similarity_numbers_and_tokens() -> None:
    rm = ReferenceSimilarityRM("numbers")
    s = rm.score(Q, [GOOD, BAD], reference=REF)
    assert s[0] > s[1] >= 0.0 and s[0] <= 1.0
    t = ReferenceSimilarityRM("tokens").score(Q, [REF, "unrelated words only"], reference=REF)
    assert t[0] == pytest.approx(1.0) and t[1] == 0.0
    with pytest.raises(ConfigError, match="method"):
        ReferenceSimilarityRM("bleu")


def test_reference_similarity_embedding_minilm() -> None:
    rm = ReferenceSimilarityRM("embedding")
    s = rm.score(Q, [GOOD, "The capital of France is Paris."], reference=REF)
    assert s[0] > s[1] and s[0] <= 1.0 + 1e-9


def test_likelihood_rm_matches_manual_logprob(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rm = LikelihoodRM(str(tiny_llama), name="lik")
    s = rm.score(Q, [GOOD, BAD])
    assert s.shape == (2,) and np.isfinite(s).all() and (s < 0).all()
    assert rm.calls == 2
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    msgs = [{"role": "user", "content": Q}]
    prefix = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": GOOD}], tokenize=False)
    p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
    a_ids = tok(full[len(prefix):], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1], -1)
    manual = float(np.mean([logp[len(p_ids) - 1 + k, a].item() for k, a in enumerate(a_ids)]))
    assert s[0] == pytest.approx(manual, abs=1e-4)
    # a reference-guided template changes the context, hence the score
    guided = LikelihoodRM(rm._model, tokenizer=rm._tok, context_template="{prompt}\nReference: {reference}")
    g = guided.score(Q, [GOOD, BAD], reference=REF)
    assert np.isfinite(g).all() and not np.allclose(g, s)
    assert np.isnan(rm.score(Q, [""]))[0] and rm.nan_count == 1  # empty answer: NaN, counted


def test_sequence_classifier_rm(tiny_classifier: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rm = SequenceClassifierRM(str(tiny_classifier), name="cls")
    s = rm.score(Q, [GOOD, BAD, GOOD])
    assert s.shape == (3,) and np.isfinite(s).all()
    assert s[0] == pytest.approx(s[2]) and s[0] != s[1]
    tok = AutoTokenizer.from_pretrained(str(tiny_classifier))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_classifier)).eval()
    text = tok.apply_chat_template([{"role": "user", "content": Q}, {"role": "assistant", "content": BAD}],
                                   tokenize=False)
    with torch.no_grad():
        direct = model(**tok(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0].item()
    assert s[1] == pytest.approx(direct, abs=1e-4)


def test_failing_load_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="broken-rm"):
        SequenceClassifierRM(str(tmp_path / "nope"), name="broken-rm").load()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="lik-bad"):
        LikelihoodRM(str(bad), name="lik-bad").score(Q, [GOOD])


class _FakeBackend(Backend):
    kind = "fake"

    def __init__(self, replies: list[Completion]) -> None:
        super().__init__("fake-judge")
        self.replies = replies
        self.seen: list[str] = []

    async def acomplete(self, requests, strategy, progress=None):
        self.seen.extend(r.messages[-1]["content"] for r in requests)
        return self.replies[:len(requests)]


def test_llm_judge_rm_parses_and_counts_unparsable() -> None:
    backend = _FakeBackend([Completion(text="Correct and clear. Rating: [[8]]"),
                            Completion(text="I cannot decide."),
                            Completion(error="HTTP 503"),
                            Completion(text="Score: 3/10")])
    rm = LLMJudgeRM(backend)
    s = rm.score(Q, [GOOD, BAD, BAD, "x"], reference=REF)
    assert s[0] == 8.0 and s[3] == 3.0 and math.isnan(s[1]) and math.isnan(s[2])
    assert rm.unparsable == 1 and rm.failed == 1 and rm.nan_count == 2 and rm.calls == 4
    assert "[Reference Answer]" in backend.seen[0] and GOOD in backend.seen[0]


@pytest.mark.parametrize("text,want", [("Rating: [[7]]", 7.0), ("rating: 6", 6.0), ("I give it 9/10.", 9.0),
                                        ("  4 ", 4.0), ("Rating: [[11]]", math.nan), ("no number", math.nan),
                                        ("[[2]] then later [[5]]", 5.0)])
def test_parse_rating(text: str, want: float) -> None:
    got = parse_rating(text)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_noisy_rm_is_seeded_and_has_sigma() -> None:
    answers = [GOOD, BAD] * 200
    a = NoisyRM(VerifierRM(), sigma=0.3, seed=5).score(Q, answers, reference=REF)
    b = NoisyRM(VerifierRM(), sigma=0.3, seed=5).score(Q, answers, reference=REF)
    c = NoisyRM(VerifierRM(), sigma=0.3, seed=6).score(Q, answers, reference=REF)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    clean = np.array([1.0, 0.0] * 200)
    assert np.std(a - clean) == pytest.approx(0.3, rel=0.15)
    with pytest.raises(ConfigError):
        NoisyRM(VerifierRM(), sigma=-1)


def test_corrupted_rm_modes() -> None:
    inv = CorruptedRM(VerifierRM(), p=1.0, mode="invert")
    assert inv.score(Q, [GOOD, BAD], reference=REF).tolist() == [-1.0, 0.0] and inv.corrupted == 1
    nan = CorruptedRM(VerifierRM(), p=1.0, mode="nan")
    assert np.isnan(nan.score(Q, [GOOD, BAD], reference=REF)).all() and nan.nan_count == 2
    never = CorruptedRM(VerifierRM(), p=0.0, mode="shuffle")
    assert never.score(Q, [GOOD, BAD], reference=REF).tolist() == [1.0, 0.0]
