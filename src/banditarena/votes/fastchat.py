"""FastChat's vote logs in and out: ``conv.json`` vote lines and ``clean_battle*.json``.

**Reading** (:func:`import_logs`). A ``conv.json`` log holds one JSON object per line; the battle votes are
those of ``type`` ``leftvote`` / ``rightvote`` / ``tievote`` / ``bothbad_vote`` with ``models`` (the names
shown, ``""`` or ``"Model A"`` while anonymous), two ``states`` (``conv_id``, ``model_name``, ``messages`` as
``[role, text]`` pairs from ``offset`` on) and ``ip``. A ``clean_battle*.json`` file (what FastChat's
``clean_battle_data.py`` writes) is one JSON list of ``question_id``, ``model_a``, ``model_b``, ``winner``,
``judge``, ``conversation_a``/``_b`` (``role``/``content``), ``anony``, ``language``, ``tstamp``.

FastChat's cleaning rules are applied to both, and every line or entry they drop is counted by its reason:
``malformed`` (not JSON, or a field missing or of the wrong type), ``not a battle vote`` (chat, upvote, flag
... lines), ``unknown vote type``, ``not anonymous`` (the names were shown before the vote), ``invalid
models`` (one side named, the other not), ``empty turn`` (a missing or empty message), ``different prompts``
(the two sides answered different user turns), ``identity words`` (an answer or prompt names a model or maker,
or holds a serving error message: the vote may not be blind), ``model not in recipe``, and ``duplicate vote``
(the same voter on the same matchup again: one vote per voter per battle).

The ``ip`` (or ``judge``) is replaced by a keyed pseudonym (:func:`banditarena.votes.records.voter_pseudonym`):
no address is stored. A prompt whose user turns are in the recipe's pool takes that prompt's id, and an answer
equal to one already stored for that model and prompt takes its generation key, so imported votes line up
with the AI judges' battles on the same answers.

**Writing** (:func:`export_conv`, :func:`export_clean`) gives both formats back; for votes of this run
``export -> import -> export`` is byte for byte the same (a test). The ``ip`` field holds the voter pseudonym.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banditarena.errors import DataError
from banditarena.store import RunStore
from banditarena.store.sqlite import VOTE_WINNER
from banditarena.types import Generation, Prompt, stable_hash
from banditarena.votes.records import NOT_BATTLE_VOTES, VOTE_TYPES, vote_row, voter_pseudonym

IDENTITY_WORDS = (
    "vicuna", "lmsys", "koala", "uc berkeley", "open assistant", "laion", "chatglm", "chatgpt", "gpt-4", "openai",
    "anthropic", "claude", "bard", "palm", "lamda", "google", "llama", "qianwan", "alibaba", "mistral", "zhipu",
    "keg lab", "01.ai", "ai2", "tülu", "network error due to high traffic", "$moderation$",
    "api request error",
)
"""Words whose presence in a battle's text means its vote may not have been blind (FastChat's list: makers,
model families, serving error messages); the recipe's contestant names are added to it."""
WINNER_TYPE = {w: t for t, w in VOTE_WINNER.items()}
ROLES = ("USER", "ASSISTANT")
SKIP_REASONS = ("malformed", "not a battle vote", "unknown vote type", "not anonymous", "invalid models",
                "empty turn", "different prompts", "identity words", "model not in recipe", "duplicate vote")


@dataclass
class ImportReport:
    imported: int = 0
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_skip: dict[str, str] = field(default_factory=dict)    # reason -> "file:line" of its first case
    no_conversation: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.first_skip.setdefault(reason, where)

    def summary(self) -> str:
        """One line: what was read, imported and skipped (by reason, with the first place of each)."""
        parts = [f"{n} {r} (first: {self.first_skip[r]})" for r, n in self.skipped.most_common()]
        extra = f"; {self.no_conversation} without conversations (rated, no style)" if self.no_conversation else ""
        return (f"read {self.read} records, imported {self.imported} votes; skipped "
                + (", ".join(parts) if parts else "none") + extra)


