"""bias_audit on synthetic judgments with planted position, length and self-preference biases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from banditarena.audits import bias_audit, bias_audit_table
from banditarena.judges import combine
from banditarena.ratings.stats import logistic_fit, wilson_interval
from banditarena.types import Generation, Judgment

CONTESTANTS = ["m0", "m1", "m2", "m3"]
QUALITY = {"m0": 0.0, "m1": 0.3, "m2": 0.6, "m3": 0.9}


def _world(seed: int = 0, n_prompts: int = 60):
    """Generations with random lengths, and judgments of four judges on every pair in both orders.

    * fair:     prefers the better contestant (noisy), blind to order and length
    * position: like fair, but 45% of the time simply picks the answer shown first
    * length:   like fair, but picks the longer answer with probability 1.6 * |normalised length difference|
    * selfish:  like fair, but always prefers m0 (its own model) when m0 is in the pair; 10% invalid output
    """
    rng = np.random.default_rng(seed)
    gens = []
    length = {}
    for p in range(n_prompts):
        for c in CONTESTANTS:
            n = int(rng.integers(50, 2000))
            length[(c, f"p{p}")] = n
            gens.append(Generation(contestant=c, prompt_id=f"p{p}", turns=["x" * n], tokens=n // 4))
    judgments = []
    for p in range(n_prompts):
        pid = f"p{p}"
        for i, a in enumerate(CONTESTANTS):
            for b in CONTESTANTS[i + 1:]:
                # one latent "fair" outcome per pair, shared by both orders (fair judges are consistent)
                fair_pref_a = QUALITY[a] + rng.normal(0, 0.3) > QUALITY[b] + rng.normal(0, 0.3)
                for judge in ("fair", "position", "length", "selfish"):
                    for first, second in ((a, b), (b, a)):
                        winner = a if fair_pref_a else b
                        ok = True
                        if judge == "position" and rng.random() < 0.45:
                            winner = first
                        lf, ls = length[(first, pid)], length[(second, pid)]
                        if judge == "length" and rng.random() < 1.6 * abs(lf - ls) / (lf + ls):
                            winner = first if lf > ls else second
                        if judge == "selfish":
                            if "m0" in (first, second):
                                winner = "m0"
                            ok = rng.random() > 0.1
                        s1, s2 = (8.0, 4.0) if winner == first else (4.0, 8.0)
                        judgments.append(Judgment(judge=judge, prompt_id=pid, first=first, second=second,
                                                  score_first=s1 if ok else None, score_second=s2 if ok else None,
                                                  ok=ok, raw="..." if ok else "garbage",
                                                  error=None if ok else "unparsable"))
    return judgments, gens


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def audit(world):
    judgments, gens = world
    return bias_audit(judgments, gens, judge_models={"selfish": "m0-base", "fair": "m9"},
                      contestant_models={"m0": "m0-base"})


def test_finds_planted_position_bias(audit) -> None:
    fair, pos = audit["fair"], audit["position"]
    assert fair["n_pairs"] == 60 * 6 and fair["position_bias_rate"] == 0.0
    # a flip happens when one order's coin says "first" and the fair outcome differs: about 0.45 * (1-0.45) * 2 / 2
    assert 0.25 < pos["position_bias_rate"] < 0.55
    lo, hi = pos["position_bias_ci"]
    assert lo > 0.2 and lo < pos["position_bias_rate"] < hi
    assert pos["first_win_rate"] > 0.65 and pos["first_win_ci"][0] > 0.5
    lo, hi = fair["first_win_ci"]
    assert lo < 0.5 < hi
    # the length-biased judge is not position-biased beyond its own noise
    assert audit["length"]["first_win_ci"][0] < 0.5 < audit["length"]["first_win_ci"][1]


def test_finds_planted_length_bias(audit) -> None:
    length, fair = audit["length"], audit["fair"]
    assert length["longer_win_rate"] > 0.75 and length["longer_win_ci"][0] > 0.6
    assert length["length_slope"] > 2.0 and length["length_slope_ci"][0] > 0 and length["length_slope_p"] < 1e-6
    lo, hi = fair["length_slope_ci"]
    assert lo < 0 < hi or fair["length_slope_p"] > 0.001
    assert 0.35 < fair["longer_win_rate"] < 0.65
    # the win rate of the longer answer rises with the length difference
    bins = [b for b in length["length_bins"] if b["n"] >= 20]
    assert len(bins) >= 3
    assert bins[-1]["longer_win_rate"] > bins[0]["longer_win_rate"]
    assert sum(b["n"] for b in length["length_bins"]) == round(length["n_length"] * (1 - length["tie_rate"]))


def test_self_preference_and_invalid_rate(audit) -> None:
    sp = audit["selfish"]["self_preference"]
    assert list(sp) == ["m0"]
    assert sp["m0"]["win_rate_self_judge"] == 1.0
    assert sp["m0"]["win_rate_other_judges"] < 0.4
    assert sp["m0"]["difference"] > 0.5
    assert 0.05 < audit["selfish"]["invalid_rate"] < 0.15
    assert audit["fair"]["invalid_rate"] == 0.0
    assert audit["fair"]["self_preference"] == {}  # no contestant runs on m9
    assert audit["position"]["judge_model"] is None and audit["position"]["self_preference"] == {}


def test_dataframe_and_battle_inputs_agree(world, audit) -> None:
    judgments, gens = world
    jdf = pd.DataFrame([{c: getattr(j, c) for c in ("judge", "prompt_id", "first", "second", "score_first",
                                                      "score_second", "verdict", "ok")} for j in judgments])
    gdf = pd.DataFrame([{"contestant": g.contestant, "prompt_id": g.prompt_id, "text": g.text,
                         "tokens": g.tokens} for g in gens])
    from_df = bias_audit(jdf, gdf, judge_models={"selfish": "m0-base", "fair": "m9"},
                         contestant_models={"m0": "m0-base"})
    for judge in audit:
        for k in ("position_bias_rate", "first_win_rate", "length_slope", "invalid_rate", "longer_win_rate"):
            assert from_df[judge][k] == pytest.approx(audit[judge][k], nan_ok=True)
    # battles carry their judgments: same position audit
    pos = [j for j in judgments if j.judge == "position"]
    battles = [combine(x, y, x.first, x.second, "position") for x, y in zip(pos[::2], pos[1::2])]
    assert bias_audit(battles)["position"]["position_bias_rate"] == audit["position"]["position_bias_rate"]
    assert sum(b.inconsistent for b in battles) / len(battles) == audit["position"]["position_bias_rate"]
    # no lengths at all: length measures are NaN, the rest still works
    nolen = bias_audit(judgments)
    assert math.isnan(nolen["length"]["length_slope"]) and nolen["length"]["n_length"] == 0
    # token lengths from the tokens column
    tok = bias_audit(jdf, gdf, length_unit="tokens")
    assert tok["length"]["length_slope"] > 2.0


def test_verdicts_count_and_table(audit) -> None:
    js = [Judgment("v", "p", "a", "b", verdict="A>B"), Judgment("v", "p", "b", "a", verdict="A>>B"),
          Judgment("v", "q", "a", "b", verdict="A=B"), Judgment("v", "q", "b", "a", verdict="B>A"),
          Judgment("v", "r", "a", "b", ok=False)]
    res = bias_audit(js)["v"]
    assert res["n_pairs"] == 2 and res["position_bias_rate"] == 0.5 and res["order_disagreement_rate"] == 1.0
    assert res["invalid_rate"] == pytest.approx(0.2) and res["tie_rate"] == 0.25
    table = bias_audit_table(audit)
    assert list(table["judge"]) == ["fair", "length", "position", "selfish"]
    for col in ("position_bias_rate", "position_bias_ci_low", "length_slope_ci_high", "first_win_rate",
                "invalid_rate", "self_preference_difference"):
        assert col in table.columns
    assert table.set_index("judge").loc["selfish", "self_preference_difference"] > 0.5


def test_helpers() -> None:
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(0.5 + 2.0 * x)))).astype(float)
    fit = logistic_fit(x, y)
    assert fit is not None and fit["ci_low"] < 2.0 < fit["ci_high"] and abs(fit["intercept"] - 0.5) < 0.15
    assert logistic_fit(x[:5], y[:5]) is None and logistic_fit(np.zeros(50), y[:50]) is None
    sep = logistic_fit(np.linspace(-1, 1, 40), (np.linspace(-1, 1, 40) > 0).astype(float))
    assert sep is not None and math.isfinite(sep["slope"]) and sep["slope"] > 0
