"""Simulated classrooms: every policy teaches every population (seeded, parallel over cores, resumable), then a
table and figures.

Each (population, policy) run is content-addressed by the curriculum, the population, the policy, the steps
and the seed, and stored under ``RUN_DIR/runs/``; rerunning skips what is done. Every policy of a population
teaches the very same learners (same profiles, same parameters): comparisons are paired.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from banditarena.curriculum.recipe import PolicySpec, PopulationSpec, TutorRecipe, load_recipe
from banditarena.curriculum.sim import ClassroomRun
from banditarena.types import stable_hash

CODE_VERSION = 1  # bump when the simulator's results change for the same inputs


def seed_for(*parts: Any) -> int:
    """A 63-bit seed derived from any JSON-able parts (stable across processes and machines)."""
    return int(stable_hash(list(parts), 15), 16)


@dataclass
class Task:
    population: PopulationSpec
    policy: PolicySpec
    n_learners: int
    n_steps: int
    seed: int
    curriculum: str
    base_dir: str | None
    profiles: dict[str, dict[str, float]] | None
    key: str

    @property
    def cost(self) -> float:
        slow = self.policy.kind in ("exp3", "thompson", "ucb1")
        return self.n_learners * self.n_steps * (30.0 if slow else 1.0)


def make_tasks(rec: TutorRecipe, curriculum_fp: str, n_learners: int | None = None,
               n_steps: int | None = None) -> list[Task]:
    sim = rec.simulate
    assert sim is not None
    tasks = []
    for pop in sim.populations:
        n = n_learners or pop.n_learners or sim.n_learners
        steps = n_steps or sim.n_steps
        for pol in sim.policies:
            profiles = sim.profiles.get(pop.learner)
            key = stable_hash({"v": CODE_VERSION, "curriculum": curriculum_fp, "population": pop.model_dump(),
                               "profiles": profiles, "policy": pol.model_dump(), "n": n, "steps": steps,
                               "seed": rec.seed}, 12)
            tasks.append(Task(pop, pol, n, steps, rec.seed, rec.curriculum,
                              None if rec.base_dir is None else str(rec.base_dir), profiles, key))
    return tasks


def run_task(task: Task, out: Path, progress_queue: Any = None) -> Path:
    """Simulate one (population, policy) pair and store it; returns the file."""
    from banditarena.curriculum.learners import make_learners
    from banditarena.curriculum.policies import make_policy
    from banditarena.curriculum.sim import simulate
    from banditarena.curriculum.spec import load_curriculum

    path = out / f"{task.population.name}__{task.policy.label}__{task.key}.npz"
    if path.exists():
        return path
    cur = load_curriculum(task.curriculum, Path(task.base_dir) if task.base_dir else None)
    pop = task.population
    learners = make_learners(pop.learner, cur, task.n_learners, pop.mix,
                             np.random.default_rng(seed_for(task.seed, "learners", pop.name)), task.profiles)
    policy = make_policy(task.policy.kind, cur, task.n_learners,
                         np.random.default_rng(seed_for(task.seed, "policy", pop.name, task.policy.label)),
                         task.policy.params)
    every = max(1, task.n_steps // 50)

    def tick(t: int) -> None:
        if progress_queue is not None and (t + 1) % every == 0:
            progress_queue.put(every)

    run = simulate(learners, policy, task.n_steps,
                   np.random.default_rng(seed_for(task.seed, "responses", pop.name)),
                   policy_name=task.policy.label, population=pop.name, on_step=tick)
    run.meta.update({"key": task.key, "kind": task.policy.kind, "learner": pop.learner,
                     "activities": cur.activity_ids})
    if progress_queue is not None:
        progress_queue.put(task.n_steps - (task.n_steps // every) * every)
    out.mkdir(parents=True, exist_ok=True)
    run.save(path)
    return path


def _run_all(tasks: list[Task], out: Path, workers: int, progress: bool) -> list[Path]:
    import multiprocessing as mp

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    todo = sorted((t for t in tasks if not (out / f"{t.population.name}__{t.policy.label}__{t.key}.npz").exists()),
                  key=lambda t: -t.cost)
    total = sum(t.n_steps for t in todo)
    bar = Progress(TextColumn("[bold]classrooms"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                   TimeElapsedColumn(), disable=not progress or not todo)
    job = bar.add_task("simulate", total=total)
    if workers <= 1 or len(todo) <= 1:
        with bar:
            for t in todo:
                run_task(t, out, _Direct(lambda k: bar.advance(job, k)))
    else:
        # fork where there is one (no __main__ guard needed in user scripts); the workers and the queue exist
        # before the progress bar starts its refresh thread
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        q = ctx.SimpleQueue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=(q,)) as ex:
            pending: set[Future[Path]] = {ex.submit(_worker_run, t, out) for t in todo}
            with bar:
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    while not q.empty():
                        bar.advance(job, q.get())
                    for f in done:
                        f.result()  # re-raise a worker's error
    return [out / f"{t.population.name}__{t.policy.label}__{t.key}.npz" for t in tasks]


_QUEUE: Any = None


def _worker_init(q: Any) -> None:
    global _QUEUE
    _QUEUE = q


def _worker_run(task: Task, out: Path) -> Path:
    return run_task(task, out, _QUEUE)


class _Direct:
    def __init__(self, fn: Callable[[int], None]) -> None:
        self.fn = fn

    def put(self, k: int) -> None:
        self.fn(k)


# --------------------------------------------------------------------------------------------- summaries
def mean_ci(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and normal 95% CI along ``axis``."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    m = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(m)
    return m, m - 1.96 * se, m + 1.96 * se


def first_reach(curve: np.ndarray, level: float) -> float:
    """First step at which ``curve`` (steps + 1,) reaches ``level``; NaN if never."""
    hit = np.flatnonzero(curve >= level - 1e-12)
    return float(hit[0]) if hit.size else float("nan")


def steps_to_level(run: ClassroomRun, level: float, boot: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Steps until the population's mean mastery reaches ``level``, with a bootstrap 95% CI over learners."""
    m = run.mastery.astype(np.float64)
    point = first_reach(m.mean(axis=1), level)
    rng = np.random.default_rng(seed)
    L = m.shape[1]
    vals = []
    for _ in range(boot):
        idx = rng.integers(L, size=L)
        vals.append(first_reach(m[:, idx].mean(axis=1), level))
    v = np.asarray(vals)
    if np.isnan(v).mean() > 0.025:  # the level is not reached in too many resamples for a finite CI
        hi = float("nan")
    else:
        hi = float(np.nanpercentile(v, 97.5))
    lo = float(np.nanpercentile(v, 2.5)) if np.isfinite(v).any() else float("nan")
    return point, lo, hi


