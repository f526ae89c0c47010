"""``run_laser``: a whole LASeR experiment from a recipe (what ``banditarena laser RECIPE.yaml`` calls).

Runs every requested method in the same harness, in ``run_dir/<method>/`` (resumable), and returns a
:class:`LaserResults` with the Table-1-style table, the selection log, the per-iteration history and the
selection frequencies. ``best_single`` is the single-RM run with the best dev accuracy (ties: the earlier RM
in the recipe); it needs a non-empty dev set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from banditarena.errors import ConfigError, StoreError
from banditarena.laser.data import (
    INSTRUCTION,
    arithmetic_problems,
    load_gsm8k,
    load_jsonl_problems,
    split_problems,
)
from banditarena.laser.loop import MethodRunner, method_dir
from banditarena.laser.recipe import LaserRecipe, load_recipe
from banditarena.laser.rm_registry import build_reward_model
from banditarena.paths import write_text_atomic
from banditarena.ratings.stats import mcnemar_test as paired_test
from banditarena.types import Prompt, stable_hash

__all__ = [
    "LaserResults",
    "build_reward_model",
    "load_problems",
    "method_names",
    "paired_test",
    "run_laser",
    "selection_frequencies",
    "selection_over_time",
]


@dataclass
class LaserResults:
    """Everything a LASeR run measured.

    * ``table``: one row per method - ``method``, ``accuracy`` (test), ``delta`` (vs base), ``dev_accuracy``,
      ``rm_calls``, ``wall_s``, ``pairs``, ``tie_skips``, ``nan_skips``;
    * ``selections``: one row per (method, iteration, prompt) - ``step``, ``arm``, ``rm``, ``category``,
      ``propensity``, ``reward``;
    * ``history``: one row per (method, iteration) - training ``loss``, ``n_rows``, ``rm_calls``, ``test_acc``
      when evaluated;
    * ``base``: the base policy's test accuracy (overall and per category); ``best_single``: its RM name;
    * ``correct``: per method (and ``base``), which test problems it solved, in test order (for
      :meth:`compare`).

    ``table`` also holds ``accuracy_ci_low`` / ``accuracy_ci_high``, the 95% Wilson interval of each accuracy.
    """

    table: pd.DataFrame
    selections: pd.DataFrame
    history: pd.DataFrame
    base: dict[str, Any]
    best_single: str | None
    run_dir: Path
    reward_models: list[str]
    correct: dict[str, list[bool]] = field(default_factory=dict)

    def compare(self, a: str, b: str) -> dict[str, float]:
        """Paired exact McNemar test of methods ``a`` and ``b`` (``best_single`` resolves to the picked RM)."""
        names = {m: m for m in self.correct}
        if self.best_single:
            names["best_single"] = f"single:{self.best_single}"
        for m in (a, b):
            if names.get(m) not in self.correct:
                raise ConfigError(f"compare: no per-problem test results for method '{m}' (have {sorted(self.correct)})")
        return paired_test(self.correct[names[a]], self.correct[names[b]])

    def frequencies(self, method: str = "laser", by_category: bool = False) -> pd.DataFrame:
        """How often each RM was selected by ``method`` (fractions), overall or per category."""
        return selection_frequencies(self.selections, method=method, by_category=by_category)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table.to_dict(orient="records"), "base": self.base, "best_single": self.best_single,
                "reward_models": self.reward_models}


def method_names(recipe: LaserRecipe) -> list[str]:
    """The concrete runs behind the recipe's methods (``single`` expands to one run per RM)."""
    out: list[str] = []
    for m in recipe.methods:
        names = [f"single:{r.name}" for r in recipe.reward_models] if m in {"single", "best_single"} else [m]
        for n in names:
            if n not in out:
                out.append(n)
    return out


