"""A cheap-first judge cascade: the cheap judge decides a pair when it is confident, else the expensive one.

Calibration ("Trust or Escalate", Jung et al. 2024)
    On a calibration set of pairs judged by both judges, :func:`calibrate_threshold` picks the confidence
    threshold ``t`` with **fixed-sequence testing**: the candidate thresholds are visited from the most
    confident down; at each one the null hypothesis "the cheap judge's disagreement with the expensive judge
    on pairs at least this confident exceeds alpha" is tested with the exact binomial test, and the walk
    stops at the first threshold it cannot reject at level delta. Testing in a fixed order needs no
    multiplicity correction, so with probability at least ``1 - delta`` (over the calibration draw) the
    pairs the cheap judge decides agree with the expensive judge at rate at least ``1 - alpha``. Pairs
    escalated to the expensive judge agree with it by definition, so the whole cascade agrees at least as
    often. When no threshold passes, every pair escalates (``threshold = inf``).

Confidence
    For a pointwise cheap judge such as the learned judge (``P(answer beats the reference)`` for each
    answer), the pair's win probability is ``P(a > b) = sigmoid(logit p_a - logit p_b)`` and the confidence is
    ``|2 P(a > b) - 1|`` in [0, 1]. Symmetric in the order, so both orders of a pair escalate together.
    Other cheap judges: ``|score_first - score_second| / scale``.

In the arena
    :class:`CascadeJudge` decides at cache-key time: an escalated request's cache key *is* the expensive
    judge's own key, a cheap one's is the cheap judge's key. So every judgment is stored in ``run.sqlite``
    under the key of the judge that made it: a resumed run never pays an escalation twice (also after a
    recalibration that keeps the pair escalated, and for pairs a run with the expensive judge alone
    already paid). ``Judgment.judge`` names the judge that decided; its rationale says why.

    An expensive judge that is down or whose output cannot be parsed gives a *retryable* failure: the
    runner records it in ``failures`` and leaves the battle pending for the next run. The cheap judge never
    decides a pair that was escalated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditarena.errors import JudgeError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.judges.llm import RETRYABLE_PREFIX, is_retryable
from banditarena.types import Judgment


@dataclass
class Calibration:
    """What :func:`calibrate_threshold` found: the threshold and the evidence for it."""

    threshold: float  # decide cheaply when confidence >= threshold (inf: always escalate)
    alpha: float
    delta: float
    n_calibration: int
    n_trusted: int  # calibration pairs at or above the threshold
    trusted_agreement: float  # cheap-vs-expensive agreement on them (nan when none)
    p_value: float  # of the last rejected test (nan when none)
    tested: int  # thresholds tested before stopping

    @property
    def coverage(self) -> float:
        """Share of calibration pairs the cheap judge decides."""
        return self.n_trusted / max(1, self.n_calibration)

    def to_dict(self) -> dict[str, float]:
        return {"threshold": self.threshold, "alpha": self.alpha, "delta": self.delta,
                "n_calibration": self.n_calibration, "n_trusted": self.n_trusted, "coverage": self.coverage,
                "trusted_agreement": self.trusted_agreement, "p_value": self.p_value, "tested": self.tested}


def calibrate_threshold(confidence: Sequence[float], agree: Sequence[bool], alpha: float, delta: float = 0.1,
                        *, steps: int = 200, start: float = 0.1, min_escalation: float = 0.0) -> Calibration:
    """The lowest confidence threshold whose trusted pairs provably agree at rate >= 1 - alpha (w.p. 1 - delta).

    ``confidence``: the cheap judge's confidence per calibration pair; ``agree``: whether the cheap judge's
    preference matches the expensive judge's. The candidate thresholds are the confidences of the k-th most
    confident pair for k = k0, k0 + s, ... up to all pairs (``s = ceil(n / steps)``), starting at
    ``k0 = max(n_min, start * n)``: ``n_min`` is the fewest pairs that could reject at level ``delta`` without
    a single disagreement, and starting at 10% of the pairs keeps the first, smallest tests from stopping the
    walk by chance (fixed-sequence testing stops at its first non-rejection). The candidates depend on the
    confidences only, never on the agreement labels, so the sequence is fixed before testing. They are
    visited from high to low; at each threshold ``t`` with ``n`` trusted pairs (confidence >= t) and ``e``
    disagreements the p-value of H0: risk > alpha is ``P(Binomial(n, alpha) <= e)``; reject when it is
    <= ``delta`` and go on, otherwise stop. The last rejected threshold is returned (``inf`` when none).

    ``min_escalation`` (an escalation floor, a share of pairs): return instead the lowest *rejected*
    threshold that still escalates at least that share of the calibration pairs. Every rejected threshold
    carries the guarantee (the fixed sequence controls them all at once), so the floor keeps it while
    buying leaderboard fidelity: when most pairs are easy (e.g. a strong baseline that wins 90% of them),
    agreement alone is met by trusting nearly everything, and the rare wins that order the models are
    then all decided cheaply.
    """
    from scipy.stats import binom

    if not 0 < alpha < 1 or not 0 < delta < 1:
        raise JudgeError(f"need 0 < alpha < 1 and 0 < delta < 1, got alpha={alpha}, delta={delta}")
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(agree, dtype=bool)
    if conf.shape != ok.shape:
        raise JudgeError("confidence and agree must have the same length")
    keep = np.isfinite(conf)
    conf, ok = conf[keep], ok[keep]
    order = np.argsort(-conf, kind="mergesort")
    conf_s = conf[order]
    cum_err = np.cumsum(~ok[order])
    total = len(conf_s)
    n_min = math.ceil(math.log(delta) / math.log(1 - alpha))
    best = Calibration(math.inf, alpha, delta, total, 0, math.nan, math.nan, 0)
    if total < n_min:
        return best
    step = max(1, math.ceil(total / steps))
    ranks = list(range(max(n_min, math.ceil(start * total)), total + 1, step))
    if ranks[-1] != total:
        ranks.append(total)
    if not 0 <= min_escalation < 1:
        raise JudgeError(f"min_escalation must be in [0, 1), got {min_escalation}")
    tested = 0
    last_t = math.inf
    rejected: list[Calibration] = []
    for k in ranks:
        t = float(conf_s[k - 1])
        if t == last_t:
            continue  # ties: the same threshold, already tested
        last_t = t
        n = int(np.searchsorted(-conf_s, -t, side="right"))  # pairs with confidence >= t
        e = int(cum_err[n - 1])
        tested += 1
        p = float(binom.cdf(e, n, alpha))
        if p > delta:
            break
        rejected.append(Calibration(t, alpha, delta, total, n, 1 - e / n, p, tested))
    ok = [c for c in rejected if c.n_trusted <= (1 - min_escalation) * total]
    if ok:
        best = ok[-1]
    best.tested = tested
    return best


def pair_confidence(p_first: float, p_second: float) -> tuple[float, float]:
    """``(P(first beats second), confidence)`` from two probabilities of beating a common reference."""
    eps = 1e-6
    pa = min(max(p_first, eps), 1 - eps)
    pb = min(max(p_second, eps), 1 - eps)
    z = math.log(pa / (1 - pa)) - math.log(pb / (1 - pb))
    p = 1.0 / (1.0 + math.exp(-z))
    return p, abs(2 * p - 1)


class CascadeJudge(Judge):
    """Cheap judge when confident, expensive judge otherwise (see the module docstring).

    ``threshold``: decide cheaply when the confidence is at least this (from :func:`calibrate_threshold`;
    ``inf`` escalates everything, ``0`` never escalates). ``scale``: score range of a non-pointwise cheap
    judge, for its confidence.
    """

    def __init__(self, cheap: Judge, expensive: Judge, threshold: float, *, name: str | None = None,
                 scale: float = 10.0) -> None:
        if not threshold >= 0:
            raise JudgeError(f"cascade threshold must be >= 0 (or inf), got {threshold}")
        self.cheap, self.expensive = cheap, expensive
        self.threshold = float(threshold)
        self.scale = float(scale)
        self.name = name or f"cascade({cheap.name}->{expensive.name})"
        self.version = "cascade-1"
        self.batch_size = max(1, int(getattr(expensive, "batch_size", 1)))
        self._conf: dict[str, float] = {}
        self.escalated = 0  # expensive-judge calls made (paid) by this object
        self.decided_cheap = 0

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "threshold": self.threshold, "cheap": self.cheap.identity(),
                "expensive": self.expensive.identity()}

    # ---------------------------------------------------------------- decisions
    def _cheap_key(self, r: JudgeRequest) -> str:
        return self.cheap.cache_key(r)

    def prepare(self, requests: Sequence[JudgeRequest]) -> None:
        """Compute the cheap judge's confidence for many requests at once (batched embeddings)."""
        todo = [r for r in requests if self._cheap_key(r) not in self._conf]
        if not todo:
            return
        probs = getattr(self.cheap, "win_probabilities", None)
        if probs is not None:
            for r, pr in zip(todo, probs(todo)):
                self._conf[self._cheap_key(r)] = -1.0 if pr is None else pair_confidence(*pr)[1]
            return
        for r, j in zip(todo, self.cheap.judge(list(todo))):
            ok = j.ok and j.score_first is not None and j.score_second is not None
            self._conf[self._cheap_key(r)] = abs(j.score_first - j.score_second) / self.scale if ok else -1.0

    def confidence(self, request: JudgeRequest) -> float:
        """The cheap judge's confidence on this pair (-1 when it cannot judge it: always escalated)."""
        k = self._cheap_key(request)
        if k not in self._conf:
            self.prepare([request])
        return self._conf[k]

    def escalates(self, request: JudgeRequest) -> bool:
        return self.confidence(request) < self.threshold

    def cache_key(self, request: JudgeRequest) -> str:
        return self.expensive.cache_key(request) if self.escalates(request) else self._cheap_key(request)

    # ---------------------------------------------------------------- judging
    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        self.prepare(requests)
        up = [i for i, r in enumerate(requests) if self.escalates(r)]
        down = [i for i in range(len(requests)) if i not in set(up)]
        out: list[Judgment | None] = [None] * len(requests)
        if down:
            for i, j in zip(down, await self.cheap.ajudge([requests[i] for i in down])):
                c = self.confidence(requests[i])
                j.rationale = f"[cascade: {self.cheap.name} decided, confidence {c:.3f} >= {self.threshold:.3f}] " \
                              + (j.rationale or "")
                out[i] = j
                self.decided_cheap += 1
        if up:
            try:
                got = await self.expensive.ajudge([requests[i] for i in up])
            except Exception as exc:  # noqa: BLE001 - any raise (endpoint down) is a recorded, retryable failure
                got = [Judgment(judge=self.expensive.name, prompt_id=requests[i].prompt.id,
                                first=requests[i].first.contestant, second=requests[i].second.contestant, ok=False,
                                error=f"{RETRYABLE_PREFIX}{type(exc).__name__}: {exc}") for i in up]
            for i, j in zip(up, got):
                c = self.confidence(requests[i])
                if not j.ok:
                    why = (j.error or "").removeprefix(RETRYABLE_PREFIX) or "unparsable output"
                    kind = "failed" if is_retryable(j) else "gave unparsable output"
                    j = Judgment(judge=self.expensive.name, prompt_id=j.prompt_id, first=j.first, second=j.second,
                                 ok=False, raw=j.raw, attempts=j.attempts,
                                 error=f"{RETRYABLE_PREFIX}cascade: expensive judge '{self.expensive.name}' {kind} "
                                       f"on an escalated pair (confidence {c:.3f} < {self.threshold:.3f}): {why}")
                else:
                    self.escalated += 1
                    j.rationale = f"[cascade: escalated to {self.expensive.name}, confidence {c:.3f} < " \
                                  f"{self.threshold:.3f}] " + (j.rationale or "")
                out[i] = j
        if progress and requests:
            progress(len(requests))
        return [j for j in out if j is not None]

    async def aclose(self) -> None:
        await self.cheap.aclose()
        await self.expensive.aclose()


def decided_by(store: Any, tag: str | None = None) -> Any:
    """Per battle of a run, which judge decided each order (``judge_ab``, ``judge_ba``), from ``run.sqlite``."""
    import pandas as pd

    battles = store.battles(tag)
    j = store.judgments()[["cache_key", "judge"]]
    out = battles.merge(j.rename(columns={"cache_key": "j_ab", "judge": "judge_ab"}), on="j_ab", how="left")
    out = out.merge(j.rename(columns={"cache_key": "j_ba", "judge": "judge_ba"}), on="j_ba", how="left")
    return pd.DataFrame(out)
