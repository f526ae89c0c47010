"""Pair formation: top answer vs ranks 2..m, counted skips for ties and NaN, ensembles."""

from __future__ import annotations

import numpy as np

from banditarena.laser.pairs import PairStats, agreement_pairs, ensemble_scores, form_pairs
from banditarena.types import Prompt

P = Prompt(id="p1", messages=[{"role": "user", "content": "2+2?"}], category="add", reference="#### 4")


def _texts(rows):
    return [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows]


def test_top_vs_ranks_2_to_m() -> None:
    answers = ["a", "b", "c", "d"]
    scores = np.array([0.1, 0.9, 0.5, 0.3])
    st = PairStats()
    rows = form_pairs(P, answers, scores, m=None, stats=st)
    assert _texts(rows) == [("b", "c"), ("b", "d"), ("b", "a")]
    assert st.pairs == 3
    rows = form_pairs(P, answers, scores, m=3, stats=st)
    assert _texts(rows) == [("b", "c"), ("b", "d")]
    assert rows[0]["prompt"] == P.messages and rows[0]["chosen"][0]["role"] == "assistant"


def test_all_tied_is_a_counted_skip() -> None:
    st = PairStats()
    assert form_pairs(P, ["a", "b", "c"], np.array([1.0, 1.0, 1.0]), stats=st) == []
    assert st.tie_skips == 1 and st.pairs == 0


def test_nan_is_a_counted_skip() -> None:
    st = PairStats()
    assert form_pairs(P, ["a", "b", "c"], np.array([1.0, np.nan, 0.0]), stats=st) == []
    assert st.nan_skips == 1 and st.pairs == 0


def test_tied_and_identical_pairs_are_dropped_and_counted() -> None:
    st = PairStats()
    rows = form_pairs(P, ["x", "x", "y", "z"], np.array([1.0, 0.5, 1.0, 0.0]), stats=st)
    # order: x(1.0), y(1.0), x(0.5), z(0.0): y ties the top, the second x is the same text
    assert _texts(rows) == [("x", "z")]
    assert st.tied_pairs == 1 and st.identical_pairs == 1


def test_ensemble_scores_zscore_average() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([10.0, 30.0, 20.0])
    e = ensemble_scores([a, b])
    za = (a - a.mean()) / a.std()
    zb = (b - b.mean()) / b.std()
    assert np.allclose(e, (za + zb) / 2)
    assert np.allclose(ensemble_scores([np.ones(3), b]), zb / 2)  # a tied RM contributes zeros
    assert np.isnan(ensemble_scores([np.array([1.0, np.nan, 0.0]), b])[1])


def test_agreement_ensemble_drops_contested_pairs() -> None:
    answers = ["a", "b", "c"]
    s1 = np.array([3.0, 2.0, 1.0])
    s2 = np.array([3.0, 1.0, 2.0])
    s3 = np.array([3.0, 2.0, 1.0])
    st = PairStats()
    rows = agreement_pairs(P, answers, [s1, s2, s3], None, 0.5, st)
    assert _texts(rows) == [("a", "b"), ("a", "c")]  # every RM prefers a over both
    st = PairStats()
    contested = [np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.5, 1.0])]
    rows = agreement_pairs(P, answers, contested, None, 0.7, st)
    # avg top is a; only 2 of 3 RMs prefer a over b and over c: 0.67 <= 0.7, both dropped
    assert rows == [] and st.disagree_pairs == 2
    st = PairStats()
    assert agreement_pairs(P, answers, [s1, np.array([np.nan, 1, 2])], None, 0.5, st) == []
    assert st.nan_skips == 1


def test_pair_with_lower_keeps_the_pair_that_a_tie_at_the_top_drops() -> None:
    import pytest

    from banditarena.errors import ConfigError

    answers = ["right 4", "also right, 4", "wrong 5", "wrong 6"]
    verifier = np.array([1.0, 1.0, 0.0, 0.0])  # the exact verifier on a set with two right answers
    st = PairStats()
    assert form_pairs(P, answers, verifier, m=2, stats=st) == []  # rank: top vs rank 2 tie, no pair
    assert st.tied_pairs == 1 and st.pairs == 0
    st = PairStats()
    rows = form_pairs(P, answers, verifier, m=2, stats=st, pair_with="lower")
    assert _texts(rows) == [("right 4", "wrong 5")] and st.pairs == 1 and st.tied_pairs == 0
    rows = form_pairs(P, answers, verifier, m=3, pair_with="lower")
    assert _texts(rows) == [("right 4", "wrong 5"), ("right 4", "wrong 6")]
    # without ties both rules give the same pairs
    scores = np.array([0.1, 0.9, 0.5, 0.3])
    for m in (2, 3, None):
        assert form_pairs(P, answers, scores, m=m, pair_with="lower") == form_pairs(P, answers, scores, m=m)
    # the agreement ensemble follows the same rule: every RM ties the top two, all prefer them to the rest
    both = [verifier, np.array([0.9, 0.9, 0.2, 0.1])]
    assert agreement_pairs(P, answers, both, 2, 0.5, PairStats()) == []
    assert _texts(agreement_pairs(P, answers, both, 2, 0.5, PairStats(), pair_with="lower")) == \
        [("right 4", "wrong 5")]
    with pytest.raises(ConfigError, match="loop.pair_with 'best'"):
        form_pairs(P, answers, verifier, m=2, pair_with="best")
