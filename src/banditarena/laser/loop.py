"""The LASeR loop and its baselines, in one harness: one method of a recipe, iteration by iteration.

One iteration (:meth:`MethodRunner.iteration`) is a short recipe of named steps:

1. ``take_batch`` - the next ``batch_size`` training prompts (a seeded permutation, re-drawn every pass) and,
   when the selector needs them, their context vectors (the policy's prompt embeddings);
2. ``choose_rms`` - the selector picks a reward model per batch or per prompt (:mod:`.selection`);
3. ``sample`` - ``n_samples`` answers per prompt at the recipe's temperature;
4. ``score`` - the chosen RM(s) score them; an RM that raises or returns NaN is a counted skip per RM;
5. ``form_pairs`` - top answer against ranks ``2..m`` (or the best ones below it, ``loop.pair_with``) (:mod:`.pairs`; ensembles combine all RMs);
6. ``train`` - one round of DPO + NLL (LoRA, merged afterwards); the reference is the policy at the start of
   the iteration;
7. ``reward_bandit`` - the recipe's bandit reward (:mod:`.rewards`: the paper's minus training loss, the
   RM's agreement with the verifier on a rotating dev batch, or the round's gain on that batch, probed by
   ``probe_dev`` before step 6) goes back to the selector;
8. ``log`` - counters, selections and history; every ``eval_every`` iterations the learning curve's point.

Everything is resumable: after every iteration the method's state (``state.json``) and its LoRA adapter (or
full checkpoint) are written to ``run_dir/<method>/``; a rerun rebuilds the policy from the base model plus the
saved adapters and continues. Every random stream is a named child of the recipe's seed
(:func:`banditarena.seeds.child_seed`), so a resumed run continues identically.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.errors import ConfigError, StoreError
from banditarena.laser.pairs import PairStats, agreement_pairs, ensemble_scores, form_pairs
from banditarena.laser.policy import Policy
from banditarena.laser.recipe import DEV_REWARDS, LaserRecipe
from banditarena.laser.rewards import (
    Feedback,
    dev_pair_rows,
    dpo_nll_loss,
    margin_gain,
    pair_logps,
    ranking_agreement,
    verifier_labels,
)
from banditarena.laser.selection import CategoryRouter, Choice, RMSelector, make_selector
from banditarena.paths import write_text_atomic
from banditarena.rewards.reward_models import BaseRewardModel
from banditarena.seeds import child_seed
from banditarena.types import Prompt

__all__ = ["Batch", "DevProbe", "MethodRunner", "MethodState", "Pairs", "Scored", "Update"]


@dataclass
class MethodState:
    """Everything a method needs to resume, JSON-safe."""

    method: str
    iteration: int = 0  # iterations completed
    done: bool = False
    selector: dict[str, Any] | None = None
    normalizer: dict[str, Any] | None = None
    rm_calls: dict[str, int] = field(default_factory=dict)
    rm_skips: dict[str, dict[str, int]] = field(default_factory=dict)  # per RM: nan / error prompts
    rm_first_error: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)  # reward / router extra cost: dev_gens, dev_rm_calls, s
    wall_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per iteration
    selections: list[dict[str, Any]] = field(default_factory=list)  # one row per (iteration, prompt)
    checkpoints: list[str] = field(default_factory=list)  # adapters (LoRA) or full checkpoints, in order
    test: dict[str, Any] | None = None
    dev: dict[str, Any] | None = None

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.__dict__, indent=1, default=float))

    @classmethod
    def load(cls, path: Path) -> MethodState:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            raise StoreError(f"{path}: unreadable method state ({exc})") from exc


@dataclass
class Batch:
    """The iteration's prompts and, when the selector uses them, their context vectors."""

    it: int
    prompts: list[Prompt]
    contexts: np.ndarray | None = None


@dataclass
class Scored:
    """Scores of each prompt's answers: one array per prompt per RM used (``by_rm[rm_index][i]``)."""

    answers: list[list[str]]
    by_rm: dict[int, list[np.ndarray | None]]
    calls: dict[str, int]


@dataclass
class Pairs:
    """Preference rows per prompt and the counters of how they were formed."""

    per_prompt: list[list[dict[str, Any]]]
    stats: PairStats

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for rs in self.per_prompt for r in rs]


