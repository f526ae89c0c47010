"""Arena Learning iterations with bandit-allocated battles.

Per iteration *i* (data split D_i, a fresh part of the training pool):

1. **battle**: a bandit per dimension picks (prompt cluster, opponent, strategy) for each battle in rounds of
   ``bandit.batch``; the target under that strategy battles the opponent on an unused D_i prompt of that
   cluster; the reward (data yield or learning progress) updates the bandits; every decision is logged with
   its propensity;
2. **select**: SFT rows and preference pairs from those battles (margin K), safety / dedup /
   decontamination filtered, exported in TRL formats under ``data/it{i}/``;
3. **train**: TRL SFT then DPO (LoRA by default) from the current checkpoint to ``checkpoints/it{i}``;
4. **evaluate**: the new checkpoint battles fixed opponents on the held-out test set with the same judge.

Resume: everything is content-addressed in ``run.sqlite`` and replayed deterministically; a finished
checkpoint carries a ``DONE`` marker and is not retrained. Rerunning the same command after a kill pays for
nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from banditarena.arena.runner import Arena, ArenaResult, Match
from banditarena.errors import ConfigError, DataError
from banditarena.flywheel.allocation import BattleAllocator
from banditarena.flywheel.data import export, select_training_data, yields_data
from banditarena.flywheel.recipe import FlywheelRecipe, load_flywheel_recipe
from banditarena.store import RunStore
from banditarena.types import Contestant, Prompt

if TYPE_CHECKING:
    import pandas as pd

    from banditarena.arena.runner import ProgressFn


@dataclass
class IterationSummary:
    iteration: int
    battles: int = 0
    yielded: int = 0
    sft_rows: int = 0
    dpo_rows: int = 0
    excluded: int = 0
    judge_calls: int = 0
    checkpoint: str = ""
    pulls: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def yield_rate(self) -> float:
        return self.yielded / self.battles if self.battles else 0.0


@dataclass
class FlywheelResult:
    iterations: list[IterationSummary]
    elo: pd.DataFrame  # iteration, model, rating, ci_low, ci_high
    leaderboard: pd.DataFrame
    decisions: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        elo = self.elo.set_index("iteration")
        for it in range(len(self.iterations) + 1):
            e = elo.loc[it] if it in elo.index else None
            s = self.iterations[it - 1] if it > 0 else None
            rows.append({
                "iteration": it,
                "target_elo": None if e is None else float(e["rating"]),
                "ci_low": None if e is None else float(e["ci_low"]),
                "ci_high": None if e is None else float(e["ci_high"]),
                "gain": None if e is None or "gain" not in e else float(e["gain"]),
                "gain_low": None if e is None or "gain_low" not in e else float(e["gain_low"]),
                "gain_high": None if e is None or "gain_high" not in e else float(e["gain_high"]),
                "battles": 0 if s is None else s.battles,
                "yield": None if s is None else s.yield_rate,
                "sft": 0 if s is None else s.sft_rows,
                "dpo": 0 if s is None else s.dpo_rows,
                # the most-pulled arm of each dimension, with its share of the iteration's battles
                "allocation": "" if s is None else ", ".join(
                    f"{a} {n / max(1, sum(p.values())):.0%}" for p in s.pulls.values()
                    for a, n in [max(p.items(), key=lambda x: (x[1], x[0]))]),
            })
        return pd.DataFrame(rows)


def _prompt_embedder() -> Any:
    """MiniLM prompt embeddings, cached on disk (``$BANDITARENA_CACHE/embeddings``): reruns and later
    iterations embed each prompt once."""
    from banditarena.models.hub import cache_dir
    from banditarena.prompts.embed import Embedder

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


def _same_model(a: Contestant, b: Contestant) -> bool:
    """Same backend, model, request strategy and options (batching aside): the same answers."""
    def opts(c: Contestant) -> dict[str, Any]:
        return {k: v for k, v in c.options if k not in ("batch_size", "max_batch_tokens")}

    return (a.backend, a.model, a.strategy.cache_identity(), opts(a)) == (
        b.backend, b.model, b.strategy.cache_identity(), opts(b))


class Flywheel:
    """Runs a :class:`FlywheelRecipe` in a run directory (resumable)."""

    def __init__(self, recipe: FlywheelRecipe, run_dir: str | Path, *, progress: ProgressFn | None = None,
                 train: bool | None = None, evaluate: bool = True, judge: Any = None) -> None:
        from banditarena.arena.service import build_judge, load_pool

        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.store = RunStore(run_dir)
        self.progress = progress
        self.train_enabled = recipe.training.enabled if train is None else train
        self.evaluate_enabled = evaluate
        (self.run_dir / "config.yaml").write_text(
            yaml.safe_dump(recipe.model_dump(mode="json", exclude_none=True), sort_keys=False), encoding="utf-8")
        self.judge = judge or build_judge(recipe.judge, recipe.base_dir)
        self.store.set_meta("judge", self.judge.name)
        self.store.set_meta("recipe_name", recipe.name)
        self.test = load_pool(recipe.eval.testset, seed=recipe.seed, base_dir=recipe.base_dir)
        test_ids = {p.id for p in self.test}
        pool = [p for p in load_pool(recipe.pool, seed=recipe.seed, base_dir=recipe.base_dir) if p.id not in test_ids]
        if not pool:
            raise DataError(f"pool '{recipe.pool.source}': the prompt pool is empty (after removing test prompts)")
        self.pool = assign_clusters(pool, recipe.cluster_field, seed=recipe.seed)
        self.opponents = recipe.opponent_contestants()
        self.eval_opponents = recipe.eval.opponents or [o.name for o in self.opponents]
        rng = np.random.default_rng(recipe.seed)
        perm = rng.permutation(len(self.pool))
        self.splits = [[self.pool[i] for i in part] for part in np.array_split(perm, recipe.iterations)]
        self.clusters = sorted({p.cluster for p in self.pool if p.cluster is not None})
        arms = {"clusters": self.clusters, "opponents": [o.name for o in self.opponents], "strategies": list(recipe.strategies)}
        personas = list(recipe.user_simulator.personas) if recipe.user_simulator else []
        if personas:
            arms["strategies"] = arms["strategies"] + personas
        pol = recipe.bandit
        self.allocator = BattleAllocator(arms, {
            "clusters": {"policy": pol.clusters.policy, **pol.clusters.params},
            "opponents": {"policy": pol.opponents.policy, **pol.opponents.params},
            "strategies": {"policy": pol.strategies.policy, **pol.strategies.params},
        }, seed=recipe.seed, prompts={"policy": pol.prompts.policy, "prior_strength": pol.prompts.prior_strength})
        self.sel_cfg = recipe.selection
        self._progress_history: dict[str, list[float]] = defaultdict(list)
        self.warnings: list[str] = []
        self._embedder: Any = None
        self._snapshots: dict[int, Contestant] = {}  # evaluated checkpoints, by iteration
        self._aliases: dict[str, str] = {}  # checkpoint name -> the identical opponent it is evaluated as
        self._sim_short: dict[str, int] = {}  # persona -> conversations the simulated user ended early

    # ------------------------------------------------------------------ contestants
    def target_name(self, it: int, strategy: str | None = None) -> str:
        base = f"{self.recipe.target.name}-it{it}"
        return f"{base}/{strategy}" if strategy else base

    def target_contestant(self, it: int, model: str, strategy: str | None) -> Contestant:
        t = self.recipe.target
        opts = tuple(sorted((k, v) for k, v in t.options(self.recipe.base_dir).items() if v is not None))
        sname = strategy or next(iter(self.recipe.strategies))
        sc = self.recipe.strategies.get(sname)
        strat = sc.build() if sc is not None else self.recipe.strategies[next(iter(self.recipe.strategies))].build()
        return Contestant(self.target_name(it, strategy), t.backend, model, strat, opts)

    def checkpoint(self, it: int) -> str:
        if it == 0:
            return self.recipe.target.model
        return str(self.run_dir / "checkpoints" / f"it{it}" / "checkpoint")

    # ------------------------------------------------------------------ battles with bandit allocation
    async def _battle_iteration(self, it: int, model: str) -> IterationSummary:
        summary = IterationSummary(iteration=it)
        split = self.splits[it - 1]
        by_cluster: dict[str, list[Prompt]] = defaultdict(list)
        for p in split:
            by_cluster[str(p.cluster)].append(p)
        strategies = list(self.recipe.strategies)
        personas = self.recipe.user_simulator.personas if self.recipe.user_simulator else {}
        targets = {s: self.target_contestant(it - 1, model, s) for s in strategies}
        if personas:  # persona arms: the default strategy, multi-turn conversations with a simulated user
            for pname in personas:
                targets[pname] = self.target_contestant(it - 1, model, None)
                targets[pname] = Contestant(self.target_name(it - 1, pname), targets[pname].backend, model,
                                            targets[pname].strategy, targets[pname].options)
        contestants = [*targets.values(), *self.opponents]
        arena = Arena(self.store, contestants, self.judge, seed=self.recipe.seed, tag=f"it{it}")
        bar = self.progress or (lambda stage, adv, total: None)
        bar(f"battles it{it}", 0, self.recipe.battles_per_iteration)
        target_names = {c.name for c in targets.values()}
        budget = self.recipe.battles_per_iteration
        k = self.sel_cfg.sft_margin
        step0 = (it - 1) * budget
        step = 0
        pulls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        fought: set[tuple[str, str, str]] = set()  # (prompt, target strategy, opponent) battled this iteration

        def unfought(cluster: str, strat: str, opp: str) -> list[Prompt]:
            return [p for p in by_cluster.get(cluster, ()) if (p.id, strat, opp) not in fought]

        def has_unfought(cluster: str, strat: str, opp: str) -> bool:
            return any((p.id, strat, opp) not in fought for p in by_cluster.get(cluster, ()))

        self.allocator.prompts.reset()  # a fresh split: prompt records start over
        while step < budget:
            n = min(self.recipe.bandit.batch, budget - step)
            choices = self.allocator.select(n)
            matches, used = [], []
            for ch in choices:
                cluster, strat, opp = ch["clusters"][0], ch["strategies"][0], ch["opponents"][0]
                cands = unfought(cluster, strat, opp)
                if not cands:
                    # the chosen arms are used up together: keep as many chosen arms as possible and fill the
                    # others with the least-pulled arms that still have an unfought prompt (logged as fallback)
                    options = [(c, s_, o) for o in [opp] + sorted({o.name for o in self.opponents} - {opp})
                               for s_ in [strat] + sorted(set(targets) - {strat})
                               for c in self.clusters if has_unfought(c, s_, o)]
                    if not options:
                        continue
                    cluster, strat, opp = min(options, key=lambda x: (
                        x[2] != opp, x[1] != strat, pulls["clusters"].get(x[0], 0), pulls["opponents"].get(x[2], 0),
                        pulls["strategies"].get(x[1], 0), x))
                    ch = {"clusters": (cluster, ch["clusters"][1]), "strategies": (strat, ch["strategies"][1]),
                          "opponents": (opp, ch["opponents"][1]), "_fallback": True}
                    cands = unfought(cluster, strat, opp)
                j, pprop = self.allocator.pick_prompt(cluster, [p.id for p in cands])
                prompt = cands[j]
                ch["prompts"] = (prompt.id, pprop)
                fought.add((prompt.id, strat, opp))
                if strat in personas:
                    prompt = await self._simulate_user(prompt, strat)
                matches.append(Match(prompt, targets[strat].name, opp))
                used.append(ch)
            if not matches:
                break
            res: ArenaResult = await arena.arun(matches)
            by_key = {(b.prompt_id, b.model_a, b.model_b): b for b in res.battles}
            upd_choices, rewards = [], []
            for j, (m, ch) in enumerate(zip(matches, used, strict=True)):
                fallback = bool(ch.pop("_fallback", False))
                b = by_key.get((m.prompt.id, m.model_a, m.model_b))
                for dim, (arm, _) in ch.items():
                    if dim != "prompts":  # the prompt is in every decision's meta; pulls count arms
                        pulls[dim][arm] += 1
                if b is None:  # failed now (endpoint down): no reward; retried on resume
                    self.store.put_decision(self.recipe.name, step0 + step + j, "joint", policy="-", arm="failed",
                                            propensity=float("nan"))
                    continue
                row = {"winner": b.winner, "margin": b.margin, "model_a": b.model_a, "model_b": b.model_b}
                y = yields_data(row, target_names, k)
                summary.battles += 1
                summary.yielded += int(y)
                r = float(y) if self.recipe.bandit.reward == "yield" else self._progress_reward(ch, b, target_names)
                upd_choices.append(ch)
                rewards.append(r)
                for dim, (arm, prop) in ch.items():
                    self.store.put_decision(
                        self.recipe.name, step0 + step + j, dim, policy=self.allocator.policy_name(dim), arm=arm,
                        propensity=prop, reward=r, meta={"iteration": it, "prompt_id": m.prompt.id, "yield": int(y),
                                                         **({"fallback": True} if fallback else {})})
            self.allocator.update(upd_choices, rewards)
            summary.judge_calls += 2 * len(res.battles)
            step += len(matches)
            bar(f"battles it{it}", len(matches), self.recipe.battles_per_iteration)
        summary.pulls = {d: dict(v) for d, v in pulls.items()}
        if self._sim_short:
            self.warnings.append(f"iteration {it}: the simulated user wrote no follow-up (failed or empty) in "
                                 + ", ".join(f"{n} {p} conversation(s)" for p, n in sorted(self._sim_short.items()))
                                 + "; those battles had fewer turns")
            self._sim_short = {}
        self.store.set_state(f"bandit_after_it{it}", self.allocator.state_dict())
        return summary

    def _progress_reward(self, ch: dict[str, tuple[str, float]], b: Any, targets: set[str]) -> float:
        """Learning progress: change of the target's win rate on this cluster, recent vs older window."""
        won = 1.0 if (b.winner == "model_a") == (b.model_a in targets) and b.winner != "tie" else 0.5 if b.winner == "tie" else 0.0
        hist = self._progress_history[ch["clusters"][0]]
        hist.append(won)
        w = 4
        if len(hist) < 2 * w:
            return 0.5  # optimistic until there is history
        recent, older = np.mean(hist[-w:]), np.mean(hist[-2 * w : -w])
        return float(min(1.0, abs(recent - older) * 2))

    async def _simulate_user(self, prompt: Prompt, persona: str) -> Prompt:
        """Extend a prompt with follow-up user turns written by the simulated user under ``persona``.

        Follow-ups depend on the prompt and persona only (not on either contestant's answer), so both sides
        of a battle answer the same conversation; they are content-addressed like every request.
        """
        from banditarena.models import make_backend
        from banditarena.models.base import ChatRequest
        from banditarena.types import Strategy, stable_hash

        us = self.recipe.user_simulator
        assert us is not None
        backend = getattr(self, "_user_backend", None)
        if backend is None:
            backend = self._user_backend = make_backend(us.endpoint.backend, us.endpoint.model, **us.endpoint.options(self.recipe.base_dir))
        turns = list(prompt.user_turns)
        strategy = Strategy(name=f"user:{persona}", system_prompt=us.personas[persona], temperature=0.0, max_tokens=us.max_tokens)
        while len(turns) < us.turns:
            ask = ("Here is the conversation so far, as the user's messages:\n\n" + "\n\n".join(f"User: {t}" for t in turns)
                   + "\n\nWrite the user's next message: one natural follow-up question or request. Output only the message.")
            req = ChatRequest(prompt.id, len(turns), [{"role": "system", "content": us.personas[persona]}, {"role": "user", "content": ask}])
            key = backend.cache_key(req, strategy)
            cached = self.store.get_completions([key])
            comp = cached.get(key) or (await backend.acomplete([req], strategy))[0]
            if key not in cached:
                self.store.put_completions([(key, comp, f"user-simulator/{persona}", prompt.id)])
            if not comp.ok or not comp.text.strip():  # no follow-up: the conversation ends here, counted
                self._sim_short[persona] = self._sim_short.get(persona, 0) + 1
                break
            turns.append(comp.text.strip())
        pid = f"{prompt.id}~{persona}~{stable_hash(turns, 8)}"
        return Prompt(pid, [{"role": "user", "content": t} for t in turns], prompt.category, prompt.cluster,
                      prompt.reference, prompt.source, {**prompt.meta, "persona": persona, "base_prompt": prompt.id})

    # ------------------------------------------------------------------ evaluation
    async def _evaluate(self, it: int, model: str) -> ArenaResult:
        """Checkpoint ``it`` against the fixed opponents (and, with ``eval.snapshots``, every earlier
        checkpoint, whose answers are already stored) on the held-out test set, with the same judge.

        A checkpoint identical to an opponent (iteration 0 and a frozen copy of the base model: same backend,
        model and strategy, hence the same answers) *is* that opponent: its battles are recorded under the
        opponent's name and its Elo row is the opponent's, so the same evidence is never counted twice.
        """
        target = self.target_contestant(it, model, None)
        target = Contestant(self.target_name(it), target.backend, target.model, target.strategy, target.options)
        opps = [o for o in self.opponents if o.name in self.eval_opponents]
        earlier = [self._snapshots[j] for j in sorted(self._snapshots) if j < it] if self.recipe.eval.snapshots else []
        earlier = [c for c in earlier if not any(_same_model(c, o) for o in opps)]
        candidates = [*opps, *earlier]
        same = next((o for o in candidates if _same_model(target, o)), None)
        if same is not None:  # e.g. an untrained checkpoint: it is the earlier contestant, not a new one
            self._aliases[target.name] = same.name
            target = same
        self._snapshots[it] = target
        others = [o for o in candidates if o.name != target.name]
        arena = Arena(self.store, [target, *others], self.judge, seed=self.recipe.seed, progress=self.progress, tag="eval")
        return await arena.arun([Match(p, target.name, o.name) for p in self.test for o in others])

    def elo_table(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Target Elo per iteration (one BT fit over all evaluation battles, anchored per ``eval.anchor``),
        with bootstrap CIs and the gain over iteration 0 with its paired bootstrap CI; and the leaderboard."""
        from banditarena.ratings.bt import BradleyTerry

        battles = self.store.battles("eval", valid_only=True)
        if battles.empty:
            raise DataError(f"{self.store.path}: no valid evaluation battles")
        bt = BradleyTerry(bootstrap=self.recipe.eval.bootstrap, seed=self.recipe.seed, anchor=self.recipe.eval.anchor)
        bt.fit(battles[["model_a", "model_b", "winner"]])
        lb = bt.leaderboard()
        import pandas as pd

        rows = []
        first = self._aliases.get(self.target_name(0), self.target_name(0))
        for it in range(self.recipe.iterations + 1):
            contestant = self.target_name(it)
            name = self._aliases.get(contestant, contestant)
            if name in lb.index:
                r = lb.loc[name]
                # one series (the target) across iterations; the checkpoint's contestant name rides along.
                # gain: rating minus iteration 0's, with a 95% CI from the same bootstrap rounds (paired)
                gain = lo = hi = float("nan")
                if first in lb.index:
                    gain = float(bt.ratings_[name] - bt.ratings_[first])
                    if bt.bootstrap_ is not None:
                        d = (bt.bootstrap_[name] - bt.bootstrap_[first]).to_numpy()
                        lo, hi = (float(x) for x in np.percentile(d, [2.5, 97.5]))
                rows.append({"iteration": it, "model": self.recipe.target.name, "contestant": contestant,
                             "evaluated_as": name,
                             "rating": r["rating"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                             "gain": gain, "gain_low": lo, "gain_high": hi})
        return pd.DataFrame(rows), lb

    # ------------------------------------------------------------------ training
    def _train_fingerprint(self, it: int, model: str, sel: Any) -> str:
        """What a checkpoint is trained from: start model, training settings, seed and the selected rows."""
        from banditarena.types import stable_hash

        return stable_hash({"model": model, "training": self.recipe.training.model_dump(mode="json"),
                            "seed": self.recipe.seed + it, "sft": sel.sft, "dpo": sel.dpo})

    def _check_checkpoint(self, it: int, model: str, sel: Any) -> None:
        """A finished checkpoint trained on other rows or settings than the recipe now gives is never reused
        silently (nor overwritten)."""
        done = self.run_dir / "checkpoints" / f"it{it}" / "DONE"
        if not done.exists():
            return
        saved = json.loads(done.read_text()).get("fingerprint")
        if saved is not None and saved != self._train_fingerprint(it, model, sel):
            raise ConfigError(
                f"{done.parent}: this checkpoint was trained on other data or training settings than the recipe now "
                f"gives (was the recipe changed?); use a new --run-dir, or move {done.parent} and later checkpoints "
                "away to retrain")

    def _train(self, it: int, model: str, sel: Any) -> str:
        out = self.run_dir / "checkpoints" / f"it{it}"
        done = out / "DONE"
        if done.exists():  # arun checked its fingerprint before exporting the data
            return json.loads(done.read_text())["checkpoint"]
        fingerprint = self._train_fingerprint(it, model, sel)
        tc = self.recipe.training
        from banditarena.models.hub import resolve_llm
        from banditarena.training import train_dpo, train_sft

        current = resolve_llm(model)
        history: dict[str, Any] = {}
        if tc.sft and sel.sft:
            r = train_sft(current, sel.sft, out / "sft", lora=tc.lora, epochs=tc.epochs, lr=tc.learning_rate,
                          batch_size=tc.batch_size, max_length=tc.max_length, seed=self.recipe.seed + it,
                          completion_only=tc.completion_only,
                          extra_args={"max_steps": tc.max_steps} if tc.max_steps > 0 else None)
            current = str(r.path)
            history["sft_loss"] = r.losses
        if tc.dpo and sel.dpo:
            r = train_dpo(current, sel.dpo, out / "dpo", lora=tc.lora, nll_alpha=tc.nll_alpha, beta=tc.beta,
                          epochs=tc.dpo_epochs if tc.dpo_epochs is not None else tc.epochs,
                          lr=tc.dpo_learning_rate, batch_size=tc.batch_size,
                          max_length=tc.max_length, seed=self.recipe.seed + it,
                          extra_args={"max_steps": tc.max_steps} if tc.max_steps > 0 else None)
            current = str(r.path)
            history["dpo_loss"] = r.losses
        if current == resolve_llm(model):
            self.warnings.append(f"iteration {it}: no training data passed selection; the target is unchanged")
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"checkpoint": current, "fingerprint": fingerprint, **history}))
        return current

    # ------------------------------------------------------------------ the loop
    async def arun(self) -> FlywheelResult:
        summaries: list[IterationSummary] = []
        model = self.recipe.target.model
        if self.evaluate_enabled:
            await self._evaluate(0, model)
        for it in range(1, self.recipe.iterations + 1):
            s = await self._battle_iteration(it, model)
            if s.battles == 0:
                raise DataError(f"iteration {it}: no battle could be fought (see failures in {self.store.path})")
            battles = self.store.battles(f"it{it}")
            gens_df = self.store.generations()
            from banditarena.types import Generation

            gens = {(r.contestant, r.prompt_id): Generation(r.contestant, r.prompt_id, r.turns) for r in gens_df.itertuples()}
            prompts = {p.id: p for p in self.store.prompts()}
            targets = {n for n in set(battles["model_a"]) | set(battles["model_b"]) if n.startswith(self.target_name(it - 1))}
            sel = select_training_data(battles, prompts, gens, targets, self.sel_cfg, test_prompts=self.test,
                                       embedder=self._get_embedder(), safety=self._get_safety(),
                                       unsafe_prompts=self.recipe.safety.unsafe_prompts)
            if self.train_enabled:
                self._check_checkpoint(it, model, sel)  # before the export overwrites data/it{i}
            export(sel, self.run_dir / "data" / f"it{it}")
            s.sft_rows, s.dpo_rows, s.excluded = len(sel.sft), len(sel.dpo), len(sel.excluded)
            if not sel.sft and not sel.dpo:
                self.warnings.append(
                    f"iteration {it}: no battle yielded training data at K={self.sel_cfg.sft_margin}/{self.sel_cfg.dpo_margin} "
                    f"({s.battles} battles, {s.excluded} rows excluded)")
            if self.train_enabled:
                model = self._train(it, model, sel)
            s.checkpoint = model
            summaries.append(s)
            if self.evaluate_enabled:
                await self._evaluate(it, model)
        if not self.evaluate_enabled:
            import pandas as pd

            empty = pd.DataFrame(columns=["iteration", "model", "rating", "ci_low", "ci_high"])
            return FlywheelResult(summaries, empty, empty, self.store.decisions(self.recipe.name), self.warnings)
        elo, lb = self.elo_table()
        return FlywheelResult(summaries, elo, lb, self.store.decisions(self.recipe.name), self.warnings)

    def _get_safety(self) -> Any:
        if getattr(self, "_safety", None) is None and self.sel_cfg.safety:
            from banditarena.safety import make_scorer

            self._safety = make_scorer(self.recipe.safety, store=self.store, base_dir=self.recipe.base_dir)
        return getattr(self, "_safety", None)

    def _get_embedder(self) -> Any:
        if self._embedder is None and self.sel_cfg.decontaminate:
            self._embedder = _prompt_embedder()
        return self._embedder

    def run(self) -> FlywheelResult:
        return asyncio.run(self.arun())


def run_flywheel(recipe: FlywheelRecipe | str | Path, run_dir: str | Path, *, progress: bool = True,
                 train: bool | None = None) -> FlywheelResult:
    from banditarena.arena.progress import rich_progress

    if not isinstance(recipe, FlywheelRecipe):
        recipe = load_flywheel_recipe(recipe)
    with rich_progress(progress) as prog:
        return Flywheel(recipe, run_dir, progress=prog, train=train).run()


__all__ = ["Flywheel", "FlywheelResult", "IterationSummary", "run_flywheel", "assign_clusters"]
