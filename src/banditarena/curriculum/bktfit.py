"""Fit BKT parameters (prior, learn, guess, slip, forget) from a response log by expectation-maximisation.

The model is pyBKT's standard BKT with forgetting (a two-state hidden Markov model per skill: prior P(L0),
learn P(T), forget P(F), guess P(G), slip P(S)), fitted by Baum-Welch, vectorised over all sequences of a
skill, with several random restarts. pyBKT itself (1.4.3) cannot be imported next to scikit-learn >= 1.9 (its
metrics module probes private scikit-learn functions at import and dies with an AttributeError), so the EM
is written here; its output has pyBKT's parameter names.

A response log is any table with a learner, an activity (the skill to fit), the order of the answers and their
correctness: the simulator's runs (:func:`log_from_run`), the web tutor's events (:func:`log_from_tutor`), or a
CSV of your own with columns ``user_id``, ``skill_name``, ``order_id``, ``correct``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from banditarena.curriculum.sim import ClassroomRun
from banditarena.errors import DataError

COLUMNS = ("user_id", "skill_name", "order_id", "correct")


def log_from_run(run: ClassroomRun, activities: list[str], learners: int | None = None) -> pd.DataFrame:
    """The pyBKT response log of a simulated classroom (optionally its first ``learners`` learners)."""
    T, L = run.acts.shape
    L = min(L, learners or L)
    steps, who = np.meshgrid(np.arange(T), np.arange(L), indexing="ij")
    return pd.DataFrame({"user_id": who.reshape(-1).astype(str),
                         "skill_name": np.asarray(activities)[run.acts[:, :L].reshape(-1)],
                         "order_id": (steps * L + who).reshape(-1),
                         "correct": run.correct[:, :L].reshape(-1).astype(int)})


def log_from_tutor(events: list[dict[str, Any]]) -> pd.DataFrame:
    """The pyBKT response log of the web tutor's stored answers (:meth:`Tutor.decisions`)."""
    return pd.DataFrame({"user_id": [e["learner"] for e in events], "skill_name": [e["activity"] for e in events],
                         "order_id": np.arange(len(events)), "correct": [int(e["correct"]) for e in events]})