@dataclass
class DevProbe:
    """The ``gain`` reward's dev pairs and their margins before the round, and what probing cost."""

    rows: list[dict[str, Any]]
    before: np.ndarray  # (rows, 4), see rewards.pair_logps
    gens: int
    informative: int
    seconds: float


@dataclass
class Update:
    """What one round of training did: step losses and, in instance mode, each prompt's loss after it."""

    losses: list[float]
    prompt_loss: np.ndarray


def method_dir(method: str) -> str:
    """The folder of one method's run inside a LASeR run directory (``single:verifier`` -> ``single_verifier``)."""
    return method.replace(":", "_")


class MethodRunner:
    """Runs one method of a recipe in ``run_dir/<method>/``, resuming from its saved state."""

    def __init__(self, method: str, recipe: LaserRecipe, rms: list[BaseRewardModel], train: list[Prompt],
                 run_dir: Path, base_model: str, *, test: list[Prompt] | None = None,
                 dev: list[Prompt] | None = None, on_iteration: Any = None) -> None:
        if not train:
            raise ConfigError("data.n_train: empty training set")
        self.method, self.recipe, self.rms = method, recipe, rms
        self.train, self.test, self.dev = train, test or [], dev or []
        self.base_model = base_model
        self.dir = Path(run_dir) / method_dir(method)
        self.on_iteration = on_iteration
        lp = recipe.loop
        self.reward_kind = method.split(":", 1)[1] if method.startswith("laser:") else lp.reward
        if self.reward_kind in DEV_REWARDS and len(self.dev) < lp.dev_batch:
            raise ConfigError(f"loop.dev_batch: the {self.reward_kind} reward needs {lp.dev_batch} dev problems per "
                              f"iteration, the dev set has {len(self.dev)} (raise data.n_dev)")
        self.selector: RMSelector | CategoryRouter | None = make_selector(
            method, [r.name for r in rms], mode=lp.mode, seed=self._seed("selector"),
            context_dim=recipe.policy.context_dim or 1, alpha=lp.alpha, warmup=lp.warmup)
        self.policy: Policy | None = None
        self.normalizer: Any = None
        self.state = MethodState(method=method)

    def _seed(self, *names: Any) -> int:
        return child_seed(self.recipe.seed, self.method, *names)

    def _stream(self, kind: str, *names: Any) -> int:
        """Seed of a random stream of this method: shared by every method with ``loop.paired_streams``
        (common random numbers), else the method's own."""
        if self.recipe.loop.paired_streams:
            return child_seed(self.recipe.seed, "paired", kind, *names)
        if kind == "rm":
            return self._seed(kind, *names)
        return child_seed(self.recipe.seed, kind, self.method, *names)

    # ------------------------------------------------------------------ one iteration
    def iteration(self, it: int) -> None:
        """One LASeR iteration, step by step (see the module docstring)."""
        t0 = time.perf_counter()
        batch = self.take_batch(it)
        choice = self.choose_rms(batch)
        answers = self.sample(batch)
        scored = self.score(batch, choice, answers)
        pairs = self.form_pairs(batch, choice, scored)
        probe = self.probe_dev(batch)
        update = self.train_round(batch, pairs)
        feedback = self.reward_bandit(batch, choice, pairs, update, probe)
        self.log(batch, choice, scored, pairs, update, feedback, time.perf_counter() - t0)
        self.evaluate_curve(it)
        self.state.iteration = it + 1
        self._save()

    def take_batch(self, it: int) -> Batch:
        b, n = self.recipe.loop.batch_size, len(self.train)
        prompts = []
        for j in range(it * b, (it + 1) * b):
            epoch, pos = divmod(j, n)  # the same permutation for every method of a seed: paired batches
            perm = np.random.default_rng(child_seed(self.recipe.seed, "batches", epoch)).permutation(n)
            prompts.append(self.train[int(perm[pos])])
        contexts = self._contexts(prompts) if self.selector is not None and self.selector.needs_context else None
        return Batch(it, prompts, contexts)

    def choose_rms(self, batch: Batch) -> Choice:
        if self.selector is None:
            return Choice.everyone(len(batch.prompts))
        return self.selector.choose(batch.prompts, batch.contexts)

    def sample(self, batch: Batch) -> list[list[str]]:
        ps = self.recipe.policy
        assert self.policy is not None
        return self.policy.sample(batch.prompts, ps.n_samples, temperature=ps.temperature,
                                  max_new_tokens=ps.max_new_tokens, seed=self._stream("sample", batch.it))

    def score(self, batch: Batch, choice: Choice, answers: list[list[str]]) -> Scored:
        used = sorted({int(a) for a in choice.arms}) if (choice.arms >= 0).all() else list(range(len(self.rms)))
        before = {rm.name: rm.calls for rm in self.rms}
        by_rm: dict[int, list[np.ndarray | None]] = {}
        for a in used:
            idx = [i for i in range(len(batch.prompts)) if choice.arms[i] in (a, -1)]
            self.rms[a].reseed(self._stream("rm", self.rms[a].name, batch.it))
            got = self._score_safely(self.rms[a], [batch.prompts[i] for i in idx], [answers[i] for i in idx])
            by_rm[a] = [None] * len(batch.prompts)
            for i, s in zip(idx, got):
                by_rm[a][i] = s
        return Scored(answers, by_rm, {rm.name: rm.calls - before[rm.name] for rm in self.rms})

    def form_pairs(self, batch: Batch, choice: Choice, scored: Scored) -> Pairs:
        lp = self.recipe.loop
        stats = PairStats()
        out: list[list[dict[str, Any]]] = []
        for i, p in enumerate(batch.prompts):
            ans = scored.answers[i]
            per = [scored.by_rm[a][i] for a in sorted(scored.by_rm) if choice.arms[i] in (a, -1)]
            if any(s is None for s in per):
                stats.error_skips += 1
                out.append([])
            elif self.method == "ensemble_avg":
                out.append(form_pairs(p, ans, ensemble_scores(per), lp.pairs_m, stats, lp.pair_with))
            elif self.method == "ensemble_agree":
                out.append(agreement_pairs(p, ans, per, lp.pairs_m, lp.agreement, stats, lp.pair_with))
            else:
                out.append(form_pairs(p, ans, per[0], lp.pairs_m, stats, lp.pair_with))
        return Pairs(out, stats)

    def train_round(self, batch: Batch, pairs: Pairs) -> Update:
        from banditarena.training import train_dpo

        tc = self.recipe.training
        assert self.policy is not None
        rows = pairs.rows
        prompt_loss = np.full(len(batch.prompts), np.nan)
        if not rows:
            return Update([], prompt_loss)
        per_prompt_loss = self.reward_kind == "loss" and self.recipe.loop.mode == "instance" and \
            self.method.startswith("laser")
        ref_lp = pair_logps(self.policy.model, self.policy.tok, rows, tc.max_length) if per_prompt_loss else None
        out_dir = self.dir / f"iter_{batch.it:03d}"
        res = train_dpo(self.policy.model, rows, out_dir, tc, tokenizer=self.policy.tok,
                        seed=self._stream("train", batch.it),
                        save=not tc.lora, save_adapter=tc.lora)
        shutil.rmtree(out_dir / "trainer", ignore_errors=True)
        self.policy.model = res.model
        self.state.checkpoints.append(str(res.adapter_path if tc.lora else res.path))
        if ref_lp is not None:
            per_row = dpo_nll_loss(pair_logps(self.policy.model, self.policy.tok, rows, tc.max_length), ref_lp,
                                   tc.beta, tc.nll_alpha)
            pos = 0
            for i, rs in enumerate(pairs.per_prompt):
                if rs:
                    prompt_loss[i] = float(np.mean(per_row[pos:pos + len(rs)]))
                    pos += len(rs)
        return Update(list(res.losses), prompt_loss)

    def probe_dev(self, batch: Batch) -> DevProbe | None:
        """The ``gain`` reward's "before": the dev window's (right, wrong) answer pairs and their log-prob
        margins under the policy before the round (None for every other reward and method)."""
        if self.reward_kind != "gain" or not self._learns():
            return None
        assert self.policy is not None
        t0 = time.perf_counter()
        dev, answers, labels, informative = self._sample_dev(batch.it)
        rows = dev_pair_rows(dev, answers, labels)
        before = pair_logps(self.policy.model, self.policy.tok, rows, self.recipe.training.max_length) \
            if rows else np.zeros((0, 4))
        return DevProbe(rows, before, len(dev) * self.recipe.policy.n_samples, len(informative),
                        time.perf_counter() - t0)

    def _sample_dev(self, it: int) -> tuple[list[Prompt], list[list[str]], list[np.ndarray], list[int]]:
        """The iteration's dev window, the policy's sampled answers, their verifier labels, and the indices of
        the informative problems (a right and a wrong answer)."""
        assert self.policy is not None
        ps = self.recipe.policy
        dev = self._dev_window(it)
        answers = self.policy.sample(dev, ps.n_samples, temperature=ps.temperature, max_new_tokens=ps.max_new_tokens,
                                     seed=self._stream("dev-sample", it))
        labels = verifier_labels(answers, [p.reference for p in dev])
        informative = [j for j, y in enumerate(labels) if np.nanmin(y) == 0 and np.nanmax(y) == 1]
        return dev, answers, labels, informative

    def _learns(self) -> bool:
        return self.method.startswith("laser") and isinstance(self.selector, RMSelector)

    def reward_bandit(self, batch: Batch, choice: Choice, pairs: Pairs, update: Update,
                      probe: DevProbe | None = None) -> Feedback:
        n = len(batch.prompts)
        if not self._learns():
            return Feedback(np.full(n, np.nan), np.full(n, np.nan))  # only LASeR learns from a reward
        assert isinstance(self.selector, RMSelector)
        if self.reward_kind == "agreement":
            return self._agreement_reward(batch, choice)
        if self.reward_kind == "gain":
            assert probe is not None
            fb = self._gain_reward(choice, probe)
        else:
            fb = self._loss_reward(choice, update)
        self.selector.update(choice, fb.reward, batch.contexts)  # NaN rewards: no update
        return fb

    def log(self, batch: Batch, choice: Choice, scored: Scored, pairs: Pairs, update: Update, fb: Feedback,
            wall: float) -> None:
        st, lp = self.state, self.recipe.loop
        for name, c in scored.calls.items():
            st.rm_calls[name] = st.rm_calls.get(name, 0) + c
        total = PairStats()
        total.add(st.stats)
        total.add(pairs.stats)
        st.stats = total.as_dict()
        for k, v in (("dev_gens", fb.dev_gens), ("dev_rm_calls", fb.dev_rm_calls), ("reward_s", fb.seconds)):
            st.cost[k] = st.cost.get(k, 0) + v
        per_instance = lp.mode == "instance" or isinstance(self.selector, CategoryRouter)
        for i, p in enumerate(batch.prompts):
            a = int(choice.arms[i])
            st.selections.append({
                "method": self.method, "iteration": batch.it,
                "step": batch.it * len(batch.prompts) + i if per_instance else batch.it,
                "prompt_id": p.id, "category": p.category, "arm": a, "rm": self.rms[a].name if a >= 0 else "all",
                "propensity": float(choice.propensities[i]),
                "reward": float(fb.reward[i]) if np.isfinite(fb.reward[i]) else None,
                "n_pairs": len(pairs.per_prompt[i])})
        rows = pairs.rows
        st.history.append({"iteration": batch.it, "loss": float(np.mean(update.losses)) if update.losses else None,
                           "n_rows": len(rows), "rm_calls": int(sum(scored.calls.values())), "wall_s": wall,
                           "dev_informative": fb.dev_informative, **pairs.stats.as_dict()})
        st.wall_s += wall
        ck = self.dir / f"iter_{batch.it:03d}"
        ck.mkdir(parents=True, exist_ok=True)
        (ck / "samples.json").write_text(json.dumps(
            [{"prompt_id": p.id, "category": p.category, "arm": int(choice.arms[i]), "answers": scored.answers[i],
              "n_pairs": len(pairs.per_prompt[i])} for i, p in enumerate(batch.prompts)], indent=1),
            encoding="utf-8")

    def evaluate_curve(self, it: int) -> None:
        rc = self.recipe
        wanted = rc.eval_methods is None or self.method in rc.eval_methods or any(
            self.method.startswith(m + ":") for m in rc.eval_methods)
        if not (rc.eval_every and (it + 1) % rc.eval_every == 0 and self.test and wanted):
            return
        assert self.policy is not None
        t1 = time.perf_counter()
        ev = self.policy.evaluate(self.test, max_new_tokens=rc.eval_max_new_tokens)
        self.state.history[-1].update(test_acc=ev.accuracy, eval_s=time.perf_counter() - t1)
        if it + 1 == rc.loop.iterations:  # the final evaluation: reused by run()
            self.state.test = {"accuracy": ev.accuracy, "per_category": ev.per_category, "correct": ev.correct}

    # ------------------------------------------------------------------ helpers of the steps
    def _contexts(self, prompts: list[Prompt]) -> np.ndarray:
        ps = self.recipe.policy
        assert self.policy is not None
        return self.policy.embed(prompts, mode=ps.context, dim=ps.context_dim,
                                 seed=child_seed(self.recipe.seed, "context-projection"))

    def _score_safely(self, rm: BaseRewardModel, prompts: list[Prompt],
                      answers: list[list[str]]) -> list[np.ndarray | None]:
        """Scores per prompt; a prompt whose RM raised is None, one with a NaN score keeps it (both counted)."""
        skips = self.state.rm_skips.setdefault(rm.name, {"nan": 0, "error": 0})
        args = ([p.messages for p in prompts], answers, [p.reference for p in prompts])
        try:
            got: list[np.ndarray | None] = list(rm.score_batch(*args))
        except Exception:  # noqa: BLE001 - isolate the failing prompts, one by one
            got = []
            for q, a, r in zip(*args):
                try:
                    got.append(rm.score_batch([q], [a], [r])[0])
                except Exception as exc:  # noqa: BLE001 - a counted skip, the message kept in the state
                    skips["error"] += 1
                    self.state.rm_first_error.setdefault(rm.name, f"{type(exc).__name__}: {exc}"[:300])
                    got.append(None)
        skips["nan"] += sum(1 for s in got if s is not None and np.isnan(s).any())
        return got

    def _loss_reward(self, choice: Choice, update: Update) -> Feedback:
        n = len(choice.arms)
        if self.recipe.loop.mode == "instance":
            raw = -update.prompt_loss
        else:
            raw = np.full(n, -float(np.mean(update.losses)) if update.losses else np.nan)
        finite = raw[np.isfinite(raw)]
        if finite.size:
            self.normalizer.update(finite if self.recipe.loop.mode == "instance" else finite[:1])
        reward = np.where(np.isfinite(raw), self.normalizer.transform(np.nan_to_num(raw)), 0.0)
        return Feedback(raw, reward)

    def _gain_reward(self, choice: Choice, probe: DevProbe) -> Feedback:
        """The round's mean change of the dev pairs' (right - wrong) margin, normalised like the loss reward."""
        assert self.policy is not None
        t0 = time.perf_counter()
        n = len(choice.arms)
        after = pair_logps(self.policy.model, self.policy.tok, probe.rows, self.recipe.training.max_length) \
            if probe.rows else np.zeros((0, 4))
        gain = margin_gain(probe.before, after)
        raw = np.full(n, gain)
        if np.isfinite(gain):
            self.normalizer.update([gain])
            reward = np.full(n, self.normalizer.transform(gain))
        else:
            reward = np.full(n, np.nan)
        return Feedback(raw, reward, dev_gens=probe.gens, dev_informative=probe.informative,
                        seconds=probe.seconds + time.perf_counter() - t0)

    def _agreement_reward(self, batch: Batch, choice: Choice) -> Feedback:
        """Each chosen RM's ranking agreement with the verifier on the next dev window, at its contexts."""
        assert self.policy is not None and isinstance(self.selector, RMSelector)
        t0 = time.perf_counter()
        ps = self.recipe.policy
        dev, answers, labels, informative = self._sample_dev(batch.it)
        ctx = self._contexts([dev[j] for j in informative]) if informative and self.selector.needs_context else None
        fb = Feedback(np.full(len(batch.prompts), np.nan), np.full(len(batch.prompts), np.nan),
                      dev_gens=len(dev) * ps.n_samples, dev_informative=len(informative))
        for a in sorted({int(x) for x in choice.arms}):
            rm = self.rms[a]
            got = self._score_safely(rm, [dev[j] for j in informative], [answers[j] for j in informative])
            fb.dev_rm_calls += sum(len(answers[j]) for j in informative)
            agree = np.array([ranking_agreement(s, labels[j]) if s is not None else np.nan
                              for j, s in zip(informative, got)])
            ok = np.isfinite(agree)
            if ok.any():
                self.selector.update_at(np.full(int(ok.sum()), a), agree[ok], None if ctx is None else ctx[ok])
                fb.per_arm[a] = float(agree[ok].mean())
        for i, a in enumerate(choice.arms):
            fb.reward[i] = fb.raw[i] = fb.per_arm.get(int(a), np.nan)
        fb.seconds = time.perf_counter() - t0
        return fb

    def _dev_window(self, it: int) -> list[Prompt]:
        """The iteration's rotating dev batch: the next ``loop.dev_batch`` problems of a per-pass permutation."""
        b, n = self.recipe.loop.dev_batch, len(self.dev)
        out = []
        for j in range(it * b, (it + 1) * b):
            epoch, pos = divmod(j, n)
            perm = np.random.default_rng(child_seed(self.recipe.seed, "dev-batches", epoch)).permutation(n)
            out.append(self.dev[int(perm[pos])])
        return out

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
            return Policy.load(ckpts[-1], system_prompt=ps.system_prompt, gen_batch_size=ps.gen_batch_size,
                               gen_dtype=ps.gen_dtype)
        pol = Policy.load(self.base_model, system_prompt=ps.system_prompt, gen_batch_size=ps.gen_batch_size,
                          gen_dtype=ps.gen_dtype)
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

    def fit_router(self) -> None:
        """The classifier router: per category, the RM whose ranking agreed best with the verifier on the
        base policy's sampled dev answers (all RMs score the whole dev set once; the cost is counted)."""
        if not self.dev:
            raise ConfigError("data.n_dev: the dev set is empty, but method 'router' fits its routes on it")
        assert self.policy is not None
        t0 = time.perf_counter()
        ps = self.recipe.policy
        answers = self.policy.sample(self.dev, ps.n_samples, temperature=ps.temperature,
                                     max_new_tokens=ps.max_new_tokens, seed=self._seed("router-fit"))
        labels = verifier_labels(answers, [p.reference for p in self.dev])
        agree = np.full((len(self.dev), len(self.rms)), np.nan)
        for a, rm in enumerate(self.rms):
            rm.reseed(self._seed("router-fit", rm.name))
            for j, s in enumerate(self._score_safely(rm, self.dev, answers)):
                agree[j, a] = ranking_agreement(s, labels[j]) if s is not None else np.nan
        cats = sorted({p.category or "" for p in self.dev})
        overall = np.array([np.nanmean(col) if np.isfinite(col).any() else -1.0 for col in agree.T])
        table = {}
        for c in cats:
            rows = agree[[j for j, p in enumerate(self.dev) if (p.category or "") == c]]
            means = np.array([np.nanmean(col) if np.isfinite(col).any() else -1.0 for col in rows.T])
            table[c] = int(np.argmax(means)) if (means >= 0).any() else int(np.argmax(overall))
        self.selector = CategoryRouter(table, int(np.argmax(overall)))
        self.state.cost.update(router_gens=len(self.dev) * ps.n_samples,
                               router_rm_calls=len(self.dev) * ps.n_samples * len(self.rms),
                               router_s=time.perf_counter() - t0)
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
        if self.method == "router" and self.selector is None:
            if self.state.selector:
                self.selector = CategoryRouter({}, 0)
                self.selector.load_state_dict(self.state.selector)
            else:
                self.fit_router()
        total = self.recipe.loop.iterations if stop_after is None else min(stop_after, self.recipe.loop.iterations)
        for it in range(self.state.iteration, total):
            self.iteration(it)
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
