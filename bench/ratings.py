"""Ratings benchmark: banditarena vs fschat 0.2.36 elo_analysis vs choix vs plain scipy L-BFGS.

Run:  .venv/bin/python bench/ratings.py                 (full: 1M comparison + scaling 10k..100M)
      .venv/bin/python bench/ratings.py --max-battles 10000000 --peer-rounds 3

Table 1 (same synthetic data: 1M battles, 100 models, 10% ties) per method: time of one fit, time of fit +
100 bootstrap rounds, and max |rating difference| from the unregularised MLE (computed here with scipy's
trust-region Newton on pandas-grouped counts, gradient norm < 1e-9). Every fit starts from the raw battle
DataFrame (string model names), so aggregation is included. Peers that take minutes per round are timed
on ``--peer-rounds`` bootstrap rounds and extrapolated to 100 (marked "est."). All numerical libraries
are pinned to one thread (the targets are "on one core").

Table 2: banditarena fit + 100 bootstrap rounds from 10k to 100M battles, each size in a fresh
subprocess: time and peak RSS of the fit (the battle data already in memory is not counted for the
in-memory sizes); from ``--parquet-from`` battles up the data is a Parquet file (written once in 5M-row
chunks into ``--data-dir``, ~2 bytes per battle) rated by the streaming path, counted whole.

Peers: bench/requirements-ratings.txt.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from banditarena.ratings import fit_bt, simulate_battles

ELO = 400 / math.log(10)
N_MODELS = 100


class Clock:
    """Wall-clock and CPU time (of this process) since construction."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def strengths(m: int = N_MODELS, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0, 120, m), index=[f"model-{k:03d}" for k in range(m)])


def make_battles(n: int, seed: int = 0) -> pd.DataFrame:
    return simulate_battles(strengths(), n, tie_rate=0.1, seed=seed)


def centered(r: pd.Series) -> pd.Series:
    return r - r.mean() + 1000.0


