"""Arena Learning iterations with bandit-allocated battles.

:meth:`Flywheel.arun` reads as the method: evaluate the starting target, then per iteration *i* (data split
D_i, a fresh part of the training pool)

1. **battle** (:class:`~banditarena.flywheel.battles.BattleStep`): bandits allocate the battle budget over
   prompt clusters, target strategies (or simulated-user personas) and opponents; every decision is logged
   with its propensity;
2. **select** (:func:`~banditarena.flywheel.data.select_training_data`): SFT rows and preference pairs from
   the battles the target lost by a margin K, safety / dedup / decontamination filtered, exported in TRL
   formats under ``data/it{i}/``;
3. **train** (:class:`~banditarena.flywheel.train.TrainStep`): TRL SFT then DPO (LoRA by default) from the
   current checkpoint to ``checkpoints/it{i}``;
4. **evaluate** (:class:`~banditarena.flywheel.evaluation.Evaluator`): the new checkpoint battles fixed
   opponents and earlier checkpoints on the held-out test set with the same judge.

Resume: everything is content-addressed in ``run.sqlite`` and replayed deterministically; a finished
checkpoint carries a ``DONE`` marker and is not retrained. Rerunning the same command after a kill pays for
nothing twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from banditarena.errors import ConfigError, DataError
from banditarena.flywheel.allocation import BattleAllocator
from banditarena.flywheel.battles import BattleStep, IterationSummary
from banditarena.flywheel.data import Selection, export, select_training_data
from banditarena.flywheel.evaluation import Evaluator
from banditarena.flywheel.recipe import FlywheelRecipe, load_flywheel_recipe
from banditarena.flywheel.roster import Roster
from banditarena.flywheel.train import TrainStep
from banditarena.seeds import child_seed
from banditarena.store import RunStore
from banditarena.types import Generation, Prompt

if TYPE_CHECKING:
    import pandas as pd

    from banditarena.progress import ProgressFn


@dataclass
class FlywheelResult:
    iterations: list[IterationSummary]
    elo: pd.DataFrame  # iteration, model, rating, ci_low, ci_high, gain (+ CI)
    leaderboard: pd.DataFrame
    decisions: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per iteration: target Elo (CI), gain over iteration 0 (CI), battles, yield, rows, top arms."""
        import pandas as pd

        rows = []
        elo = self.elo.set_index("iteration") if not self.elo.empty else self.elo
        for it in range(len(self.iterations) + 1):
            e = elo.loc[it] if it in elo.index else None
            s = self.iterations[it - 1] if it > 0 else None

            def col(name: str, e: Any = e) -> float | None:
                return None if e is None or name not in e else float(e[name])

            # answer length, verifiable accuracy and the evaluation-only judges' gains (eval.verifiable, eval.judges)
            extra = {} if e is None else {k: float(e[k]) for k in e.index if k == "answer_tokens"
                                         or k.startswith("accuracy") or ("_gain" in k and not k.startswith("style_"))}
            rows.append({
                **extra,
                "iteration": it, "target_elo": col("rating"), "ci_low": col("ci_low"), "ci_high": col("ci_high"),
                "gain": col("gain"), "gain_low": col("gain_low"), "gain_high": col("gain_high"),
                "style_gain": col("style_gain"), "style_gain_low": col("style_gain_low"),
                "style_gain_high": col("style_gain_high"),
                "battles": 0 if s is None else s.battles,
                "yield": None if s is None else s.yield_rate,
                "sft": 0 if s is None else s.sft_rows,
                "dpo": 0 if s is None else s.dpo_rows,
                # the most-pulled arm of each dimension, with its share of the iteration's battles
                "allocation": "" if s is None else ", ".join(
                    f"{a} {n / max(1, sum(p.values())):.0%}" for p in s.pulls.values() if p
                    for a, n in [max(p.items(), key=lambda x: (x[1], x[0]))]),
            })
        return pd.DataFrame(rows)


def _prompt_embedder() -> Any:
    """MiniLM prompt embeddings, cached on disk (``$BANDITARENA_CACHE/embeddings``): reruns and later
    iterations embed each prompt once."""
    from banditarena.models.embed import Embedder
    from banditarena.models.hub import cache_dir

    return Embedder(cache_dir=cache_dir() / "embeddings")