def load_problems(recipe: LaserRecipe) -> tuple[list[Prompt], list[Prompt], list[Prompt]]:
    """train / dev / test problems of the recipe (disjoint, seeded)."""
    d = recipe.data
    inst = d.instruction if d.instruction is not None else INSTRUCTION
    if d.source == "arithmetic":
        total = d.n_train + d.n_dev + d.n_test
        pool = arithmetic_problems(total, seed=d.seed, instruction=inst)
        return split_problems(pool, d.n_train, d.n_dev, d.n_test, seed=d.seed)
    loader = load_gsm8k if d.source == "gsm8k" else load_jsonl_problems
    pool = loader(str(d.path), instruction=inst)
    if d.test_path:
        test_pool = loader(str(d.test_path), instruction=inst)
        train, dev, _ = split_problems(pool, d.n_train, d.n_dev, 0, seed=d.seed)
        _, _, test = split_problems(test_pool, 0, 0, d.n_test, seed=d.seed)
        return train, dev, test
    return split_problems(pool, d.n_train, d.n_dev, d.n_test, seed=d.seed)


def selection_frequencies(selections: pd.DataFrame, method: str = "laser", by_category: bool = False) -> pd.DataFrame:
    """Fraction of prompts scored by each RM under ``method``: one row (``overall``) or one per category."""
    if selections.empty or "method" not in selections:
        return pd.DataFrame()
    df = selections[selections["method"] == method]
    if df.empty:
        return pd.DataFrame()
    if by_category:
        t = pd.crosstab(df["category"].fillna("all"), df["rm"], normalize="index")
    else:
        t = df["rm"].value_counts(normalize=True).to_frame().T
        t.index = ["overall"]
    return t.sort_index(axis=1)


def selection_over_time(selections: pd.DataFrame, method: str = "laser") -> pd.DataFrame:
    """``(step, arm)`` rows (arm = RM name), one per decision, for the report's selection-over-time plot."""
    if selections.empty or "method" not in selections:
        return pd.DataFrame(columns=["step", "arm"])
    df = selections[selections["method"] == method]
    if df.empty:
        return pd.DataFrame(columns=["step", "arm"])
    first = df.drop_duplicates(["method", "step"]) if df["step"].duplicated().any() else df
    return pd.DataFrame({"step": first["step"].to_numpy(), "arm": first["rm"].to_numpy()}).reset_index(drop=True)


def _progress(enabled: bool, total: int):
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    prog.start()
    prog.add_task("laser", total=total)
    return prog


#: fields added to the recipe after run directories existed, at the value that reproduces the old behaviour
_ADDED_LATER = {("loop", "paired_streams"): False, ("loop", "warmup"): 0, ("policy", "gen_dtype"): "float32",
                ("loop", "pair_with"): "rank"}


def recipe_fingerprint(rc: LaserRecipe) -> str:
    """What a run directory is bound to. Fields added later (``_ADDED_LATER``) are left out at the value that
    reproduces the behaviour from before they existed, so such a run directory still resumes with that value
    (a recipe with the new default ``warmup: 1`` is another recipe and gets a new run directory)."""
    d = rc.model_dump(mode="json")
    for (section, key), old in _ADDED_LATER.items():
        if d[section].get(key, old) == old:
            d[section].pop(key, None)
    return stable_hash(d)


