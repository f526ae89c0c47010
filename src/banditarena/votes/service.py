"""The vote service behind the page: prompts and answers, which battle a voter sees, and the vote check.

**Which pair.** Chatbot Arena's active sampling rule (:func:`banditarena.ratings.active.pair_sampling_weights`,
``method="variance"``) over the human votes so far: a pair is shown with probability proportional to how much
one more vote would shrink the standard error of its rating difference, so unseen and uncertain pairs come
first and settled ones fade (the weights are refitted at most every ``refresh_s`` seconds). The prompt is
drawn at random from the recipe's pool among those this voter has not voted on with this pair; the sides
are shuffled. ``sampler="uniform"`` is the baseline.

``sampler="uncertain"`` sends people where the run's AI judges are least certain (the cascade's idea: the
pairs a cheap judge cannot settle go to a stronger one; here, to people): a matchup (prompt and pair) is shown
with probability proportional to ``0.05 + 0.95 * (1 - |2p - 1|)``, ``p`` the AI judges' mean P(A beats B) on it
(the graded outcome; else 1 / 0.5 / 0 from the winner; 0.5 for a battle whose two orders disagreed); a
matchup no AI judge has fought counts as wholly uncertain.

**Tickets.** The page carries a signed battle ticket (HMAC under the server secret, purpose ``vote-ticket``)
naming the battle id, the voter and the two answers by opaque tags (a keyed hash of each generation key: the
keys themselves are content hashes anyone holding the public answer files could recompute, which would name
the models before the vote). A vote is accepted only
with a ticket this server signed for *this* voter: a forged ticket, one shown to another voter, or one
already voted (``vote_id`` unique; one vote per voter per matchup) is refused with a 4xx status and counted
by reason; nothing is stored. An accepted vote is committed (``RunStore.put_votes``: the vote and its battle,
judge ``human``) before the answer goes back.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from banditarena.store import RunStore
from banditarena.types import Generation, Prompt
from banditarena.votes.fastchat import IDENTITY_WORDS
from banditarena.votes.markdown import render_markdown
from banditarena.votes.records import CHOICES, matchup, vote_row
from banditarena.web import SessionSigner

SAMPLERS = ("variance", "uniform", "uncertain")
UNCERTAIN_FLOOR = 0.05


class VoteRefused(Exception):
    """A vote the service refuses: HTTP status, a message for the voter, and the reason it is counted under."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


@dataclass
class Offer:
    """One battle shown to one voter."""

    battle_id: str
    prompt: Prompt
    model_a: str
    model_b: str
    gen_a: Generation
    gen_b: Generation
    ticket: str


