"""What the bandit learns from: pluggable rewards for the reward-model choice.

* ``loss`` (the paper's): minus the training loss of the round (batch mode: the mean step loss; instance
  mode: each prompt's own DPO + NLL loss after the round), normalised to [0, 1] by running 20th/80th
  percentiles. A batch that gave no pair gets 0: the RM calls were spent for nothing. Free, but it rewards
  the RM whose preferences the policy already holds (see docs/laser.md).
* ``agreement`` (held-out quality): every iteration the policy samples ``n_samples`` answers to the next
  ``loop.dev_batch`` dev problems (a rotating window); each RM chosen in the iteration scores them, and its
  reward on a dev problem is how often it ranks a verifier-correct answer above a wrong one
  (:func:`ranking_agreement`, ties count half). The bandit learns at the dev problems' own contexts. Costs
  ``dev_batch * n_samples`` extra generations and as many RM calls per chosen RM (counted separately).
  It scores how well an RM ranks, not what its pairs teach: an RM that agrees but ties on most prompts (the
  exact-answer verifier) forms few pairs, and the reward cannot see that.
* ``gain`` (held-out value of the round): before the round, the policy samples the dev window's answers and
  the verifier labels them; every (right, wrong) pair of a dev problem gets its log-probability margin
  (summed log-prob of the right answer minus the wrong one's) under the policy, before and after the chosen
  RM's DPO round. The raw reward is the mean change of that margin (:func:`margin_gain`): positive when the
  round taught the policy to prefer right answers to problems it did not train on, 0 when the RM formed no
  pair. Normalised to [0, 1] like ``loss`` (running 20th/80th percentiles). No RM call; it costs the same
  dev generations as ``agreement`` plus two forward passes over the dev pairs. A dev window without a
  (right, wrong) pair gives no reward (the bandit is not updated).

:func:`ranking_agreement` is also what the classifier router is fitted on and what the routing check scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["REWARDS", "Feedback", "dev_pair_rows", "dpo_nll_loss", "margin_gain", "ranking_agreement",
           "verifier_labels"]

REWARDS = ("loss", "agreement", "gain")


@dataclass
class Feedback:
    """The bandit's reward for one iteration: raw and normalised per prompt, plus what it cost."""

    raw: np.ndarray
    reward: np.ndarray
    dev_gens: int = 0
    dev_rm_calls: int = 0
    dev_informative: int = 0  # dev problems with at least one (right, wrong) answer pair
    seconds: float = 0.0
    per_arm: dict[int, float] = field(default_factory=dict)  # agreement: mean dev reward of each chosen arm


def verifier_labels(answers: list[list[str]], references: list[str | None]) -> list[np.ndarray]:
    """1/0 per answer: its final number equals the reference's (NaN without a reference)."""
    from banditarena.text import is_correct

    return [np.array([float(is_correct(a, ref)) if ref is not None else np.nan for a in ans])
            for ans, ref in zip(answers, references)]


def ranking_agreement(scores: np.ndarray, labels: np.ndarray) -> float:
    """How often ``scores`` rank a correct answer (label 1) above a wrong one (label 0); ties count 1/2.

    NaN when the answers hold no (correct, wrong) pair or a score is NaN: no evidence either way.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    good, bad = s[y == 1], s[y == 0]
    if good.size == 0 or bad.size == 0 or np.isnan(s).any():
        return float("nan")
    diff = good[:, None] - bad[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def dpo_nll_loss(pol: np.ndarray, ref: np.ndarray, beta: float, nll_alpha: float) -> np.ndarray:
    """Per-row DPO (sigmoid) + ``nll_alpha`` * mean-token NLL of the chosen answer (the training objective).

    ``pol`` / ``ref``: (rows, 4) summed log-prob and token count of chosen, then of rejected.
    """
    margin = beta * ((pol[:, 0] - ref[:, 0]) - (pol[:, 2] - ref[:, 2]))
    dpo = np.logaddexp(0.0, -margin)
    nll = -pol[:, 0] / np.maximum(pol[:, 1], 1)
    return dpo + nll_alpha * nll


def pair_logps(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> np.ndarray:
    """(rows, 4): summed log-prob and token count of chosen, then of rejected, under ``model``."""
    from banditarena.rewards.reward_models import LikelihoodRM

    rm = LikelihoodRM(model, tokenizer=tokenizer, max_length=max_length, name="policy")
    out = np.zeros((len(rows), 4))
    for j, key in enumerate(("chosen", "rejected")):
        sums, counts = rm.sum_logprobs([r["prompt"] for r in rows], [r[key][0]["content"] for r in rows])
        out[:, 2 * j] = sums
        out[:, 2 * j + 1] = counts
    return out


def dev_pair_rows(prompts: list[Any], answers: list[list[str]], labels: list[np.ndarray]) -> list[dict[str, Any]]:
    """Every (verifier-right, verifier-wrong) answer pair of each dev problem, as a preference row."""
    from banditarena.training import preference_row

    rows = []
    for p, ans, y in zip(prompts, answers, labels):
        for i in np.flatnonzero(y == 1):
            for j in np.flatnonzero(y == 0):
                if ans[i].strip() != ans[j].strip():
                    rows.append(preference_row(p, ans[int(i)], ans[int(j)]))
    return rows


def margin_gain(before: np.ndarray, after: np.ndarray) -> float:
    """Mean change of the (right - wrong) summed log-prob margin over the dev pairs (:func:`pair_logps` rows);
    NaN without pairs."""
    if len(before) == 0:
        return float("nan")
    m0 = before[:, 0] - before[:, 2]
    m1 = after[:, 0] - after[:, 2]
    return float(np.mean(m1 - m0))
