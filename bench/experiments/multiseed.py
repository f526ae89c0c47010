"""Several seeds of a LASeR recipe (``bench/laser_seeds.py``): recipe overrides, the noisy copy, and the pooled
report. Bench code: the library does not import it.

* :func:`apply_overrides` - ``["loop.iterations=6", ...]`` applied to a recipe dict (YAML values);
* :func:`noisy_recipe` - the same recipe with Gaussian noise ``sigma`` added to one RM's scores;
* :func:`report_seeds` - per method over seeds: mean test accuracy with a 95% CI over seeds and problems
  (bootstrap), paired exact McNemar tests pooled over (seed, problem) pairs, RM calls and the reward's extra
  cost, skips per RM, the noise experiment, selection frequencies per category and learning curves;
* :func:`write_seeds_report` - the same as an HTML page (``run_dir/report.html``) with figures.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from banditarena.errors import ConfigError

__all__ = ["apply_overrides", "bootstrap_ci", "collect", "learning_curves", "noisy_recipe", "paired_pooled",
           "report_seeds", "sampled_answer_sets", "selection_by_category", "summary_table", "write_seeds_report"]


def apply_overrides(recipe: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``recipe`` with each ``dotted.key=value`` set (the value parsed as YAML)."""
    d = copy.deepcopy(recipe)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected dotted.key=value")
        key, raw = item.split("=", 1)
        node = d
        parts = key.split(".")
        for k in parts[:-1]:
            node = node.setdefault(k, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return d


def noisy_recipe(recipe: dict[str, Any], rm: str, sigma: float) -> dict[str, Any]:
    """``recipe`` with N(0, sigma^2) added to reward model ``rm``'s scores (ConfigError if it has no such RM)."""
    d = copy.deepcopy(recipe)
    names = [r["name"] for r in d["reward_models"]]
    if rm not in names:
        raise ConfigError(f"noise_rm: '{rm}' is not a reward model of the recipe ({names})")
    for r in d["reward_models"]:
        if r["name"] == rm:
            r["noise_sigma"] = float(r.get("noise_sigma") or 0.0) + sigma
    d["name"] = f"{d['name']}-noise{sigma:g}-{rm}"
    return d


# ---------------------------------------------------------------------------------------------- results
def load_method(run_dir: Path, seed: int, part: str, method: str) -> dict[str, Any] | None:
    """The finished state of one (seed, part, method), or None when it is not done."""
    f = Path(run_dir) / f"seed{seed}" / part / method.replace(":", "_") / "state.json"
    if not f.exists():
        return None
    d = json.loads(f.read_text(encoding="utf-8"))
    return d if d.get("done") and d.get("test") else None


def sampled_answer_sets(run_dir: Path, part: str = "*") -> tuple[dict[str, Any], list[tuple[Any, list[str]]]]:
    """The answer sets that a multi-seed run's policies sampled during training: the run's recipe (as stored
    by its first ``seed*/clean`` directory) and ``(training prompt, answers)`` for every ``iter_*/samples.json``
    of every method of ``part`` (``"clean"``, ``"noisy"`` or ``"*"``), in file order. ConfigError naming
    ``run_dir`` when it holds no run."""
    import glob

    from banditarena.laser.recipe import load_recipe
    from banditarena.laser.run import load_problems

    run_dir = Path(run_dir)
    metas = sorted(run_dir.glob("seed*/clean/recipe.json"))
    if not metas:
        raise ConfigError(f"{run_dir}: no seed*/clean/recipe.json (run bench/laser_seeds.py there first)")
    recipe = json.loads(metas[0].read_text(encoding="utf-8"))["recipe"]
    train, _, _ = load_problems(load_recipe(recipe))
    by_id = {p.id: p for p in train}
    sets = []
    for f in sorted(glob.glob(str(run_dir / "seed*" / part / "*" / "iter_*" / "samples.json"))):
        sets += [(by_id[r["prompt_id"]], r["answers"]) for r in json.loads(Path(f).read_text(encoding="utf-8"))
                 if r["prompt_id"] in by_id]
    return recipe, sets


def bootstrap_ci(correct: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% CI of the mean of a (seeds, problems) 0/1 matrix, resampling seeds and problems."""
    rng = np.random.default_rng(seed)
    s, p = correct.shape
    means = np.empty(n_boot)
    for b in range(n_boot):
        rows = rng.integers(0, s, size=s)
        cols = rng.integers(0, p, size=p)
        means[b] = correct[np.ix_(rows, cols)].mean()
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def collect(run_dir: Path, seeds: list[int], methods: list[str], part: str = "clean") -> dict[str, dict[int, Any]]:
    """``{method: {seed: state}}`` of the finished runs."""
    out: dict[str, dict[int, Any]] = {}
    for m in methods:
        for s in seeds:
            st = load_method(run_dir, s, part, m)
            if st is not None:
                out.setdefault(m, {})[s] = st
    return out


def summary_table(runs: dict[str, dict[int, Any]], base: dict[str, Any] | None, k: int) -> pd.DataFrame:
    """One row per method: mean accuracy over seeds and problems with its bootstrap CI, cost and skips."""
    rows = []
    if base and base.get("correct"):
        c = np.asarray([base["correct"]], dtype=float)
        lo, hi = bootstrap_ci(c)
        rows.append({"method": "base", "seeds": "-", "accuracy": c.mean(), "ci_low": lo, "ci_high": hi,
                     "per_seed": "", "rm_calls": 0, "calls_vs_ensemble": 0.0})
    ens_calls = None
    for m, by_seed in runs.items():
        if m.startswith("ensemble"):
            ens_calls = np.mean([sum(st["rm_calls"].values()) for st in by_seed.values()])
    for m, by_seed in runs.items():
        seeds = sorted(by_seed)
        c = np.asarray([by_seed[s]["test"]["correct"] for s in seeds], dtype=float)
        lo, hi = bootstrap_ci(c)
        calls = float(np.mean([sum(by_seed[s]["rm_calls"].values()) for s in seeds]))
        cost = [by_seed[s].get("cost", {}) for s in seeds]
        dev_calls = float(np.mean([x.get("dev_rm_calls", 0) + x.get("router_rm_calls", 0) for x in cost]))
        dev_gens = float(np.mean([x.get("dev_gens", 0) + x.get("router_gens", 0) for x in cost]))
        skips: dict[str, dict[str, int]] = {}
        for s in seeds:
            for rm, d in by_seed[s].get("rm_skips", {}).items():
                for kind, v in d.items():
                    skips.setdefault(rm, {}).setdefault(kind, 0)
                    skips[rm][kind] += v
        stats = [by_seed[s]["stats"] for s in seeds]
        rows.append({
            "method": m, "seeds": ",".join(map(str, seeds)), "accuracy": c.mean(), "ci_low": lo, "ci_high": hi,
            "per_seed": " ".join(f"{x:.3f}" for x in c.mean(axis=1)),
            "dev_accuracy": float(np.mean([by_seed[s]["dev"]["accuracy"] for s in seeds]))
            if all(by_seed[s].get("dev") for s in seeds) else None,
            "rm_calls": calls, "calls_vs_ensemble": calls / ens_calls if ens_calls else None,
            "dev_gens": dev_gens, "dev_rm_calls": dev_calls,
            "wall_s": float(np.mean([by_seed[s]["wall_s"] for s in seeds])),
            "pairs": float(np.mean([x.get("pairs", 0) for x in stats])),
            "tie_skips": float(np.mean([x.get("tie_skips", 0) for x in stats])),
            "skips_per_rm": "; ".join(f"{rm}: " + ", ".join(f"{v} {kd}" for kd, v in sorted(d.items()) if v)
                                      for rm, d in sorted(skips.items()) if any(d.values())),
        })
    del k
    return pd.DataFrame(rows)


def paired_pooled(runs: dict[str, dict[int, Any]], a: str, b: str, base: dict[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """Exact McNemar test of ``a`` vs ``b`` pooled over the (seed, problem) pairs both finished."""
    from banditarena.ratings.stats import mcnemar_test

    if b == "base":
        if a not in runs or not base or not base.get("correct"):
            return None
        seeds = sorted(runs[a])
        ca = [x for s in seeds for x in runs[a][s]["test"]["correct"]]
        cb = list(base["correct"]) * len(seeds)
    else:
        if a not in runs or b not in runs:
            return None
        seeds = sorted(set(runs[a]) & set(runs[b]))
        if not seeds:
            return None
        ca = [x for s in seeds for x in runs[a][s]["test"]["correct"]]
        cb = [x for s in seeds for x in runs[b][s]["test"]["correct"]]
    r = mcnemar_test(ca, cb)
    return {"vs": b, "seeds": len(seeds), "pairs": len(ca), "diff": r["diff"], "a_only": r["a_only"],
            "b_only": r["b_only"], "p_value": r["p_value"]}


def selection_by_category(runs: dict[str, dict[int, Any]], method: str) -> pd.DataFrame:
    """Share of each RM among ``method``'s decisions per category, pooled over seeds."""
    rows = [r for st in runs.get(method, {}).values() for r in st["selections"]]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    return pd.crosstab(df["category"].fillna("all"), df["rm"], normalize="index").round(3)


def learning_curves(runs: dict[str, dict[int, Any]]) -> pd.DataFrame:
    """Mean test accuracy over seeds after each evaluated iteration, per method (rows: iterations)."""
    recs = []
    for m, by_seed in runs.items():
        for seed, st in by_seed.items():
            for h in st["history"]:
                if h.get("test_acc") is not None:
                    recs.append({"method": m, "seed": seed, "iteration": h["iteration"] + 1, "acc": h["test_acc"]})
            recs.append({"method": m, "seed": seed, "iteration": len(st["history"]), "acc": st["test"]["accuracy"]})
    if not recs:
        return pd.DataFrame()
    # the final evaluation is both the last curve point and the run's test result: once per seed (two seeds
    # that happen to score the same are two points)
    df = pd.DataFrame(recs).drop_duplicates(["method", "seed", "iteration"])
    return df.groupby(["iteration", "method"])["acc"].mean().unstack("method").round(3)


def _md(df: pd.DataFrame, index: bool = False) -> str:
    if df is None or df.empty:
        return "(nothing finished)"
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in d.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))
                                         for v in r.tolist()) + " |")
    return "\n".join(lines)


