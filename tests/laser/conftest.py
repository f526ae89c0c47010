"""Fixtures for the LASeR tests: a tiny randomly initialised llama with SmolLM2's tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from banditarena.models.hub import smollm2_checkpoint

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(str(smollm2_checkpoint()))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny") / "llama"
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(1)
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, num_labels=1,
                      pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("tinyrm") / "rm"
    LlamaForSequenceClassification(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def tiny_recipe(model: Path, **overrides) -> dict:
    rec = {
        "name": "tiny",
        "seed": 3,
        "policy": {"model": str(model), "n_samples": 3, "max_new_tokens": 6, "context_dim": 4, "gen_batch_size": 12},
        "data": {"source": "arithmetic", "n_train": 6, "n_dev": 2, "n_test": 2},
        "reward_models": [
            {"name": "refsim", "kind": "refsim", "method": "tokens"},
            {"name": "lik", "kind": "likelihood", "model": str(model)},
            {"name": "noisy", "kind": "refsim", "method": "tokens", "noise_sigma": 0.3},
        ],
        "loop": {"iterations": 2, "batch_size": 2, "train_batch_size": 4, "max_length": 96, "lr": 1e-3,
                 "lora_r": 4, "lora_alpha": 8},
        "methods": ["laser"],
        "eval_max_new_tokens": 6,
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(rec.get(k), dict):
            rec[k] = {**rec[k], **v}
        else:
            rec[k] = v
    return rec


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models are faster on one thread, and the CI machine's 2 cores are shared."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
