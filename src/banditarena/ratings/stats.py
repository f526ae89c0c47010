"""Statistics helpers shared by the judge audit, the reports and the experiments: binomial intervals, a
logistic fit with a Wald CI, and the exact McNemar test of two paired classifiers. numpy/scipy only."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (``(nan, nan)`` when ``n == 0``)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def logistic_fit(x: np.ndarray, y: np.ndarray, ridge: float = 1e-4) -> dict[str, float] | None:
    """Logistic regression ``y ~ intercept + slope * x`` by Newton's method.

    A tiny ridge on the slope keeps the fit finite under perfect separation. Returns intercept, slope,
    the slope's standard error, 95% Wald CI and two-sided p-value; None with fewer than 10 points, a single
    outcome class or a constant ``x``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 10 or np.ptp(x) == 0 or y.min() == y.max():
        return None
    X = np.column_stack([np.ones_like(x), x])
    w = np.zeros(2)
    pen = np.diag([0.0, ridge])
    H = np.eye(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        g = X.T @ (y - p) - pen @ w
        H = (X * (p * (1 - p))[:, None]).T @ X + pen
        step = np.linalg.solve(H, g)
        w = w + step
        if np.max(np.abs(step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    H = (X * (p * (1 - p))[:, None]).T @ X + pen
    se = float(np.sqrt(np.linalg.inv(H)[1, 1]))
    slope = float(w[1])
    z = slope / se if se > 0 else math.inf
    return {
        "intercept": float(w[0]),
        "slope": slope,
        "se": se,
        "ci_low": slope - 1.959964 * se,
        "ci_high": slope + 1.959964 * se,
        "p_value": float(math.erfc(abs(z) / math.sqrt(2))),
        "n": len(x),
    }


def mcnemar_test(a: list[bool], b: list[bool]) -> dict[str, float]:
    """Exact McNemar test of two methods' per-problem correctness on the same test set.

    Returns ``a_only`` / ``b_only`` (problems only one method solved), the accuracy difference and the
    two-sided p-value of the exact binomial test on the discordant problems.
    """
    if len(a) != len(b) or not a:
        raise ValueError("mcnemar_test: the two methods must be scored on the same non-empty test set")
    from scipy.stats import binomtest

    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "diff": (sum(a) - sum(b)) / len(a), "p_value": float(p)}
