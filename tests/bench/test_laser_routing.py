"""The routing check on synthetic worked answers (no model): LinUCB learns which specialist RM fits which
category; random and sequential do not; the classifier router and the oracle are the references."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.laser.data import arithmetic_problems
from banditarena.laser.rewards import ranking_agreement, verifier_labels
from banditarena.rewards.partial_credit import PartialCreditRM
from banditarena.rewards.reward_models import ReferenceSimilarityRM, VerifierRM
from bench.experiments.routing import RoutingData, run_routing, specialist_agreement, text_contexts


def _answers(p, rng) -> list[str]:
    """One right worked answer and three wrong ones (a slip, a wrong operation, a bare guess), shuffled."""
    work, final = p.reference.split("\n#### ")
    n = int(final)
    first = work.split(". ")[0]
    a, op, b = first.split(" = ")[0].split(" ")
    other = {"+": "-", "-": "+", "*": "+"}[op]
    wrong_op = int(eval(f"{a} {other} {b}"))
    out = [f"{work}. The answer is {n}.", f"{first.split(' = ')[0]} = {n + 2}. The answer is {n + 2}.",
           f"{a} {other} {b} = {wrong_op}. The answer is {wrong_op}.", f"The answer is {n + 7}."]
    return [out[i] for i in rng.permutation(4)]


@pytest.fixture(scope="module")
def data() -> RoutingData:
    rng = np.random.default_rng(0)
    probs = arithmetic_problems(160, seed=5)
    answers = [_answers(p, rng) for p in probs]
    refs = [p.reference for p in probs]
    labels = verifier_labels(answers, refs)
    rms = {"partial": PartialCreditRM(), "refsim": ReferenceSimilarityRM("numbers"), "verifier": VerifierRM()}
    scores = {k: rm.score_batch([p.messages for p in probs], answers, refs) for k, rm in rms.items()}
    cats = [p.category for p in probs]
    assign = {"add": "partial", "sub": "refsim", "mul": "verifier", "two_step": "partial"}
    agree, names, keep = specialist_agreement(scores, labels, cats, assign)
    assert keep.all()
    dev = np.zeros(len(probs), dtype=bool)
    dev[::5] = True
    return RoutingData(np.array(cats)[keep], text_contexts([p.text for p in probs], dim=16)[keep], agree[keep],
                       names, dev[keep])


def test_ranking_agreement() -> None:
    assert ranking_agreement(np.array([2.0, 1.0, 0.0]), np.array([1, 0, 0])) == 1.0
    assert ranking_agreement(np.array([0.0, 1.0]), np.array([1, 0])) == 0.0
    assert ranking_agreement(np.array([1.0, 1.0]), np.array([1, 0])) == 0.5
    assert np.isnan(ranking_agreement(np.array([1.0, 0.0]), np.array([1, 1])))
    assert np.isnan(ranking_agreement(np.array([np.nan, 0.0]), np.array([1, 0])))


def test_oracle_is_the_designed_specialist(data: RoutingData) -> None:
    names = data.specialists
    assert {c: names[a].split("<-")[0] for c, a in data.oracle().items()} == {c: c for c in data.oracle()}


def test_linucb_routes_to_the_right_specialist(data: RoutingData) -> None:
    res = {m: run_routing(data, m, decisions=300, seed=1) for m in
           ("linucb-instance", "linucb-batch", "random", "sequential", "router", "oracle")}
    assert res["oracle"].second_half_correct == 1.0 and res["oracle"].cumulative_regret == pytest.approx(0.0)
    assert res["linucb-instance"].second_half_correct >= 0.8
    assert res["linucb-batch"].second_half_correct >= 0.8
    for m in ("linucb-instance", "linucb-batch"):
        assert res[m].cumulative_regret < res["random"].cumulative_regret
        assert res[m].cumulative_regret < res["sequential"].cumulative_regret
    assert 0.1 < res["random"].correct.mean() < 0.4  # 1 in 4 by chance
    assert res["router"].second_half_correct == 1.0  # the dev split names the right specialist here
    w = res["linucb-instance"].windows(5)
    assert w[-1] > w[0]  # it learns: later windows pick right more often
