"""PairwiseLLMJudge against a scripted Backend subclass: prompt, parsing, the one retry, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from banditarena.errors import JudgeError
from banditarena.judges import (
    JudgeRequest,
    PairwiseLLMJudge,
    combine,
    is_retryable,
    make_judge,
)
from banditarena.judges.llm import RETRY_SEPARATOR
from banditarena.models.base import Backend, ChatRequest
from banditarena.types import Completion, Generation, Prompt, Strategy


class ScriptedBackend(Backend):
    """Returns canned completions in sequence and records every request it was sent."""

    kind = "scripted"

    def __init__(self, replies: list[str | Completion], model: str = "judge-model") -> None:
        super().__init__(model)
        self.replies = list(replies)
        self.calls: list[tuple[list[ChatRequest], Strategy]] = []

    async def acomplete(
        self, requests: list[ChatRequest], strategy: Strategy, progress: Callable[[int], None] | None = None
    ) -> list[Completion]:
        self.calls.append((requests, strategy))
        out = []
        for _ in requests:
            r = self.replies.pop(0)
            out.append(r if isinstance(r, Completion) else Completion(text=r, tokens=len(r.split())))
        if progress:
            progress(len(out))
        return out


def _request(turns_a: list[str] | None = None, turns_b: list[str] | None = None, prompt: Prompt | None = None):
    prompt = prompt or Prompt(id="p1", messages=[{"role": "user", "content": "What is 2+2?"}], reference="4")
    a = Generation(contestant="alpha", prompt_id=prompt.id, turns=turns_a or ["It is 4."])
    b = Generation(contestant="beta", prompt_id=prompt.id, turns=turns_b or ["It is 5."])
    return JudgeRequest(prompt=prompt, first=a, second=b)


GOOD = "Rationale: A is correct, B is not.\nScore A: 9\nScore B: 2"


def test_good_output_single_call() -> None:
    be = ScriptedBackend([GOOD])
    judge = PairwiseLLMJudge(be)
    [j] = judge.judge([_request()])
    assert j.ok and j.attempts == 1
    assert (j.judge, j.prompt_id, j.first, j.second) == ("llm:judge-model", "p1", "alpha", "beta")
    assert (j.score_first, j.score_second) == (9, 2) and j.preferred == "first"
    assert j.raw == GOOD and j.rationale == "A is correct, B is not."
    assert j.cache_key == judge.cache_key(_request())
    [(reqs, strategy)] = be.calls
    assert strategy.temperature == 0.0
    msgs = reqs[0].messages
    assert msgs[0]["role"] == "system" and "Score A:" in msgs[0]["content"]
    assert "What is 2+2?" in msgs[1]["content"]
    assert "It is 4." in msgs[1]["content"] and "It is 5." in msgs[1]["content"]
    assert msgs[1]["content"].index("It is 4.") < msgs[1]["content"].index("It is 5.")  # first = Assistant A
    assert reqs[0].prompt_id == "p1"


def test_unparsable_then_good_retries_once_with_reminder() -> None:
    be = ScriptedBackend(["I like both answers a lot!", GOOD])
    [j] = PairwiseLLMJudge(be).judge([_request()])
    assert j.ok and j.attempts == 2 and (j.score_first, j.score_second) == (9, 2)
    assert j.raw == "I like both answers a lot!" + RETRY_SEPARATOR + GOOD
    assert len(be.calls) == 2
    retry_msgs = be.calls[1][0][0].messages
    # the retry continues the conversation: earlier reply as assistant turn, then the format reminder
    assert retry_msgs[:2] == be.calls[0][0][0].messages
    assert retry_msgs[2] == {"role": "assistant", "content": "I like both answers a lot!"}
    assert retry_msgs[3]["role"] == "user" and "Score A:" in retry_msgs[3]["content"]


def test_unparsable_twice_is_invalid_never_a_tie() -> None:
    be = ScriptedBackend(["Both are fine.", "Really, both are equally fine.", "never used"])
    [j] = PairwiseLLMJudge(be).judge([_request()])
    assert not j.ok and j.attempts == 2
    assert j.score_first is None and j.score_second is None and j.preferred is None
    assert "Both are fine." in j.raw and "Really, both are equally fine." in j.raw
    assert j.error and j.error.startswith("unparsable judge output") and "\n" not in j.error
    assert not is_retryable(j)  # final: counted as invalid, not judged again
    assert len(be.calls) == 2 and be.replies == ["never used"]  # exactly one retry
    battle = combine(j, j.__class__(judge=j.judge, prompt_id="p1", first="beta", second="alpha",
                                    score_first=2, score_second=9), "alpha", "beta", j.judge)
    assert battle.winner is None  # an invalid judgment makes an invalid battle, not a tie


def test_batch_mixes_good_retry_and_failures() -> None:
    be = ScriptedBackend([
        GOOD,                                   # request 0: fine
        "no scores here",                       # request 1: retried
        Completion(error="HTTP 503 after 5 retries"),  # request 2: backend down
        "Score A: 3\nScore B: 3",               # retry of request 1 (a genuine tie)
    ])
    judge = PairwiseLLMJudge(be)
    reqs = [_request(), _request(["A"], ["B"]), _request(["x"], ["y"])]
    seen: list[int] = []
    out = asyncio.run(judge.ajudge(reqs, seen.append))
    assert [j.ok for j in out] == [True, True, False]
    assert out[1].attempts == 2 and out[1].preferred == "tie"
    assert is_retryable(out[2]) and "503" in (out[2].error or "")
    assert sum(seen) == 3
    assert [len(c[0]) for c in be.calls] == [3, 1]


def test_failed_generation_is_not_sent_and_is_retryable() -> None:
    be = ScriptedBackend([])
    r = _request()
    r.second = Generation(contestant="beta", prompt_id="p1", turns=[], error="endpoint down")
    [j] = PairwiseLLMJudge(be).judge([r])
    assert not j.ok and is_retryable(j) and "beta" in (j.error or "")
    assert be.calls == []


def test_multi_turn_dialogue_is_shown_whole() -> None:
    prompt = Prompt(
        id="mt",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Name a prime."},
                  {"role": "user", "content": "Now a bigger one."}],
    )
    be = ScriptedBackend([GOOD])
    r = _request(["2", "7919"], ["4", "9"], prompt=prompt)
    PairwiseLLMJudge(be).judge([r])
    body = be.calls[0][0][0].messages[1]["content"]
    for s in ("Be brief.", "Name a prime.", "Now a bigger one.", "7919", "[Assistant B, turn 2]\n9"):
        assert s in body
    assert body.count("Now a bigger one.") == 2  # each assistant's conversation in full
    assert body.index("7919") < body.index("[Assistant B, turn 1]")


def test_long_answers_are_cut_and_reference_optional() -> None:
    be = ScriptedBackend([GOOD, GOOD])
    r = _request(["x" * 5000], ["y" * 10])
    PairwiseLLMJudge(be, max_answer_chars=100).judge([r])
    body = be.calls[0][0][0].messages[1]["content"]
    assert "x" * 100 in body and "x" * 101 not in body and "4900 more characters" in body
    assert "reference" not in body.lower()
    PairwiseLLMJudge(be, use_reference=True).judge([_request()])
    assert "reference answer" in be.calls[1][0][0].messages[1]["content"]


def test_verdict_mode_and_identity() -> None:
    be = ScriptedBackend(["Rationale: close.\nScore A: 6\nScore B: 7\nVerdict: [[B>A]]"])
    jv = PairwiseLLMJudge(be, verdict=True)
    [j] = jv.judge([_request()])
    assert j.ok and j.verdict == "B>A" and j.preferred == "second" and jv.name == "llm:judge-model+verdict"
    assert "[[A>>B]]" in be.calls[0][0][0].messages[0]["content"]
    plain = PairwiseLLMJudge(ScriptedBackend([]))
    other_model = PairwiseLLMJudge(ScriptedBackend([], model="other"))
    assert jv.version != plain.version  # the version covers the prompt
    assert plain.identity()["backend"] == {"backend": "scripted", "model": "judge-model"}
    r = _request()
    assert len({plain.cache_key(r), jv.cache_key(r), other_model.cache_key(r)}) == 3
    assert plain.cache_key(r) == PairwiseLLMJudge(ScriptedBackend([])).cache_key(r)


def test_backend_failure_on_the_retry_is_retryable_with_empty_raw() -> None:
    be = ScriptedBackend(["no scores", Completion(error="timeout")])
    [j] = PairwiseLLMJudge(be).judge([_request()])
    assert not j.ok and is_retryable(j) and j.raw == "" and j.attempts == 2 and "timeout" in (j.error or "")
    # empty output twice is a final invalid judgment that keeps (empty) raw texts
    [k] = PairwiseLLMJudge(ScriptedBackend(["", ""])).judge([_request()])
    assert not k.ok and not is_retryable(k) and k.raw == RETRY_SEPARATOR


def test_make_judge_builds_llm_judge() -> None:
    j = make_judge("llm", backend=ScriptedBackend([]), verdict=True, name="j1")
    assert isinstance(j, PairwiseLLMJudge) and j.verdict and j.name == "j1"
    j = make_judge("pairwise", backend=ScriptedBackend([]), name=None, temperature=0.5, max_tokens=77)
    assert j.name == "llm:judge-model" and (j.strategy.temperature, j.strategy.max_tokens) == (0.5, 77)
    with pytest.raises(JudgeError, match="needs a 'backend'"):
        make_judge("llm")
    with pytest.raises(JudgeError, match="not both"):
        make_judge("llm", backend=ScriptedBackend([]), strategy=Strategy(), max_tokens=5)
    with pytest.raises(JudgeError, match="unknown judge kind 'gpt-judge'") as exc:
        make_judge("gpt-judge")
    assert "\n" not in str(exc.value) and "verifier" in str(exc.value)
    with pytest.raises(JudgeError, match="bad options"):
        make_judge("verifier", colour="red")
    with pytest.raises(JudgeError, match="'recorded'"):
        make_judge("recorded")  # needs paths=
