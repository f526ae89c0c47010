"""Arenas judged by a pointwise judge, computed from the scores directly.

A pointwise judge (the learned judge, the similarity judge, recorded single-answer scores) gives each
(instruction, answer) one score; the battle of two answers is won by the higher score (a tie when they
differ by at most ``tie``), in both orders alike. So an all-pairs arena over M models and N instructions
needs M x N scorings, and its battle table is a function of the score matrix: this module builds the
outcome counts from the matrix without materialising the M(M-1)/2 x N battles, and fits the
Bradley-Terry leaderboard with CIs from a bootstrap over **instructions** (battles on one instruction
share answers, so they are not independent; resampling instructions keeps that dependence).

The counts and ratings equal what :class:`banditarena.arena.runner.Arena` stores and
:func:`banditarena.ratings.fit_bt` fits for the same judge (a test checks it on real data).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from banditarena.ratings._data import PairCounts


def pair_tensor(scores: Mapping[str, np.ndarray], *, tie: float = 0.0,
                pairs: str = "all", baseline: str | None = None,
                graded: bool = False) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Per-instruction outcome counts of the pointwise arena.

    ``scores``: model -> array of N scores (NaN: no valid judgment; battles with it are invalid and left out).
    ``pairs``: ``"all"`` (every pair) or ``"baseline"`` (every model against ``baseline``).
    Returns ``(models, i, j, T)`` with ``T[n, k] = [i wins, j wins, ties]`` of pair ``k`` on instruction ``n``.
    ``graded``: the scores are probabilities of beating one reference (the learned judge) and each battle
    keeps ``P(i beats j) = sigmoid(logit s_i - logit s_j)`` as ``[P, 1 - P, 0]`` (what the arena stores as
    ``Battle.outcome`` and the leaderboard fits; :mod:`banditarena.ratings.graded`).
    """
    models = tuple(sorted(scores))
    S = np.stack([np.asarray(scores[m], dtype=np.float64) for m in models])  # (M, N)
    m = len(models)
    if pairs == "baseline":
        if baseline not in scores:
            raise ValueError(f"baseline {baseline!r} has no scores")
        b = models.index(baseline)
        ii = np.array([min(b, k) for k in range(m) if k != b])
        jj = np.array([max(b, k) for k in range(m) if k != b])
    else:
        ii, jj = np.triu_indices(m, 1)
    d = S[ii] - S[jj]  # (P, N)
    valid = np.isfinite(d)
    if graded:
        eps = 1e-6
        L = np.log(np.clip(S, eps, 1 - eps)) - np.log(np.clip(1 - S, eps, 1 - eps))
        p = 1.0 / (1.0 + np.exp(-(L[ii] - L[jj])))
        p = np.where(valid, p, 0.0)
        T = np.stack([p, np.where(valid, 1.0 - p, 0.0), np.zeros_like(p)], axis=-1)
        return models, ii, jj, T.transpose(1, 0, 2)
    dd = np.where(valid, d, 0.0)
    T = np.stack([(dd > tie) & valid, (dd < -tie) & valid, (np.abs(dd) <= tie) & valid], axis=-1)
    return models, ii, jj, T.transpose(1, 0, 2).astype(np.float64)  # (N, P, 3)


def counts_of(models: tuple[str, ...], i: np.ndarray, j: np.ndarray, T: np.ndarray,
              weights: np.ndarray | None = None) -> PairCounts:
    """Sum the per-instruction counts (optionally weighted per instruction) into :class:`PairCounts`."""
    n = T.sum(axis=0) if weights is None else np.tensordot(weights, T, axes=(0, 0))
    return PairCounts(models, i.astype(np.int64), j.astype(np.int64), n, n)


