"""Reward models: one protocol, ``score(prompt, answers) -> np.ndarray`` (one score per answer, higher = better).

Implementations:

* :class:`LikelihoodRM` - average per-token log-probability of the answer given the prompt under a chat LM
  (what LASeR's reward models compute);
* :class:`SequenceClassifierRM` - any HF reward-model checkpoint (``AutoModelForSequenceClassification``);
* :class:`VerifierRM` - 1.0 when the answer's final number equals the reference's, else 0.0;
* :class:`ReferenceSimilarityRM` - similarity to the reference answer (number/token F1 or MiniLM cosine);
* :class:`LLMJudgeRM` - a pointwise 1-10 judge behind any :class:`~banditarena.models.base.Backend`;
* :class:`NoisyRM` / :class:`CorruptedRM` - wrappers that add Gaussian noise to, or corrupt, another RM.

Every RM counts its cost: ``calls`` (answers scored) and ``requests`` (score invocations). A score that
cannot be computed is ``NaN`` and counted in ``nan_count``; callers skip (and count) NaN-scored instances,
there is never a silent fallback score. A model that fails to load raises :class:`ModelError` naming it.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from banditarena.errors import ConfigError, JudgeError, ModelError
from banditarena.text import is_correct, parse_rating
from banditarena.types import Message

__all__ = [
    "BaseRewardModel",
    "CorruptedRM",
    "LLMJudgeRM",
    "LikelihoodRM",
    "NoisyRM",
    "ReferenceSimilarityRM",
    "RewardModel",
    "SequenceClassifierRM",
    "VerifierRM",
    "as_messages",
]

PromptLike = str | list[Message]


def as_messages(prompt: PromptLike) -> list[Message]:
    """A prompt as chat messages: a string becomes one user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def _last_user(prompt: PromptLike) -> str:
    msgs = as_messages(prompt)
    users = [m["content"] for m in msgs if m["role"] == "user"]
    return users[-1] if users else ""


@runtime_checkable
class RewardModel(Protocol):
    """Scores a set of answers to one prompt. ``reference`` is used by reference-based RMs only."""

    name: str
    calls: int

    def score(self, prompt: PromptLike, answers: list[str], *, reference: str | None = None) -> np.ndarray:
        ...

    def score_batch(self, prompts: Sequence[PromptLike], answers: Sequence[list[str]],
                    references: Sequence[str | None] | None = None) -> list[np.ndarray]:
        ...


