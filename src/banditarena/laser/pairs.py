"""Preference pairs from scored answers: one RM's ranking, the score-averaging and the agreement ensembles.

Pairs are the top-scored answer against the answers ranked ``2..m`` (``pair_with="rank"``, the default); a
prompt whose scores hold a NaN, or all tie, gives no pair and is counted (``nan_skips`` / ``tie_skips``); a
pair whose two scores tie or whose two texts are the same is dropped and counted. So with ``m = 2`` a set
whose two best answers tie gives no pair at all, even when a worse answer is below them: the exact
verifier's ``[1, 1, 0, 0]``. ``pair_with="lower"`` pairs the top answer with the ``m - 1`` best answers
scored strictly below it instead, so a tie at the top never costs the pair. Rows are TRL preference rows (:func:`training.preference_row`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

import numpy as np

from banditarena.errors import ConfigError
from banditarena.training import preference_row
from banditarena.types import Prompt

__all__ = ["PAIR_WITH", "PairStats", "PairWith", "agreement_pairs", "ensemble_scores", "form_pairs"]


@dataclass
class PairStats:
    """Counters of pair formation for one batch (or a whole run)."""

    pairs: int = 0
    tie_skips: int = 0  # prompts whose RM gave every answer the same score
    nan_skips: int = 0  # prompts with at least one NaN score
    error_skips: int = 0  # prompts whose RM raised
    tied_pairs: int = 0  # (top, rank k) pairs dropped because the two scores tie
    identical_pairs: int = 0  # (top, rank k) pairs dropped because both answers are the same text
    disagree_pairs: int = 0  # ensemble_agree: pairs dropped for lack of agreement

    def add(self, other: PairStats | dict[str, int]) -> None:
        get = other.get if isinstance(other, dict) else (lambda k, d=0: getattr(other, k))
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + int(get(f.name, 0)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


PairWith = Literal["rank", "lower"]  # loop.pair_with (the recipe field's type)
PAIR_WITH: tuple[str, ...] = get_args(PairWith)


def _candidates(answers: list[str], scores: np.ndarray, m: int | None, stats: PairStats,
                pair_with: str = "rank") -> Iterator[tuple[int, int]]:
    """(top, k) index pairs for ranks ``k = 2..m`` of ``scores`` (stable ranking), ties/identical counted;
    ``pair_with="lower"``: the ``m - 1`` best answers scored strictly below the top one."""
    if pair_with not in PAIR_WITH:
        raise ConfigError(f"loop.pair_with '{pair_with}': use one of {', '.join(PAIR_WITH)}")
    order = np.argsort(-scores, kind="stable")
    top = int(order[0])
    rest = order[1:]
    if pair_with == "lower":
        rest = rest[scores[rest] < scores[top]]
    last = len(rest) if m is None else min(m - 1, len(rest))
    for k in rest[:last]:
        k = int(k)
        if scores[k] == scores[top]:
            stats.tied_pairs += 1
        elif answers[k].strip() == answers[top].strip():
            stats.identical_pairs += 1
        else:
            yield top, k


def _usable(prompt: Prompt, answers: list[str], scores: np.ndarray, stats: PairStats) -> bool:
    if scores.shape != (len(answers),):
        raise ConfigError(f"prompt {prompt.id}: {len(answers)} answers but scores of shape {scores.shape}")
    if np.isnan(scores).any():
        stats.nan_skips += 1
        return False
    if len(scores) < 2 or np.all(scores == scores[0]):
        stats.tie_skips += 1
        return False
    return True


def form_pairs(prompt: Prompt, answers: list[str], scores: np.ndarray, m: int | None = None,
               stats: PairStats | None = None, pair_with: str = "rank") -> list[dict[str, Any]]:
    """Preference rows: the top-scored answer against the answers ranked ``2..m`` (``m`` None: all), or with
    ``pair_with="lower"`` against the ``m - 1`` best answers scored strictly below it."""
    st = stats if stats is not None else PairStats()
    s = np.asarray(scores, dtype=float)
    if not _usable(prompt, answers, s, st):
        return []
    rows = [preference_row(prompt, answers[top], answers[k])
            for top, k in _candidates(answers, s, m, st, pair_with)]
    st.pairs += len(rows)
    return rows


def ensemble_scores(all_scores: list[np.ndarray]) -> np.ndarray:
    """Score-averaging ensemble: each RM's scores z-normalised within the prompt, then averaged.

    An RM whose scores all tie contributes zeros; a NaN from any RM makes that answer's score NaN.
    """
    z = []
    for s in all_scores:
        s = np.asarray(s, dtype=float)
        sd = np.nanstd(s) if np.isfinite(s).any() else 0.0
        z.append((s - np.nanmean(s)) / sd if sd > 0 else np.where(np.isnan(s), np.nan, 0.0))
    return np.mean(np.stack(z), axis=0)


def agreement_pairs(prompt: Prompt, answers: list[str], all_scores: list[np.ndarray], m: int | None,
                    agreement: float, stats: PairStats, pair_with: str = "rank") -> list[dict[str, Any]]:
    """Agreement ensemble: the top answer by averaged z-scores; a pair (top, rank k) is kept only when more
    than ``agreement`` of the RMs score top strictly above k (so noise that one RM adds is voted out)."""
    if any(np.isnan(np.asarray(s, dtype=float)).any() for s in all_scores):
        stats.nan_skips += 1
        return []
    avg = ensemble_scores(all_scores)
    if not _usable(prompt, answers, avg, stats):
        return []
    kept = []
    for top, k in _candidates(answers, avg, m, stats, pair_with):
        votes = float(np.mean([float(np.asarray(s)[top] > np.asarray(s)[k]) for s in all_scores]))
        if votes > agreement:
            kept.append(preference_row(prompt, answers[top], answers[k]))
        else:
            stats.disagree_pairs += 1
    stats.pairs += len(kept)
    return kept