def pointwise_leaderboard(scores: Mapping[str, np.ndarray], *, tie: float = 0.0, pairs: str = "all",
                          baseline: str | None = None, bootstrap: int = 100, seed: int = 0, ci: float = 0.95,
                          anchor: float = 1000.0, graded: bool = False) -> pd.DataFrame:
    """Bradley-Terry leaderboard (Elo scale, mean ``anchor``) of the pointwise arena, with percentile CIs
    from ``bootstrap`` resamples of the instructions. Same columns as :func:`banditarena.ratings.fit_bt`.
    ``graded``: fit ``P(A beats B)`` instead of win/loss/tie (see :func:`pair_tensor`), as the arena does
    for the learned judge."""
    from banditarena.ratings.bt import AUTO_L2, leaderboard_frame, newton_bt, strongly_connected

    models, i, j, T = pair_tensor(scores, tie=tie, pairs=pairs, baseline=baseline, graded=graded)
    base = counts_of(models, i, j, T)
    m = len(models)
    sij = base.w[:, 0] + 0.5 * base.w[:, 2]
    sji = base.w[:, 1] + 0.5 * base.w[:, 2]
    exists = strongly_connected(base.i, base.j, sij, sji, m)
    l2 = 0.0 if exists else AUTO_L2
    per_logit = 400.0 / math.log(10.0)
    theta, _ = newton_bt(base.i, base.j, sij[None], sji[None], m, l2)
    rating = theta[0] * per_logit
    rating = rating - rating.mean() + anchor
    lo = hi = med = rating
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        n_inst = T.shape[0]
        W = rng.multinomial(n_inst, np.full(n_inst, 1.0 / n_inst), size=bootstrap).astype(np.float64)
        nb = np.einsum("bn,npc->bpc", W, T)
        bij = nb[:, :, 0] + 0.5 * nb[:, :, 2]
        bji = nb[:, :, 1] + 0.5 * nb[:, :, 2]
        l2v = np.full(bootstrap, l2)
        if l2 == 0:  # a resample can lose the MLE (a model with only wins or losses): that round gets the prior
            for r in range(bootstrap):
                if ((bij[r] == 0) | (bji[r] == 0)).any() and not strongly_connected(base.i, base.j, bij[r], bji[r], m):
                    l2v[r] = AUTO_L2
        th, _ = newton_bt(base.i, base.j, bij, bji, m, l2v, theta0=theta[0], tol=1e-6)
        boot = th * per_logit
        boot = boot - boot.mean(axis=1, keepdims=True) + anchor
        a = (1 - ci) / 2
        lo, med, hi = np.percentile(boot, [100 * a, 50, 100 * (1 - a)], axis=0)
    per_model = base.per_model()
    score_for = np.bincount(base.i, sij, m) + np.bincount(base.j, sji, m)
    score_against = np.bincount(base.i, sji, m) + np.bincount(base.j, sij, m)
    flagged = (score_for == 0) | (score_against == 0)
    attrs = {"n_battles": int(base.n.sum()), "n_models": m, "l2": l2, "mle_exists": bool(exists),
             "bootstrap": int(bootstrap), "ci": ci, "ci_method": "bootstrap over instructions",
             "pairs": pairs, "baseline": baseline, "tie": tie,
             "outcome_model": "graded" if graded else "win/loss/tie"}
    return leaderboard_frame(models, rating, lo, hi, med, per_model, flagged, attrs)


def battle_rows(scores: Mapping[str, np.ndarray], texts: Mapping[str, Sequence[str]] | None = None, *,
                tie: float = 0.0, pairs: str = "all", baseline: str | None = None,
                max_instructions: int | None = None, graded: bool = False) -> pd.DataFrame:
    """The battles of the pointwise arena as rows (``prompt``, ``model_a``, ``model_b``, ``winner``, and
    ``response_a``/``response_b`` when ``texts`` are given) for style control and audits. Invalid battles
    (a NaN score) are left out; ``max_instructions`` keeps the first N instructions."""
    models, i, j, T = pair_tensor(scores, tie=tie, pairs=pairs, baseline=baseline)
    G = pair_tensor(scores, pairs=pairs, baseline=baseline, graded=True)[3] if graded else None
    n = T.shape[0] if max_instructions is None else min(T.shape[0], max_instructions)
    rows = []
    names = np.array(["model_a", "model_b", "tie"])
    for q in range(n):
        valid = T[q].sum(axis=1) > 0
        win = names[T[q].argmax(axis=1)]
        for k in np.flatnonzero(valid):
            a, b = models[i[k]], models[j[k]]
            row = {"prompt": q, "model_a": a, "model_b": b, "winner": win[k]}
            if G is not None:
                row["prompt_id"], row["outcome"] = str(q), float(G[q, k, 0])
            if texts is not None:
                row["response_a"], row["response_b"] = texts[a][q], texts[b][q]
            rows.append(row)
    return pd.DataFrame(rows)
