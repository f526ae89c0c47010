"""Benchmark of the bandit core against MABWiser, Vowpal Wabbit (--cb_explore_adf) and contextualbandits.

Every policy in a table faces the same stream (same contexts, same realised reward of every arm), so cumulative
(pseudo-)regret is comparable; decisions/s counts only the time inside the policy calls (for VW this includes
building its text examples, which is how VW is driven from Python). Each timing is the best of ``--repeat`` runs.

    .venv/bin/python bench/bandits.py            # all tables (about 3-6 minutes on 2 cores)
    .venv/bin/python bench/bandits.py --quick    # shorter streams

decisions/s is per CPU-second of the benchmark process (time.process_time), so other work on a shared machine
does not count against anyone; the wall-clock figure is printed next to it. BLAS is pinned to one thread (OPENBLAS_NUM_THREADS=1, set before numpy is imported) for every library alike:
on a shared 2-core machine multi-threaded BLAS calls on small matrices mostly wait for each other.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from banditarena.bandits import (
    UCB1,
    EpsilonGreedy,
    LinTS,
    LinUCB,
    SupervisedEnv,
    ThompsonSampling,
)

warnings.filterwarnings("ignore")


# ----------------------------------------------------------------------------------------------- streams
@dataclass
class Stream:
    name: str
    contexts: np.ndarray | None   # (T, d)
    rewards: np.ndarray           # (T, K) realised reward of every arm
    means: np.ndarray             # (T, K) expected reward
    warm_arms: np.ndarray         # warm start shared by every policy (uniformly random arms)
    warm_rewards: np.ndarray
    warm_contexts: np.ndarray | None

    @property
    def horizon(self) -> int:
        return self.rewards.shape[0]

    @property
    def n_arms(self) -> int:
        return self.rewards.shape[1]

    def regret(self, arms: np.ndarray) -> float:
        t = np.arange(arms.shape[0])
        return float((self.means[t].max(axis=1) - self.means[t, arms]).sum())


def bernoulli_stream(horizon: int, k: int = 10, seed: int = 0) -> Stream:
    rng = np.random.default_rng(seed)
    means = np.linspace(0.3, 0.7, k)
    rng.shuffle(means)
    warm_arms = np.repeat(np.arange(k), 2)
    return Stream(f"Bernoulli K={k}", None, (rng.random((horizon, k)) < means).astype(float),
                  np.broadcast_to(means, (horizon, k)), warm_arms,
                  (rng.random(warm_arms.shape[0]) < means[warm_arms]).astype(float), None)


def linear_stream(horizon: int, k: int = 10, d: int = 64, seed: int = 0) -> Stream:
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((k, d)) / np.sqrt(d)
    x = rng.standard_normal((horizon + 5 * k, d)) / np.sqrt(d) * 3
    mu = x @ theta.T
    r = mu + 0.1 * rng.standard_normal(mu.shape)
    wa = rng.integers(0, k, 5 * k)
    return Stream(f"linear d={d} K={k}", x[5 * k:], r[5 * k:], mu[5 * k:], wa, r[np.arange(5 * k), wa], x[:5 * k])


def digits_stream(horizon: int, seed: int = 0) -> Stream:
    env = SupervisedEnv.digits(seed=seed)
    warm = env.sample(50)
    rd = env.sample(horizon)
    wa = np.random.default_rng(seed).integers(0, 10, 50)
    return Stream("digits d=64 K=10", rd.contexts, rd.rewards, rd.means, wa, warm.rewards[np.arange(50), wa],
                  warm.contexts)


# ----------------------------------------------------------------------------------------------- runners
@dataclass
class Result:
    name: str
    decisions_per_s: float      # per CPU-second of this process (time.process_time)
    regret: float
    arms: np.ndarray
    wall_per_s: float = float("nan")   # per wall-clock second (includes time other processes took the CPU)


def _time_online(stream: Stream, make: Callable[[], tuple[Callable, Callable]],
                 repeat: int) -> tuple[float, float, np.ndarray]:
    """make() -> (choose(t) -> arm, learn(t, arm, reward)); best decisions per CPU-second and per wall-second
    over repeats, and the arms."""
    best_cpu, best_wall, arms_out = 0.0, 0.0, None
    R = stream.rewards
    for _ in range(repeat):
        choose, learn = make()
        arms = np.empty(stream.horizon, dtype=np.int64)
        c0, t0 = time.process_time(), time.perf_counter()
        for t in range(stream.horizon):
            a = choose(t)
            learn(t, a, R[t, a])
            arms[t] = a
        c1, t1 = time.process_time(), time.perf_counter()
        best_cpu = max(best_cpu, stream.horizon / max(c1 - c0, 1e-9))
        best_wall = max(best_wall, stream.horizon / (t1 - t0))
        arms_out = arms
    return best_cpu, best_wall, arms_out


def ours_online(policy_factory: Callable[[], object]) -> Callable[[Stream], tuple[Callable, Callable]]:
    def make(stream: Stream):
        pol = policy_factory()
        pol.update(stream.warm_arms, stream.warm_rewards, stream.warm_contexts)
        X = stream.contexts
        if X is None:
            def choose(t):
                return pol.select()[0][0]

            def learn(t, a, r):
                pol.update(a, r)
        else:
            def choose(t):
                return pol.select(1, X[t])[0][0]

            def learn(t, a, r):
                pol.update(a, r, X[t:t + 1])
        return (lambda t: choose(t)), learn
    return make


def mabwiser_online(policy: Callable[[], object]) -> Callable[[Stream], tuple[Callable, Callable]]:
    from mabwiser.mab import MAB

    def make(stream: Stream):
        mab = MAB(list(range(stream.n_arms)), policy(), seed=0)
        X = stream.contexts
        if X is None:
            mab.fit(stream.warm_arms.tolist(), stream.warm_rewards.tolist())

            def choose(t):
                return mab.predict()

            def learn(t, a, r):
                mab.partial_fit([a], [r])
        else:
            mab.fit(stream.warm_arms.tolist(), stream.warm_rewards.tolist(), stream.warm_contexts)

            def choose(t):
                return mab.predict(X[t:t + 1])

            def learn(t, a, r):
                mab.partial_fit([a], [r], X[t:t + 1])
        return choose, learn
    return make


def vw_online(args: str) -> Callable[[Stream], tuple[Callable, Callable]]:
    import vowpalwabbit

    def make(stream: Stream):
        vw = vowpalwabbit.Workspace(f"--cb_explore_adf {args} --quiet -q sa --random_seed 0")
        rng = np.random.default_rng(0)
        k = stream.n_arms
        actions = [f"|a a{i}" for i in range(k)]
        X = stream.contexts

        def shared(x):
            if x is None:
                return "shared |s c"
            return "shared |s " + " ".join(f"{j}:{v:.6g}" for j, v in enumerate(x))

        def learn_one(x, a, r, p):
            ex = [shared(x)] + list(actions)
            ex[1 + a] = f"0:{-r:.6g}:{p:.6g} |a a{a}"
            vw.learn(ex)

        for i in range(stream.warm_arms.shape[0]):
            learn_one(None if X is None else stream.warm_contexts[i], int(stream.warm_arms[i]),
                      float(stream.warm_rewards[i]), 1.0 / k)
        state = {}

        def choose(t):
            pmf = np.asarray(vw.predict([shared(None if X is None else X[t])] + actions), dtype=float)
            pmf /= pmf.sum()
            a = int(np.searchsorted(np.cumsum(pmf), rng.random() * pmf.sum(), side="right"))
            a = min(a, k - 1)
            state["p"] = pmf[a]
            return a

        def learn(t, a, r):
            learn_one(None if X is None else X[t], int(a), float(r), state["p"])
        return choose, learn
    return make


def cb_online(factory: Callable[[int], object]) -> Callable[[Stream], tuple[Callable, Callable]]:
    def make(stream: Stream):
        m = factory(stream.n_arms)
        m.fit(stream.warm_contexts, stream.warm_arms, stream.warm_rewards)
        X = stream.contexts

        def choose(t):
            return int(m.predict(X[t:t + 1])[0])

        def learn(t, a, r):
            m.partial_fit(X[t:t + 1], np.array([a]), np.array([r]))
        return choose, learn
    return make


def run_online(stream: Stream, entries: list[tuple[str, Callable]], repeat: int,
               extra_streams: list[Stream] = ()) -> list[Result]:
    """Time every entry on ``stream``; regret is the mean over ``stream`` and ``extra_streams``."""
    out = []
    for name, maker in entries:
        try:
            cpu, wall, arms = _time_online(stream, lambda m=maker: m(stream), repeat)
            regrets = [stream.regret(arms)]
            for other in extra_streams:
                regrets.append(other.regret(_time_online(other, lambda m=maker, o=other: m(o), 1)[2]))
        except Exception as exc:  # noqa: BLE001 - a peer that fails is reported, not fatal
            print(f"  ! {name} failed: {type(exc).__name__}: {exc}")
            continue
        out.append(Result(name, cpu, float(np.mean(regrets)), arms, wall))
    return out


# ----------------------------------------------------------------------------------------------- output
def print_table(title: str, results: list[Result], ours_prefix: str = "banditarena") -> None:
    peers = [r for r in results if not r.name.startswith(ours_prefix)]
    best_speed = max((r.decisions_per_s for r in peers), default=float("nan"))
    best_regret = min((r.regret for r in peers), default=float("nan"))
    print(f"\n## {title}")
    print(f"{'policy':<44} {'decisions/s':>12} {'x best peer':>12} {'(wall) /s':>11} {'cum. regret':>12} "
          f"{'/ best peer':>12}")
    print("-" * 108)
    for r in results:
        print(f"{r.name:<44} {r.decisions_per_s:>12,.0f} {r.decisions_per_s / best_speed:>12.1f} "
              f"{r.wall_per_s:>11,.0f} {r.regret:>12.1f} "
              f"{r.regret / best_regret if best_regret > 0 else float('nan'):>12.2f}")


# ----------------------------------------------------------------------------------------------- benches
def bench_context_free(horizon: int, repeat: int, streams: int) -> list[Result]:
    from mabwiser.mab import LearningPolicy as LP

    stream = bernoulli_stream(horizon)
    k = stream.n_arms
    entries = [
        ("banditarena UCB1", ours_online(lambda: UCB1(k, seed=0))),
        ("banditarena TS Beta (no propensities)", ours_online(lambda: ThompsonSampling(k, propensity_samples=0,
                                                                                      seed=0))),
        ("banditarena TS Beta (100-draw propensities)", ours_online(lambda: ThompsonSampling(k, seed=0))),
        ("banditarena TS Gaussian (no propensities)", ours_online(
            lambda: ThompsonSampling(k, likelihood="gaussian", sigma=0.5, propensity_samples=0, seed=0))),
        ("banditarena EpsilonGreedy 0.1", ours_online(lambda: EpsilonGreedy(k, epsilon=0.1, seed=0))),
        ("MABWiser UCB1", mabwiser_online(lambda: LP.UCB1(alpha=1.0))),
        ("MABWiser ThompsonSampling", mabwiser_online(lambda: LP.ThompsonSampling())),
        ("MABWiser EpsilonGreedy 0.1", mabwiser_online(lambda: LP.EpsilonGreedy(epsilon=0.1))),
        ("VW cb_explore_adf epsilon 0.1", vw_online("--epsilon 0.1")),
    ]
    extra = [bernoulli_stream(horizon, seed=s) for s in range(1, streams)]
    res = run_online(stream, entries, repeat, extra)
    print_table(f"context-free, {stream.name}, {horizon} online decisions (select 1 + update 1); regret is the "
                f"mean over {streams} streams", res)
    return res


def bench_linear_online(stream: Stream, repeat: int, alpha: float) -> list[Result]:
    from contextualbandits.online import LinUCB as CbLinUCB
    from mabwiser.mab import LearningPolicy as LP

    k, d = stream.n_arms, stream.contexts.shape[1]
    entries = [
        (f"banditarena LinUCB alpha={alpha}", ours_online(lambda: LinUCB(k, d, alpha=alpha, seed=0))),
        (f"banditarena LinTS alpha={alpha / 4:g}", ours_online(lambda: LinTS(k, d, alpha=alpha / 4, seed=0))),
        (f"MABWiser LinUCB alpha={alpha}", mabwiser_online(lambda: LP.LinUCB(alpha=alpha, l2_lambda=1.0))),
        ("VW cb_explore_adf epsilon 0.05", vw_online("--epsilon 0.05")),
        ("VW cb_explore_adf squarecb", vw_online("--squarecb")),
        (f"contextualbandits LinUCB alpha={alpha}", cb_online(
            lambda kk: CbLinUCB(kk, alpha=alpha, lambda_=1.0, fit_intercept=False, random_state=1))),
    ]
    res = run_online(stream, entries, repeat)
    print_table(f"contextual, {stream.name}, {stream.horizon} online decisions (select 1 + update 1)", res)
    return res


def bench_linear_batched(n_select: int, horizon: int, batch: int, repeat: int, alpha: float) -> list[Result]:
    from contextualbandits.online import LinUCB as CbLinUCB
    from mabwiser.mab import MAB
    from mabwiser.mab import LearningPolicy as LP

    stream = linear_stream(horizon)
    k, d = stream.n_arms, stream.contexts.shape[1]
    X, R = stream.contexts, stream.rewards

    def ours():
        p = LinUCB(k, d, alpha=alpha, seed=0)
        p.update(stream.warm_arms, stream.warm_rewards, stream.warm_contexts)
        return p, (lambda xs: p.select(xs.shape[0], xs)[0]), (lambda a, r, xs: p.update(a, r, xs))

    def mab():
        m = MAB(list(range(k)), LP.LinUCB(alpha=alpha, l2_lambda=1.0), seed=0)
        m.fit(stream.warm_arms.tolist(), stream.warm_rewards.tolist(), stream.warm_contexts)
        return m, (lambda xs: np.asarray(m.predict(xs))), (lambda a, r, xs: m.partial_fit(a.tolist(), r.tolist(), xs))

    def cb():
        m = CbLinUCB(k, alpha=alpha, lambda_=1.0, fit_intercept=False, random_state=1)
        m.fit(stream.warm_contexts, stream.warm_arms, stream.warm_rewards)
        return m, (lambda xs: np.asarray(m.predict(xs), dtype=np.int64)), (lambda a, r, xs: m.partial_fit(xs, a, r))

    results = []
    rng = np.random.default_rng(1)
    big = rng.standard_normal((n_select, d)) / np.sqrt(d) * 3
    for name, factory in (("banditarena LinUCB", ours), ("MABWiser LinUCB", mab),
                          ("contextualbandits LinUCB", cb)):
        # 1) throughput of one batched select of n_select contexts on a trained model (best of many calls)
        _, select, update = factory()
        warm = min(2000, horizon)
        update(np.asarray(rng.integers(0, k, warm)), R[:warm, 0].copy(), X[:warm])
        best_cpu = best_wall = 0.0
        for _ in range(max(repeat, 1) * 5):
            c0, t0 = time.process_time(), time.perf_counter()
            select(big)
            c1, t1 = time.process_time(), time.perf_counter()
            best_cpu = max(best_cpu, n_select / max(c1 - c0, 1e-9))
            best_wall = max(best_wall, n_select / (t1 - t0))
        # 2) regret on the stream, select `batch` then update `batch`
        _, select, update = factory()
        arms = np.empty(horizon, dtype=np.int64)
        for lo in range(0, horizon, batch):
            xs = X[lo:lo + batch]
            a = np.asarray(select(xs), dtype=np.int64)
            update(a, R[np.arange(lo, lo + xs.shape[0]), a], xs)
            arms[lo:lo + xs.shape[0]] = a
        results.append(Result(name, best_cpu, stream.regret(arms), arms, best_wall))
    print_table(f"contextual, {stream.name}: one batched select of {n_select:,} contexts (decisions/s) and regret "
                f"over {horizon:,} rounds in batches of {batch}", results)
    same = (results[0].arms == results[1].arms).mean()
    print(f"batched stream: banditarena LinUCB and MABWiser LinUCB chose the same arm in {same:.2%} of rounds")
    return results


def parity_check(horizon: int, alpha: float) -> int:
    """Teacher-forced: both models see the same history; compare their choice for every context."""
    from mabwiser.mab import MAB
    from mabwiser.mab import LearningPolicy as LP

    total_differ = 0
    for stream in (linear_stream(horizon, seed=3), digits_stream(horizon, seed=3)):
        k, d = stream.n_arms, stream.contexts.shape[1]
        ours = LinUCB(k, d, alpha=alpha, seed=0)
        ours.update(stream.warm_arms, stream.warm_rewards, stream.warm_contexts)
        mab = MAB(list(range(k)), LP.LinUCB(alpha=alpha, l2_lambda=1.0), seed=0)
        mab.fit(stream.warm_arms.tolist(), stream.warm_rewards.tolist(), stream.warm_contexts)
        same = ties = differ = 0
        for t in range(stream.horizon):
            x = stream.contexts[t]
            s = ours.scores(x)
            a = int(ours.select(1, x)[0][0])
            b = int(mab.predict(x[None, :]))
            if a == b:
                same += 1
            elif abs(s[a] - s[b]) <= 1e-9 * (1.0 + abs(s[a])):
                ties += 1
            else:
                differ += 1
            r = float(stream.rewards[t, a])
            ours.update([a], [r], x[None, :])
            mab.partial_fit([a], [r], x[None, :])
        print(f"LinUCB parity vs MABWiser ({stream.name}, alpha={alpha}, {stream.horizon} teacher-forced steps): "
              f"same arm {same}, ties {ties}, different (not a tie) {differ}")
        total_differ += differ
    return total_differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter streams")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (best is reported)")
    ap.add_argument("--streams", type=int, default=5, help="context-free streams the regret is averaged over")
    args = ap.parse_args()
    q = args.quick
    alpha = 0.5
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, cpu count {os.cpu_count()}")
    cf = bench_context_free(5_000 if q else 20_000, args.repeat, args.streams)
    lin = bench_linear_online(linear_stream(1_000 if q else 4_000), args.repeat, alpha)
    same = (lin[0].arms == lin[2].arms).mean()
    print(f"online stream: banditarena LinUCB and MABWiser LinUCB chose the same arm in {same:.2%} of rounds")
    dig = bench_linear_online(digits_stream(1_000 if q else 4_000), args.repeat, alpha)
    bat = bench_linear_batched(4_096, 10_000 if q else 50_000, 500, args.repeat, alpha)
    differ = parity_check(500 if q else 2_000, alpha)
    summary(cf, lin, dig, bat, differ)


def summary(cf: list[Result], lin: list[Result], dig: list[Result], bat: list[Result], differ: int) -> None:
    """Targets of the issue, with this machine's speed relative to the issue's reference figures."""
    online = {r.name.split(" alpha")[0]: r for r in cf + lin}      # one decision at a time
    batched = {r.name: r for r in bat}
    refs = [("MABWiser UCB1", 10_600), ("MABWiser LinUCB", 1_300), ("VW cb_explore_adf epsilon 0.1", 8_600)]
    factors = [online[n].decisions_per_s / ref for n, ref in refs if n in online]
    factor = float(np.median(factors)) if factors else float("nan")
    print("\n## targets (decisions per CPU-second; 'ref-normalised' divides by this machine's speed factor "
          f"{factor:.2f} = median of measured/reference one-at-a-time speed of MABWiser UCB1 (10.6k), MABWiser "
          "LinUCB (1.3k) and VW epsilon (8.6k) from the issue)")
    checks = [
        ("LinUCB d=64 K=10 batched select", batched["banditarena LinUCB"].decisions_per_s, 1e6),
        ("LinUCB d=64 K=10 online select+update", lin[0].decisions_per_s, 3e4),
        ("UCB1 online", online["banditarena UCB1"].decisions_per_s, 1e5),
        ("Thompson sampling Beta online (no propensities)",
         online["banditarena TS Beta (no propensities)"].decisions_per_s, 1e5),
        ("Thompson sampling Gaussian online (no propensities)",
         online["banditarena TS Gaussian (no propensities)"].decisions_per_s, 1e5),
    ]
    print(f"{'target':<52} {'measured':>12} {'ref-normalised':>15} {'goal':>10}  met?")
    for name, got, goal in checks:
        print(f"{name:<52} {got:>12,.0f} {got / factor:>15,.0f} {goal:>10,.0f}  "
              f"{'yes' if got >= goal else ('only normalised' if got / factor >= goal else 'no')}")
    for title, res in (("context-free Bernoulli", cf), ("linear online", lin), ("digits online", dig),
                       ("linear batched", bat)):
        ours = min(r.regret for r in res if r.name.startswith("banditarena"))
        peer = min(r.regret for r in res if not r.name.startswith("banditarena"))
        print(f"regret, {title}: best banditarena {ours:.1f} vs best peer {peer:.1f} -> "
              f"{'no worse' if ours <= peer + 1e-9 else 'WORSE'}")
    print(f"LinUCB vs MABWiser LinUCB, same alpha and stream: {differ} non-tie differences")


if __name__ == "__main__":
    main()