# ------------------------------------------------------------------------------------------- reference
def reference_mle(df: pd.DataFrame) -> pd.Series:
    """Unregularised BT MLE, independent of banditarena: pandas groupby counts + scipy trust-exact."""
    from scipy.optimize import minimize

    s = df["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5})
    g = pd.DataFrame({"a": df["model_a"], "b": df["model_b"], "s": s}).groupby(["a", "b"], observed=True)["s"]
    agg = pd.DataFrame({"win": g.sum(), "n": g.size()}).reset_index()
    models = sorted(set(agg["a"]) | set(agg["b"]))
    pos = {m: k for k, m in enumerate(models)}
    a = agg["a"].map(pos).to_numpy()
    b = agg["b"].map(pos).to_numpy()
    win = agg["win"].to_numpy()
    tot = agg["n"].to_numpy(dtype=float)
    m = len(models)

    def parts(x: np.ndarray):
        th = np.concatenate([[0.0], x])
        d = th[a] - th[b]
        f = (win * np.logaddexp(0, -d) + (tot - win) * np.logaddexp(0, d)).sum()
        p = 1 / (1 + np.exp(-d))
        r = win - tot * p
        grad = -(np.bincount(a, r, m) - np.bincount(b, r, m))
        h = tot * p * (1 - p)
        hess = np.zeros((m, m))
        np.add.at(hess, (a, b), -h)
        np.add.at(hess, (b, a), -h)
        hess[np.arange(m), np.arange(m)] = np.bincount(a, h, m) + np.bincount(b, h, m)
        return f, grad[1:], hess[1:, 1:]

    res = minimize(lambda x: parts(x)[0], np.zeros(m - 1), jac=lambda x: parts(x)[1],
                   hess=lambda x: parts(x)[2], method="trust-exact", options={"gtol": 1e-9})
    th = np.concatenate([[0.0], res.x]) * ELO
    return centered(pd.Series(th, index=models))


# ----------------------------------------------------------------------------------------------- peers
def run_banditarena(df: pd.DataFrame, rounds: int, repeats: int) -> dict:
    fit_times, boot_times, boot_cpu = [], [], []
    fit_bt(df.head(2000), bootstrap=5)  # warm imports (scipy.sparse, ...) outside the timings
    lb = None
    for _ in range(repeats):
        c = Clock()
        lb = fit_bt(df, bootstrap=0)
        fit_times.append(c.read()[0])
        c = Clock()
        fit_bt(df, bootstrap=100, seed=0)
        wall, cpu = c.read()
        boot_times.append(wall)
        boot_cpu.append(cpu)
    return {"name": "banditarena", "fit": min(fit_times), "fit_median": statistics.median(fit_times),
            "boot": min(boot_times), "boot_median": statistics.median(boot_times), "boot_cpu": min(boot_cpu),
            "est": False, "ratings": centered(lb["rating"])}


def _import_fastchat():
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        from fastchat.serve.monitor import elo_analysis
    return elo_analysis


def run_fastchat(df: pd.DataFrame, rounds: int) -> dict:
    ea = _import_fastchat()
    c = Clock()
    r = ea.compute_elo_mle_with_tie(df)
    fit, fit_cpu = c.read()
    import contextlib
    import io

    c = Clock()
    with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        ea.get_bootstrap_result(df, ea.compute_elo_mle_with_tie, rounds)
    per_round, per_round_cpu = (x / rounds for x in c.read())
    return {"name": "fschat 0.2.36 elo_analysis", "fit": fit, "boot": fit + 100 * per_round,
            "boot_cpu": fit_cpu + 100 * per_round_cpu,
            "est": rounds < 100, "rounds": rounds, "ratings": centered(pd.Series(r))}


def _codes(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    ca, ua = pd.factorize(df["model_a"])
    cb, ub = pd.factorize(df["model_b"])
    models = sorted(set(ua) | set(ub))
    a = np.searchsorted(np.array(models, dtype=object), np.asarray(ua, dtype=object))[ca]
    b = np.searchsorted(np.array(models, dtype=object), np.asarray(ub, dtype=object))[cb]
    s = df["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}).to_numpy(float)
    return a, b, s, models


def run_choix(df: pd.DataFrame, rounds: int) -> dict:
    """choix's ILSR on the dense comparison matrix (ties as half a win each side)."""
    import choix

    def fit_matrix(mat: np.ndarray) -> np.ndarray:
        return choix.ilsr_pairwise_dense(mat, alpha=0.0, tol=1e-10, max_iter=1000)

    c0 = Clock()
    a, b, s, models = _codes(df)
    m = len(models)
    mat = (np.bincount(a * m + b, s, m * m) + np.bincount(b * m + a, 1 - s, m * m)).reshape(m, m)
    params = fit_matrix(mat)
    fit, fit_cpu = c0.read()
    # bootstrap: multinomial over (a, b, outcome) cells, like resampling battles
    c0 = Clock()
    o = np.where(s == 1, 0, np.where(s == 0, 1, 2))
    cells = np.bincount((a * m + b) * 3 + o, minlength=m * m * 3).astype(float)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        c = rng.multinomial(len(df), cells / cells.sum()).reshape(m, m, 3).astype(float)
        mb = c[:, :, 0] + c[:, :, 1].T + 0.5 * (c[:, :, 2] + c[:, :, 2].T)
        fit_matrix(mb)
    per_round, per_round_cpu = (x / rounds for x in c0.read())
    return {"name": "choix ilsr_pairwise_dense",
            "fit": fit, "boot": fit + 100 * per_round, "boot_cpu": fit_cpu + 100 * per_round_cpu,
            "est": rounds < 100, "rounds": rounds,
            "ratings": centered(pd.Series(params * ELO, index=models))}


def run_scipy(df: pd.DataFrame, rounds: int) -> dict:
    """Straightforward scipy L-BFGS on the unaggregated likelihood; bootstrap resamples rows."""
    from scipy.optimize import minimize

    def fit_rows(a: np.ndarray, b: np.ndarray, s: np.ndarray, m: int) -> np.ndarray:
        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            d = x[a] - x[b]
            val = (s * np.logaddexp(0, -d) + (1 - s) * np.logaddexp(0, d)).sum()
            r = s - 1 / (1 + np.exp(-d))
            g = -(np.bincount(a, r, m) - np.bincount(b, r, m))
            mean = x.mean()
            return val + 0.5 * m * mean * mean, g + mean

        return minimize(f, np.zeros(m), jac=True, method="L-BFGS-B",
                        options={"maxiter": 10_000, "gtol": 1e-6}).x

    c0 = Clock()
    a, b, s, models = _codes(df)
    x = fit_rows(a, b, s, len(models))
    fit, fit_cpu = c0.read()
    rng = np.random.default_rng(0)
    c0 = Clock()
    for _ in range(rounds):
        idx = rng.integers(0, len(a), len(a))
        fit_rows(a[idx], b[idx], s[idx], len(models))
    per_round, per_round_cpu = (x_ / rounds for x_ in c0.read())
    return {"name": "scipy L-BFGS (unaggregated)", "fit": fit, "boot": fit + 100 * per_round,
            "boot_cpu": fit_cpu + 100 * per_round_cpu,
            "est": rounds < 100, "rounds": rounds, "ratings": centered(pd.Series(x * ELO, index=models))}


# ---------------------------------------------------------------------------------------------- scaling
def write_parquet(path: Path, n: int, seed: int = 0, chunk: int = 5_000_000) -> None:
    """Write n synthetic battles in chunks as dictionary-encoded Parquet (never all in memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from banditarena.ratings.synthetic import outcome_probabilities

    r = strengths()
    names = pa.array(list(r.index))
    winners = pa.array(["model_a", "model_b", "tie"])
    v = r.to_numpy()
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".partial")
    schema = pa.schema([("model_a", pa.dictionary(pa.int8(), pa.string())),
                        ("model_b", pa.dictionary(pa.int8(), pa.string())),
                        ("winner", pa.dictionary(pa.int8(), pa.string()))])
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        done = 0
        while done < n:
            k = min(chunk, n - done)
            a = rng.integers(0, len(v), k)
            b = (a + rng.integers(1, len(v), k)) % len(v)
            pa_, pb, _ = outcome_probabilities(v[a] - v[b], tie_rate=0.1)
            u = rng.random(k)
            o = np.where(u < pa_, 0, np.where(u < pa_ + pb, 1, 2)).astype(np.int8)
            table = pa.table({
                "model_a": pa.DictionaryArray.from_arrays(pa.array(a.astype(np.int8)), names),
                "model_b": pa.DictionaryArray.from_arrays(pa.array(b.astype(np.int8)), names),
                "winner": pa.DictionaryArray.from_arrays(pa.array(o), winners),
            }, schema=schema)
            writer.write_table(table, row_group_size=chunk)
            done += k
    tmp.rename(path)


def _vm(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def scaling_child(n: int, source: str, engine: str) -> None:
    """Runs in a subprocess: one fit + 100 bootstrap rounds; prints JSON."""
    if source == "memory":
        df = make_battles(n, seed=1)
        fit_bt(df.head(1000), bootstrap=2)  # warm imports
        data_mb = _vm("VmRSS")
        try:  # reset the peak-RSS counter so only the fit is measured
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        t = time.perf_counter()
        fit_bt(df, bootstrap=100, seed=0)
        elapsed = time.perf_counter() - t
        print(json.dumps({"time": elapsed, "peak_mb": _vm("VmHWM"), "base_mb": data_mb}))
    else:
        from banditarena.ratings import aggregate_parquet

        fit_bt(make_battles(1000), bootstrap=2)
        base = _vm("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        t = time.perf_counter()
        counts = aggregate_parquet(source, engine=engine)
        t_agg = time.perf_counter() - t
        fit_bt(counts, bootstrap=100, seed=0)
        elapsed = time.perf_counter() - t
        print(json.dumps({"time": elapsed, "agg": t_agg, "peak_mb": _vm("VmHWM"), "base_mb": base}))


def run_scaling(sizes: list[int], parquet_from: int, data_dir: Path, engines: list[str]) -> list[dict]:
    rows = []
    for n in sizes:
        jobs = [("memory", "pyarrow")] if n < parquet_from else []
        if n >= parquet_from:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = data_dir / f"battles_{n}.parquet"
            if not path.exists():
                t = time.perf_counter()
                write_parquet(path, n)
                print(f"  wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s",
                      file=sys.stderr)
            jobs = [(str(path), e) for e in engines]
        for source, engine in jobs:
            out = subprocess.run([sys.executable, __file__, "--child", str(n), source, engine], capture_output=True,
                                 text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            label = "in-memory DataFrame" if source == "memory" else f"Parquet stream ({engine})"
            rows.append({"n": n, "path": label, **res})
            print(f"  {n:>11,} {label}: {res['time']:.2f} s", file=sys.stderr)
    return rows


# ------------------------------------------------------------------------------------------------ main
def fmt_n(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--battles", type=int, default=1_000_000, help="battles in the side-by-side comparison")
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the banditarena timings (best and median)")
    ap.add_argument("--peer-rounds", type=int, default=3,
                    help="bootstrap rounds actually run for fschat and scipy (extrapolated to 100)")
    ap.add_argument("--choix-rounds", type=int, default=100, help="bootstrap rounds run for choix")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--max-battles", type=int, default=100_000_000, help="largest size in the scaling table")
    ap.add_argument("--parquet-from", type=int, default=100_000_000,
                    help="sizes from here up are rated from a Parquet file by the streaming path")
    ap.add_argument("--engines", default="pyarrow,duckdb", help="streaming engines for the Parquet sizes")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/banditarena-bench"))
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        scaling_child(int(args.child[0]), args.child[1], args.child[2])
        return

    print(f"# banditarena ratings benchmark: {args.battles:,} battles, {N_MODELS} models, 10% ties, 1 thread",
          file=sys.stderr)
    load_start = os.getloadavg()[0]
    df = make_battles(args.battles, seed=1)
    ref = reference_mle(df)
    results = [run_banditarena(df, 100, args.repeats)]
    if not args.skip_peers:
        for runner, rounds in ((run_fastchat, args.peer_rounds), (run_choix, args.choix_rounds),
                               (run_scipy, args.peer_rounds)):
            print(f"  running {runner.__name__} ...", file=sys.stderr)
            try:
                results.append(runner(df, rounds))
            except ImportError as exc:
                print(f"  skipped {runner.__name__}: {exc} (pip install -r bench/requirements-ratings.txt)",
                      file=sys.stderr)
    base = results[0]
    print()
    print(f"Table 1. Bradley-Terry on {fmt_n(args.battles)} battles, {N_MODELS} models, 10% ties "
          f"(one thread; times from the raw DataFrame; {os.cpu_count()} CPUs, load average "
          f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end)")
    print(f"{'method':<36} {'fit s':>9} {'x slower':>9} {'fit+100 boot s':>15} {'x slower':>9} "
          f"{'(CPU s)':>10} {'max |dR| vs MLE':>16}")
    for r in results:
        diff = float((r["ratings"].reindex(ref.index) - ref).abs().max())
        boot = f"{r['boot']:.2f}" + (" est." if r.get("est") else "")
        print(f"{r['name']:<36} {r['fit']:>9.3f} {r['fit'] / base['fit']:>9.1f} {boot:>15} "
              f"{r['boot'] / base['boot']:>9.1f} {r['boot_cpu']:>10.2f} {diff:>16.2e}")
    print(f"banditarena medians over {args.repeats} repeats: fit {base['fit_median']:.3f} s, "
          f"fit+100 boot {base['boot_median']:.3f} s")
    ests = [r for r in results if r.get("est")]
    if ests:
        print("est. = fit + 100 x the mean time of " + ", ".join(f"{r['rounds']} rounds ({r['name']})" for r in ests))
    ref_total = 1.1 + 5.2
    print(f"Reference (issue 3): FastChat's current code on this machine type: fit 1.1 s + 100 bootstrap rounds "
          f"5.2 s = {ref_total:.1f} s. banditarena fit+100 boot: best {base['boot']:.2f} s "
          f"({ref_total / base['boot']:.1f}x faster), median {base['boot_median']:.2f} s "
          f"({ref_total / base['boot_median']:.1f}x), CPU time {base['boot_cpu']:.2f} s "
          f"({ref_total / base['boot_cpu']:.1f}x); target <= 0.6 s and >= 10x")
    print("x slower = time / banditarena's time (wall clock, best of repeats for banditarena); CPU s = process "
          "CPU time of fit+100 boot (single-threaded, so close to the wall time of an idle machine)")

    if not args.skip_scaling:
        sizes = [n for n in (10_000, 100_000, 1_000_000, 10_000_000, 100_000_000) if n <= args.max_battles]
        rows = run_scaling(sizes, args.parquet_from, args.data_dir, args.engines.split(","))
        print()
        print(f"Table 2. banditarena fit + 100 bootstrap rounds by size (fresh process per row; one thread; "
              f"load average {os.getloadavg()[0]:.1f} at end)")
        print(f"{'battles':>10} {'input':<28} {'time s':>8} {'read+agg s':>11} {'RSS before MB':>14} "
              f"{'peak MB':>9} {'peak-before MB':>15}")
        for r in rows:
            agg = f"{r['agg']:.2f}" if "agg" in r else "-"
            print(f"{fmt_n(r['n']):>10} {r['path']:<28} {r['time']:>8.2f} {agg:>11} {r['base_mb']:>14.0f} "
                  f"{r['peak_mb']:>9.0f} {r['peak_mb'] - r['base_mb']:>15.0f}")
        print("RSS before: process after imports (+ the battle DataFrame for in-memory rows); peak: high-water "
              "mark during read + fit + bootstrap")


if __name__ == "__main__":
    main()
