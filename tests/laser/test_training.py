"""The TRL wrappers train a tiny model as asked (the checkpoint they return, scored outside the trainer, prefers
the trained answers) and return a loadable plain checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import DataError
from banditarena.training import TrainingConfig, train_dpo, train_sft

ROWS = [{"prompt": [{"role": "user", "content": f"What is {i} plus 1?"}],
         "chosen": [{"role": "assistant", "content": f"{i + 1}"}],
         "rejected": [{"role": "assistant", "content": "I do not know, maybe seven"}]} for i in range(4)]


def _answer_logps(model_dir: Path, tokenizer_dir: Path, key: str) -> np.ndarray:
    """Summed log-probability of each row's ``key`` answer given its prompt, under the checkpoint ``model_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    out = []
    for r in ROWS:
        prompt_ids = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
        full = tok.apply_chat_template(r["prompt"] + r[key], tokenize=True, return_dict=False)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0, :-1].float(), -1)
        token_logp = logp[torch.arange(len(full) - 1), torch.tensor(full[1:])]
        out.append(float(token_logp[len(prompt_ids) - 1:].sum()))
    return np.array(out)


def test_train_dpo_reduces_loss_and_merges_lora(tiny_llama: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    res = train_dpo(str(tiny_llama), ROWS, tmp_path / "dpo",
                    TrainingConfig(epochs=3, dpo_learning_rate=2e-2, batch_size=4, nll_alpha=0.0, max_length=64))
    assert len(res.losses) == 3
    assert res.losses[-1] < res.losses[0] - 0.01
    assert res.path is not None and (res.path / "config.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(str(res.path))  # a plain checkpoint, no adapter
    assert not any("lora" in k for k in loaded.state_dict())
    # what DPO is for, measured on the returned checkpoint: every row's chosen answer gains on its rejected one
    before = _answer_logps(tiny_llama, tiny_llama, "chosen") - _answer_logps(tiny_llama, tiny_llama, "rejected")
    after = _answer_logps(res.path, tiny_llama, "chosen") - _answer_logps(res.path, tiny_llama, "rejected")
    assert (after > before + 1.0).all(), (before, after)


def test_train_dpo_with_nll_and_full_finetune(tiny_llama: Path, tmp_path: Path) -> None:
    res = train_dpo(str(tiny_llama), ROWS, tmp_path / "full", TrainingConfig(
        lora=False, nll_alpha=1.0, epochs=2, dpo_learning_rate=1e-3, batch_size=4, max_length=64), save=False)
    assert res.path is None and len(res.losses) == 2 and res.losses[-1] < res.losses[0]
    assert res.losses[0] > 0.69  # log 2 (DPO at the reference) + the NLL term


def test_train_sft_reduces_loss(tiny_llama: Path, tmp_path: Path) -> None:
    rows = [{"messages": r["prompt"] + r["chosen"]} for r in ROWS]
    res = train_sft(str(tiny_llama), rows, tmp_path / "sft",
                    TrainingConfig(epochs=2, learning_rate=2e-2, batch_size=4, max_length=64))
    assert res.losses[-1] < res.losses[0]
    # the returned checkpoint, scored outside the trainer, makes every trained answer more likely (+0.57..0.77 nats)
    before, after = _answer_logps(tiny_llama, tiny_llama, "chosen"), _answer_logps(res.path, tiny_llama, "chosen")
    assert (after > before + 0.25).all(), (before, after)


def test_bad_rows_raise_data_error(tiny_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="row 0"):
        train_dpo(str(tiny_llama), [{"prompt": "x", "chosen": "y"}], tmp_path / "x")
    with pytest.raises(DataError, match="no training rows"):
        train_sft(str(tiny_llama), [], tmp_path / "y")


def test_sft_completion_only_loss_is_the_answers_nll(tiny_llama: Path, tmp_path: Path) -> None:
    """completion_only (default): the loss is the mean NLL of the final answer's tokens, not of the prompt's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    row = {"messages": [{"role": "user", "content": "Name three colours of the rainbow, please, in order."},
                        {"role": "assistant", "content": "Red, orange, yellow."}]}
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    prompt_ids = tok.apply_chat_template(row["messages"][:1], add_generation_prompt=True, tokenize=True,
                                         return_dict=False)
    full_ids = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=False)
    assert full_ids[:len(prompt_ids)] == prompt_ids
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full_ids])).logits[0, :-1].float(), -1)
    nll = -logp[torch.arange(len(full_ids) - 1), torch.tensor(full_ids[1:])]
    answer_nll = float(nll[len(prompt_ids) - 1:].mean())
    whole_nll = float(nll.mean())
    cfg = TrainingConfig(epochs=1, learning_rate=1e-12, batch_size=1, max_length=128)  # one step, weights unchanged
    co = train_sft(str(tiny_llama), [row], tmp_path / "co", cfg, save=False)
    whole = train_sft(str(tiny_llama), [row], tmp_path / "all", cfg.model_copy(update={"completion_only": False}),
                      save=False)
    # the answer-only loss is the answer's mean NLL; the whole-dialogue loss is not
    assert abs(co.losses[0] - answer_nll) < 1e-3
    assert abs(co.losses[0] - answer_nll) < abs(whole.losses[0] - answer_nll) / 5
    assert abs(whole.losses[0] - whole_nll) < 5e-2  # completion_only=False: the whole dialogue's mean NLL


def test_sft_rows_need_an_answer(tiny_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="row 0 has no assistant answer"):
        train_sft(str(tiny_llama), [{"messages": [{"role": "user", "content": "hi"}]}], tmp_path / "x")
