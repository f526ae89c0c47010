"""The safety screen of the flywheel's data selection: prompts and both answers of every candidate row.

Every distinct prompt turn is scored on its own, every answer in the context of the user turn it answers
(deduplicated, so a prompt shared by many rows is scored once). Rules, per row:

* a prompt or chosen answer (SFT: any of the winner's turns) that is ``unsafe`` drops the row (an unsafe
  prompt only with ``unsafe_prompts="drop"``), reason ``safety: ...`` with the categories and an example;
* otherwise a prompt or chosen answer that is ``uncertain`` holds the row back, reason ``safety-uncertain: ...``
  (an LLM classifier that failed or answered nonsense: a rerun classifies it);
* an unsafe rejected answer keeps the row and is noted in its provenance (``rejected_safety``).
"""

from __future__ import annotations

from typing import Any

from banditarena.types import Prompt

EXAMPLE_CHARS = 300


class _FilterAdapter:
    """An old-style ``SafetyFilter`` (``check(text) -> SafetyVerdict``) as a scorer."""

    def __init__(self, flt: Any) -> None:
        self.flt = flt
        self.name = getattr(flt, "name", type(flt).__name__)
        self.version = "filter"

    def identity(self) -> dict[str, Any]:
        return {"filter": self.name}

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[Any]:
        from banditarena.safety import SafetyResult

        out = []
        for t in texts:
            v = self.flt.check(t)
            out.append(SafetyResult("safe" if v.ok else "unsafe", 0.0 if v.ok else 1.0,
                                    {} if v.ok else {"flagged": "; ".join(v.reasons)}, scorer=self.name))
        return out


def as_scorer(safety: Any) -> Any:
    if safety is None:
        from banditarena.safety import make_scorer

        return make_scorer()
    if hasattr(safety, "score"):
        return safety
    if hasattr(safety, "check"):
        return _FilterAdapter(safety)
    raise TypeError(f"safety must be a safety scorer (score) or filter (check), got {type(safety).__name__}")