def report_seeds(run_dir: Path, seeds: list[int], methods: list[str], noise_methods: list[str], *,
                 noise_rm: str, sigma: float) -> str:
    """The markdown report of a multi-seed run (also written to ``run_dir/report.md``)."""
    run_dir = Path(run_dir)
    base_f = run_dir / f"seed{seeds[0]}" / "clean" / "base_eval.json"
    base = json.loads(base_f.read_text(encoding="utf-8")) if base_f.exists() else None
    clean = collect(run_dir, seeds, methods)
    noisy = collect(run_dir, seeds, noise_methods, part="noisy")
    k = len({n for st in (s for by in clean.values() for s in by.values()) for n in st["rm_calls"]}) or 1
    table = summary_table(clean, base, k)
    parts = [f"## Test accuracy over seeds (mean over seeds x problems, 95% bootstrap CI)\n\n{_md(table)}"]
    singles = table[table["method"].str.startswith("single:") & table["dev_accuracy"].notna()] \
        if not table.empty and "dev_accuracy" in table else pd.DataFrame()
    best = str(singles.sort_values("dev_accuracy", ascending=False).iloc[0]["method"]) if not singles.empty else None
    tests = []
    for a in [m for m in clean if m.startswith("laser")]:
        others = [best, "single:partial", "random", "sequential", "ensemble_avg", "ensemble_agree", "router", "base"]
        for b in dict.fromkeys(others):  # in order, once each
            if b and b != a:
                r = paired_pooled(clean, a, b, base)
                if r:
                    tests.append({"method": a, **r})
    parts.append(f"## Paired exact McNemar tests pooled over seeds (best single on dev: {best})\n\n"
                 f"{_md(pd.DataFrame(tests))}")
    rows = []
    for m in noise_methods:
        if m in clean or m in noisy:
            common = set(clean.get(m, {})) & set(noisy.get(m, {})) or set(clean.get(m, {}))  # paired seeds first
            c = np.mean([clean[m][sd]["test"]["accuracy"] for sd in common]) if m in clean else None
            n = np.mean([st["test"]["accuracy"] for st in noisy.get(m, {}).values()]) if m in noisy else None
            # paired over the (seed, problem) pairs both parts finished: the noise's effect, not the seeds'
            r = paired_pooled({"noisy": noisy.get(m, {}), "clean": clean.get(m, {})}, "noisy", "clean") \
                if m in clean and m in noisy else None
            rows.append({"method": m, "clean": c, f"sigma={sigma:g} on {noise_rm}": n,
                         "change": None if c is None or n is None else n - c,
                         "noisy only / clean only": f"{r['a_only']} / {r['b_only']}" if r else None,
                         "p_value": r["p_value"] if r else None,
                         "seeds clean/noisy": f"{len(clean.get(m, {}))}/{len(noisy.get(m, {}))}"})
    parts.append(f"## Noise: N(0, {sigma:g}^2) added to {noise_rm}'s scores\n\n{_md(pd.DataFrame(rows))}")
    for m in [m for m in clean if m.startswith("laser")]:
        parts.append(f"## Selections of {m} per category (pooled over seeds)\n\n"
                     f"{_md(selection_by_category(clean, m), index=True)}")
    parts.append(f"## Learning curves (mean test accuracy over seeds)\n\n{_md(learning_curves(clean), index=True)}")
    text = "\n\n".join(parts)
    (run_dir / "report.md").write_text(text + "\n", encoding="utf-8")
    return text


