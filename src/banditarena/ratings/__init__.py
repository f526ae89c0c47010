"""banditarena.ratings: Bradley-Terry and Elo leaderboards with confidence intervals.

A pure numpy/scipy core (pandas/pyarrow for input and output, DuckDB optionally for streaming); it
imports nothing else from banditarena. Errors in the input raise :class:`RatingsInputError` (a
``ValueError`` with a one-line message naming the row); callers wrap it into ``DataError``.

Input (every function below that takes ``battles``)
    A pandas DataFrame or a list of dicts / objects with ``model_a``, ``model_b``, ``winner``
    (``model_a`` | ``model_b`` | ``tie`` | ``tie (bothbad)``) and an optional ``weight``; a path to a
    Parquet file (streamed in chunks) or a JSONL file; or already aggregated :class:`PairCounts`.

    - ``aggregate(battles, *, drop_invalid=False, engine="pyarrow") -> PairCounts``: one O(battles)
      pass to outcome counts per model pair; every fit afterwards costs O(models^2).
    - ``aggregate_parquet(path, *, engine="pyarrow" | "duckdb", batch_size=2_000_000, drop_invalid=False)``:
      the streaming path (100M battles without loading them whole).
    - ``PairCounts``: ``models``, ``i``, ``j``, ``n`` (row counts [i wins, j wins, ties]), ``w`` (weighted);
      ``merge``, ``per_model``, ``score_matrix``.

Bradley-Terry (ties count half a win each side, Elo scale base 10 / scale 400)
    - ``fit_bt(battles, *, bootstrap=100, seed=0, anchor=None, l2=None, scale=400, base=10, init=1000,
      ci=0.95, drop_invalid=False) -> DataFrame`` indexed by model, best first, with columns ``rating``,
      ``ci_low``, ``ci_high``, ``median``, ``rank``, ``battles``, ``wins``, ``losses``, ``ties``,
      ``flagged``. ``anchor``: None (mean 1000), a number (the mean), a model name (that model at
      ``init``), ``(model, rating)`` or ``{model: rating}``. ``rank`` = 1 + number of models whose lower
      bound is above this model's upper bound. CIs are 95% bootstrap percentiles (multinomial resampling
      of the pair counts); ``bootstrap=0`` gives Wald CIs. ``l2=None`` fits the unregularised MLE when it
      exists and otherwise adds the prior ``AUTO_L2``; models with only wins or only losses are ``flagged``.
    - ``BradleyTerry(...)``: the same as an estimator: ``fit``, ``leaderboard``, ``predict_proba``,
      ``ratings_``, ``bootstrap_``.

Other views
    - ``online_elo(battles, *, k=4, base=10, scale=400, init=1000) -> Series``; ``OnlineElo`` with
      ``update(model_a, model_b, winner)`` for a live arena.
    - ``win_rate_matrix(battles)``, ``battle_count_matrix(battles)``, ``expected_win_matrix(ratings)``.

Style control
    - ``fit_style_bt(battles, *, features=STYLE_FEATURES, bootstrap=100, seed=0, ...) -> StyleControlResult``
      with ``.leaderboard`` (style-controlled ratings) and ``.coefficients``; features are the length,
      header, list and bold differences ``(a - b) / (a + b)`` (``style_counts(text)`` counts them).

Consistency between two leaderboards
    - ``spearman``, ``kendall``, ``separability``, ``agreement_with_ci`` (Arena-Hard-Auto),
      ``pair_rank_brier``, ``brier_score(ratings, battles)``, and ``leaderboard_consistency`` (all in a dict).

Active pair sampling
    - ``propose_pairs(battles=None, n=1, *, models=None, method="variance", greedy=False, seed=0)
      -> list[(model_a, model_b)]``: Chatbot Arena's variance-reduction rule (``method="variance"``), a
      ranking-focused variant (``"adjacent"``: shrink the CIs of close neighbours) or ``"uniform"``;
      ``pair_sampling_weights`` gives every pair's score and probability.

Statistics helpers (``ratings.stats``)
    - ``wilson_interval(successes, n)``, ``logistic_fit(x, y)`` (slope with a Wald CI), ``mcnemar_test(a, b)``
      (exact, paired correctness).

Synthetic data
    - ``simulate_battles(strengths, n, *, pairs=None, tie_rate=0.1, seed=0)``.
"""

from banditarena.ratings._data import (
    WINNER_CODES,
    PairCounts,
    RatingsInputError,
    aggregate,
    aggregate_parquet,
)
from banditarena.ratings.active import pair_sampling_weights, propose_pairs
from banditarena.ratings.bt import AUTO_L2, BradleyTerry, fit_bt
from banditarena.ratings.consistency import (
    agreement_with_ci,
    brier_score,
    kendall,
    leaderboard_consistency,
    pair_rank_brier,
    separability,
    spearman,
)
from banditarena.ratings.elo import (
    OnlineElo,
    battle_count_matrix,
    expected_win_matrix,
    online_elo,
    win_rate_matrix,
)
from banditarena.ratings.stats import logistic_fit, mcnemar_test, wilson_interval
from banditarena.ratings.style import STYLE_FEATURES, StyleControlResult, fit_style_bt, style_counts
from banditarena.ratings.synthetic import simulate_battles

__all__ = [
    "AUTO_L2",
    "STYLE_FEATURES",
    "WINNER_CODES",
    "BradleyTerry",
    "OnlineElo",
    "PairCounts",
    "RatingsInputError",
    "StyleControlResult",
    "aggregate",
    "aggregate_parquet",
    "agreement_with_ci",
    "battle_count_matrix",
    "brier_score",
    "expected_win_matrix",
    "fit_bt",
    "fit_style_bt",
    "kendall",
    "leaderboard_consistency",
    "logistic_fit",
    "mcnemar_test",
    "online_elo",
    "pair_rank_brier",
    "pair_sampling_weights",
    "propose_pairs",
    "separability",
    "simulate_battles",
    "spearman",
    "style_counts",
    "wilson_interval",
    "win_rate_matrix",
]
