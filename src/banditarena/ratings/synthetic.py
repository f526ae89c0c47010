"""Synthetic battles from known Elo-scale strengths (tests, benchmarks, simulations)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from banditarena.ratings._data import RatingsInputError


def outcome_probabilities(diff: np.ndarray, *, tie_rate: float = 0.1, scale: float = 400.0,
                          base: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P(a wins), P(b wins), P(tie))`` for rating differences ``R_a - R_b``.

    Ties happen with probability ``min(tie_rate, 2 s, 2 (1 - s))`` with ``s`` the Bradley-Terry win
    probability, and wins take the rest so that the expected score ``P(a wins) + P(tie) / 2`` equals
    ``s`` exactly: the Bradley-Terry MLE with ties as half wins is then consistent for the true ratings.
    """
    s = 1.0 / (1.0 + base ** (-np.asarray(diff, dtype=np.float64) / scale))
    tie = np.minimum(tie_rate, 2 * np.minimum(s, 1 - s))
    return s - tie / 2, 1 - s - tie / 2, tie


def simulate_battles(strengths: Mapping[str, float] | pd.Series, n: int | None = None, *,
                     pairs: Sequence[tuple[str, str]] | None = None, tie_rate: float = 0.1,
                     seed: int | np.random.Generator | None = 0, scale: float = 400.0, base: float = 10.0,
                     as_codes: bool = False) -> pd.DataFrame:
    """Battles drawn from a Bradley-Terry model with ties (see :func:`outcome_probabilities`).

    Either ``n`` battles between uniformly random distinct pairs (random sides), or one battle per entry
    of ``pairs``. Returns a DataFrame with ``model_a``, ``model_b``, ``winner`` (categorical columns when
    ``as_codes`` is True, which is much lighter for millions of rows).
    """
    r = pd.Series(strengths, dtype=np.float64)
    names = np.asarray(r.index, dtype=object)
    m = len(names)
    if m < 2:
        raise RatingsInputError("need at least two models to simulate battles")
    if not 0 <= tie_rate < 1:
        raise RatingsInputError(f"tie_rate must be in [0, 1), got {tie_rate}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if pairs is not None:
        pos = {name: k for k, name in enumerate(names)}
        try:
            a = np.array([pos[p[0]] for p in pairs], dtype=np.int64)
            b = np.array([pos[p[1]] for p in pairs], dtype=np.int64)
        except KeyError as exc:
            raise RatingsInputError(f"pair names unknown model {exc.args[0]!r}") from None
    else:
        if n is None or n < 0:
            raise RatingsInputError("give n >= 0 or pairs")
        a = rng.integers(0, m, n)
        b = (a + rng.integers(1, m, n)) % m
    v = r.to_numpy()
    pa, pb, _ = outcome_probabilities(v[a] - v[b], tie_rate=tie_rate, scale=scale, base=base)
    u = rng.random(a.size)
    code = np.where(u < pa, 0, np.where(u < pa + pb, 1, 2)).astype(np.int8)
    labels = np.array(["model_a", "model_b", "tie"], dtype=object)
    if as_codes:
        cats = pd.Index(names)
        return pd.DataFrame({
            "model_a": pd.Categorical.from_codes(a, categories=cats),
            "model_b": pd.Categorical.from_codes(b, categories=cats),
            "winner": pd.Categorical.from_codes(code, categories=pd.Index(labels)),
        })
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": labels[code]})
