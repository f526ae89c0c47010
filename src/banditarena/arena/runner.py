"""Battle scheduling and execution with resume.

The arena turns (prompt, model_a, model_b) triples into stored battles:

1. **generate** every needed answer, turn by turn (multi-turn prompts see the model's own earlier answers);
2. **judge** every pair in both orders;
3. **combine** the two orders into a battle.

Every model request and judge call is content-addressed (backend identity, model, strategy, messages, seed;
judge identity and version) and written to ``run.sqlite`` the moment it returns, in its own transaction. A
rerun after a crash or SIGKILL looks everything up first and only pays for what is missing. Local (batched)
backends are fed fixed chunks cut from the full, deterministic request list, so a resumed run batches
exactly as an uninterrupted one and gets the same outputs.

Transient failures (endpoint down after retries) are recorded in ``failures`` and the affected battles are
skipped this time; the run goes on, reports them, and a rerun retries them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from banditarena.errors import ModelError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.models.base import Backend, ChatRequest
from banditarena.progress import ProgressFn
from banditarena.store import RunStore
from banditarena.types import (
    Battle,
    Completion,
    Contestant,
    Generation,
    Judgment,
    Message,
    Prompt,
    stable_hash,
)


@dataclass
class Match:
    """One scheduled battle."""

    prompt: Prompt
    model_a: str
    model_b: str


@dataclass
class ArenaResult:
    battles: list[Battle] = field(default_factory=list)  # empty when the arena keeps none (``keep_battles``)
    n_battles: int = 0
    n_scheduled: int = 0
    n_generation_failures: int = 0
    n_judge_failures: int = 0
    n_invalid: int = 0
    n_inconsistent: int = 0
    paid_generations: int = 0
    paid_judgments: int = 0
    skipped: list[str] = field(default_factory=list)  # one line per battle that could not be fought now
    request_stats: Counter[str] = field(default_factory=Counter)  # the backends' counters (retries by kind...)

    def add(self, battle: Battle, *, keep: bool = True) -> None:
        """Count a fought (or stored) battle; keep it unless the run is too large to hold."""
        self.n_battles += 1
        self.n_invalid += battle.winner is None
        self.n_inconsistent += bool(battle.inconsistent)
        if keep:
            self.battles.append(battle)

    @property
    def all_failed(self) -> bool:
        """Battles were scheduled, none was fought, and requests failed: nothing of this run worked."""
        return self.n_scheduled > 0 and not self.n_battles and (self.n_generation_failures + self.n_judge_failures) > 0

    def fault_summary(self) -> str:
        """'12 timeouts, 3 unusable_bad_json, ...': what the backends retried or lost this run (empty if none)."""
        kinds = [k for k in self.request_stats if k in ("timeouts", "connection_errors", "breaker_rejections")
                 or k.startswith(("unusable_", "http_"))]
        return ", ".join(f"{self.request_stats[k]} {k}" for k in sorted(kinds) if self.request_stats[k])

    def summary(self) -> dict[str, Any]:
        return {
            "scheduled": self.n_scheduled,
            "battles": self.n_battles,
            "invalid": self.n_invalid,
            "inconsistent": self.n_inconsistent,
            "generation_failures": self.n_generation_failures,
            "judge_failures": self.n_judge_failures,
            "paid_generations": self.paid_generations,
            "paid_judgments": self.paid_judgments,
        }


def schedule(
    prompts: Sequence[Prompt], names: Sequence[str], *, pairs: str = "all", baseline: str | None = None
) -> list[Match]:
    """Every unordered pair per prompt (``all``), or every contestant against ``baseline``."""
    out: list[Match] = []
    for p in prompts:
        if pairs == "baseline":
            out.extend(Match(p, baseline, n) for n in names if n != baseline)  # type: ignore[arg-type]
        else:
            out.extend(Match(p, a, b) for i, a in enumerate(names) for b in names[i + 1 :])
    return out


def contestant_backends(contestants: Sequence[Contestant], given: dict[str, Backend] | None = None) -> dict[str, Backend]:
    """A backend per contestant: ``given`` ones first, the rest made from their specs (two strategies of one
    model share one backend, hence one loaded model). Raises the user's errors (a missing API-key variable,
    an unknown backend option) before anything is written."""
    from banditarena.models import make_backend

    out: dict[str, Backend] = dict(given or {})
    shared: dict[str, Backend] = {}
    for c in contestants:
        if c.name in out:
            continue
        spec = stable_hash({"b": c.backend, "m": c.model, "o": c.options})
        if spec not in shared:
            shared[spec] = make_backend(c.backend, c.model, **c.opts)
        out[c.name] = shared[spec]
    return out


def conversation(contestant: Contestant, prompt: Prompt, answers: Sequence[str], turn: int) -> list[Message]:
    """Messages sent to answer user turn ``turn``: system prompt, earlier turns with this model's answers."""
    msgs: list[Message] = []
    system = contestant.strategy.system_prompt
    users = [m for m in prompt.messages if m["role"] == "user"]
    prompt_system = [m["content"] for m in prompt.messages if m["role"] == "system"]
    sys_text = "\n\n".join([*prompt_system, *([system] if system else [])])
    if sys_text:
        msgs.append({"role": "system", "content": sys_text})
    for i in range(turn + 1):
        msgs.append({"role": "user", "content": users[i]["content"]})
        if i < turn:
            msgs.append({"role": "assistant", "content": answers[i]})
    return msgs


