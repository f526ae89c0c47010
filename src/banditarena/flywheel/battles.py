"""Step 1 of an iteration: allocate the battle budget with bandits and fight the battles.

In rounds of ``bandit.batch`` battles: the allocator picks (prompt cluster, target strategy or persona,
opponent) for each battle and the prompt inside the cluster; persona battles get their follow-up turns from
the simulated user; the arena fights the round; each battle's reward (data yield, or learning progress)
updates the bandits, and every decision is logged with its propensity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from banditarena.arena.runner import Arena, Match
from banditarena.flywheel.allocation import BattleAllocator
from banditarena.flywheel.data import yields_data
from banditarena.flywheel.roster import Roster
from banditarena.types import Battle, Prompt

if TYPE_CHECKING:
    from banditarena.flywheel.recipe import FlywheelRecipe
    from banditarena.flywheel.users import UserSimulator
    from banditarena.judges.base import Judge
    from banditarena.progress import ProgressFn
    from banditarena.store import RunStore


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
class Planned:
    """One battle of a round: the match and the allocation choice behind it."""

    match: Match
    choice: dict[str, Any]  # dimension -> (arm, propensity); "prompts" -> (prompt id, propensity)
    fallback: bool = False


class BattleStep:
    """Fights one iteration's battle budget (see the module docstring)."""

    def __init__(self, recipe: FlywheelRecipe, store: RunStore, judge: Judge, roster: Roster,
                 allocator: BattleAllocator, users: UserSimulator | None, progress: ProgressFn | None) -> None:
        self.recipe = recipe
        self.store = store
        self.judge = judge
        self.roster = roster
        self.allocator = allocator
        self.users = users
        self.progress = progress or (lambda stage, adv, total: None)
        self._history: dict[str, list[float]] = defaultdict(list)  # learning-progress reward, per cluster
        self._missing: set[tuple[str, str]] = set()  # (opponent, prompt id) with no replayed answer

    async def run(self, it: int, model: str, split: list[Prompt]) -> IterationSummary:
        """Fight iteration ``it``'s battles on ``split`` with the target checkpoint ``model``."""
        budget = self.recipe.battles_per_iteration
        targets = self.roster.targets(it - 1, model)
        arena = Arena(self.store, [*targets.values(), *self.roster.opponents], self.judge, seed=self.recipe.seed,
                      tag=f"it{it}")
        by_cluster: dict[str, list[Prompt]] = defaultdict(list)
        for p in split:
            by_cluster[str(p.cluster)].append(p)
        # a replayed opponent battles only on prompts it has an answer to (a pool that mixes sources, e.g. a
        # verifiable slice answered by its worked solutions alone)
        self._missing = {(o.name, p.id) for o in self.roster.opponents for p in split
                         if not answers(arena.backends[o.name], p)}
        fought: set[tuple[str, str, str]] = set()  # (prompt, strategy arm, opponent) battled this iteration
        summary = IterationSummary(iteration=it)
        self.allocator.prompts.reset()  # a fresh split: prompt records start over
        self.allocator.reset_pulls()
        self.progress(f"battles it{it}", 0, budget)
        step = 0
        while step < budget:
            planned = await self._plan_round(min(self.recipe.bandit.batch, budget - step), by_cluster, fought, targets)
            if not planned:
                break
            result = await arena.arun([p.match for p in planned])
            self._learn(it, (it - 1) * budget + step, planned, result.battles, {c.name for c in targets.values()},
                        summary)
            summary.judge_calls += 2 * len(result.battles)
            step += len(planned)
            self.progress(f"battles it{it}", len(planned), budget)
        summary.pulls = {d: dict(v) for d, v in self.allocator.pulls.items()}
        return summary

    async def _plan_round(self, n: int, by_cluster: dict[str, list[Prompt]], fought: set[tuple[str, str, str]],
                          targets: dict[str, Any]) -> list[Planned]:
        """``n`` battles: arms from the allocator (falling back from used-up combinations), then the prompt."""
        missing = self._missing

        def unfought(cluster: str, arm: str, opp: str) -> list[Prompt]:
            return [p for p in by_cluster.get(cluster, ()) if (p.id, arm, opp) not in fought
                    and (opp, p.id) not in missing]

        def available(cluster: str, arm: str, opp: str) -> bool:
            return any((p.id, arm, opp) not in fought and (opp, p.id) not in missing
                       for p in by_cluster.get(cluster, ()))

        out = []
        for ch in self.allocator.plan(n, available):
            fallback = bool(ch.pop("fallback", False))
            cluster, arm, opp = ch["clusters"][0], ch["strategies"][0], ch["opponents"][0]
            cands = unfought(cluster, arm, opp)
            j, prop = self.allocator.pick_prompt(cluster, [p.id for p in cands])
            prompt = cands[j]
            ch["prompts"] = (prompt.id, prop)
            fought.add((prompt.id, arm, opp))
            if arm in self.roster.personas and self.users is not None:
                prompt = await self.users.extend(prompt, arm)
            out.append(Planned(Match(prompt, targets[arm].name, opp), ch, fallback))
        return out

    def _learn(self, it: int, step0: int, planned: list[Planned], battles: list[Battle], target_names: set[str],
               summary: IterationSummary) -> None:
        """Rewards of the fought battles update the allocator; every decision is logged with its propensity."""
        by_key = {(b.prompt_id, b.model_a, b.model_b): b for b in battles}
        k = self.recipe.selection.sft_margin
        choices, rewards = [], []
        for j, p in enumerate(planned):
            m = p.match
            b = by_key.get((m.prompt.id, m.model_a, m.model_b))
            if b is None:  # failed now (endpoint down): no reward; fought again on resume
                self.store.put_decision(self.recipe.name, step0 + j, "joint", policy="-", arm="failed",
                                        propensity=float("nan"))
                continue
            y = yields_data(b, target_names, k)
            summary.battles += 1
            summary.yielded += int(y)
            r = float(y) if self.recipe.bandit.reward == "yield" else self._progress_reward(p.choice, b, target_names)
            choices.append(p.choice)
            rewards.append(r)
            meta = {"iteration": it, "prompt_id": m.prompt.id, "yield": int(y), **({"fallback": True} if p.fallback else {})}
            for dim, (arm, prop) in p.choice.items():
                self.store.put_decision(self.recipe.name, step0 + j, dim, policy=self.allocator.policy_name(dim),
                                        arm=arm, propensity=prop, reward=r, meta=meta)
        self.allocator.update(choices, rewards)

    def _progress_reward(self, choice: dict[str, Any], b: Battle, targets: set[str]) -> float:
        """Learning progress: change of the target's win rate on this cluster, recent vs older window."""
        target_won = (b.winner == "model_a") == (b.model_a in targets)
        won = 0.5 if b.winner == "tie" else 1.0 if target_won else 0.0
        hist = self._history[choice["clusters"][0]]
        hist.append(won)
        w = 4
        if len(hist) < 2 * w:
            return 0.5  # optimistic until there is history
        recent, older = np.mean(hist[-w:]), np.mean(hist[-2 * w : -w])
        return float(min(1.0, abs(recent - older) * 2))


def answers(backend: Any, prompt: Prompt) -> bool:
    """Whether ``backend`` can answer ``prompt``: a replayed model only where its files hold an answer."""
    from banditarena.models.replay import ReplayBackend

    if not isinstance(backend, ReplayBackend):
        return True
    return backend.lookup(prompt.id, 0, prompt.user_turns[0] if prompt.user_turns else None).error is None
