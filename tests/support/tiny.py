"""Tiny randomly initialised chat models for fast tests (SmolLM2's tokenizer and chat template)."""

from __future__ import annotations

from pathlib import Path


def make_tiny_llama(out: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, sharpen: float = 40.0,
                    max_positions: int = 512) -> Path:
    """Save a random 2-layer llama with SmolLM2's tokenizer to ``out``; returns ``out``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from banditarena.models import hub

    tok = AutoTokenizer.from_pretrained(str(hub.smollm2_checkpoint()))
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    if sharpen != 1.0:
        with torch.no_grad():  # sharper random logits: samples differ clearly between seeds
            model.model.embed_tokens.weight.mul_(sharpen)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