def run_laser(recipe: str | Path | dict[str, Any] | LaserRecipe, run_dir: str | Path, progress: bool = True,
              *, methods: list[str] | None = None, evaluate_base: bool = True) -> LaserResults:
    """Run (or resume) every method of ``recipe`` in ``run_dir`` and collect the results.

    ``methods`` optionally restricts to some concrete runs (e.g. ``["laser", "single:verifier"]``);
    ``evaluate_base=False`` skips the base policy's test evaluation unless it is already stored (for
    several processes sharing one run directory).
    Raises ConfigError for a bad recipe or an empty dev set when ``best_single`` is asked for,
    ModelError when a reward model or the policy fails to load, StoreError when ``run_dir`` holds a
    different recipe.
    """
    from banditarena.models.hub import offline, resolve_llm

    offline()
    rc = load_recipe(recipe)
    train, dev, test = load_problems(rc)
    base_model = resolve_llm(rc.policy.model)
    shared: dict[str, Any] = {}
    rms = [build_reward_model(s, shared=shared) for s in rc.reward_models]
    if not train:
        raise ConfigError("data.n_train: empty training set")
    if "best_single" in rc.methods and not dev:
        raise ConfigError("data.n_dev: the dev set is empty, but method 'best_single' needs it to pick the RM")
    run = Path(run_dir)
    fingerprint = recipe_fingerprint(rc)
    meta = run / "recipe.json"
    if meta.exists():
        old = json.loads(meta.read_text(encoding="utf-8"))
        if old.get("fingerprint") != fingerprint:
            raise StoreError(f"{run}: run directory belongs to a different recipe ('{old.get('name')}'); "
                             "use a new run_dir")
    # Everything checked: now write. Several processes may share one run directory, each running other
    # methods (bench/laser_seeds.py does); each method's folder has one writer at a time (its own lock,
    # taken for all of this call's methods before any work), and the shared files are written atomically.
    from banditarena.store import RunLock

    runs = method_names(rc) if methods is None else methods
    try:
        run.mkdir(parents=True, exist_ok=True)  # also when this call runs no method (the base evaluation only)
    except OSError as exc:
        raise StoreError(f"{run}: cannot create the run directory ({exc.strerror})") from exc
    locks: list[RunLock] = []
    try:
        for m in runs:
            mdir = run / method_dir(m)
            try:
                mdir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{mdir}: cannot create the method's run directory ({exc.strerror})") from exc
            locks.append(RunLock.acquire(mdir))
    except BaseException:
        for lk in locks:
            lk.release()
        raise
    if not meta.exists():
        write_text_atomic(meta, json.dumps({"name": rc.name, "fingerprint": fingerprint,
                                        "recipe": rc.model_dump(mode="json")}, indent=1))
    prog = _progress(progress, len(runs) * rc.loop.iterations + 1)

    def tick(method: str, it: int) -> None:
        if prog is not None:
            prog.update(prog.task_ids[0], advance=1, description=f"{method} iter {it + 1}")

    try:
        base = _base_eval(rc, run, base_model, test, evaluate_base)
        tick("base", -1)
        states = {}
        for m in runs:
            runner = MethodRunner(m, rc, rms, train, run, base_model, test=test, dev=dev, on_iteration=tick)
            states[m] = runner.run()
        return _collect(rc, run, states, base, [r.name for r in rms])
    finally:
        if prog is not None:
            prog.stop()
        for lk in locks:
            lk.release()


def _base_eval(rc: LaserRecipe, run: Path, base_model: str, test: list[Prompt], compute: bool) -> dict[str, Any]:
    path = run / "base_eval.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"accuracy": None, "per_category": {}}
    if not compute:
        return out
    if test:
        from banditarena.laser.policy import Policy

        pol = Policy.load(base_model, system_prompt=rc.policy.system_prompt, gen_batch_size=rc.policy.gen_batch_size,
                          gen_dtype=rc.policy.gen_dtype)
        ev = pol.evaluate(test, max_new_tokens=rc.eval_max_new_tokens)
        out = {"accuracy": ev.accuracy, "per_category": ev.per_category, "correct": ev.correct}
    write_text_atomic(path, json.dumps(out))
    return out


