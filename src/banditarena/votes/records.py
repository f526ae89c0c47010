"""What a human vote is, and how it is keyed.

A vote follows FastChat's arena: ``leftvote`` (A is better), ``rightvote`` (B is better), ``tievote`` and
``bothbad_vote``; its battle's winner is ``model_a`` / ``model_b`` / ``tie`` / ``tie (bothbad)``. Voters are
pseudonyms (``v_`` and 16 hex characters): a served voter's is random (kept in a signed cookie); an imported
log's address or user name is replaced by a keyed hash under the run's secret, so no address is ever stored.
One vote per voter per *matchup* (the prompt and the two answers, either side).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from banditarena.store.sqlite import VOTE_WINNER
from banditarena.types import stable_hash

VOTE_TYPES = tuple(VOTE_WINNER)
"""FastChat's vote types: leftvote, rightvote, tievote, bothbad_vote."""
NOT_BATTLE_VOTES = ("chat", "upvote", "downvote", "flag", "share", "regenerate", "clear_history")
"""Other events a FastChat conv.json log holds (skipped, counted as 'not a battle vote')."""
CHOICES = {"a": "leftvote", "b": "rightvote", "tie": "tievote", "bothbad": "bothbad_vote"}
"""The vote page's four buttons."""
VOTER_RE = re.compile(r"^v_[0-9a-f]{16}$")


def new_voter_id() -> str:
    return "v_" + secrets.token_hex(8)


def voter_pseudonym(raw: str, key: bytes) -> str:
    """The voter id of an imported log's ``ip`` / user name: kept when it already is one of ours (a round
    trip), else a keyed hash (HMAC-SHA256 under the run's secret), so the raw value is never stored."""
    raw = str(raw)
    if VOTER_RE.match(raw):
        return raw
    return "v_" + hmac.new(key, b"voter:" + raw.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:16]


def matchup(prompt_id: str, gen_a: str | None, gen_b: str | None, conv_a: str | None = None,
            conv_b: str | None = None) -> str:
    """The identity of what a voter judged: the prompt and the two answers, in either order."""
    if gen_a and gen_b:
        return stable_hash({"p": prompt_id, "g": sorted([gen_a, gen_b])}, 24)
    return stable_hash({"p": prompt_id, "c": sorted([str(conv_a), str(conv_b)])}, 24)


def vote_row(*, vote_id: str, voter: str, tstamp: float, type_: str, prompt_id: str, model_a: str, model_b: str,
             gen_a: str | None, gen_b: str | None, conv_a: str | None = None, conv_b: str | None = None,
             source: str = "serve", meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A vote as ``RunStore.put_votes`` takes it."""
    if type_ not in VOTE_WINNER:
        raise ValueError(f"unknown vote type {type_!r} (known: {', '.join(VOTE_TYPES)})")
    return {"vote_id": vote_id, "voter": voter, "tstamp": float(tstamp), "type": type_, "prompt_id": prompt_id,
            "model_a": model_a, "model_b": model_b, "gen_a": gen_a, "gen_b": gen_b, "conv_a": conv_a,
            "conv_b": conv_b, "matchup": matchup(prompt_id, gen_a, gen_b, conv_a, conv_b), "source": source,
            "meta": meta or {}}
