"""The policy being trained: sampling, greedy evaluation and prompt embeddings (the bandit's context).

Wraps a transformers causal LM (on the accelerator when torch sees one, else the CPU). ``gen_dtype``
``"bfloat16"`` samples and evaluates with a bfloat16 copy of the weights (made once per set of weights: assigning
``policy.model`` drops it), while training, log-probs and contexts stay in the model's own precision. On a CPU
with AVX512-BF16 that halves the generation time (``bench/laser_gen_speed.py``); the answers are not the
float32 ones token for token. Contexts are the mean of the final hidden states over the prompt
tokens (``"mean"``) or the final hidden state of the last prompt token (``"last"``), projected to
``context_dim`` dimensions with a fixed seeded Gaussian matrix (Johnson-Lindenstrauss) and L2-normalised:
LinUCB's cost and the number of rounds it needs grow with the dimension, and a 576-d context over a few
dozen rounds would leave it exploring throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from banditarena.errors import ConfigError
from banditarena.types import Message, Prompt

__all__ = ["GEN_DTYPES", "EvalResult", "GenDtype", "Policy"]

GenDtype = Literal["float32", "bfloat16"]  # policy.gen_dtype (the recipe field's type)
GEN_DTYPES: tuple[str, ...] = get_args(GenDtype)


@dataclass
class EvalResult:
    """Greedy accuracy on a problem set, overall and per category, with the answers."""

    accuracy: float
    per_category: dict[str, float]
    answers: list[str]
    correct: list[bool]


class Policy:
    """A chat LM with the few operations the LASeR loop needs. Build with :meth:`load` or from a model."""

    def __init__(self, model: Any, tokenizer: Any, *, system_prompt: str | None = None,
                 gen_batch_size: int = 32, gen_dtype: str = "float32") -> None:
        if gen_dtype not in GEN_DTYPES:
            raise ConfigError(f"policy.gen_dtype '{gen_dtype}': use one of {', '.join(GEN_DTYPES)}")
        self.gen_dtype = gen_dtype
        self._gen: Any = None
        self.model = model
        self.tok = tokenizer
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.system_prompt = system_prompt
        self.gen_batch_size = gen_batch_size
        self._proj: dict[tuple[int, int, int], np.ndarray] = {}

    @property
    def model(self) -> Any:
        """The trained model. Assigning new weights drops the generation copy (``gen_dtype``)."""
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model = model
        self._gen = None

    def _generator(self) -> Any:
        """The model that generates: the model itself, or its cached copy in ``gen_dtype``."""
        import torch

        dtype = getattr(torch, self.gen_dtype)
        if getattr(self._model, "dtype", dtype) == dtype:
            return self._model
        if self._gen is None:
            import copy

            self._gen = copy.deepcopy(self._model).to(dtype).eval()
        return self._gen

    @classmethod
    def load(cls, path: str, **kwargs: Any) -> Policy:
        """Load from a local checkpoint path or an embedded-default alias (ModelError naming it on failure),
        on the accelerator when torch sees one."""
        from transformers.utils import logging as hf_logging

        from banditarena.training import load_causal_lm

        hf_logging.disable_progress_bar()  # our progress only: no "Loading weights" bars between our lines
        model, tok = load_causal_lm(path, device="auto")
        model.eval()
        return cls(model, tok, **kwargs)

    def messages(self, prompt: Prompt) -> list[Message]:
        msgs = [dict(m) for m in prompt.messages]
        if self.system_prompt and not any(m["role"] == "system" for m in msgs):
            msgs = [{"role": "system", "content": self.system_prompt}] + msgs
        return msgs

    def _prompt_texts(self, prompts: list[Prompt]) -> list[str]:
        if getattr(self.tok, "chat_template", None):
            return [self.tok.apply_chat_template(self.messages(p), tokenize=False, add_generation_prompt=True)
                    for p in prompts]
        return ["\n\n".join(m["content"] for m in self.messages(p)) + "\n\n" for p in prompts]

    def _generate(self, texts: list[str], n: int, temperature: float, max_new_tokens: int,
                  seed: int) -> list[list[str]]:
        import torch

        self.tok.padding_side = "left"
        self.model.eval()
        gen_model = self._generator()
        out: list[list[str]] = []
        per = max(1, self.gen_batch_size // max(n, 1))
        for s in range(0, len(texts), per):
            chunk = texts[s:s + per]
            enc = self.tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(gen_model.device)
            torch.manual_seed(seed + s)
            kw: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": self.tok.pad_token_id,
                                  "num_return_sequences": n}
            if temperature > 0:
                kw.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                kw.update(do_sample=False)
            with torch.no_grad():
                gen = gen_model.generate(**enc, **kw)
            new = gen[:, enc["input_ids"].shape[1]:]
            dec = self.tok.batch_decode(new, skip_special_tokens=True)
            for k in range(len(chunk)):
                out.append([d.strip() for d in dec[k * n:(k + 1) * n]])
        return out

    def sample(self, prompts: list[Prompt], n: int, *, temperature: float = 0.8, max_new_tokens: int = 128,
               seed: int = 0) -> list[list[str]]:
        """``n`` sampled answers per prompt (seeded: same seed and weights give the same answers)."""
        if n < 2:
            raise ConfigError(f"n_samples must be >= 2 to form pairs, got {n}")
        return self._generate(self._prompt_texts(prompts), n, temperature, max_new_tokens, seed)

    def greedy(self, prompts: list[Prompt], *, max_new_tokens: int = 128) -> list[str]:
        """One greedy answer per prompt."""
        return [a[0] for a in self._generate(self._prompt_texts(prompts), 1, 0.0, max_new_tokens, 0)]

    def evaluate(self, prompts: list[Prompt], *, max_new_tokens: int = 128) -> EvalResult:
        """Greedy accuracy against each prompt's reference (numeric final answer)."""
        from banditarena.text import is_correct

        if not prompts:
            raise ConfigError("evaluate: empty problem set")
        answers = self.greedy(prompts, max_new_tokens=max_new_tokens)
        correct = [bool(is_correct(a, p.reference)) for a, p in zip(answers, prompts)]
        cats: dict[str, list[bool]] = {}
        for p, c in zip(prompts, correct):
            cats.setdefault(p.category or "all", []).append(c)
        return EvalResult(accuracy=float(np.mean(correct)), per_category={k: float(np.mean(v)) for k, v in cats.items()},
                          answers=answers, correct=correct)

    def embed(self, prompts: list[Prompt], *, mode: str = "mean", dim: int | None = 16, seed: int = 0,
              batch_size: int = 16) -> np.ndarray:
        """Context vectors ``(len(prompts), dim)``: mean or last-token final hidden state, projected, unit norm."""
        import torch

        if mode not in {"mean", "last"}:
            raise ConfigError(f"context mode must be 'mean' or 'last', got '{mode}'")
        self.tok.padding_side = "right"
        texts = self._prompt_texts(prompts)
        rows = []
        with torch.no_grad():
            for s in range(0, len(texts), batch_size):
                enc = self.tok(texts[s:s + batch_size], return_tensors="pt", padding=True,
                               add_special_tokens=False).to(self.model.device)
                hs = self.model(**enc, output_hidden_states=True).hidden_states[-1].float().cpu()
                mask = enc["attention_mask"].float().cpu()
                if mode == "mean":
                    v = (hs * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                else:
                    idx = enc["attention_mask"].sum(1).cpu() - 1
                    v = hs[torch.arange(hs.shape[0]), idx]
                rows.append(v.numpy().astype(np.float64))
        x = np.concatenate(rows, axis=0)
        if dim is not None and dim < x.shape[1]:
            key = (x.shape[1], dim, seed)
            if key not in self._proj:
                self._proj[key] = np.random.default_rng(seed).normal(size=(x.shape[1], dim)) / np.sqrt(dim)
            x = x @ self._proj[key]
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