class VoteService:
    """Votes on a fixed set of prompts and answers, stored in ``store`` (opened as the writer).

    Args:
        answers: ``(contestant, prompt_id) -> Generation`` (already stored in ``store``).
        secret: the server secret (tickets are signed under a key derived from it).
    """

    def __init__(self, store: RunStore, prompts: Sequence[Prompt], answers: dict[tuple[str, str], Generation],
                 secret: bytes, *, sampler: str = "variance", seed: int | None = None, refresh_s: float = 2.0,
                 ticket_ttl_s: float = 24 * 3600, identity_words: Sequence[str] = IDENTITY_WORDS) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        self.store, self.sampler, self.refresh_s = store, sampler, refresh_s
        self.prompts = {p.id: p for p in prompts}
        self.models = sorted({n for n, _ in answers})
        self.tickets = SessionSigner(secret, max_age_s=ticket_ttl_s, purpose="vote-ticket")
        self.rng = random.Random(seed if seed is not None else secrets.randbits(64))
        self._lock = threading.Lock()
        self.refused: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()
        words = tuple({*identity_words, *(m.lower() for m in self.models if len(m) >= 3)})
        self.answers: dict[tuple[str, str], Generation] = {}
        for (name, pid), g in answers.items():
            p = self.prompts.get(pid)
            if p is None or not g.turns or not all(t.strip() for t in g.turns):
                self.excluded["empty answer"] += 1
                continue
            text = " ".join([*p.user_turns, *g.turns]).lower()
            if any(w in text for w in words):   # the vote would not be blind (FastChat's cleaning drops it)
                self.excluded["identity words"] += 1
                continue
            self.answers[(name, pid)] = g
        self.by_key = {g.cache_key: (n, pid) for (n, pid), g in self.answers.items()}
        tag_key = hmac.new(secret, b"banditarena:vote-answer-tag", hashlib.sha256).digest()
        self._tag = {k: hmac.new(tag_key, k.encode(), hashlib.sha256).hexdigest()[:20] for k in self.by_key}
        self._untag = {t: k for k, t in self._tag.items()}
        self.pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}     # pair -> [(prompt id, matchup)]
        for i, a in enumerate(self.models):
            for b in self.models[i + 1:]:
                common = [(pid, matchup(pid, self.answers[(a, pid)].cache_key, self.answers[(b, pid)].cache_key))
                          for pid in self.prompts if (a, pid) in self.answers and (b, pid) in self.answers]
                if common:
                    self.pairs[(a, b)] = common
        self._html: dict[str, str] = {}
        votes = store.votes()
        self.n_votes = len(votes)
        self._voted: dict[str, set[str]] = {}
        for v, m in zip(votes["voter"], votes["matchup"], strict=True):
            self._voted.setdefault(v, set()).add(m)
        self.outcomes: list[tuple[str, str, str]] = [
            (a, b, w) for a, b, w in store.conn.execute(
                "SELECT model_a, model_b, winner FROM battles WHERE judge='human' AND winner IS NOT NULL")]
        self._probs: tuple[list[tuple[str, str]], list[float]] | None = None
        self._probs_at = -1e9
        self._probs_n = -1
        self.judges: list[str] = []
        self.uncertainty: dict[tuple[str, str, str], float] = {}     # (prompt, model, model) sorted -> weight
        if sampler == "uncertain":
            self._load_uncertainty()

    def _load_uncertainty(self) -> None:
        """Weights of the ``uncertain`` sampler from the AI judges' battles in the store (see the module)."""
        per: dict[tuple[str, str, str], list[float]] = {}
        judges = set()
        for pid, a, b, w, outcome, inc, judge in self.store.conn.execute(
                "SELECT prompt_id, model_a, model_b, winner, outcome, inconsistent, judge FROM battles "
                "WHERE judge != 'human' AND winner IS NOT NULL"):
            p = 0.5 if inc else (float(outcome) if outcome is not None else
                                 {"model_a": 1.0, "model_b": 0.0}.get(w, 0.5))
            lo, hi = sorted((a, b))
            per.setdefault((pid, lo, hi), []).append(1.0 - abs(2.0 * p - 1.0))
            judges.add(str(judge))
        self.judges = sorted(judges)
        for (a, b), items in self.pairs.items():
            for pid, _ in items:
                us = per.get((pid, a, b))
                u = 1.0 if not us else sum(us) / len(us)
                self.uncertainty[(pid, a, b)] = UNCERTAIN_FLOOR + (1.0 - UNCERTAIN_FLOOR) * u

    def warm(self) -> None:
        """Render every prompt and answer and fit the pair weights once, so the first voters wait for none."""
        for (_, pid), g in self.answers.items():
            for t in [*self.prompts[pid].user_turns, *g.turns]:
                self.html(t)
        self.pair_probabilities()

    # ------------------------------------------------------------------------------------------ sampling
    @property
    def about(self) -> str:
        if self.sampler == "uniform":
            rule = "Every pair of models is equally likely."
        elif self.sampler == "uncertain":
            who = ", ".join(self.judges) if self.judges else "none yet"
            return (f"Battles are chosen where the AI judges of this run ({who}) are least certain: a prompt and "
                    "pair is shown more often the closer the judges' verdict on it is to a coin flip, so your "
                    f"vote settles what they cannot. The prompts come from the recipe's pool ({len(self.prompts)} "
                    f"prompts), never one you already voted on with that pair; the sides are shuffled. "
                    f"{len(self.models)} models take part; their names are shown only after your vote.")
        else:
            rule = ("Pairs are chosen by Chatbot Arena's active sampling rule over the human votes so far "
                    "(banditarena.ratings.active, method 'variance'): a pair is shown more often the more one "
                    "more vote would shrink the uncertainty of its rating difference.")
        return (f"{rule} The prompt is drawn at random from the recipe's pool ({len(self.prompts)} prompts), "
                f"never one you already voted on with that pair; the sides are shuffled. {len(self.models)} "
                "models take part; their names are shown only after your vote.")

    def pair_probabilities(self) -> tuple[list[tuple[str, str]], list[float]]:
        now = time.monotonic()
        if self._probs is not None and (self._probs_n == len(self.outcomes) or now - self._probs_at < self.refresh_s):
            return self._probs
        pairs = list(self.pairs)
        if self.sampler == "uncertain":
            probs = [sum(self.uncertainty[(pid, a, b)] for pid, _ in self.pairs[(a, b)]) for a, b in pairs]
        elif self.sampler == "uniform" or len(self.models) < 2:
            probs = [1.0] * len(pairs)
        else:
            import pandas as pd

            from banditarena.ratings.active import pair_sampling_weights

            battles = pd.DataFrame(self.outcomes, columns=["model_a", "model_b", "winner"]) if self.outcomes else None
            w = pair_sampling_weights(battles, models=self.models, method="variance")
            table = {(a, b): p for a, b, p in zip(w["model_a"], w["model_b"], w["prob"], strict=True)}
            probs = [max(float(table.get(p, table.get((p[1], p[0]), 0.0))), 1e-9) for p in pairs]
        self._probs, self._probs_at, self._probs_n = (pairs, probs), now, len(self.outcomes)
        return self._probs

    def pick(self, voter: str) -> Offer | None:
        """A battle for ``voter`` (None: they have voted on every one)."""
        pairs, probs = self.pair_probabilities()
        done = self._voted.get(voter, set())
        pairs, probs = list(pairs), list(probs)
        while pairs:
            k = self.rng.choices(range(len(pairs)), weights=probs)[0]
            a, b = pairs[k]
            fresh = [pid for pid, m in self.pairs[(a, b)] if m not in done]
            if fresh:
                if self.sampler == "uncertain":
                    pid = self.rng.choices(fresh, weights=[self.uncertainty[(pid, a, b)] for pid in fresh])[0]
                else:
                    pid = self.rng.choice(fresh)
                if self.rng.random() < 0.5:
                    a, b = b, a
                return self._offer(voter, pid, a, b)
            del pairs[k], probs[k]
        return None

    def _offer(self, voter: str, pid: str, a: str, b: str) -> Offer:
        ga, gb = self.answers[(a, pid)], self.answers[(b, pid)]
        bid = "h_" + secrets.token_hex(12)
        ticket = self.tickets.sign({"id": bid, "v": voter, "a": self._tag[ga.cache_key],
                                    "b": self._tag[gb.cache_key]})
        return Offer(bid, self.prompts[pid], a, b, ga, gb, ticket)

    def html(self, text: str) -> str:
        """Sanitized markdown HTML of an answer or prompt (cached)."""
        out = self._html.get(text)
        if out is None:
            out = self._html[text] = render_markdown(text)
        return out

    # ------------------------------------------------------------------------------------------ voting
    def vote(self, voter: str, ticket: str, choice: str) -> dict[str, Any]:
        """Check and store one vote; returns the stored vote. Raises :class:`VoteRefused` (nothing stored)."""
        type_ = CHOICES.get(choice)
        if type_ is None:
            self.refused["unknown choice"] += 1
            raise VoteRefused(422, "Please use one of the four vote buttons.", "unknown choice")
        payload = self.tickets.unsign(ticket) if isinstance(ticket, str) else None
        if payload is None:
            self.refused["forged or expired ticket"] += 1
            raise VoteRefused(403, "This battle was not shown to you (or it expired). Please load a new one.",
                              "forged or expired ticket")
        if payload.get("v") != voter:
            self.refused["not shown to this voter"] += 1
            raise VoteRefused(403, "This battle was not shown to you. Please load a new one.",
                              "not shown to this voter")
        gen_a, gen_b = (self._untag.get(str(payload.get(k))) for k in ("a", "b"))
        sides = [self.by_key.get(k) if k else None for k in (gen_a, gen_b)]
        if sides[0] is None or sides[1] is None or sides[0][1] != sides[1][1]:
            self.refused["stale battle"] += 1
            raise VoteRefused(409, "These answers are no longer in the arena. Please load a new battle.",
                              "stale battle")
        (a, pid), (b, _) = sides
        row = vote_row(vote_id=str(payload["id"]), voter=voter, tstamp=round(time.time(), 4), type_=type_,
                       prompt_id=pid, model_a=a, model_b=b, gen_a=gen_a, gen_b=gen_b,
                       conv_a=f"{payload['id']}-a", conv_b=f"{payload['id']}-b", source="serve")
        with self._lock:
            (stored,) = self.store.put_votes([row])
            if not stored:
                self.refused["already voted"] += 1
                raise VoteRefused(409, "You already voted on this battle. Here is a new one.", "already voted")
            self.n_votes += 1
            self._voted.setdefault(voter, set()).add(row["matchup"])
            self.outcomes.append((a, b, {"leftvote": "model_a", "rightvote": "model_b"}.get(type_, "tie")))
        return row

    def voted(self, voter: str, vote_id: str) -> dict[str, Any] | None:
        """A vote of ``voter`` (None for anyone else's, or none)."""
        r = self.store.conn.execute("SELECT vote_id, type, prompt_id, model_a, model_b, gen_a, gen_b FROM votes "
                                    "WHERE vote_id=? AND voter=?", (vote_id, voter)).fetchone()
        if r is None:
            return None
        return dict(zip(("vote_id", "type", "prompt_id", "model_a", "model_b", "gen_a", "gen_b"), r, strict=True))

    def stats(self) -> dict[str, Any]:
        return {"votes": self.n_votes, "voters": len(self._voted), "models": len(self.models),
                "prompts": len(self.prompts), "pairs": len(self.pairs), "refused": dict(self.refused),
                "excluded answers": dict(self.excluded)}



