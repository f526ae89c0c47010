import json

import numpy as np
import pytest

from banditarena.errors import ConfigError
from banditarena.flywheel.allocation import BattleAllocator


def run(policy, steps=600, seed=0):
    arms = {"clusters": ["easy", "hard", "mid"], "opponents": ["weak", "strong"]}
    p_yield = {"easy": 0.05, "hard": 0.6, "mid": 0.2}
    p_opp = {"weak": 0.2, "strong": 1.0}
    rng = np.random.default_rng(seed)
    alloc = BattleAllocator(arms, {"clusters": policy, "opponents": policy}, seed=seed)
    total = 0.0
    for _ in range(steps // 4):
        ch = alloc.select(4)
        r = [float(rng.random() < p_yield[c["clusters"][0]] * p_opp[c["opponents"][0]]) for c in ch]
        for c in ch:
            for _, (arm, prop) in c.items():
                assert 0 < prop <= 1
        alloc.update(ch, r)
        total += sum(r)
    return total, alloc


@pytest.mark.parametrize("policy", ["thompson", "ucb1", "epsilon_greedy"])
def test_bandit_allocation_beats_uniform(policy):
    uni = np.mean([run("uniform", seed=s)[0] for s in range(5)])
    ban = np.mean([run(policy, seed=s)[0] for s in range(5)])
    assert ban > 1.5 * uni, (policy, ban, uni)


def test_state_roundtrip_gives_same_future():
    _, a = run("thompson", steps=100)
    b = BattleAllocator(a.arms, {"clusters": "thompson", "opponents": "thompson"}, seed=123)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert a.select(16) == b.select(16)


def test_unknown_policy():
    with pytest.raises(ConfigError, match="unknown bandit policy 'nope'"):
        BattleAllocator({"clusters": ["a"]}, {"clusters": "nope"})