def assign_clusters(prompts: list[Prompt], cluster_field: str, *, seed: int) -> list[Prompt]:
    """Set ``Prompt.cluster`` from the data's field or by k-means over MiniLM embeddings."""
    if cluster_field.startswith("kmeans:"):
        from banditarena.prompts.cluster import assign_clusters as kmeans_assign

        k = int(cluster_field.split(":", 1)[1])
        kmeans_assign(prompts, k, _prompt_embedder(), seed=seed, overwrite=True, prefix="c")
        return prompts
    for p in prompts:
        value = p.cluster if cluster_field == "cluster" else p.category
        if value is None:
            raise ConfigError(f"cluster_field '{cluster_field}': prompt '{p.id}' has no {cluster_field}; use kmeans:K")
        p.cluster = str(value)
    return prompts


class Flywheel:
    """Runs a :class:`FlywheelRecipe` in a run directory (resumable).

    Constructing it checks everything the user can get wrong (the judge, the prompt pools and test set, the
    cluster field, the contestants' backends) and writes nothing; :meth:`run` opens the run directory (its
    writer lock), records the recipe and runs the iterations.
    """

    def __init__(self, recipe: FlywheelRecipe, run_dir: str | Path, *, progress: ProgressFn | None = None,
                 train: bool | None = None, evaluate: bool = True, judge: Any = None) -> None:
        from banditarena.arena.runner import contestant_backends
        from banditarena.judges import judge_from_config
        from banditarena.prompts import load_pool

        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.train_enabled = recipe.training.enabled if train is None else train
        self.evaluate_enabled = evaluate
        self.warnings: list[str] = []
        self.judge = judge or judge_from_config(recipe.judge, recipe.base_dir)
        self.test = load_pool(recipe.eval.testset, seed=recipe.seed, base_dir=recipe.base_dir)
        self.verifiable = [] if recipe.eval.verifiable is None else \
            load_pool(recipe.eval.verifiable, seed=recipe.seed, base_dir=recipe.base_dir)
        unchecked = [p.id for p in self.verifiable if not p.reference]
        if unchecked:
            raise DataError(f"eval.verifiable: problem '{unchecked[0]}' has no reference answer to check against")
        self.eval_judges = {name: judge_from_config(cfg, recipe.base_dir) for name, cfg in recipe.eval.judges.items()}
        test_ids = {p.id for p in self.test} | {p.id for p in self.verifiable}
        pool = [p for p in load_pool(recipe.pool, seed=recipe.seed, base_dir=recipe.base_dir) if p.id not in test_ids]
        if not pool:
            raise DataError(f"pool '{recipe.pool.source}': the prompt pool is empty (after removing test prompts)")
        self.pool = assign_clusters(pool, recipe.cluster_field, seed=recipe.seed)
        self.roster = Roster(recipe)
        contestant_backends([self.roster.target(0, recipe.target.model), *self.roster.opponents])  # API keys...
        perm = np.random.default_rng(child_seed(recipe.seed, "splits")).permutation(len(self.pool))
        self.splits = [[self.pool[i] for i in part] for part in np.array_split(perm, recipe.iterations)]
        clusters = sorted({p.cluster for p in self.pool if p.cluster is not None})
        b = recipe.bandit
        self.allocator = BattleAllocator(
            {"clusters": clusters, "opponents": [o.name for o in self.roster.opponents],
             "strategies": self.roster.strategy_arms},
            {dim: {"policy": getattr(b, dim).policy, **getattr(b, dim).params}
             for dim in ("clusters", "opponents", "strategies")},
            seed=recipe.seed, prompts={"policy": b.prompts.policy, "prior_strength": b.prompts.prior_strength})
        self.store: RunStore | None = None
        self._embedder: Any = None
        self._safety: Any = None

    # ------------------------------------------------------------------ the loop
    async def arun(self) -> FlywheelResult:
        store = self._open_run()
        users = None
        if self.recipe.user_simulator:
            from banditarena.flywheel.users import UserSimulator

            users = UserSimulator(self.recipe.user_simulator, store, self.recipe.base_dir)
        battles = BattleStep(self.recipe, store, self.judge, self.roster, self.allocator, users, self.progress)
        evaluator = Evaluator(self.recipe, store, self.judge, self.roster, self.test, self.progress,
                              verifiable=self.verifiable, judges=self.eval_judges)
        trainer = TrainStep(self.recipe, self.run_dir)
        summaries: list[IterationSummary] = []
        model = self.recipe.target.model
        server = self._serve(0, model)  # target.serve: each checkpoint behind its own server while it is used
        try:
            if self.evaluate_enabled:
                await evaluator.evaluate(0, model)
            for it in range(1, self.recipe.iterations + 1):
                if self.recipe.selection.mode == "distill":                  # the baseline: no battle, no judge
                    summary = IterationSummary(iteration=it)
                    selection = await self.distill_data(it, summary, trainer, model)
                else:
                    summary = await battles.run(it, model, self.splits[it - 1])   # 1. allocate and fight battles
                    if users is not None and (w := users.take_warning(it)):
                        self.warnings.append(w)
                    selection = self.select_data(it, summary, trainer, model)  # 2. SFT / DPO rows, exported
                if self.train_enabled:                                        # 3. train the next checkpoint
                    self._unserve(server, model)
                    model, warning = trainer.run(it, model, selection)
                    self.warnings += [warning] if warning else []
                    server = self._serve(it, model)
                summary.checkpoint = model
                summaries.append(summary)
                if self.evaluate_enabled:                                     # 4. evaluate it
                    await evaluator.evaluate(it, model)
        finally:
            self._unserve(server, model)
            if users is not None:
                await users.aclose()
        return self._result(summaries, evaluator)

    def run(self) -> FlywheelResult:
        return asyncio.run(self.arun())

    # ------------------------------------------------------------------ steps
    def _open_run(self) -> RunStore:
        """The run directory's store (its writer lock) and the recipe recorded in it."""
        from banditarena.arena.service import write_config

        if self.store is None:
            self.store = RunStore(self.run_dir)
        write_config(self.run_dir, self.recipe.model_dump(mode="json", exclude_none=True))
        self.store.set_meta("judge", self.judge.name)
        self.store.set_meta("recipe_name", self.recipe.name)
        return self.store

    def _serve(self, it: int, model: str) -> Any:
        """Start the target's server on checkpoint ``model`` (``target.serve``); None when not serving."""
        serve = self.recipe.target.serve
        if serve is None:
            return None
        from banditarena.models.hub import resolve_llm
        from banditarena.models.serve import CommandServer

        served = self.roster.served_name(it, model)
        server = CommandServer(serve.command, fields={"checkpoint": resolve_llm(model), "served_name": served},
                               name=f"the server of {self.roster.target_name(it)}",
                               startup_timeout_s=serve.ready_timeout_s,
                               log_path=self.run_dir / "logs" / f"serve-it{it}.log").start()
        self.roster.serving[model] = (server.base_url, served)
        return server

    def _unserve(self, server: Any, model: str) -> None:
        if server is not None:
            server.stop()
            self.roster.serving.pop(model, None)

    def select_data(self, it: int, summary: IterationSummary, trainer: TrainStep, model: str) -> Selection:
        """Step 2: SFT rows and preference pairs from iteration ``it``'s battles, exported under data/it{i}."""
        assert self.store is not None
        if summary.battles == 0:
            raise DataError(f"iteration {it}: no battle could be fought (see failures in {self.store.path})")
        battles = self.store.battles(f"it{it}")
        gens = {(r.contestant, r.prompt_id): Generation(r.contestant, r.prompt_id, r.turns)
                for r in self.store.generations().itertuples()}
        prompts = {p.id: p for p in self.store.prompts()}
        prefix = self.roster.target_name(it - 1)
        targets = {n for n in set(battles["model_a"]) | set(battles["model_b"]) if n.startswith(prefix)}
        sel = select_training_data(battles, prompts, gens, targets, self.recipe.selection, test_prompts=self.test,
                                   embedder=self._get_embedder(), safety=self._get_safety(),
                                   unsafe_prompts=self.recipe.safety.unsafe_prompts,
                                   seed=child_seed(self.recipe.seed, "selection", it))
        return self._export(it, summary, trainer, model, sel)

    async def distill_data(self, it: int, summary: IterationSummary, trainer: TrainStep, model: str) -> Selection:
        """The plain-distillation baseline (``selection.mode: distill``): ``distill_from``'s answers to random
        prompts of split D_i (those it answers), through the same filters, ``sft_rows`` of them; no DPO."""
        from banditarena.arena.runner import Arena, ArenaResult
        from banditarena.flywheel.battles import answers
        from banditarena.flywheel.data import distill_candidates, filter_candidates

        assert self.store is not None
        k = self.recipe.selection
        teacher = next(o for o in self.roster.opponents if o.name == k.distill_from)
        arena = Arena(self.store, [teacher], self.judge, seed=self.recipe.seed, tag=f"it{it}")
        split = self.splits[it - 1]
        order = np.random.default_rng(child_seed(self.recipe.seed, "distill", it)).permutation(len(split))
        covered = [split[i] for i in order if answers(arena.backends[teacher.name], split[i])]
        n = k.sft_rows or 0
        picked = covered[: n + max(8, n // 4)]  # a margin for rows the filters drop; the cap keeps n
        self.store.add_prompts(picked)
        gens = await arena.generate([(teacher.name, p) for p in picked], ArenaResult())
        sel = filter_candidates(distill_candidates(picked, gens, teacher.name), k, test_prompts=self.test,
                                embedder=self._get_embedder(), safety=self._get_safety(),
                                unsafe_prompts=self.recipe.safety.unsafe_prompts,
                                seed=child_seed(self.recipe.seed, "selection", it))
        if len(sel.sft) < n:
            self.warnings.append(f"iteration {it}: selection.sft_rows {n}: only {len(sel.sft)} distillation rows "
                                 f"passed the filters")
        return self._export(it, summary, trainer, model, sel)

    def _export(self, it: int, summary: IterationSummary, trainer: TrainStep, model: str, sel: Selection) -> Selection:
        assert self.store is not None
        if self.train_enabled:
            trainer.check(it, model, sel)  # before the export overwrites data/it{i}
        export(sel, self.run_dir / "data" / f"it{it}")
        summary.sft_rows, summary.dpo_rows, summary.excluded = len(sel.sft), len(sel.dpo), len(sel.excluded)
        if not sel.sft and not sel.dpo:
            k = self.recipe.selection
            self.warnings.append(f"iteration {it}: no battle yielded training data at K={k.sft_margin}/{k.dpo_margin} "
                                 f"({summary.battles} battles, {summary.excluded} rows excluded)")
        return sel

    def _result(self, summaries: list[IterationSummary], evaluator: Evaluator) -> FlywheelResult:
        assert self.store is not None
        decisions = self.store.decisions(self.recipe.name)
        if not self.evaluate_enabled:
            import pandas as pd

            empty = pd.DataFrame(columns=["iteration", "model", "rating", "ci_low", "ci_high"])
            return FlywheelResult(summaries, empty, empty, decisions, self.warnings)
        elo, lb = evaluator.elo_table()
        return FlywheelResult(summaries, elo, lb, decisions, self.warnings)

    def _get_safety(self) -> Any:
        """The safety scorer of the recipe's ``safety:`` field (LLM classifiers behind the run store's cache)."""
        if self._safety is None and self.recipe.selection.safety:
            from banditarena.safety import make_scorer

            self._safety = make_scorer(self.recipe.safety, store=self.store, base_dir=self.recipe.base_dir)
        return self._safety

    def _get_embedder(self) -> Any:
        if self._embedder is None and self.recipe.selection.decontaminate:
            self._embedder = _prompt_embedder()
        return self._embedder


def run_flywheel(recipe: FlywheelRecipe | str | Path, run_dir: str | Path, *, progress: bool = True,
                 train: bool | None = None) -> FlywheelResult:
    from banditarena.progress import rich_progress

    if not isinstance(recipe, FlywheelRecipe):
        recipe = load_flywheel_recipe(recipe)
    with rich_progress(progress) as prog:
        return Flywheel(recipe, run_dir, progress=prog, train=train).run()


__all__ = ["Flywheel", "FlywheelResult", "IterationSummary", "assign_clusters", "run_flywheel"]
