"""The TRL wrappers reduce their loss on a tiny model and return a loadable plain checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from banditarena.errors import DataError
from banditarena.training import train_dpo, train_sft

ROWS = [{"prompt": [{"role": "user", "content": f"What is {i} plus 1?"}],
         "chosen": [{"role": "assistant", "content": f"{i + 1}"}],
         "rejected": [{"role": "assistant", "content": "I do not know, maybe seven"}]} for i in range(4)]


def test_train_dpo_reduces_loss_and_merges_lora(tiny_llama: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    res = train_dpo(str(tiny_llama), ROWS, tmp_path / "dpo", epochs=3, lr=2e-2, batch_size=4, nll_alpha=0.0,
                    max_length=64)
    assert len(res.losses) == 3
    assert res.losses[-1] < res.losses[0] - 0.01
    assert res.path is not None and (res.path / "config.json").exists()
    loaded = AutoModelForCausalLM.from_pretrained(str(res.path))  # a plain checkpoint, no adapter
    assert not any("lora" in k for k in loaded.state_dict())


def test_train_dpo_with_nll_and_full_finetune(tiny_llama: Path, tmp_path: Path) -> None:
    res = train_dpo(str(tiny_llama), ROWS, tmp_path / "full", lora=False, nll_alpha=1.0, epochs=2, lr=1e-3,
                    batch_size=4, max_length=64, save=False)
    assert res.path is None and len(res.losses) == 2 and res.losses[-1] < res.losses[0]
    assert res.losses[0] > 0.69  # log 2 (DPO at the reference) + the NLL term


def test_train_sft_reduces_loss(tiny_llama: Path, tmp_path: Path) -> None:
    rows = [{"messages": r["prompt"] + r["chosen"]} for r in ROWS]
    res = train_sft(str(tiny_llama), rows, tmp_path / "sft", epochs=2, lr=2e-2, batch_size=4, max_length=64)
    assert res.losses[-1] < res.losses[0]


def test_bad_rows_raise_data_error(tiny_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="row 0"):
        train_dpo(str(tiny_llama), [{"prompt": "x", "chosen": "y"}], tmp_path / "x")
    with pytest.raises(DataError, match="no training rows"):
        train_sft(str(tiny_llama), [], tmp_path / "y")
