"""Realistic synthetic inputs for report tests: simulated battles between models of known strength."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MODELS = [
    "gpt-4-0314",
    "gpt-3.5-turbo-0125",
    "smollm2-135m/concise",
    "smollm2-135m/default",
    "smollm2-135m/step-by-step",
    "llama-3-8b-instruct",
]
TRUE_ELO = np.array([1250.0, 1120.0, 930.0, 900.0, 880.0, 1060.0])


def simulate_battles(seed: int = 0, n: int = 1500) -> pd.DataFrame:
    """Random pairs; winner drawn from the Elo win probability, ~10% ties."""
    rng = np.random.default_rng(seed)
    k = len(MODELS)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    p = 1.0 / (1.0 + 10 ** ((TRUE_ELO[b] - TRUE_ELO[a]) / 400.0))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(rng.random(n) < p, "model_a", "model_b"))
    return pd.DataFrame(
        {"model_a": [MODELS[i] for i in a], "model_b": [MODELS[i] for i in b], "winner": winner}
    )


def winrate_matrix(battles: pd.DataFrame) -> pd.DataFrame:
    """Row-vs-column win rate (ties count half), NaN on the diagonal."""
    wins = pd.DataFrame(0.0, index=MODELS, columns=MODELS)
    games = pd.DataFrame(0.0, index=MODELS, columns=MODELS)
    for ma, mb, w in battles.itertuples(index=False):
        sa = 1.0 if w == "model_a" else 0.0 if w == "model_b" else 0.5
        wins.loc[ma, mb] += sa
        wins.loc[mb, ma] += 1 - sa
        games.loc[ma, mb] += 1
        games.loc[mb, ma] += 1
    wr = wins / games.replace(0, np.nan)
    for m in MODELS:
        wr.loc[m, m] = np.nan
    return wr


def leaderboard(battles: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Elo-scale ratings from win rates vs the field, with CIs shrinking with battle count."""
    rng = np.random.default_rng(seed)
    counts = pd.concat([battles["model_a"], battles["model_b"]]).value_counts().reindex(MODELS)
    rating = TRUE_ELO - TRUE_ELO.mean() + 1000.0 + rng.normal(0, 8, len(MODELS))
    half = 400 / math.log(10) * 1.96 / np.sqrt(counts.to_numpy() * 0.22)
    skew = rng.uniform(0.8, 1.2, len(MODELS))
    lb = pd.DataFrame(
        {
            "rating": rating,
            "ci_low": rating - half * skew,
            "ci_high": rating + half / skew,
            "battles": counts.to_numpy().astype(int),
        },
        index=pd.Index(MODELS, name="model"),
    )
    lb["rank"] = lb["rating"].rank(ascending=False, method="min").astype(int)
    return lb.sort_values("rank")


def audit() -> dict:
    return {
        "reference-similarity/minilm": {
            "n_pairs": 600,
            "position_flip_rate": 0.0,
            "first_position_win_rate": 0.5,
            "length_bias_slope": 0.081,
            "length_bias_ci": [0.052, 0.11],
            "invalid_rate": 0.0,
            "length_bins": [
                {"bin": "<-200", "win_rate": 0.31, "n": 88},
                {"bin": "-200..-50", "win_rate": 0.42, "n": 131},
                {"bin": "-50..50", "win_rate": 0.5, "n": 162},
                {"bin": "50..200", "win_rate": 0.6, "n": 129},
                {"bin": ">200", "win_rate": 0.71, "n": 90},
            ],
        },
        "pairwise/smollm2-135m": {
            "n_pairs": 420,
            "position_flip_rate": 0.38,
            "first_position_win_rate": 0.66,
            "length_bias_slope": -0.01,
            "length_bias_ci": [-0.04, 0.02],
            "invalid_rate": 0.07,
            "length_bins": [
                {"bin": "<-200", "win_rate": 0.52, "n": 60},
                {"bin": "-200..-50", "win_rate": 0.49, "n": 95},
                {"bin": "-50..50", "win_rate": 0.5, "n": 110},
                {"bin": "50..200", "win_rate": 0.47, "n": 97},
                {"bin": ">200", "win_rate": 0.5, "n": 58},
            ],
        },
        "verifier/gsm8k": {"n_pairs": 50, "invalid_rate": 0.0},
    }


def decisions(seed: int = 0, steps: int = 120) -> pd.DataFrame:
    """A bandit log over two dimensions, each step a batch of 2 selections; arm 0 is best."""
    rng = np.random.default_rng(seed)
    rows = []
    arms = {
        "opponent": ["gpt-4-0314", "gpt-3.5-turbo-0125", "llama-3-8b-instruct"],
        "prompt_cluster": ["math", "coding", "writing", "roleplay"],
    }
    for dim, names in arms.items():
        prefs = np.linspace(2.0, 0.2, len(names))
        for step in range(steps):
            p = np.exp(prefs * step / steps * 3)
            p /= p.sum()
            for _ in range(2):
                i = rng.choice(len(names), p=p)
                rows.append(
                    {
                        "step": step,
                        "dimension": dim,
                        "arm": names[i],
                        "reward": float(rng.random() < 0.7 - 0.15 * i),
                    }
                )
    return pd.DataFrame(rows)