class Arena:
    """Runs battles among contestants with one judge, storing everything in a :class:`RunStore`.

    ``backends`` may map contestant names to ready backends (tests, shared endpoints); the rest are made
    from the contestants' specs with :func:`banditarena.models.make_backend`.
    """

    def __init__(
        self,
        store: RunStore,
        contestants: Sequence[Contestant],
        judge: Judge,
        *,
        seed: int = 0,
        backends: dict[str, Backend] | None = None,
        max_in_flight: int = 256,
        progress: ProgressFn | None = None,
        tag: str = "arena",
        chunk_size: int = 50_000,
        keep_battles: bool = True,
    ) -> None:
        self.store = store
        self.contestants = {c.name: c for c in contestants}
        self.judge = judge
        self.seed = seed
        self.max_in_flight = max_in_flight
        self.progress = progress or (lambda stage, adv, total: None)
        self.tag = tag
        self.chunk_size = max(1, int(chunk_size))
        self.keep_battles = keep_battles  # False: count battles, do not keep them in memory (huge runs)
        self._judge_id: str | None = None
        self.backends = contestant_backends(contestants, backends)
        judge.attach_store(store)

    # ------------------------------------------------------------------ keys
    def _seed_for(self, contestant: Contestant, prompt: Prompt, turn: int) -> int | None:
        if contestant.strategy.temperature <= 0:
            return None
        return int(stable_hash({"seed": self.seed, "m": prompt.messages, "t": turn, "s": contestant.strategy.cache_identity()}, 8), 16) & 0x7FFFFFFF

    def _request_key(self, backend: Backend, contestant: Contestant, req: ChatRequest) -> str:
        base = backend.cache_key(req, contestant.strategy)
        return base if req.seed is None else stable_hash([base, req.seed])

    def generation_key(self, name: str, prompt: Prompt) -> str:
        c = self.contestants[name]
        b = self.backends[name]
        return stable_hash(
            {
                "id": b.identity(),
                "strategy": c.strategy.cache_identity(),
                "messages": prompt.messages,
                "prompt_id": prompt.id if b.kind == "replay" else None,
                "seed": self.seed if c.strategy.temperature > 0 else None,
            }
        )

    # ------------------------------------------------------------------ generation
    async def generate(self, needed: Sequence[tuple[str, Prompt]], result: ArenaResult) -> dict[tuple[str, str], Generation]:
        """Answers for every (contestant, prompt); missing ones are generated turn by turn.

        Requests are chunked per contestant over the *full* ``needed`` list (done or not) and each chunk's
        results are committed in one transaction, so a resumed run sends exactly the chunks an
        uninterrupted run would have sent.
        """
        keys = {(n, p.id): self.generation_key(n, p) for n, p in needed}
        have = self.store.get_generations(list(keys.values()))
        out: dict[tuple[str, str], Generation] = {}
        for n, p in needed:
            g = have.get(keys[(n, p.id)])
            if g is not None:
                out[(n, p.id)] = Generation(n, p.id, g.turns, g.tokens, g.latency_s, g.cache_key)
        todo = [(n, p) for n, p in needed if (n, p.id) not in out]
        if not todo:
            return out
        todo_ids = {(n, p.id) for n, p in todo}
        answers: dict[tuple[str, str], list[Completion]] = {k: [] for k in todo_ids}
        turn_keys: dict[tuple[str, str], list[str]] = {k: [] for k in todo_ids}
        failed: set[tuple[str, str]] = set()
        max_turns = max(len(p.user_turns) for _, p in todo)
        total = sum(len(p.user_turns) for _, p in todo)
        self.progress("generate", 0, total)
        per_contestant: dict[str, list[Prompt]] = defaultdict(list)
        for n, p in needed:
            per_contestant[n].append(p)
        for turn in range(max_turns):
            tasks: list[tuple[str, list[tuple[Prompt, ChatRequest, str]]]] = []
            for n, prompts in per_contestant.items():
                c, b = self.contestants[n], self.backends[n]
                batch = max(1, int(getattr(b, "batch_size", 1)))
                eligible = [p for p in prompts if len(p.user_turns) > turn]
                for i in range(0, len(eligible), batch):
                    chunk = []
                    for p in eligible[i : i + batch]:
                        if (n, p.id) not in todo_ids or (n, p.id) in failed:
                            continue
                        prev = [x.text for x in answers[(n, p.id)]]
                        req = ChatRequest(p.id, turn, conversation(c, p, prev, turn), seed=self._seed_for(c, p, turn))
                        chunk.append((p, req, self._request_key(b, c, req)))
                    if not chunk:
                        continue
                    cached = self.store.get_completions([k for *_, k in chunk])
                    for p, _, k in chunk:
                        if k in cached:
                            answers[(n, p.id)].append(cached[k])
                            turn_keys[(n, p.id)].append(k)
                    if cached:
                        self.progress("generate", len(cached), total)
                    missing = [it for it in chunk if it[2] not in cached]
                    if missing:
                        tasks.append((n, missing))
            await self._run_generation_tasks(tasks, answers, turn_keys, failed, result, total)
        for n, p in todo:
            if (n, p.id) in failed:
                continue
            comps = answers[(n, p.id)]
            g = Generation(
                n, p.id, [c.text for c in comps], sum(c.tokens for c in comps), sum(c.latency_s for c in comps),
                keys[(n, p.id)],
            )
            self.store.put_generation(g, turn_keys[(n, p.id)])  # the texts stay in completions alone
            out[(n, p.id)] = g
        return out

    async def _run_generation_tasks(
        self,
        tasks: list[tuple[str, list[tuple[Prompt, ChatRequest, str]]]],
        answers: dict[tuple[str, str], list[Completion]],
        turn_keys: dict[tuple[str, str], list[str]],
        failed: set[tuple[str, str]],
        result: ArenaResult,
        total: int,
    ) -> None:
        # An in-process (local) backend runs one chunk at a time; remote ones are limited by their own
        # per-endpoint semaphore and by max_in_flight here.
        locks: dict[int, asyncio.Semaphore] = {}
        in_flight = asyncio.Semaphore(self.max_in_flight)

        async def run(name: str, chunk: list[tuple[Prompt, ChatRequest, str]]) -> None:
            backend = self.backends[name]
            limit = 1 if backend.kind == "local" else self.max_in_flight
            lock = locks.setdefault(id(backend), asyncio.Semaphore(limit))
            async with lock, in_flight:
                comps = await backend.acomplete([r for _, r, _ in chunk], self.contestants[name].strategy)
            self.store.put_completions([(k, comp, name, p.id) for (p, _, k), comp in zip(chunk, comps, strict=True)])
            for (p, _, k), comp in zip(chunk, comps, strict=True):
                if comp.ok:
                    result.paid_generations += 1
                    answers[(name, p.id)].append(comp)
                    turn_keys[(name, p.id)].append(k)
                else:
                    result.n_generation_failures += 1
                    failed.add((name, p.id))
                    result.skipped.append(f"generation failed: contestant '{name}' prompt '{p.id}': {comp.error}")
            self.progress("generate", len(chunk), total)

        await asyncio.gather(*(run(n, c) for n, c in tasks))

    # ------------------------------------------------------------------ judging
    async def judge_matches(
        self, matches: Sequence[tuple[int, Match]], gens: dict[tuple[str, str], Generation], result: ArenaResult
    ) -> list[Battle]:
        """Judge ``(seq, match)`` pairs in both orders and store the battles (``seq``: the match's place in the
        schedule). In-process judges' batches are committed one transaction each, remote judges' judgments one
        by one, as they return."""
        from banditarena.judges import combine, is_retryable

        pairs = []
        for seq, m in matches:
            ga, gb = gens.get((m.model_a, m.prompt.id)), gens.get((m.model_b, m.prompt.id))
            if ga is None or gb is None:
                result.skipped.append(f"battle skipped: no answer from {m.model_a if ga is None else m.model_b} on '{m.prompt.id}'")
                continue
            pairs.append((seq, m, JudgeRequest(m.prompt, ga, gb), JudgeRequest(m.prompt, gb, ga)))
        prepare = getattr(self.judge, "prepare", None)
        if prepare is not None and pairs:
            prepare([r for *_, ab, ba in pairs for r in (ab, ba)])  # e.g. a cascade's cheap scores, batched
        ready = [(seq, m, ab, ba, self.judge.cache_key(ab), self.judge.cache_key(ba)) for seq, m, ab, ba in pairs]
        keys = [k for *_, k_ab, k_ba in ready for k in (k_ab, k_ba)]
        have = self.store.get_judgments(keys)
        uniq: dict[str, JudgeRequest] = {}
        for _, _, ab, ba, k_ab, k_ba in ready:
            for k, r in ((k_ab, ab), (k_ba, ba)):
                if k not in have and k not in uniq:
                    uniq[k] = r
        self.progress("judge", 0, len(keys))
        if len(keys) > len(uniq):
            self.progress("judge", len(keys) - len(uniq), len(keys))
        got: dict[str, Judgment] = dict(have)
        batch = max(1, int(getattr(self.judge, "batch_size", 1)))
        items = list(uniq.items())
        in_flight = asyncio.Semaphore(max(1, self.max_in_flight // batch))

        async def run(chunk: list[tuple[str, JudgeRequest]]) -> None:
            async with in_flight:
                js = await self.judge.ajudge([r for _, r in chunk])
            done = []
            for (k, r), j in zip(chunk, js, strict=True):
                j.cache_key = k
                if is_retryable(j):  # nothing usable came back (endpoint failure): retry on the next run
                    result.n_judge_failures += 1
                    self.store.record_failure(k, "judgment", self.judge.name, r.prompt.id, j.error or "no output")
                    continue
                done.append(j)
                got[k] = j
            self.store.put_judgments(done)  # what came back together is committed together, at once
            result.paid_judgments += len(done)
            self.progress("judge", len(chunk), len(keys))

        await asyncio.gather(*(run(items[i : i + batch]) for i in range(0, len(items), batch)))

        battles: list[Battle] = []
        rows = []
        for seq, m, ab, ba, k_ab, k_ba in ready:
            if k_ab not in got or k_ba not in got:
                result.skipped.append(f"battle pending: judge '{self.judge.name}' failed on '{m.prompt.id}'")
                continue
            # a judgment is content-addressed: the same two answers judged for other contestants (e.g. an
            # unchanged checkpoint) reuse it, so bind it to this battle's contestants
            j_ab = dataclasses.replace(got[k_ab], first=m.model_a, second=m.model_b)
            j_ba = dataclasses.replace(got[k_ba], first=m.model_b, second=m.model_a)
            b = combine(j_ab, j_ba, m.model_a, m.model_b, self.judge.name)
            b.prompt_id = m.prompt.id
            rows.append((self.battle_id(m), b, seq, (k_ab, k_ba, ab.first.cache_key, ab.second.cache_key)))
            battles.append(b)
        self.store.put_battles(rows, tag=self.tag)
        return battles

    # ------------------------------------------------------------------ all together
    def battle_id(self, m: Match) -> str:
        """A battle's identity: run tag, prompt, the two contestants and the judge (identity and version)."""
        if self._judge_id is None:
            self._judge_id = stable_hash(self.judge.identity(), 16)
        return stable_hash({"tag": self.tag, "p": m.prompt.id, "a": m.model_a, "b": m.model_b, "j": self._judge_id})

    async def arun(self, matches: Sequence[Match]) -> ArenaResult:
        """Fight ``matches``: battles already stored are read back, the rest are fought in fixed slices of
        :attr:`chunk_size` matches of the schedule (bounded memory; the same slices on resume)."""
        for m in matches:
            for n in (m.model_a, m.model_b):
                if n not in self.contestants:
                    raise ModelError(f"unknown contestant '{n}' (known: {sorted(self.contestants)})")
        result = ArenaResult(n_scheduled=len(matches))
        ids = [self.battle_id(m) for m in matches]
        stored = self.store.get_battles(ids)
        for bid in ids:
            if bid in stored:
                result.add(stored[bid], keep=self.keep_battles)
        for start in range(0, len(matches), self.chunk_size):
            todo = [(start + i, m) for i, m in enumerate(matches[start:start + self.chunk_size])
                    if ids[start + i] not in stored]
            if not todo:
                continue
            chunk = matches[start:start + self.chunk_size]  # generation batches are cut from the whole slice
            self.store.add_prompts({m.prompt.id: m.prompt for _, m in todo}.values())
            needed: dict[tuple[str, str], tuple[str, Prompt]] = {}
            for m in chunk:
                for n in (m.model_a, m.model_b):
                    needed.setdefault((n, m.prompt.id), (n, m.prompt))
            gens = await self.generate(list(needed.values()), result)
            for b in await self.judge_matches(todo, gens, result):
                result.add(b, keep=self.keep_battles)
        return result

    def run(self, matches: Sequence[Match]) -> ArenaResult:
        return asyncio.run(self._run_and_close(matches))

    async def _run_and_close(self, matches: Sequence[Match]) -> ArenaResult:
        result: ArenaResult | None = None
        try:
            result = await self.arun(matches)
            return result
        finally:
            distinct = {id(b): b for b in self.backends.values()}
            judge_backend = getattr(self.judge, "backend", None)
            if judge_backend is not None:
                distinct[id(judge_backend)] = judge_backend
            if result is not None:
                for b in distinct.values():
                    result.request_stats.update(getattr(b, "stats", None) or {})
            for b in {id(b): b for b in self.backends.values()}.values():
                await b.aclose()
            await self.judge.aclose()