def build_service(recipe: Any, run_dir: str | Path, secret: bytes | Callable[[], bytes], *, sampler: str = "variance",
                  progress: bool = False, seed: int | None = None) -> VoteService:
    """A :class:`VoteService` for an arena recipe: its prompt pool and contestants; every answer generated (or
    replayed) through the arena's request cache and stored in ``run_dir`` before serving. Opens the run store
    as the writer (one process at a time), after the recipe's prompts and contestants are checked; ``secret``
    may be a function, called only then (so a bad recipe writes nothing)."""
    import asyncio

    from banditarena.arena.runner import Arena, ArenaResult, contestant_backends
    from banditarena.arena.service import check_alpaca_outputs
    from banditarena.config import ArenaRecipe, load_recipe
    from banditarena.judges.base import Judge
    from banditarena.progress import rich_progress
    from banditarena.prompts import load_pool

    class _NoJudge(Judge):
        name = "human"

        async def ajudge(self, requests, progress=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("votes are cast by people, not judged")

    rec = recipe if isinstance(recipe, ArenaRecipe) else load_recipe(recipe)
    prompts = load_pool(rec.prompts, seed=rec.seed, base_dir=rec.base_dir)
    contestants = rec.build_contestants()
    backends = contestant_backends(contestants)
    check_alpaca_outputs(backends, rec.prompts, rec.base_dir)
    store = RunStore(run_dir)
    try:
        with rich_progress(progress) as prog:
            arena = Arena(store, contestants, _NoJudge(), seed=rec.seed, backends=backends, progress=prog,
                          tag="human")
            store.add_prompts(prompts)
            needed = [(c.name, p) for p in prompts for c in contestants]
            result = ArenaResult()

            async def gen() -> dict[tuple[str, str], Generation]:
                try:
                    return await arena.generate(needed, result)
                finally:
                    for b in {id(b): b for b in arena.backends.values()}.values():
                        await b.aclose()

            answers = asyncio.run(gen())
        if store.get_meta("recipe_name") is None:
            store.set_meta("recipe_name", rec.name)
        key = secret() if callable(secret) else secret
        service = VoteService(store, prompts, answers, key, sampler=sampler, seed=seed)
        service.warm()
        return service
    except BaseException:
        store.close()
        raise
