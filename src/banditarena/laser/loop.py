"""The LASeR loop and its baselines, in one harness.

One iteration of a method (``laser``, ``single:<rm>``, ``random``, ``sequential``, ``ensemble_avg``,
``ensemble_agree``):

1. take the next ``batch_size`` training prompts (a seeded permutation, re-drawn every pass);
2. ``laser`` only: embed them with the current policy (context) and let LinUCB pick one reward model for the
   batch (``mode="batch"``, context = mean of the prompt contexts) or one per prompt (``mode="instance"``);
3. sample ``n`` answers per prompt at the recipe's temperature;
4. score them with the chosen reward model(s); pairs are the top answer against ranks ``2..m``;
   a prompt whose scores hold a NaN, or all tie, is a counted skip (``nan_skips`` / ``tie_skips``);
5. train one round of DPO + NLL (LoRA, merged afterwards) on the pairs; the reference is the policy at the
   start of the iteration, so it is re-synced every iteration;
6. bandit reward = -training loss (batch mode: the mean step loss of the round; instance mode: each prompt's
   own DPO + NLL loss after the round), normalised by the running 20th/80th percentiles
   (:class:`~banditarena.bandits.QuantileNormalizer`). An arm whose batch gave no pair at all gets reward 0
   (the worst normalised value): it spent reward-model calls and produced no learning signal.

Everything is resumable: after every iteration the method's state (``state.json``: iteration, bandit and
normaliser state, counters, history) and its LoRA adapter (or full checkpoint) are written to
``run_dir/<method>/``; a rerun rebuilds the policy from the base model plus the saved adapters and continues.
Sampling and training seeds derive from ``(seed, iteration)``, so a resumed run continues identically.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.errors import ConfigError, StoreError
from banditarena.judges.reward_models import BaseRewardModel
from banditarena.laser.policy import Policy
from banditarena.laser.recipe import LaserRecipe
from banditarena.types import Prompt

__all__ = ["MethodRunner", "MethodState", "PairStats", "agreement_pairs", "ensemble_scores", "form_pairs"]


@dataclass
class PairStats:
    """Counters of pair formation for one batch (or a whole run)."""

    pairs: int = 0
    tie_skips: int = 0  # prompts whose chosen RM gave every answer the same score
    nan_skips: int = 0  # prompts with at least one NaN score
    tied_pairs: int = 0  # (top, rank k) pairs dropped because the two scores tie
    identical_pairs: int = 0  # (top, rank k) pairs dropped because both answers are the same text
    disagree_pairs: int = 0  # ensemble_agree: pairs dropped for lack of agreement

    def add(self, other: PairStats) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in self.__dataclass_fields__}


def _row(prompt: Prompt, chosen: str, rejected: str) -> dict[str, Any]:
    msgs = [dict(m) for m in prompt.messages]
    return {"prompt": msgs, "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "prompt_id": prompt.id}


def form_pairs(prompt: Prompt, answers: list[str], scores: np.ndarray, m: int | None = None,
               stats: PairStats | None = None) -> list[dict[str, Any]]:
    """Preference rows: the top-scored answer against the answers ranked ``2..m`` (``m`` None: all).

    NaN anywhere -> no rows, ``nan_skips`` += 1; all scores equal -> no rows, ``tie_skips`` += 1. A pair whose
    two scores tie, or whose two texts are identical, is dropped and counted. Ranking is stable (ties keep
    sampling order).
    """
    st = stats if stats is not None else PairStats()
    s = np.asarray(scores, dtype=float)
    if s.shape != (len(answers),):
        raise ConfigError(f"prompt {prompt.id}: {len(answers)} answers but scores of shape {s.shape}")
    if np.isnan(s).any():
        st.nan_skips += 1
        return []
    if len(s) < 2 or np.all(s == s[0]):
        st.tie_skips += 1
        return []
    order = np.argsort(-s, kind="stable")
    top = int(order[0])
    last = len(order) if m is None else min(m, len(order))
    rows = []
    for k in order[1:last]:
        k = int(k)
        if s[k] == s[top]:
            st.tied_pairs += 1
        elif answers[k].strip() == answers[top].strip():
            st.identical_pairs += 1
        else:
            rows.append(_row(prompt, answers[top], answers[k]))
    st.pairs += len(rows)
    return rows


def ensemble_scores(all_scores: list[np.ndarray]) -> np.ndarray:
    """Score-averaging ensemble: each RM's scores z-normalised within the prompt, then averaged.

    An RM whose scores all tie contributes zeros; a NaN from any RM makes that answer's score NaN.
    """
    z = []
    for s in all_scores:
        s = np.asarray(s, dtype=float)
        sd = np.nanstd(s) if np.isfinite(s).any() else 0.0
        z.append((s - np.nanmean(s)) / sd if sd > 0 else np.where(np.isnan(s), np.nan, 0.0))
    return np.mean(np.stack(z), axis=0)


def agreement_pairs(prompt: Prompt, answers: list[str], all_scores: list[np.ndarray], m: int | None,
                    agreement: float, stats: PairStats) -> list[dict[str, Any]]:
    """Agreement ensemble: the top answer by averaged z-scores; a pair (top, rank k) is kept only when more
    than ``agreement`` of the RMs score top strictly above k (so noise that one RM adds is voted out)."""
    if any(np.isnan(np.asarray(s, dtype=float)).any() for s in all_scores):
        stats.nan_skips += 1
        return []
    avg = ensemble_scores(all_scores)
    tmp = PairStats()
    rows = form_pairs(prompt, answers, avg, m, tmp)
    stats.tie_skips += tmp.tie_skips
    stats.tied_pairs += tmp.tied_pairs
    stats.identical_pairs += tmp.identical_pairs
    if not rows:
        return []
    order = np.argsort(-avg, kind="stable")
    top = int(order[0])
    last = len(order) if m is None else min(m, len(order))
    kept = []
    by_text = {r["rejected"][0]["content"]: r for r in rows}
    for k in order[1:last]:
        k = int(k)
        r = by_text.get(answers[k])
        if r is None:
            continue
        votes = float(np.mean([float(np.asarray(s)[top] > np.asarray(s)[k]) for s in all_scores]))
        if votes > agreement:
            kept.append(r)
        else:
            stats.disagree_pairs += 1
        by_text.pop(answers[k], None)
    stats.pairs += len(kept)
    return kept


@dataclass
class MethodState:
    """Everything a method needs to resume, JSON-safe."""

    method: str
    iteration: int = 0  # iterations completed
    done: bool = False
    selector: dict[str, Any] | None = None
    normalizer: dict[str, Any] | None = None
    rm_calls: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per iteration
    selections: list[dict[str, Any]] = field(default_factory=list)  # one row per (iteration, prompt)
    checkpoints: list[str] = field(default_factory=list)  # adapters (LoRA) or full checkpoints, in order
    test: dict[str, Any] | None = None
    dev: dict[str, Any] | None = None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1, default=float), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> MethodState:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            raise StoreError(f"{path}: unreadable method state ({exc})") from exc


class _Selector:
    """Which reward model(s) score each prompt. ``choose`` returns (arms, propensities) per prompt."""

    needs_context = False

    def choose(self, it: int, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        raise ConfigError("abstract selector")  # pragma: no cover - every selector overrides it

    def update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        return None


class _Fixed(_Selector):
    def __init__(self, arm: int) -> None:
        self.arm = arm

    def choose(self, it, n, contexts):
        return np.full(n, self.arm, dtype=np.int64), np.ones(n)


class _Random(_Selector):
    def __init__(self, k: int, seed: int, per_instance: bool) -> None:
        self.k, self.seed, self.per_instance = k, seed, per_instance

    def choose(self, it, n, contexts):
        rng = np.random.default_rng([self.seed, it, 7])
        arms = rng.integers(self.k, size=n) if self.per_instance else np.full(n, rng.integers(self.k))
        return arms.astype(np.int64), np.full(n, 1.0 / self.k)


class _Sequential(_Selector):
    def __init__(self, k: int) -> None:
        self.k = k

    def choose(self, it, n, contexts):
        return np.full(n, it % self.k, dtype=np.int64), np.ones(n)


class _LinUCB(_Selector):
    needs_context = True

    def __init__(self, k: int, dim: int, alpha: float, seed: int, per_instance: bool) -> None:
        from banditarena.bandits import LinUCB

        self.bandit = LinUCB(k, dim, alpha=alpha, seed=seed)
        self.per_instance = per_instance

    @staticmethod
    def batch_context(contexts: np.ndarray) -> np.ndarray:
        c = contexts.mean(axis=0)
        return c / max(float(np.linalg.norm(c)), 1e-12)

    def choose(self, it, n, contexts):
        assert contexts is not None
        if self.per_instance:
            return self.bandit.select(n, contexts)
        arms, props = self.bandit.select(1, self.batch_context(contexts))
        return np.full(n, int(arms[0]), dtype=np.int64), np.full(n, float(props[0]))

    def update(self, arms, rewards, contexts):
        assert contexts is not None
        if self.per_instance:
            self.bandit.update(arms, rewards, contexts)
        else:
            self.bandit.update(arms[:1], rewards[:1], self.batch_context(contexts)[None, :])

    def state_dict(self):
        return self.bandit.state_dict()

    def load_state_dict(self, d):
        self.bandit.load_state_dict(d)


class MethodRunner:
    """Runs one method of a recipe in ``run_dir/<method>/``, resuming from its saved state."""

    def __init__(self, method: str, recipe: LaserRecipe, rms: list[BaseRewardModel], train: list[Prompt],
                 run_dir: Path, base_model: str, *, test: list[Prompt] | None = None,
                 dev: list[Prompt] | None = None, on_iteration: Any = None) -> None:
        self.method, self.recipe, self.rms = method, recipe, rms
        self.train, self.test, self.dev = train, test or [], dev or []
        self.base_model = base_model
        self.dir = Path(run_dir) / method.replace(":", "_")
        self.on_iteration = on_iteration
        if not train:
            raise ConfigError("data: empty training set")
        k = len(rms)
        lp = recipe.loop
        per_instance = lp.mode == "instance"
        if method == "laser":
            dim = recipe.policy.context_dim or 0
            self.selector: _Selector | None = _LinUCB(k, dim or 1, lp.alpha, recipe.seed, per_instance)
        elif method.startswith("single:"):
            names = [r.name for r in rms]
            name = method.split(":", 1)[1]
            if name not in names:
                raise ConfigError(f"method '{method}': no reward model named '{name}' (have {names})")
            self.selector = _Fixed(names.index(name))
        elif method == "random":
            self.selector = _Random(k, recipe.seed, per_instance)
        elif method == "sequential":
            self.selector = _Sequential(k)
        elif method in {"ensemble_avg", "ensemble_agree"}:
            self.selector = None
        else:
            raise ConfigError(f"methods: unknown method '{method}'")
        self.policy: Policy | None = None
        self.normalizer: Any = None
        self.state = MethodState(method=method)

    # ------------------------------------------------------------------ state
    def _load(self) -> None:
        from banditarena.bandits import QuantileNormalizer

        self.dir.mkdir(parents=True, exist_ok=True)
        self.normalizer = QuantileNormalizer(0.2, 0.8)
        path = self.dir / "state.json"
        if path.exists():
            self.state = MethodState.load(path)
            if self.selector is not None and self.state.selector:
                self.selector.load_state_dict(self.state.selector)
            if self.state.normalizer:
                self.normalizer.load_state_dict(self.state.normalizer)
        if self.state.done:
            return
        self.policy = self._build_policy()

    def _build_policy(self) -> Policy:
        ps = self.recipe.policy
        ckpts = self.state.checkpoints
        if not self.recipe.training.lora and ckpts:
            return Policy.load(ckpts[-1], system_prompt=ps.system_prompt, gen_batch_size=ps.gen_batch_size)
        pol = Policy.load(self.base_model, system_prompt=ps.system_prompt, gen_batch_size=ps.gen_batch_size)
        if ckpts:
            from peft import PeftModel

            model = pol.model
            for c in ckpts:
                model = PeftModel.from_pretrained(model, c).merge_and_unload()
            pol.model = model
            pol.model.eval()
        return pol

    def _save(self) -> None:
        if self.selector is not None:
            self.state.selector = self.selector.state_dict()
        self.state.normalizer = self.normalizer.state_dict()
        self.state.save(self.dir / "state.json")

    # ------------------------------------------------------------------ one iteration
    def _batch(self, it: int) -> list[Prompt]:
        b = self.recipe.loop.batch_size
        n = len(self.train)
        out = []
        for j in range(it * b, (it + 1) * b):
            epoch, pos = divmod(j, n)
            perm = np.random.default_rng([self.recipe.seed, epoch, 11]).permutation(n)
            out.append(self.train[int(perm[pos])])
        return out

    def _iteration(self, it: int) -> None:
        from banditarena.training import train_dpo

        rc, ps, lp, tc = self.recipe, self.recipe.policy, self.recipe.loop, self.recipe.training
        assert self.policy is not None
        t0 = time.perf_counter()
        batch = self._batch(it)
        for j, rm in enumerate(self.rms):
            rm.reseed(rc.seed * 1_000_003 + it * 101 + j)
        contexts = None
        if self.selector is not None and self.selector.needs_context:
            contexts = self.policy.embed(batch, mode=ps.context, dim=ps.context_dim, seed=rc.seed)
        samples = self.policy.sample(batch, ps.n_samples, temperature=ps.temperature,
                                     max_new_tokens=ps.max_new_tokens, seed=rc.seed * 1_000_003 + it * 7919)
        refs = [p.reference for p in batch]
        before = {rm.name: rm.calls for rm in self.rms}
        stats = PairStats()
        rows_per_prompt: list[list[dict[str, Any]]] = [[] for _ in batch]
        if self.selector is not None:
            arms, props = self.selector.choose(it, len(batch), contexts)
            for a in np.unique(arms):
                idx = [i for i in range(len(batch)) if arms[i] == a]
                scores = self.rms[int(a)].score_batch([batch[i].messages for i in idx], [samples[i] for i in idx],
                                                      [refs[i] for i in idx])
                for i, s in zip(idx, scores):
                    rows_per_prompt[i] = form_pairs(batch[i], samples[i], s, lp.pairs_m, stats)
        else:
            arms, props = np.full(len(batch), -1, dtype=np.int64), np.ones(len(batch))
            all_scores = [rm.score_batch([p.messages for p in batch], samples, refs) for rm in self.rms]
            for i, p in enumerate(batch):
                per = [s[i] for s in all_scores]
                if self.method == "ensemble_avg":
                    rows_per_prompt[i] = form_pairs(p, samples[i], ensemble_scores(per), lp.pairs_m, stats)
                else:
                    rows_per_prompt[i] = agreement_pairs(p, samples[i], per, lp.pairs_m, lp.agreement, stats)
        rows = [r for rs in rows_per_prompt for r in rs]
        ckpt_dir = self.dir / f"iter_{it:03d}"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        (ckpt_dir / "samples.json").write_text(json.dumps(
            [{"prompt_id": p.id, "category": p.category, "arm": int(arms[i]), "answers": samples[i],
              "n_pairs": len(rows_per_prompt[i])} for i, p in enumerate(batch)], indent=1), encoding="utf-8")
        losses: list[float] = []
        inst_loss = np.full(len(batch), np.nan)
        if rows:
            ref_lp = None
            if self.method == "laser" and lp.mode == "instance":
                ref_lp = _pair_logps(self.policy, rows, tc.max_length)
            res = train_dpo(self.policy.model, [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows],
                            ckpt_dir, tc, tokenizer=self.policy.tok, seed=rc.seed * 1000 + it,
                            save=not tc.lora, save_adapter=tc.lora)
            shutil.rmtree(ckpt_dir / "trainer", ignore_errors=True)
            losses = res.losses
            self.policy.model = res.model
            self.state.checkpoints.append(str(res.adapter_path if tc.lora else res.path))
            if ref_lp is not None:
                pol_lp = _pair_logps(self.policy, rows, tc.max_length)
                per_row = _dpo_nll_loss(pol_lp, ref_lp, tc.beta, tc.nll_alpha)
                pos = 0
                for i, rs in enumerate(rows_per_prompt):
                    if rs:
                        inst_loss[i] = float(np.mean(per_row[pos:pos + len(rs)]))
                        pos += len(rs)
        # bandit reward: -loss, normalised by running 20th/80th percentiles; no pair -> 0 (worst)
        if self.selector is not None:
            if lp.mode == "instance" and self.method == "laser":
                raw = -inst_loss
            else:
                raw = np.full(len(batch), -float(np.mean(losses)) if losses else np.nan)
            finite = raw[np.isfinite(raw)]
            if finite.size:
                self.normalizer.update(finite if lp.mode == "instance" else finite[:1])
            reward = np.where(np.isfinite(raw), self.normalizer.transform(np.nan_to_num(raw)), 0.0)
            self.selector.update(arms, reward, contexts)
        else:
            raw = reward = np.full(len(batch), np.nan)
        wall = time.perf_counter() - t0
        calls = {rm.name: rm.calls - before[rm.name] for rm in self.rms}
        for name, c in calls.items():
            self.state.rm_calls[name] = self.state.rm_calls.get(name, 0) + c
        total = dict(self.state.stats)
        for k, v in stats.as_dict().items():
            total[k] = total.get(k, 0) + v
        self.state.stats = total
        for i, p in enumerate(batch):
            a = int(arms[i])
            self.state.selections.append({
                "method": self.method, "iteration": it, "step": it if lp.mode == "batch" else it * len(batch) + i,
                "prompt_id": p.id, "category": p.category, "arm": a,
                "rm": self.rms[a].name if a >= 0 else "all", "propensity": float(props[i]),
                "reward": None if not np.isfinite(reward[i]) else float(reward[i]),
                "n_pairs": len(rows_per_prompt[i])})
        row = {"iteration": it, "loss": float(np.mean(losses)) if losses else None, "n_rows": len(rows),
               "rm_calls": int(sum(calls.values())), "wall_s": wall, **stats.as_dict()}
        if rc.eval_every and (it + 1) % rc.eval_every == 0 and self.test and (
                rc.eval_methods is None or self.method in rc.eval_methods or
                (self.method.startswith("single:") and "single" in rc.eval_methods)):
            t1 = time.perf_counter()
            ev = self.policy.evaluate(self.test, max_new_tokens=rc.eval_max_new_tokens)
            row["test_acc"] = ev.accuracy
            row["eval_s"] = time.perf_counter() - t1
            if it + 1 == rc.loop.iterations:  # the final evaluation: reused by run()
                self.state.test = {"accuracy": ev.accuracy, "per_category": ev.per_category, "correct": ev.correct}
        self.state.history.append(row)
        self.state.wall_s += wall
        self.state.iteration = it + 1
        self._save()

    # ------------------------------------------------------------------ run
    def run(self, stop_after: int | None = None) -> MethodState:
        """Run (or resume) up to the recipe's iterations, then evaluate on test (and dev, for single RMs).

        ``stop_after`` stops after that many iterations in total without evaluating (used to simulate an
        interruption in tests).
        """
        self._load()
        if self.state.done:
            return self.state
        total = self.recipe.loop.iterations if stop_after is None else min(stop_after, self.recipe.loop.iterations)
        for it in range(self.state.iteration, total):
            self._iteration(it)
            if self.on_iteration is not None:
                self.on_iteration(self.method, it)
        if self.state.iteration < self.recipe.loop.iterations:
            return self.state
        assert self.policy is not None
        mx = self.recipe.eval_max_new_tokens
        if self.test and self.state.test is None:
            ev = self.policy.evaluate(self.test, max_new_tokens=mx)
            self.state.test = {"accuracy": ev.accuracy, "per_category": ev.per_category, "correct": ev.correct}
        if self.dev and self.method.startswith("single:"):
            ev = self.policy.evaluate(self.dev, max_new_tokens=mx)
            self.state.dev = {"accuracy": ev.accuracy, "per_category": ev.per_category, "correct": ev.correct}
        self.state.done = True
        self._save()
        return self.state


def _pair_logps(policy: Policy, rows: list[dict[str, Any]], max_length: int) -> np.ndarray:
    """(n_rows, 4): summed log-prob and token count of chosen, then of rejected, under ``policy``."""
    from banditarena.judges.reward_models import LikelihoodRM

    rm = LikelihoodRM(policy.model, tokenizer=policy.tok, max_length=max_length, name="policy")
    out = np.zeros((len(rows), 4))
    for j, key in enumerate(("chosen", "rejected")):
        sums, counts = rm.sum_logprobs([r["prompt"] for r in rows], [r[key][0]["content"] for r in rows])
        out[:, 2 * j] = sums
        out[:, 2 * j + 1] = counts
    return out


def _dpo_nll_loss(pol: np.ndarray, ref: np.ndarray, beta: float, nll_alpha: float) -> np.ndarray:
    """Per-row DPO (sigmoid) + nll_alpha * mean-token NLL of the chosen answer (the training objective)."""
    margin = beta * ((pol[:, 0] - ref[:, 0]) - (pol[:, 2] - ref[:, 2]))
    dpo = np.logaddexp(0.0, -margin)
    nll = -pol[:, 0] / np.maximum(pol[:, 1], 1)
    return dpo + nll_alpha * nll