def _cut(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " [...]"


def screen(candidates: list[tuple[str, Prompt, dict[str, Any]]], safety: Any = None, *,
           unsafe_prompts: str = "drop") -> tuple[list[tuple[str, Prompt, dict[str, Any]]], list[dict[str, Any]]]:
    """(kept candidates, excluded entries) of the rows ``(kind, prompt, info)`` of the data selection."""
    if unsafe_prompts not in ("drop", "keep"):
        raise ValueError(f"unsafe_prompts must be 'drop' or 'keep', got {unsafe_prompts!r}")
    scorer = as_scorer(safety)
    name = getattr(scorer, "name", type(scorer).__name__)
    # what to score: prompt turns alone; answers with the user turn they answer
    prompt_texts: dict[str, None] = {}
    pairs: dict[tuple[str, str], None] = {}
    plan = []
    for kind, p, info in candidates:
        users = p.user_turns
        turns = list(info["turns"]) if kind == "sft" else [info["chosen"]]
        chosen = [(users[min(i, len(users) - 1)] if users else "", t) for i, t in enumerate(turns)]
        rejected = [(users[0] if users else "", info["rejected"])] if kind == "dpo" else []
        for u in users:
            prompt_texts[u] = None
        for pr in (*chosen, *rejected):
            pairs[pr] = None
        plan.append((users, chosen, rejected))
    plist = list(prompt_texts)
    alist = list(pairs)
    p_res = dict(zip(plist, scorer.score(plist))) if plist else {}
    a_res = dict(zip(alist, scorer.score([a for _, a in alist], prompts=[q for q, _ in alist]))) if alist else {}

    kept, excluded = [], []
    for (kind, p, info), (users, chosen, rejected) in zip(candidates, plan):
        pr = [(u, p_res[u]) for u in users]
        ch = [(q, a, a_res[(q, a)]) for q, a in chosen]
        rj = [(q, a, a_res[(q, a)]) for q, a in rejected]
        verdicts = {"prompt": _worst([r for _, r in pr]), "chosen": _worst([r for *_, r in ch]),
                    "rejected": _worst([r for *_, r in rj]) if rj else None}
        bad_prompt = [(u, r) for u, r in pr if r.unsafe] if unsafe_prompts == "drop" else []
        bad_chosen = [(q, a, r) for q, a, r in ch if r.unsafe]
        unsure = [("prompt", u, r) for u, r in pr if r.uncertain] + [("answer", a, r) for _, a, r in ch if r.uncertain]
        base = {"prompt_id": p.id, "kind": kind, "filter": name, "verdicts": verdicts,
                "winner": info.get("winner"), "loser": info.get("loser")}
        if bad_prompt or bad_chosen:
            cats: dict[str, str] = {}
            parts = []
            for u, r in bad_prompt:
                cats.update(r.categories)
                parts.append("prompt unsafe (" + "; ".join(r.reasons() or [f"score {r.score:.2f}"]) + ")")
            for _, a, r in bad_chosen:
                cats.update(r.categories)
                parts.append(("winner's answer" if kind == "sft" else "chosen answer") + " unsafe ("
                             + "; ".join(r.reasons() or [f"score {r.score:.2f}"]) + ")")
            example = {"prompt": _cut(users[0] if users else ""),
                       "answer": _cut(bad_chosen[0][1] if bad_chosen else chosen[0][1] if chosen else "")}
            excluded.append({**base, "reason": "safety: " + "; ".join(parts), "categories": cats or {"unsafe": ""},
                             "example": example})
            continue
        if unsure:
            what, _, r = unsure[0]
            excluded.append({**base, "reason": f"safety-uncertain: {what} not classified ({r.error or 'uncertain'}); "
                             "held back until a rerun classifies it", "categories": {"uncertain": r.error or ""},
                             "example": {"prompt": _cut(users[0] if users else ""), "answer": _cut(chosen[0][1] if chosen else "")}})
            continue
        info = dict(info)
        bad_rej = [r for *_, r in rj if r.unsafe]
        if bad_rej:
            info["rejected_safety"] = {"verdict": "unsafe", "categories": dict(bad_rej[0].categories)}
        if unsafe_prompts == "keep" and any(r.unsafe for _, r in pr):
            info["prompt_safety"] = {"verdict": "unsafe", "categories": {c: w for _, r in pr for c, w in r.categories.items()}}
        kept.append((kind, p, info))
    return kept, excluded


def _worst(results: list[Any]) -> str | None:
    if not results:
        return None
    vs = {r.verdict for r in results}
    return "unsafe" if "unsafe" in vs else "uncertain" if "uncertain" in vs else "safe"


def exclusions_html(run_dir: Any, examples: int = 3) -> str | None:
    """HTML for the flywheel report: safety exclusions per iteration and category, a few examples behind a
    click (``<details>``). Every piece of data text is escaped. None when no iteration excluded anything."""
    import html
    from pathlib import Path

    from banditarena.safety import HAZARD_CATEGORIES
    from banditarena.text import iter_jsonl

    files = sorted(Path(run_dir).glob("data/it*/excluded.jsonl"), key=lambda f: int(f.parent.name[2:] or 0))
    rows: list[tuple[str, dict[str, Any]]] = []
    for f in files:
        for _, e in iter_jsonl(f):
            if str(e.get("reason", "")).startswith("safety"):
                rows.append((f.parent.name, e))
    if not rows:
        return None
    by: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for it, e in rows:
        for c in (e.get("categories") or {"unsafe": ""}):
            by.setdefault(c, []).append((it, e))
    iters = sorted({it for it, _ in rows}, key=lambda s: int(s[2:] or 0))
    esc = html.escape
    intro = ("<p>Rows the safety screen excluded (an unsafe prompt or chosen answer) or held back (not classified: "
             "<code>uncertain</code>), by category; a row can count in several categories. Click a category for "
             "examples.</p>")
    out = [intro, "<table><thead><tr><th>category</th>"]
    out += [f"<th>{esc(it)}</th>" for it in iters] + ["<th>total</th></tr></thead><tbody>"]
    for c in sorted(by, key=lambda c: -len(by[c])):
        label = f"{c} {HAZARD_CATEGORIES[c]}" if c in HAZARD_CATEGORIES else c
        counts = [sum(1 for it, _ in by[c] if it == i) for i in iters]
        out.append(f"<tr><td>{esc(label)}</td>" + "".join(f"<td>{n}</td>" for n in counts) + f"<td>{len(by[c])}</td></tr>")
    out.append("</tbody></table>")
    for c in sorted(by, key=lambda c: -len(by[c])):
        label = f"{c} {HAZARD_CATEGORIES[c]}" if c in HAZARD_CATEGORIES else c
        out.append(f"<details><summary>{esc(label)}: {len(by[c])} row(s), {min(examples, len(by[c]))} example(s)</summary><ul>")
        for it, e in by[c][:examples]:
            ex = e.get("example") or {}
            out.append(f"<li><b>{esc(it)} {esc(e.get('kind', ''))} row, prompt {esc(e.get('prompt_id', ''))}</b>: "
                       f"{esc(e.get('reason', ''))}<br><i>prompt:</i> {esc(ex.get('prompt', ''))}<br>"
                       f"<i>answer:</i> {esc(ex.get('answer', ''))}</li>")
        out.append("</ul></details>")
    return "\n".join(out)