def _collect(rc: LaserRecipe, run: Path, states: dict[str, Any], base: dict[str, Any],
             rm_names: list[str]) -> LaserResults:
    rows, sels, hist = [], [], []
    correct: dict[str, list[bool]] = {}
    if base.get("correct"):
        correct["base"] = list(base["correct"])
    base_acc = base.get("accuracy")
    for m, st in states.items():
        acc = st.test["accuracy"] if st.test else None
        n_test = len((st.test or {}).get("correct") or [])
        lo, hi = _wilson(acc, n_test)
        rows.append({
            "method": m, "accuracy": acc, "accuracy_ci_low": lo, "accuracy_ci_high": hi,
            "delta": None if acc is None or base_acc is None else acc - base_acc,
            "dev_accuracy": st.dev["accuracy"] if st.dev else None,
            "rm_calls": int(sum(st.rm_calls.values())), "wall_s": round(st.wall_s, 1),
            "pairs": st.stats.get("pairs", 0), "tie_skips": st.stats.get("tie_skips", 0),
            "nan_skips": st.stats.get("nan_skips", 0), "error_skips": st.stats.get("error_skips", 0),
            "rm_skips": _skips_text(st.rm_skips), "iterations": st.iteration,
            "dev_gens": int(st.cost.get("dev_gens", 0) + st.cost.get("router_gens", 0)),
            "dev_rm_calls": int(st.cost.get("dev_rm_calls", 0) + st.cost.get("router_rm_calls", 0)),
            "reward_s": round(st.cost.get("reward_s", 0.0) + st.cost.get("router_s", 0.0), 1),
            **{f"acc_{k}": v for k, v in ((st.test or {}).get("per_category") or {}).items()},
        })
        if st.test and st.test.get("correct"):
            correct[m] = list(st.test["correct"])
        sels.extend(st.selections)
        hist.extend({"method": m, **h} for h in st.history)
    best = None
    singles = [r for r in rows if r["method"].startswith("single:") and r["dev_accuracy"] is not None]
    if "best_single" in rc.methods and singles:
        order = {f"single:{n}": i for i, n in enumerate(rm_names)}
        pick = max(singles, key=lambda r: (r["dev_accuracy"], -order.get(r["method"], 0)))
        best = pick["method"].split(":", 1)[1]
        rows.append({**pick, "method": f"best_single ({best})"})
    table = pd.DataFrame(rows)
    if base_acc is not None:
        blo, bhi = _wilson(base_acc, len(base.get("correct") or []))
        table = pd.concat([pd.DataFrame([{"method": "base", "accuracy": base_acc, "accuracy_ci_low": blo,
                                          "accuracy_ci_high": bhi, "delta": 0.0, "rm_calls": 0,
                                          "wall_s": 0.0,
                                          **{f"acc_{k}": v for k, v in base.get("per_category", {}).items()}}]),
                           table], ignore_index=True)
    selections = pd.DataFrame(sels)
    history = pd.DataFrame(hist)
    res = LaserResults(table=table, selections=selections, history=history, base=base, best_single=best,
                       run_dir=run, reward_models=rm_names, correct=correct)
    write_text_atomic(run / "table.csv", table.to_csv(index=False))
    if not selections.empty:
        write_text_atomic(run / "selections.csv", selections.to_csv(index=False))
    if not history.empty:
        write_text_atomic(run / "history.csv", history.to_csv(index=False))
    write_text_atomic(run / "results.json", json.dumps(res.to_dict(), indent=1, default=_json_default))
    return res


def _skips_text(rm_skips: dict[str, dict[str, int]]) -> str:
    """Per-RM skipped prompts, e.g. ``gemma: 2 nan, 1 error`` (empty when none)."""
    parts = []
    for name, d in sorted(rm_skips.items()):
        bits = [f"{v} {k}" for k, v in sorted(d.items()) if v]
        if bits:
            parts.append(f"{name}: {', '.join(bits)}")
    return "; ".join(parts)


def _wilson(acc: float | None, n: int) -> tuple[float | None, float | None]:
    """95% Wilson interval of an accuracy over ``n`` problems (None when the per-problem results are unknown)."""
    if acc is None or n <= 0:
        return None, None
    from banditarena.ratings import wilson_interval

    return wilson_interval(round(acc * n), n)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)