def learner_steps_to(run: ClassroomRun, level: float) -> np.ndarray:
    """Per learner, the first step with mastery >= level (NaN if never)."""
    hit = run.mastery >= level - 1e-6
    first = hit.argmax(axis=0).astype(float)
    first[~hit.any(axis=0)] = np.nan
    return first


def summarize(runs: list[ClassroomRun], baseline: str, levels: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The side-by-side table (one row per population x policy) and the per-profile table."""
    rows, grows = [], []
    by_pop: dict[str, list[ClassroomRun]] = {}
    for r in runs:
        by_pop.setdefault(r.population, []).append(r)
    for pop, rs in by_pop.items():
        base = next((r for r in rs if r.policy == baseline), None)
        # float64 throughout: the baseline reaches its own final mastery at the latest at the last step
        target = float(base.mastery[-1].astype(np.float64).mean()) if base is not None else float("nan")
        base_steps = (first_reach(base.mastery.astype(np.float64).mean(axis=1), target) if base is not None
                      else float("nan"))
        for r in rs:
            final, lo, hi = mean_ci(r.mastery[-1].astype(np.float64))
            s, slo, shi = steps_to_level(r, target) if np.isfinite(target) else (np.nan,) * 3
            row: dict[str, Any] = {
                "population": pop, "policy": r.policy, "learners": r.n_learners, "steps": r.n_steps,
                "start_mastery": float(r.mastery[0].mean()),
                "final_mastery": float(final), "final_ci_low": float(lo), "final_ci_high": float(hi),
                "baseline_final": target, f"steps_to_{baseline}_final": s,
                "steps_ci_low": slo, "steps_ci_high": shi,
                "fewer_steps_vs_baseline": (1.0 - s / base_steps) if np.isfinite(s) and base_steps > 0 else np.nan,
                "accuracy": float(r.correct.mean()),
                "learner_steps_per_s": r.n_learners * r.n_steps / max(r.seconds, 1e-9),
            }
            for lv in levels:
                f = learner_steps_to(r, lv)
                row[f"reached_{lv:g}"] = float(np.isfinite(f).mean())
                row[f"median_steps_to_{lv:g}"] = float(np.nanmedian(f)) if np.isfinite(f).mean() >= 0.5 else np.nan
            rows.append(row)
            for gi, g in enumerate(r.group_names):
                sel = r.groups == gi
                if not sel.any():
                    continue
                gm, glo, ghi = mean_ci(r.mastery[-1][sel])
                grows.append({"population": pop, "profile": g, "policy": r.policy, "learners": int(sel.sum()),
                              "final_mastery": float(gm), "final_ci_low": float(glo), "final_ci_high": float(ghi)})
    return pd.DataFrame(rows), pd.DataFrame(grows)


# ----------------------------------------------------------------------------------------------- figures
def plot_mastery(runs: list[ClassroomRun], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for r in runs:
        m, lo, hi = mean_ci(r.mastery, axis=1)
        x = np.arange(m.shape[0])
        ax.plot(x, m, label=r.policy, lw=1.8)
        ax.fill_between(x, lo, hi, alpha=0.2)
    ax.set_xlabel("step (items answered per learner)")
    ax.set_ylabel("mean mastery (share of activities)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_steps(summary: pd.DataFrame, level: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = f"median_steps_to_{level:g}"
    pops = list(dict.fromkeys(summary["population"]))
    pols = list(dict.fromkeys(summary["policy"]))
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    width = 0.8 / max(len(pols), 1)
    for j, pol in enumerate(pols):
        vals = [summary[(summary.population == p) & (summary.policy == pol)][col].mean() for p in pops]
        ax.bar(np.arange(len(pops)) + j * width, np.nan_to_num(vals, nan=0.0), width, label=pol)
    ax.set_xticks(np.arange(len(pops)) + 0.4 - width / 2)
    ax.set_xticklabels(pops)
    ax.set_ylabel(f"median steps to mastery {level:g} (0: fewer than half got there)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_zpd(run: ClassroomRun, activities: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert run.zpd_share is not None
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(activities) + 1.5), dpi=110)
    im = ax.imshow(run.zpd_share.T, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(activities)))
    ax.set_yticklabels(activities, fontsize=8)
    ax.set_xlabel("step")
    ax.set_title(f"{run.policy}: share of learners with each activity in the ZPD ({run.population})")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


@dataclass
class SimulationResult:
    summary: pd.DataFrame
    groups: pd.DataFrame
    runs: list[ClassroomRun]
    figures: list[Path]
    out: Path
    seconds: float


def run_classrooms(recipe: str | Path | TutorRecipe, out: str | Path, *, n_learners: int | None = None,
                   n_steps: int | None = None, workers: int | None = None, progress: bool = True,
                   figures: bool = True) -> SimulationResult:
    """Run every (population, policy) of the recipe's ``simulate`` section; write the table and figures."""
    from banditarena.errors import ConfigError

    rec, cur = load_recipe(recipe)
    if rec.simulate is None:
        raise ConfigError(f"{recipe}: no 'simulate' section")
    out = Path(out)
    tasks = make_tasks(rec, cur.fingerprint, n_learners, n_steps)
    out.mkdir(parents=True, exist_ok=True)
    from banditarena.store import RunLock

    lock = RunLock.acquire(out)  # one writer per output folder
    try:
        return _simulate(rec, cur, out, tasks, workers, progress, figures)
    finally:
        lock.release()


def _simulate(rec: TutorRecipe, cur: Any, out: Path, tasks: list[Any], workers: int | None, progress: bool,
              figures: bool) -> SimulationResult:
    t0 = time.perf_counter()
    w = workers or rec.simulate.workers or os.cpu_count() or 1
    paths = _run_all(tasks, out / "runs", min(w, max(len(tasks), 1)), progress)
    runs = [ClassroomRun.load(p) for p in paths]
    summary, groups = summarize(runs, rec.simulate.baseline, rec.simulate.mastery_levels)
    summary.to_csv(out / "summary.csv", index=False)
    groups.to_csv(out / "groups.csv", index=False)
    curves = []
    for r in runs:
        m, lo, hi = mean_ci(r.mastery, axis=1)
        curves.append(pd.DataFrame({"population": r.population, "policy": r.policy, "step": np.arange(m.shape[0]),
                                    "mastery": m, "ci_low": lo, "ci_high": hi}))
    pd.concat(curves).to_csv(out / "curves.csv", index=False)
    figs: list[Path] = []
    if figures:
        fdir = out / "figures"
        for pop in dict.fromkeys(r.population for r in runs):
            rs = [r for r in runs if r.population == pop]
            figs.append(plot_mastery(rs, fdir / f"mastery_{pop}.png", f"Mean mastery with 95% CI: {pop}"))
            for r in rs:
                if r.zpd_share is not None:
                    figs.append(plot_zpd(r, cur.activity_ids, fdir / f"zpd_{pop}_{r.policy}.png"))
        lv = max(rec.simulate.mastery_levels)
        figs.append(plot_steps(summary, lv, fdir / "steps_to_mastery.png"))
    return SimulationResult(summary, groups, runs, figs, out, time.perf_counter() - t0)


def format_table(summary: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """The summary as printed by the CLI: one row per population x policy, readable numbers."""
    col = f"steps_to_{baseline}_final"
    out = pd.DataFrame({
        "population": summary["population"], "policy": summary["policy"],
        "final mastery [95% CI]": [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                                   zip(summary.final_mastery, summary.final_ci_low, summary.final_ci_high)],
        f"steps to {baseline}'s final [95% CI]": [
            "never" if not np.isfinite(s) else f"{s:.0f} [{lo:.0f}, {'>T' if not np.isfinite(hi) else f'{hi:.0f}'}]"
            for s, lo, hi in zip(summary[col], summary.steps_ci_low, summary.steps_ci_high)],
        "fewer steps": ["-" if not np.isfinite(v) else f"{100 * v:+.0f}%" for v in summary.fewer_steps_vs_baseline],
        "accuracy": [f"{v:.2f}" for v in summary.accuracy],
    })
    for c in summary.columns:
        if c.startswith("median_steps_to_"):
            lv = c.removeprefix("median_steps_to_")
            out[f"median steps to {lv}"] = ["-" if not np.isfinite(v) else f"{v:.0f}" for v in summary[c]]
    out["learner-steps/s"] = [f"{v:,.0f}" for v in summary.learner_steps_per_s]
    return out