def write_seeds_report(run_dir: str | Path, seeds: list[int], methods: list[str], noise_methods: list[str], *,
                       noise_rm: str = "partial", sigma: float = 0.3, routing: str | Path | None = None) -> Path:
    """``run_dir/report.html`` of a multi-seed reproduction (``bench/laser_seeds.py``): accuracy with CIs and
    cost per method, paired tests, the noise experiment, LASeR's selection over time per category, the
    learning curves per method and, given ``routing`` (``routing.json`` of ``bench/laser_routing.py``), the
    routing check's right-pick rate over time per method."""
    from banditarena.laser.report import line_plot
    from banditarena.report import plot_selection_over_time, write_report

    run_dir = Path(run_dir)
    figs = run_dir / "figures"
    report_seeds(run_dir, seeds, methods, noise_methods, noise_rm=noise_rm, sigma=sigma)  # report.md
    clean = collect(run_dir, seeds, methods)
    base_f = run_dir / f"seed{seeds[0]}" / "clean" / "base_eval.json"
    base = json.loads(base_f.read_text()) if base_f.exists() else None
    table = summary_table(clean, base, 1)
    lb = pd.DataFrame({"rating": 100 * table["accuracy"].to_numpy(), "ci_low": 100 * table["ci_low"].to_numpy(),
                       "ci_high": 100 * table["ci_high"].to_numpy()}, index=table["method"].to_numpy())
    lb.index.name = "method"
    sections: list[Any] = [("Accuracy (mean over seeds and problems, 95% bootstrap CI) and cost", table, [])]
    curves = learning_curves(clean)
    if not curves.empty:
        png = line_plot({m: (curves.index.tolist(), curves[m].tolist()) for m in curves.columns
                          if curves[m].notna().any()}, figs / "learning_curves.png",
                         title="Learning curves (test accuracy, mean over seeds)", xlabel="iteration",
                         ylabel="test accuracy")
        sections.append(("Learning curves per method", curves, [png]))
    for m in [m for m in clean if m.startswith("laser")]:
        rows = pd.DataFrame([r for st in clean[m].values() for r in st["selections"]])
        pngs = []
        for cat, df in rows.groupby(rows["category"].fillna("all")):
            sel = pd.DataFrame({"step": df["iteration"].to_numpy(), "arm": df["rm"].to_numpy()})
            pngs.append(plot_selection_over_time(sel, figs / f"selection_{m.replace(':', '_')}_{cat}.png", window=1,
                                                 title=f"{m}: RM chosen per iteration, category {cat} (all seeds)"))
        freq = pd.crosstab(rows["category"].fillna("all"), rows["rm"], normalize="index").round(3)
        sections.append((f"Selection over time per category ({m})", freq, pngs))
    if routing is not None and Path(routing).exists():
        r = json.loads(Path(routing).read_text())
        res = r["results"]
        dims = sorted({k.split("/")[0] for k in res})
        pngs, rows_ = [], []
        for d in dims:
            ser = {k.split("/")[1]: (list(range(1, len(v["windows"]) + 1)), v["windows"]) for k, v in res.items()
                   if k.split("/")[0] == d}
            pngs.append(line_plot(ser, figs / f"routing_dim{d}.png", xlabel="fifth of the decisions",
                                   title=f"Routing check: right specialist picked (context {d})",
                                   ylabel="right picks"))
            rows_ += [{"context": d, "method": k.split("/")[1], "right picks (2nd half)": float(np.mean(v["second_half_correct"])),
                       "regret": float(np.mean(v["regret"]))} for k, v in res.items() if k.split("/")[0] == d]
        sections.append(("Routing check (known specialists)", pd.DataFrame(rows_), pngs))
    meta = {"seeds": ", ".join(map(str, seeds)), "noise": f"N(0, {sigma:g}^2) on {noise_rm}"}
    return write_report(run_dir, title="banditarena LASeR over seeds", leaderboard=lb, sections=sections, meta=meta)
