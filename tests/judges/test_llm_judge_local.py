"""PairwiseLLMJudge over the real local transformers backend, with a tiny randomly initialised model.

A random model writes gibberish: the judge must send the format reminder once and then record the
judgment as invalid (raw kept, attempts=2), never as a tie. Same request, same output (greedy).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from banditarena.judges import JudgeRequest, PairwiseLLMJudge, combine, is_retryable
from banditarena.judges.llm import RETRY_SEPARATOR
from banditarena.types import Generation, Prompt, Strategy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tiny import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-judge"), hidden=16, layers=1, sharpen=1.0, max_positions=4096)


def test_random_model_output_is_retried_once_then_invalid(tiny_model_dir: Path) -> None:
    from banditarena.models.local import LocalBackend

    backend = LocalBackend(str(tiny_model_dir), batch_size=4)
    judge = PairwiseLLMJudge(backend, strategy=Strategy(name="judge", temperature=0.0, max_tokens=12))
    p = Prompt(id="q1", messages=[{"role": "user", "content": "What is the capital of France?"}])
    a = Generation("alpha", "q1", ["Paris."])
    b = Generation("beta", "q1", ["Lyon."])
    j_ab, j_ba = judge.judge([JudgeRequest(p, a, b), JudgeRequest(p, b, a)])
    for j in (j_ab, j_ba):
        assert not j.ok and j.attempts == 2 and not is_retryable(j)
        assert RETRY_SEPARATOR in j.raw and j.raw.replace(RETRY_SEPARATOR, "").strip()
        assert j.preferred is None and j.error and j.error.startswith("unparsable judge output")
    assert combine(j_ab, j_ba, "alpha", "beta", judge.name).winner is None
    again = judge.judge([JudgeRequest(p, a, b)])[0]
    assert again.raw == j_ab.raw  # greedy decoding of the same request is deterministic
    assert judge.identity()["backend"]["backend"] == "local"