def read_log(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: response log not found")
    try:
        df = pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{p}: not a CSV file ({' '.join(str(exc).split())[:200]})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{p}: column '{missing[0]}' is missing (need {', '.join(COLUMNS)})")
    bad = ~df["correct"].isin([0, 1])
    if bad.any():
        raise DataError(f"{p}: row {int(np.flatnonzero(bad.to_numpy())[0]) + 2}: correct must be 0 or 1")
    return df


def _sequences(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(N, Tmax) outcomes and mask of every learner's ordered answers on one skill."""
    groups = [g["correct"].to_numpy(dtype=np.int8) for _, g in df.groupby("user_id", sort=False)]
    tmax = max(len(g) for g in groups)
    obs = np.zeros((len(groups), tmax), dtype=np.int8)
    mask = np.zeros((len(groups), tmax), dtype=bool)
    for i, g in enumerate(groups):
        obs[i, : len(g)] = g
        mask[i, : len(g)] = True
    return obs, mask


def _em(obs: np.ndarray, mask: np.ndarray, init: np.ndarray, forgets: bool, iters: int, tol: float
        ) -> tuple[np.ndarray, float]:
    """Baum-Welch for BKT; params = (prior, learn, forget, guess, slip); returns (params, log-likelihood)."""
    N, T = obs.shape
    prior, learn, forget, guess, slip = init
    last_ll = -np.inf
    o = obs.astype(float)
    for _ in range(iters):
        A = np.array([[1 - learn, learn], [forget, 1 - forget]])
        e1 = np.stack([guess * o + (1 - guess) * (1 - o), (1 - slip) * o + slip * (1 - o)], axis=2)  # (N,T,2)
        e1 = np.where(mask[:, :, None], e1, 1.0)
        alpha = np.empty((N, T, 2))
        scale = np.empty((N, T))
        a = np.stack([1 - prior + 0 * o[:, 0], prior + 0 * o[:, 0]], axis=1) * e1[:, 0]
        scale[:, 0] = a.sum(1)
        alpha[:, 0] = a / scale[:, :1]
        for t in range(1, T):
            a = (alpha[:, t - 1] @ A) * e1[:, t]
            scale[:, t] = a.sum(1)
            alpha[:, t] = a / scale[:, t:t + 1]
        beta = np.ones((N, T, 2))
        for t in range(T - 2, -1, -1):
            b = ((e1[:, t + 1] * beta[:, t + 1]) @ A.T) / scale[:, t + 1:t + 2]
            beta[:, t] = np.where(mask[:, t + 1:t + 2], b, 1.0)
        gamma = alpha * beta
        gamma /= gamma.sum(2, keepdims=True)
        trans = mask[:, 1:]
        # expected transitions i -> j between t and t+1
        xi = (alpha[:, :-1, :, None] * A[None, None] * (e1[:, 1:, None, :] * beta[:, 1:, None, :])
              / scale[:, 1:, None, None])
        xi = xi * trans[:, :, None, None]
        ll = float(np.log(np.where(mask, scale, 1.0)).sum())
        g0 = gamma[:, :-1, 0][trans].sum()
        g1 = gamma[:, :-1, 1][trans].sum()
        prior = float(gamma[:, 0, 1].mean())
        learn = float(xi[..., 0, 1].sum() / max(g0, 1e-12))
        forget = float(xi[..., 1, 0].sum() / max(g1, 1e-12)) if forgets else 0.0
        gv = gamma[mask]
        ov = o[mask]
        guess = float((gv[:, 0] * ov).sum() / max(gv[:, 0].sum(), 1e-12))
        slip = float((gv[:, 1] * (1 - ov)).sum() / max(gv[:, 1].sum(), 1e-12))
        prior, learn, forget, guess, slip = (float(np.clip(v, 1e-6, 1 - 1e-6))
                                             for v in (prior, learn, forget, guess, slip))
        if ll - last_ll < tol:
            break
        last_ll = ll
    return np.array([prior, learn, forget, guess, slip]), last_ll


def fit_bkt(log: pd.DataFrame, forgets: bool = True, num_fits: int = 5, seed: int = 0,
            skills: list[str] | None = None, iters: int = 200, tol: float = 1e-5) -> pd.DataFrame:
    """Fit one BKT model per skill; rows: skill, prior, learns, guesses, slips, forgets, log_likelihood, answers.

    Each skill is fitted from ``num_fits`` random starts (guess and slip below 0.5, so "known" means more
    correct answers); the fit with the highest likelihood is kept.
    """
    missing = [c for c in COLUMNS if c not in log.columns]
    if missing:
        raise DataError(f"response log: column '{missing[0]}' is missing (need {', '.join(COLUMNS)})")
    if log.empty:
        raise DataError("response log is empty")
    df = log.sort_values("order_id", kind="stable")
    names = skills if skills is not None else list(dict.fromkeys(df["skill_name"]))
    rng = np.random.default_rng(seed)
    rows = []
    for sk in names:
        part = df[df["skill_name"] == sk]
        if part.empty:
            raise DataError(f"response log: no answers for skill '{sk}'")
        obs, mask = _sequences(part)
        best, best_ll = None, -np.inf
        for _ in range(num_fits):
            init = np.array([rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.4), rng.uniform(0.0, 0.1) if forgets else 0.0,
                             rng.uniform(0.05, 0.35), rng.uniform(0.05, 0.25)])
            params, ll = _em(obs, mask, init, forgets, iters, tol)
            if ll > best_ll:
                best, best_ll = params, ll
        assert best is not None
        rows.append({"skill": sk, "prior": best[0], "learns": best[1], "guesses": best[3], "slips": best[4],
                     "forgets": best[2], "log_likelihood": best_ll, "answers": int(mask.sum())})
    return pd.DataFrame(rows)
