"""Core types, one place each (see DESIGN.md). Plain dataclasses: cheap to build, easy to store as JSON."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


def stable_hash(obj: Any, n: int = 32) -> str:
    """Content address of any JSON-able object: sha256 of its canonical JSON, first ``n`` hex chars."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (hex), read in 1 MiB blocks: the one file hash of manifests and caches."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Prompt:
    """A (possibly multi-turn) prompt.

    ``messages`` holds the user turns (and optionally a leading system message or fixed earlier assistant
    turns). A contestant answers every user turn in order, seeing its own earlier answers (MT-Bench style).
    """

    id: str
    messages: list[Message]
    category: str | None = None
    cluster: str | None = None
    reference: str | None = None  # reference answer (last turn) for reference-guided judges/verifiers
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def user_turns(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "user"]

    @property
    def text(self) -> str:
        """The first user turn: what dedup, embedding and clustering look at."""
        turns = self.user_turns
        return turns[0] if turns else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prompt:
        return cls(**{k: d.get(k) for k in ("id", "messages", "category", "cluster", "reference", "source")},
                   meta=d.get("meta") or {})


@dataclass(frozen=True)
class Strategy:
    """How a model is asked: system prompt and decoding parameters. Part of every cache key."""

    name: str = "default"
    system_prompt: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1

    def cache_identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("name")  # renaming a strategy does not change what the model is asked
        return d


@dataclass(frozen=True)
class Contestant:
    """backend + model + strategy. Two strategies of one model are two contestants."""

    name: str
    backend: str  # "openai" | "local" | "replay"
    model: str
    strategy: Strategy = Strategy()
    options: tuple[tuple[str, Any], ...] = ()  # backend options (base_url, api_key_env, path, ...), hashable

    @property
    def opts(self) -> dict[str, Any]:
        return dict(self.options)


@dataclass
class Completion:
    """What a backend returns for one request. ``error`` set means the request failed (after retries)."""

    text: str = ""
    tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    finish_reason: str | None = None  # "stop", "length" (cut at max_tokens), ... as the server said

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Generation:
    """A contestant's full answer to a prompt: one assistant turn per user turn."""

    contestant: str
    prompt_id: str
    turns: list[str]
    tokens: int = 0
    latency_s: float = 0.0
    cache_key: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """The final assistant turn."""
        return self.turns[-1] if self.turns else ""


Verdict = Literal["A>>B", "A>B", "A=B", "B>A", "B>>A"]


@dataclass
class Judgment:
    """One judge call on one order: ``first`` was shown as Assistant A, ``second`` as Assistant B.

    ``score_first``/``score_second`` are 1-10 (LLM judge) or any real score (verifier, similarity).
    ``ok`` False means the output was unparsable after the retry: counted as invalid, never a tie.
    ``prob_first`` is a graded judge's probability that ``first`` beats ``second`` (the learned judge's
    ``sigmoid(logit p_first - logit p_second)``); None for judges that give only scores or a verdict.
    """

    judge: str
    prompt_id: str
    first: str
    second: str
    score_first: float | None = None
    score_second: float | None = None
    verdict: str | None = None
    rationale: str = ""
    raw: str = ""
    ok: bool = True
    attempts: int = 1
    cache_key: str = ""
    error: str | None = None
    prob_first: float | None = None

    @property
    def preferred(self) -> Literal["first", "second", "tie"] | None:
        """Which side this single order prefers; None if invalid."""
        if not self.ok:
            return None
        if self.verdict is not None:
            return "first" if self.verdict.startswith("A>") else "second" if self.verdict.startswith("B>") else "tie"
        if self.score_first is None or self.score_second is None:
            return None
        if self.score_first > self.score_second:
            return "first"
        if self.score_second > self.score_first:
            return "second"
        return "tie"


@dataclass
class Battle:
    """Two judgments of one pair on one prompt, in both orders, combined.

    ``margin`` is (score of model_a - score of model_b) averaged over both orders (>0 favours model_a).
    ``inconsistent`` is True when the two orders preferred different models (the battle is then a tie).
    ``outcome`` is the graded result, ``P(model_a beats model_b)``: the mean of both orders' probabilities
    when the judge gives them (:attr:`Judgment.prob_first`); None for a judge that gives only scores or
    verdicts (its result is ``winner``) and for an invalid battle. Leaderboards fit graded outcomes where
    a run has them (:mod:`banditarena.ratings.graded`), ``winner`` as 1 / 0.5 / 0 elsewhere.
    """

    prompt_id: str
    model_a: str
    model_b: str
    winner: Literal["model_a", "model_b", "tie"] | None  # None: invalid (a judgment failed)
    margin: float | None = None
    inconsistent: bool = False
    judge: str = ""
    judgments: list[Judgment] = field(default_factory=list)
    outcome: float | None = None