class BaseRewardModel(ABC):
    """Shared bookkeeping: counters and the batch form. Subclasses implement :meth:`_score_batch`."""

    name: str = "rm"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.calls = 0  # answers scored (the cost unit)
        self.requests = 0  # score / score_batch invocations (one per prompt)
        self.nan_count = 0  # answers whose score came back NaN

    def reset_counters(self) -> None:
        self.calls = self.requests = self.nan_count = 0

    def counters(self) -> dict[str, int]:
        return {"calls": self.calls, "requests": self.requests, "nan": self.nan_count}

    def reseed(self, seed: int) -> None:
        """Reset any randomness (noise wrappers) to ``seed``; deterministic RMs ignore it."""
        return

    def score(self, prompt: PromptLike, answers: list[str], *, reference: str | None = None) -> np.ndarray:
        """Scores of ``answers`` to ``prompt`` (float array, NaN where a score could not be computed)."""
        return self.score_batch([prompt], [answers], [reference])[0]

    def score_batch(self, prompts: Sequence[PromptLike], answers: Sequence[list[str]],
                    references: Sequence[str | None] | None = None) -> list[np.ndarray]:
        """Batch form of :meth:`score`: one array per prompt."""
        if len(prompts) != len(answers):
            raise ConfigError(f"reward model '{self.name}': {len(prompts)} prompts but {len(answers)} answer lists")
        refs = list(references) if references is not None else [None] * len(prompts)
        if len(refs) != len(prompts):
            raise ConfigError(f"reward model '{self.name}': {len(prompts)} prompts but {len(refs)} references")
        out = self._score_batch(list(prompts), [list(a) for a in answers], refs)
        out = [np.asarray(s, dtype=np.float64).reshape(len(a)) for s, a in zip(out, answers)]
        self.requests += len(prompts)
        self.calls += sum(len(a) for a in answers)
        self.nan_count += int(sum(int(np.isnan(s).sum()) for s in out))
        return out

    @abstractmethod
    def _score_batch(self, prompts: list[PromptLike], answers: list[list[str]],
                     references: list[str | None]) -> list[np.ndarray]:
        """One float array per prompt (NaN where no score); counters are handled by :meth:`score_batch`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _load_tokenizer_and_model(path: str, kind: str, name: str) -> tuple[Any, Any]:
    from banditarena.models.hub import load_hf

    model, tok = load_hf(path, kind="causal" if kind == "causal" else "classifier", device="auto",
                         what=f"reward model '{name}'")
    return tok, model


class LikelihoodRM(BaseRewardModel):
    """Average per-token log-probability of the answer given the prompt under a chat LM.

    ``model`` is a local checkpoint path / embedded alias, or an already loaded causal LM (then pass
    ``tokenizer``). ``context_template`` optionally rewrites the last user turn before scoring, with
    ``{prompt}`` and ``{reference}`` placeholders (e.g. a reference-guided likelihood RM); ``system_prompt``
    adds a system message. The model is loaded lazily on first use.
    """

    def __init__(self, model: Any, *, tokenizer: Any | None = None, name: str | None = None,
                 system_prompt: str | None = None, context_template: str | None = None,
                 batch_size: int = 8, max_length: int = 768) -> None:
        super().__init__(name or (f"likelihood:{model}" if isinstance(model, str) else "likelihood"))
        self._path = model if isinstance(model, str) else None
        self._model = None if isinstance(model, str) else model
        self._tok = tokenizer
        if self._model is not None and tokenizer is None:
            raise ModelError(f"reward model '{self.name}': an in-memory model needs tokenizer=")
        self.system_prompt = system_prompt
        self.context_template = context_template
        self.batch_size = batch_size
        self.max_length = max_length

    def load(self) -> LikelihoodRM:
        """Load the model now (raises ModelError naming it if it fails)."""
        if self._model is None:
            assert self._path is not None
            self._tok, self._model = _load_tokenizer_and_model(self._path, "causal", self.name)
        return self

    def _context(self, prompt: PromptLike, reference: str | None) -> list[Message]:
        msgs = as_messages(prompt)
        if self.context_template is not None:
            if "{reference}" in self.context_template and reference is None:
                raise JudgeError(f"reward model '{self.name}': context_template needs a reference, none given")
            last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
            msgs[last] = {"role": "user", "content": self.context_template.format(
                prompt=msgs[last]["content"], reference=reference or "")}
        if self.system_prompt:
            msgs = [{"role": "system", "content": self.system_prompt}] + [m for m in msgs if m["role"] != "system"]
        return msgs

    def _encode(self, context: list[Message], answer: str) -> tuple[list[int], int]:
        tok = self._tok
        if getattr(tok, "chat_template", None):
            prefix = tok.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(context + [{"role": "assistant", "content": answer}], tokenize=False)
        else:
            prefix = "\n\n".join(m["content"] for m in context) + "\n\n"
            full = prefix + answer
        if not full.startswith(prefix):  # templates that rewrite earlier turns: fall back to concatenation
            full = prefix + answer
        p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        a_ids = tok(full[len(prefix):], add_special_tokens=False)["input_ids"]
        ids = (p_ids + a_ids)[-self.max_length:]
        n_answer = min(len(a_ids), len(ids) - 1)
        return ids, n_answer

    def _logprobs(self, contexts: list[list[Message]], answers: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Summed answer log-prob and answer token count for each (context, answer)."""
        import torch

        self.load()
        items = [self._encode(c, a) for c, a in zip(contexts, answers)]
        sums, counts = np.full(len(items), np.nan), np.zeros(len(items))
        pad = self._tok.pad_token_id if self._tok.pad_token_id is not None else 0
        with torch.no_grad():
            for s in range(0, len(items), self.batch_size):
                chunk = items[s:s + self.batch_size]
                width = max(len(c[0]) for c in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for r, (seq, _) in enumerate(chunk):  # right padding
                    ids[r, :len(seq)] = torch.tensor(seq)
                    mask[r, :len(seq)] = 1
                dev = next(self._model.parameters()).device
                ids, mask = ids.to(dev), mask.to(dev)
                logits = self._model(input_ids=ids, attention_mask=mask).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0].cpu()
                for r, (seq, n) in enumerate(chunk):
                    if n > 0:  # an empty answer stays NaN (counted by the caller)
                        L = len(seq)
                        sums[s + r] = float(logp[r, L - 1 - n:L - 1].sum())
                        counts[s + r] = n
        return sums, counts

    def sum_logprobs(self, prompts: list[PromptLike], answers: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Summed log-probability of each answer given its prompt, and its token count (no counters)."""
        return self._logprobs([as_messages(p) for p in prompts], answers)

    def _score_batch(self, prompts, answers, references):
        ctxs, flat, where = [], [], []
        for i, (p, ans, ref) in enumerate(zip(prompts, answers, references)):
            ctx = self._context(p, ref)
            for j, a in enumerate(ans):
                ctxs.append(ctx)
                flat.append(a)
                where.append((i, j))
        sums, counts = self._logprobs(ctxs, flat) if flat else (np.zeros(0), np.zeros(0))
        out = [np.full(len(a), np.nan) for a in answers]
        for (i, j), text, sm, c in zip(where, flat, sums, counts):
            if c > 0 and text.strip():  # an empty answer stays NaN (counted)
                out[i][j] = sm / c
        return out


class SequenceClassifierRM(BaseRewardModel):
    """Any HF reward-model checkpoint (``AutoModelForSequenceClassification``): score = the reward logit.

    With one label the score is that logit; with several, ``label_index`` picks the "good" one (default the
    last). Conversations go through the tokenizer's chat template when it has one.
    """

    def __init__(self, path: str, *, name: str | None = None, label_index: int = -1, batch_size: int = 8,
                 max_length: int = 1024) -> None:
        super().__init__(name or f"classifier:{path}")
        self.path = path
        self.label_index = label_index
        self.batch_size = batch_size
        self.max_length = max_length
        self._tok: Any = None
        self._model: Any = None

    def load(self) -> SequenceClassifierRM:
        if self._model is None:
            self._tok, self._model = _load_tokenizer_and_model(self.path, "classifier", self.name)
            if self._model.config.pad_token_id is None:
                self._model.config.pad_token_id = self._tok.pad_token_id
        return self

    def _text(self, prompt: PromptLike, answer: str) -> str:
        msgs = as_messages(prompt) + [{"role": "assistant", "content": answer}]
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(msgs, tokenize=False)
        return "\n\n".join(m["content"] for m in msgs)

    def _score_batch(self, prompts, answers, references):
        import torch

        self.load()
        texts, where = [], []
        for i, (p, ans) in enumerate(zip(prompts, answers)):
            for j, a in enumerate(ans):
                texts.append(self._text(p, a))
                where.append((i, j))
        out = [np.full(len(a), np.nan) for a in answers]
        self._tok.padding_side = "right"
        with torch.no_grad():
            for s in range(0, len(texts), self.batch_size):
                enc = self._tok(texts[s:s + self.batch_size], return_tensors="pt", padding=True, truncation=True,
                                max_length=self.max_length, add_special_tokens=False)
                dev = next(self._model.parameters()).device
                logits = self._model(**{k: v.to(dev) for k, v in enc.items()}).logits.float().cpu()
                vals = logits[:, 0] if logits.shape[-1] == 1 else logits[:, self.label_index]
                for (i, j), v in zip(where[s:s + self.batch_size], vals.tolist()):
                    out[i][j] = v
        return out


class VerifierRM(BaseRewardModel):
    """Checkable answers: 1.0 when the answer's final number matches the reference answer, else 0.0.

    ``reference`` may be a bare number or a worked GSM8K solution ending in ``#### n``. A missing reference
    gives NaN (counted), never a guess.
    """

    name = "verifier"

    def _score_batch(self, prompts, answers, references):
        out = []
        for ans, ref in zip(answers, references):
            if ref is None:
                out.append(np.full(len(ans), np.nan))
            else:
                out.append(np.array([1.0 if is_correct(a, ref) else 0.0 for a in ans]))
        return out


_NUM = re.compile(r"-?\d[\d,]*\.?\d*")
_WORD = re.compile(r"[a-z]+|-?\d+(?:\.\d+)?")


def _terms(pat: re.Pattern[str], text: str) -> list[str]:
    return [t.replace(",", "").rstrip(".") for t in pat.findall(text.lower())]


def _f1(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    from collections import Counter

    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    p, r = common / len(a), common / len(b)
    return 2 * p * r / (p + r)


class LearnedJudgeRM(BaseRewardModel):
    """The learned offline judge (:mod:`banditarena.judges.learned`) as a pointwise reward model: each answer's
    score is ``P(it beats the reference answer)`` by the judge's head (length-controlled), in [0, 1].

    ``artifact``: ``"default"`` (MiniLM features), ``"judge-learned-fast"`` (MiniLM's static token table, about
    30x faster) or a path. No reference: NaN (counted as a skip, never guessed). Scores are content-addressed,
    so an answer seen again (another iteration, the dev reward) is not featurised twice.
    """

    def __init__(self, artifact: str | None = None, *, name: str | None = None, embedder: Any | None = None) -> None:
        from banditarena.judges.learned import LearnedScorer, load_artifact

        super().__init__(name or "learned")
        self.artifact = artifact or "default"
        self.scorer = LearnedScorer(load_artifact(self.artifact), embedder)

    def _score_batch(self, prompts, answers, references):
        out = []
        for p, ans, ref in zip(prompts, answers, references):
            if ref is None or not ans:
                out.append(np.full(len(ans), np.nan))
                continue
            q = _last_user(p)
            out.append(self.scorer.score([q] * len(ans), list(ans), [ref] * len(ans)))
        return out


class ReferenceSimilarityRM(BaseRewardModel):
    """Similarity of each answer to the reference answer.

    ``method``: ``"numbers"`` (F1 over the numbers that appear, a cheap proxy for worked math solutions),
    ``"tokens"`` (F1 over lower-cased words and numbers) or ``"embedding"`` (cosine of MiniLM embeddings;
    pass ``embedder`` with ``.encode(texts) -> (n, d)`` or let it load all-MiniLM-L6-v2).
    """

    def __init__(self, method: str = "numbers", *, name: str | None = None, embedder: Any | None = None) -> None:
        if method not in {"numbers", "tokens", "embedding"}:
            raise ConfigError(f"ReferenceSimilarityRM.method: '{method}' is not one of numbers, tokens, embedding")
        super().__init__(name or f"refsim:{method}")
        self.method = method
        self._embedder = embedder

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            from banditarena.models.embed import Embedder

            self._embedder = Embedder()  # the one MiniLM loader (shared, offline)
        v = np.asarray(self._embedder.encode(texts), dtype=np.float64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def _score_batch(self, prompts, answers, references):
        out = []
        for ans, ref in zip(answers, references):
            if ref is None:
                out.append(np.full(len(ans), np.nan))
                continue
            if self.method == "embedding":
                v = self._embed([ref] + list(ans))
                out.append(v[1:] @ v[0])
            else:
                pat = _NUM if self.method == "numbers" else _WORD
                r = _terms(pat, ref)
                out.append(np.array([_f1(_terms(pat, a), r) for a in ans]))
        return out


POINTWISE_TEMPLATE = (
    "Please act as an impartial judge and rate the quality of the AI assistant's answer to the user's question "
    "below. Judge correctness first, then helpfulness and clarity.{ref_block}\n\n"
    "[Question]\n{question}\n\n[The Assistant's Answer]\n{answer}\n\n"
    "Give a short explanation, then your rating on a scale of 1 to 10 in exactly this format: \"Rating: [[5]]\"."
)


class LLMJudgeRM(BaseRewardModel):
    """A pointwise 1-10 LLM judge behind any backend (OpenAI-compatible endpoint, local model...).

    Unparsable outputs and failed requests score NaN and are counted in ``unparsable`` / ``failed``.
    ``template`` may use ``{question}``, ``{answer}`` and ``{ref_block}`` (the reference, when given).
    """

    def __init__(self, backend: Any, *, name: str | None = None, template: str = POINTWISE_TEMPLATE,
                 temperature: float = 0.0, max_tokens: int = 256) -> None:
        super().__init__(name or f"llm-judge:{getattr(backend, 'model', 'backend')}")
        self.backend = backend
        self.template = template
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.unparsable = 0
        self.failed = 0

    def counters(self) -> dict[str, int]:
        return {**super().counters(), "unparsable": self.unparsable, "failed": self.failed}

    def _score_batch(self, prompts, answers, references):
        from banditarena.models.base import ChatRequest
        from banditarena.types import Strategy

        reqs, where = [], []
        for i, (p, ans, ref) in enumerate(zip(prompts, answers, references)):
            ref_block = f"\n\n[Reference Answer]\n{ref}" if ref else ""
            for j, a in enumerate(ans):
                content = self.template.format(question=_last_user(p), answer=a, ref_block=ref_block)
                reqs.append(ChatRequest(prompt_id=f"rm-{i}-{j}", turn=0,
                                        messages=[{"role": "user", "content": content}]))
                where.append((i, j))
        strategy = Strategy(name="pointwise-judge", temperature=self.temperature, max_tokens=self.max_tokens)
        completions = self.backend.complete(reqs, strategy) if reqs else []
        out = [np.full(len(a), np.nan) for a in answers]
        for (i, j), c in zip(where, completions):
            if not c.ok:
                self.failed += 1
                continue
            v = parse_rating(c.text)
            if math.isnan(v):
                self.unparsable += 1
            out[i][j] = v
        return out


class NoisyRM(BaseRewardModel):
    """``base`` plus Gaussian noise N(0, sigma^2) on every score (seeded: same seed, same noise sequence)."""

    def __init__(self, base: BaseRewardModel, sigma: float, seed: int = 0, *, name: str | None = None) -> None:
        if sigma < 0:
            raise ConfigError(f"NoisyRM.sigma must be >= 0, got {sigma}")
        super().__init__(name or f"{base.name}+noise{sigma:g}")
        self.base = base
        self.sigma = float(sigma)
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.base.reseed(seed + 1)

    def _score_batch(self, prompts, answers, references):
        scores = self.base.score_batch(prompts, answers, references)
        return [s + self.rng.normal(0.0, self.sigma, size=s.shape) for s in scores]


class CorruptedRM(BaseRewardModel):
    """Corrupts ``base``: with probability ``p`` per prompt the scores are replaced.

    ``mode``: ``"invert"`` (negated: the ranking is reversed), ``"shuffle"`` (randomly permuted) or
    ``"nan"`` (every score NaN: a failing RM) or ``"raise"`` (a :class:`JudgeError`: a crashing RM).
    ``corrupted`` counts the prompts hit.
    """

    def __init__(self, base: BaseRewardModel, p: float = 1.0, mode: str = "invert", seed: int = 0, *,
                 name: str | None = None) -> None:
        if mode not in {"invert", "shuffle", "nan", "raise"}:
            raise ConfigError(f"CorruptedRM.mode: '{mode}' is not one of invert, shuffle, nan, raise")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"CorruptedRM.p must be in [0, 1], got {p}")
        super().__init__(name or f"{base.name}+{mode}{p:g}")
        self.base, self.p, self.mode = base, float(p), mode
        self.rng = np.random.default_rng(seed)
        self.corrupted = 0

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.base.reseed(seed + 1)

    def _score_batch(self, prompts, answers, references):
        scores = self.base.score_batch(prompts, answers, references)
        out = []
        for s in scores:
            if self.rng.random() < self.p:
                self.corrupted += 1
                if self.mode == "raise":
                    raise JudgeError(f"reward model '{self.name}' failed (injected fault)")
                s = -s if self.mode == "invert" else self.rng.permutation(s) if self.mode == "shuffle" else s * np.nan
            out.append(s)
        return out
