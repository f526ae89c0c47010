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
            for _arm, prop in c.values():
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


def run_prompts(prompt_policy, seed=0, steps=60):
    """One cluster of 40 prompts, 8 opponents; the target loses a prompt to every opponent with that prompt's
    own rate (mostly 0.05, a quarter of the prompts 0.8): the prompt, not the opponent, decides."""
    rng = np.random.default_rng(seed)
    pids = [f"p{i}" for i in range(40)]
    rate = {p: (0.8 if i % 4 == 0 else 0.05) for i, p in enumerate(pids)}
    opps = list("abcdefgh")
    alloc = BattleAllocator({"clusters": ["c"], "opponents": opps}, {"clusters": "uniform", "opponents": "uniform"},
                            seed=seed, prompts=prompt_policy)
    order = [pids[i] for i in rng.permutation(len(pids))]
    fought, total = set(), 0.0
    for _ in range(steps // 4):
        chs = alloc.select(4)
        for ch in chs:
            opp = ch["opponents"][0]
            cands = [p for p in order if (p, opp) not in fought]
            j, prop = alloc.pick_prompt("c", cands)
            assert 0 < prop <= 1
            ch["prompts"] = (cands[j], prop)
            fought.add((cands[j], opp))
        r = [float(rng.random() < rate[ch["prompts"][0]]) for ch in chs]
        alloc.update(chs, r)
        total += sum(r)
    return total, alloc


def test_thompson_prompts_return_to_prompts_the_target_loses():
    uni = np.mean([run_prompts("uniform", seed=s)[0] for s in range(5)])
    ts = np.mean([run_prompts("thompson", seed=s)[0] for s in range(5)])
    assert ts > 1.3 * uni, (ts, uni)
    _, alloc = run_prompts("thompson")
    losing = [f"p{i}" for i in range(40) if i % 4 == 0]
    other = [f"p{i}" for i in range(40) if i % 4]
    mean = {}
    for name, ids in (("losing", losing), ("other", other)):
        a, b = alloc.prompts.posterior("c", ids)
        mean[name] = float(np.mean(a / (a + b)))
    assert mean["losing"] > mean["other"], mean  # the posteriors learned which prompts the target loses


def test_uniform_prompts_take_the_first_candidate():
    alloc = BattleAllocator({"clusters": ["c"]}, {"clusters": "uniform"}, prompts="uniform")
    assert alloc.pick_prompt("c", ["x", "y", "z", "w"]) == (0, 0.25)


def test_prompt_propensity_matches_pick_frequency():
    from banditarena.flywheel.allocation import PromptPicker

    pk = PromptPicker("thompson", propensity_samples=400, seed=1)
    for _ in range(3):
        pk.update("c", "good", 1.0)
    pk.update("c", "bad", 0.0)
    picks = [pk.pick("c", ["good", "bad", "new"]) for _ in range(600)]
    freq = np.mean([j == 0 for j, _ in picks])
    est = np.mean([p for j, p in picks if j == 0])
    assert 0.4 < freq < 0.95
    assert abs(freq - est) < 0.06, (freq, est)


def test_prompt_state_roundtrip_and_bad_parameters():
    _, a = run_prompts("thompson", steps=40)
    b = BattleAllocator(a.arms, {"clusters": "uniform", "opponents": "uniform"}, seed=9, prompts="thompson")
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    cands = [f"p{i}" for i in range(40)]
    assert [a.pick_prompt("c", cands) for _ in range(8)] == [b.pick_prompt("c", cands) for _ in range(8)]
    with pytest.raises(ConfigError, match="unknown prompt policy 'best'"):
        BattleAllocator({"clusters": ["a"]}, {"clusters": "uniform"}, prompts="best")
    with pytest.raises(ConfigError, match="prior_strength must be > 0"):
        BattleAllocator({"clusters": ["a"]}, {"clusters": "uniform"}, prompts={"policy": "thompson", "prior_strength": 0})


def test_off_policy_value_recovers_other_allocations():
    """Log an epsilon-greedy opponent allocation; estimate what uniform opponents, or always the strong one, would
    have yielded on the same cluster choices. The truth is known: yield = p(cluster) * q(opponent)."""
    import pandas as pd

    from banditarena.flywheel.report import off_policy_value

    p = {"easy": 0.1, "hard": 0.7, "mid": 0.35}
    q = {"weak": 0.3, "strong": 0.9, "mid": 0.6}
    rng = np.random.default_rng(3)
    alloc = BattleAllocator({"clusters": list(p), "opponents": list(q)},
                            {"clusters": "thompson", "opponents": {"policy": "epsilon_greedy", "epsilon": 0.2}}, seed=3)
    rows, clusters, step = [], [], 0
    for _ in range(300):
        chs = alloc.select(4)
        r = [float(rng.random() < p[c["clusters"][0]] * q[c["opponents"][0]]) for c in chs]
        alloc.update(chs, r)
        for c, ri in zip(chs, r):
            clusters.append(c["clusters"][0])
            for dim, (arm, prop) in c.items():
                rows.append({"step": step, "dimension": dim, "arm": arm, "propensity": prop, "reward": ri,
                             "meta": json.dumps({"iteration": 1, "yield": int(ri)})})
            step += 1
    dec = pd.DataFrame(rows)
    pc = np.array([p[c] for c in clusters])
    logged = dec.loc[dec["dimension"] == "opponents", "reward"].mean()
    for target, truth in [("uniform", pc.mean() * np.mean(list(q.values()))), ("strong", pc.mean() * q["strong"]),
                          ("weak", pc.mean() * q["weak"])]:
        est = off_policy_value(dec, "opponents", target)
        assert est.ci_low <= truth <= est.ci_high, (target, est, truth)
    assert off_policy_value(dec, "opponents", "weak").ci_high < logged  # the bandit did better than "weak"
    with pytest.raises(ConfigError, match="arm 'nope' is not an arm of 'opponents'"):
        off_policy_value(dec, "opponents", "nope")
    with pytest.raises(ConfigError, match="'prompts' is not supported"):
        off_policy_value(dec, "prompts")