class _Bad(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _remove_html(raw: str) -> str:
    if raw.startswith("<h3>"):
        return raw[raw.find(": ") + 2: -len("</h3>\n")]
    return raw


def _text(x: Any) -> str:
    if not isinstance(x, str):
        raise _Bad("empty turn" if x is None else "malformed")
    if not x.strip():
        raise _Bad("empty turn")
    return x


def _split_turns(pairs: Sequence[Any]) -> tuple[list[str], list[str]]:
    """User and assistant turns of a conversation (alternating, user first, every turn answered)."""
    if not pairs:
        raise _Bad("empty turn")
    if len(pairs) % 2:
        raise _Bad("empty turn")            # a last user turn without an answer
    return [_text(p) for p in pairs[0::2]], [_text(p) for p in pairs[1::2]]


@dataclass
class _Battle:
    tstamp: float
    type_: str
    models: tuple[str, str]
    users: list[str] | None
    answers: tuple[list[str], list[str]] | None
    voter_raw: str
    conv: tuple[str | None, str | None]
    meta: dict[str, Any]


def _parse_conv_line(row: Any) -> _Battle:
    if not isinstance(row, dict):
        raise _Bad("malformed")
    t = row.get("type")
    if t in NOT_BATTLE_VOTES:
        raise _Bad("not a battle vote")
    if t not in VOTE_TYPES:
        raise _Bad("unknown vote type")
    models, states = row.get("models"), row.get("states")
    if not (isinstance(models, list) and len(models) == 2 and isinstance(states, list) and len(states) == 2
            and all(isinstance(s, dict) for s in states)):
        raise _Bad("malformed")
    if not all(isinstance(m, str) for m in models):
        raise _Bad("malformed")
    public = [_remove_html(m) for m in models]
    hidden = [s.get("model_name") for s in states]
    if (public[0] == "") != (public[1] == ""):
        raise _Bad("invalid models")
    if public[0] not in ("", "Model A"):
        raise _Bad("not anonymous")
    if not all(isinstance(m, str) and m.strip() for m in hidden):
        raise _Bad("malformed")
    convs = []
    for s in states:
        msgs, off = s.get("messages"), s.get("offset", 0)
        if not isinstance(msgs, list) or not isinstance(off, int) or off < 0:
            raise _Bad("malformed")
        pairs = []
        for m in msgs[off:]:
            if not (isinstance(m, (list, tuple)) and len(m) == 2):
                raise _Bad("malformed")
            pairs.append(m[1])
        convs.append(_split_turns(pairs))
    (ua, aa), (ub, ab) = convs
    if ua != ub:
        raise _Bad("different prompts")
    ts, ip = row.get("tstamp"), row.get("ip")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not isinstance(ip, str) or not ip:
        raise _Bad("malformed")
    conv = tuple(s.get("conv_id") if isinstance(s.get("conv_id"), str) else None for s in states)
    return _Battle(float(ts), t, (hidden[0].strip(), hidden[1].strip()), ua, (aa, ab), ip, conv, {})  # type: ignore[arg-type]


def _openai_turns(conv: Any) -> tuple[list[str], list[str]]:
    if not isinstance(conv, list) or not all(isinstance(m, dict) for m in conv):
        raise _Bad("malformed")
    return _split_turns([m.get("content") for m in conv])


def _parse_clean_entry(e: Any) -> _Battle:
    if not isinstance(e, dict):
        raise _Bad("malformed")
    w = e.get("winner")
    if w not in WINNER_TYPE:
        raise _Bad("unknown vote type")
    ma, mb, judge, ts = e.get("model_a"), e.get("model_b"), e.get("judge"), e.get("tstamp")
    if not (isinstance(ma, str) and ma.strip() and isinstance(mb, str) and mb.strip() and isinstance(judge, str)
            and judge and isinstance(ts, (int, float)) and not isinstance(ts, bool)):
        raise _Bad("malformed")
    if e.get("anony") is False:
        raise _Bad("not anonymous")
    meta = {k: e[k] for k in ("language",) if isinstance(e.get(k), str)}
    q = e.get("question_id")
    users: list[str] | None = None
    answers = None
    if "conversation_a" in e or "conversation_b" in e:
        ua, aa = _openai_turns(e.get("conversation_a"))
        ub, ab = _openai_turns(e.get("conversation_b"))
        if ua != ub:
            raise _Bad("different prompts")
        users, answers = ua, (aa, ab)
    voter = judge.removeprefix("arena_user_")
    return _Battle(float(ts), WINNER_TYPE[w], (ma.strip(), mb.strip()), users, answers, voter,
                   (q if isinstance(q, str) else None if q is None else str(q), None), meta)


def _records(path: Path) -> Iterable[tuple[str, Any]]:
    """(where, parsed JSON or an exception) per record of a conv.json (JSONL) or clean_battle (JSON list) file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such vote log") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    if text.lstrip().startswith("["):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: not a JSON list of battles (clean_battle format): {exc}") from None
        for k, e in enumerate(entries):
            yield f"{path.name}[{k}]", ("clean", e)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"{path.name}:{n}", ("conv", json.loads(line))
        except json.JSONDecodeError:
            yield f"{path.name}:{n}", ("conv", _Bad("malformed"))


def read_logs(paths: Sequence[str | Path]) -> list[tuple[str, str, str, Any]]:
    """Every record of the logs, ``(file name, where, format, record)``, read before anything is written: a
    missing, unreadable or unparsable file is one :class:`DataError` line naming it."""
    return [(Path(p).name, where, fmt, obj) for p in paths for where, (fmt, obj) in _records(Path(p))]


def import_logs(store: RunStore, paths: Sequence[str | Path], *, key: bytes, models: Iterable[str] | None = None,
                pool: Sequence[Prompt] = (), batch: int = 500,
                records: Sequence[tuple[str, str, str, Any]] | None = None) -> ImportReport:
    """Read FastChat vote logs into ``store`` (votes and their battles, judge ``human``).

    Args:
        records: what :func:`read_logs` gave for ``paths`` (read again when None).
        key: the run's secret (voter pseudonyms are keyed hashes under it).
        models: the recipe's contestant names; a battle naming another model is skipped (None: any model).
        pool: the recipe's prompts (a log's prompt with the same user turns takes that prompt's id).
    """
    known = None if models is None else {m for m in models}
    words = tuple({*IDENTITY_WORDS, *(m.lower() for m in (known or ()) if len(m) >= 3)})
    by_turns = {tuple(p.user_turns): p for p in pool}
    report = ImportReport()
    prompts: dict[str, Prompt] = {}
    pending: list[dict[str, Any]] = []
    where_of: list[str] = []

    def flush() -> None:
        if prompts:
            store.add_prompts(list(prompts.values()))
            prompts.clear()
        for stored, where in zip(store.put_votes(pending), where_of, strict=True):
            if stored:
                report.imported += 1
            else:
                report.skip("duplicate vote", where)
        pending.clear()
        where_of.clear()

    gen_cache: dict[tuple[str, str], dict[tuple[str, ...], str]] = {}

    def gen_key(model: str, pid: str, turns: list[str]) -> str:
        have = gen_cache.get((model, pid))
        if have is None:
            have = {}
            for k, g in _stored_generations(store, model, pid).items():
                have[tuple(g.turns)] = k
            gen_cache[(model, pid)] = have
        k = have.get(tuple(turns))
        if k is None:
            k = stable_hash({"fastchat": model, "prompt": pid, "turns": turns})
            store.put_generation(Generation(model, pid, list(turns), cache_key=k))
            have[tuple(turns)] = k
        return k

    for name, where, fmt, obj in (read_logs(paths) if records is None else records):
        report.read += 1
        try:
            if isinstance(obj, _Bad):
                raise obj
            b = _parse_conv_line(obj) if fmt == "conv" else _parse_clean_entry(obj)
            texts = " ".join([*(b.users or []), *(t for side in (b.answers or ()) for t in side)]).lower()
            if any(w in texts for w in words):
                raise _Bad("identity words")
            if known is not None and not all(m in known for m in b.models):
                raise _Bad("model not in recipe")
        except _Bad as bad:
            report.skip(bad.reason, where)
            continue
        voter = voter_pseudonym(b.voter_raw, key)
        ga = gb = None
        if b.users is not None and b.answers is not None:
            p = by_turns.get(tuple(b.users))
            if p is None:
                p = Prompt("fastchat:" + stable_hash(b.users, 16), [{"role": "user", "content": u} for u in b.users],
                           source="fastchat")
                prompts.setdefault(p.id, p)
            pid = p.id
            ga, gb = gen_key(b.models[0], pid, b.answers[0]), gen_key(b.models[1], pid, b.answers[1])
        else:
            report.no_conversation += 1
            pid = "fastchat-question:" + str(b.conv[0] or stable_hash([b.tstamp, b.voter_raw], 16))
            prompts.setdefault(pid, Prompt(pid, [], source="fastchat"))
        vid = "h_" + stable_hash({"c": list(b.conv), "t": b.tstamp, "v": voter, "m": list(b.models),
                                  "p": pid}, 24)
        pending.append(vote_row(vote_id=vid, voter=voter, tstamp=b.tstamp, type_=b.type_, prompt_id=pid,
                                model_a=b.models[0], model_b=b.models[1], gen_a=ga, gen_b=gb, conv_a=b.conv[0],
                                conv_b=b.conv[1], source=f"import:{name}", meta=b.meta))
        where_of.append(where)
        if len(pending) >= batch:
            flush()
    flush()
    return report


def _stored_generations(store: RunStore, model: str, prompt_id: str) -> dict[str, Generation]:
    rows = store.conn.execute("SELECT cache_key FROM generations WHERE contestant=? AND prompt_id=?",
                              (model, prompt_id)).fetchall()
    return store.get_generations([r[0] for r in rows])


# ---------------------------------------------------------------------------------------------------- export
def _exportable(store: RunStore) -> tuple[list[dict[str, Any]], dict[str, Prompt], dict[str, Generation]]:
    votes = store.votes()
    if votes.empty:
        raise DataError(f"{store.path}: no human votes to export")
    votes = votes.assign(_order=range(len(votes))).sort_values(["tstamp", "_order"], kind="stable")
    rows = votes.drop(columns="_order").to_dict("records")
    prompts = {p.id: p for p in store.prompts()}
    keys = sorted({k for r in rows for k in (r["gen_a"], r["gen_b"]) if isinstance(k, str)})
    return rows, prompts, store.get_generations(keys)


def _conversation(prompt: Prompt | None, gen: Generation | None) -> list[tuple[str, str]] | None:
    if prompt is None or gen is None or not prompt.user_turns:
        return None
    out = []
    for u, a in zip(prompt.user_turns, gen.turns, strict=False):
        out += [("user", u), ("assistant", a)]
    return out


def _conv_id(r: dict[str, Any], side: str) -> str:
    c = r[f"conv_{side}"]
    return c if isinstance(c, str) else f"{r['vote_id']}-{side}"


def export_conv(store: RunStore, out: str | Path) -> tuple[int, int]:
    """Write FastChat conv.json vote lines (anonymous battle mode; ``ip`` holds the voter pseudonym). Returns
    (written, left out: votes imported without conversations)."""
    from banditarena.paths import write_text_atomic

    rows, prompts, gens = _exportable(store)
    lines, left = [], 0
    for r in rows:
        ca = _conversation(prompts.get(r["prompt_id"]), gens.get(r["gen_a"]))
        cb = _conversation(prompts.get(r["prompt_id"]), gens.get(r["gen_b"]))
        if ca is None or cb is None:
            left += 1
            continue
        states = [{"template_name": "banditarena", "system_message": "", "roles": list(ROLES),
                   "messages": [[ROLES[0] if role == "user" else ROLES[1], text] for role, text in conv],
                   "offset": 0, "conv_id": _conv_id(r, side), "model_name": r[f"model_{side}"]}
                  for side, conv in (("a", ca), ("b", cb))]
        lines.append(json.dumps({"tstamp": r["tstamp"], "type": r["type"], "models": ["", ""], "states": states,
                                 "ip": r["voter"]}))
    write_text_atomic(Path(out), "".join(x + "\n" for x in lines))
    return len(lines), left


def export_clean(store: RunStore, out: str | Path) -> int:
    """Write a clean_battle JSON list (FastChat's ``clean_battle_data.py`` output, conv_release mode)."""
    from banditarena.paths import write_text_atomic

    rows, prompts, gens = _exportable(store)
    battles = []
    for r in rows:
        entry: dict[str, Any] = {"question_id": _conv_id(r, "a"), "model_a": r["model_a"], "model_b": r["model_b"],
                                 "winner": VOTE_WINNER[r["type"]], "judge": f"arena_user_{r['voter']}"}
        ca = _conversation(prompts.get(r["prompt_id"]), gens.get(r["gen_a"]))
        cb = _conversation(prompts.get(r["prompt_id"]), gens.get(r["gen_b"]))
        if ca is not None and cb is not None:
            entry["conversation_a"] = [{"role": role, "content": t} for role, t in ca]
            entry["conversation_b"] = [{"role": role, "content": t} for role, t in cb]
            entry["turn"] = len(ca) // 2
        entry.update(anony=True, language=(r["meta"] or {}).get("language", "unknown"), tstamp=r["tstamp"])
        battles.append(entry)
    write_text_atomic(Path(out), json.dumps(battles, indent=2, ensure_ascii=False) + "\n")
    return len(battles)
