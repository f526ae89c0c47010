"""Arena Learning data selection: SFT rows and preference pairs mined from battles, filtered and exported.

* **SFT**: battles the target lost by at least ``sft_margin`` (the paper used K=3 in iteration 1); the row is
  the prompt with the *winner's* answer.
* **DPO**: battles involving the target whose |margin| is at least ``dpo_margin`` (the paper used K=2);
  chosen = winner's answer, rejected = loser's. ``dpo_losses_only`` keeps only those the target lost.
* **RM** (optional): the same pairs as full conversations, TRL ``RewardTrainer``'s implicit-prompt format.

**Baselines** (``mode``, for comparisons at equal rows: ``bench/flywheel_gain.py``): ``random`` keeps the
judge's verdicts but not the margin (SFT rows from battles the target lost by any margin, pairs from any decided
battle, drawn at random, as many as the margin rule gives); ``distill`` fights no battle and calls no judge
(SFT on ``distill_from``'s answers to random prompts of the iteration's split; the loop builds those rows).
``sft_rows`` / ``dpo_rows`` keep a seeded random subset of exactly that many rows when more pass the filters.

Multi-turn battles: SFT trains on the winner's whole dialogue; a preference pair is formed on the first
turn only, because later turns were asked in contexts that differ between the two models.

Filters, each counted with its reason kept: safety (:mod:`banditarena.safety`; default: the offline trained
classifier plus the word list's PII patterns) on the prompt and on both answers of every row, MinHash
near-duplicate prompts, and decontamination against the evaluation test set by embedding nearest neighbours.
An unsafe chosen (SFT: winner's) answer drops the row; an unsafe prompt drops it too unless
``unsafe_prompts="keep"``; a prompt or chosen answer the scorer could not classify (``uncertain``: an LLM
classifier down or unparsable) holds the row back (reason ``safety-uncertain``) until a rerun classifies it.
An unsafe *rejected* answer keeps the row (preferring the safe answer is what the pair teaches) and is noted
in its provenance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from banditarena.config import Model
from banditarena.types import Battle, Generation, Message, Prompt

if TYPE_CHECKING:
    import pandas as pd


class SelectionConfig(Model):
    """Margins (K) and filters of the data selection; the flywheel recipe's ``selection`` field."""

    sft_margin: float = 3.0
    dpo_margin: float = 2.0
    dpo_losses_only: bool = False
    rm_pairs: bool = False
    safety: bool = True
    dedup: bool = True
    dedup_threshold: float = 0.8
    decontaminate: bool = True
    decontam_threshold: float = 0.9
    mode: Literal["margin", "random", "distill"] = "margin"  # see the module docstring (baselines)
    distill_from: str | None = None  # mode distill: the opponent whose answers are the SFT rows
    sft_rows: int | None = Field(None, ge=1)  # at most this many SFT rows (a seeded random subset)
    dpo_rows: int | None = Field(None, ge=1)  # at most this many preference pairs

    @model_validator(mode="after")
    def _distill(self) -> SelectionConfig:
        if self.mode == "distill" and (self.distill_from is None or self.sft_rows is None):
            raise ValueError("mode 'distill' needs distill_from (an opponent's name) and sft_rows")
        if self.distill_from is not None and self.mode != "distill":
            raise ValueError("distill_from is only used with mode: distill")
        return self


@dataclass
class Selection:
    sft: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    rm: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)  # one per kept row: kind, prompt, models, margin
    excluded: list[dict[str, Any]] = field(default_factory=list)  # prompt_id, kind, reason (+ categories, example)

    @property
    def stats(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for e in self.excluded:
            key = e["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        cats: dict[str, int] = {}
        for e in self.excluded:
            for c in e.get("categories") or {}:
                cats[c] = cats.get(c, 0) + 1
        return {"sft": len(self.sft), "dpo": len(self.dpo), "rm": len(self.rm), "excluded": len(self.excluded),
                "excluded_by_reason": reasons, "excluded_by_category": cats,
                "held_back_uncertain": reasons.get("safety-uncertain", 0)}


def _dialogue(prompt: Prompt, turns: Sequence[str]) -> list[Message]:
    msgs: list[Message] = [m for m in prompt.messages if m["role"] == "system"]
    for user, answer in zip(prompt.user_turns, turns, strict=False):
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return msgs


def _get(row: Battle | Mapping[str, Any], key: str) -> Any:
    return row.get(key) if isinstance(row, Mapping) else getattr(row, key)


def target_margin(row: Battle | Mapping[str, Any], targets: set[str]) -> float | None:
    """The battle's margin from the target's side (>0: target better); None if the target is not in it."""
    if _get(row, "model_a") in targets:
        return float(_get(row, "margin"))
    if _get(row, "model_b") in targets:
        return -float(_get(row, "margin"))
    return None


def yields_data(row: Battle | Mapping[str, Any], targets: set[str], k: float) -> bool:
    """True when the target lost this battle (a :class:`Battle` or a stored battle row) by at least ``k``
    (the bandit's data-yield reward)."""
    if _get(row, "winner") is None or _get(row, "margin") is None:
        return False
    m = target_margin(row, targets)
    return m is not None and m <= -k


def select_training_data(
    battles: pd.DataFrame,
    prompts: Mapping[str, Prompt],
    generations: Mapping[tuple[str, str], Generation],
    targets: str | set[str],
    cfg: SelectionConfig | None = None,
    *,
    test_prompts: Sequence[Prompt] = (),
    embedder: Any = None,
    safety: Any = None,
    unsafe_prompts: str = "drop",
    seed: int = 0,
) -> Selection:
    """Mine SFT rows and preference pairs from ``battles`` (columns prompt_id, model_a, model_b, winner, margin).

    ``generations`` maps (contestant, prompt_id) to answers; ``targets`` names the target contestant(s).
    ``safety``: a :class:`banditarena.safety.SafetyScorer` (or an old ``SafetyFilter`` with ``check``);
    default: :func:`banditarena.safety.make_scorer` (offline classifier + word list).
    """
    cfg = cfg or SelectionConfig()
    targets = {targets} if isinstance(targets, str) else set(targets)
    candidates = battle_candidates(battles, prompts, generations, targets, cfg)
    if cfg.mode == "random":  # the verdicts without the margin: as many rows, drawn from every decided battle
        n_by_kind = {k: sum(c[0] == k for c in candidates) for k in ("sft", "dpo")}
        loose = battle_candidates(battles, prompts, generations, targets,
                                  cfg.model_copy(update={"sft_margin": 0.0, "dpo_margin": 0.0}))
        candidates = _subsample(loose, n_by_kind, seed)
    return filter_candidates(candidates, cfg, test_prompts=test_prompts, embedder=embedder, safety=safety,
                             unsafe_prompts=unsafe_prompts, seed=seed)


def _subsample(candidates: list[tuple[str, Prompt, dict[str, Any]]], n_by_kind: Mapping[str, int | None],
               seed: int) -> list[tuple[str, Prompt, dict[str, Any]]]:
    """A seeded random subset of at most ``n_by_kind[kind]`` candidates of each kind (None: all), in order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for kind, n in n_by_kind.items():
        idx = [i for i, c in enumerate(candidates) if c[0] == kind]
        if n is None or n >= len(idx):
            keep.update(idx)
        else:
            keep.update(int(i) for i in rng.choice(idx, size=n, replace=False))
    keep.update(i for i, c in enumerate(candidates) if c[0] not in n_by_kind)
    return [c for i, c in enumerate(candidates) if i in keep]


def battle_candidates(battles: pd.DataFrame, prompts: Mapping[str, Prompt],
                      generations: Mapping[tuple[str, str], Generation], targets: set[str],
                      cfg: SelectionConfig) -> list[tuple[str, Prompt, dict[str, Any]]]:
    """(kind, prompt, row parts) for every battle that passes the margins: the rows before any filter."""
    candidates: list[tuple[str, Prompt, dict[str, Any]]] = []  # kind, prompt, row parts
    for row in battles.to_dict("records"):
        if row.get("winner") not in ("model_a", "model_b") or row.get("margin") is None:
            continue
        m = target_margin(row, targets)
        if m is None:
            continue
        p = prompts[row["prompt_id"]]
        winner = row["model_a"] if row["winner"] == "model_a" else row["model_b"]
        loser = row["model_b"] if winner == row["model_a"] else row["model_a"]
        gw, gl = generations.get((winner, p.id)), generations.get((loser, p.id))
        if gw is None or gl is None:
            continue
        base = {"prompt_id": p.id, "winner": winner, "loser": loser, "target_margin": m, "cluster": p.cluster}
        if m <= -cfg.sft_margin and winner not in targets:
            candidates.append(("sft", p, {**base, "turns": gw.turns}))
        if abs(m) >= cfg.dpo_margin and (m < 0 or not cfg.dpo_losses_only):
            candidates.append(("dpo", p, {**base, "chosen": gw.turns[0], "rejected": gl.turns[0]}))
    return candidates


def distill_candidates(prompts: Sequence[Prompt], generations: Mapping[tuple[str, str], Generation],
                       teacher: str) -> list[tuple[str, Prompt, dict[str, Any]]]:
    """SFT candidates from ``teacher``'s answers to ``prompts`` (no battle, no judge: plain distillation)."""
    out: list[tuple[str, Prompt, dict[str, Any]]] = []
    for p in prompts:
        g = generations.get((teacher, p.id))
        if g is not None and g.turns:
            out.append(("sft", p, {"prompt_id": p.id, "winner": teacher, "loser": "-", "target_margin": None,
                                   "cluster": p.cluster, "turns": g.turns}))
    return out


def filter_candidates(
    candidates: list[tuple[str, Prompt, dict[str, Any]]],
    cfg: SelectionConfig,
    *,
    test_prompts: Sequence[Prompt] = (),
    embedder: Any = None,
    safety: Any = None,
    unsafe_prompts: str = "drop",
    seed: int = 0,
) -> Selection:
    """Safety, decontamination, near-duplicate and identical-row filters, then the ``sft_rows`` /
    ``dpo_rows`` caps; the exported rows with their provenance and every exclusion's reason."""
    out = Selection()

    # safety: prompts and both answers of every row are scored; see the module docstring for the rules
    kept: list[tuple[str, Prompt, dict[str, Any]]] = candidates
    if cfg.safety and candidates:
        from banditarena.flywheel.safety_screen import screen

        kept, excluded = screen(candidates, safety, unsafe_prompts=unsafe_prompts)
        out.excluded.extend(excluded)

    # decontamination against the evaluation test set
    if cfg.decontaminate and test_prompts and kept:
        from banditarena.prompts.testset import decontaminate

        uniq = list({p.id: p for _, p, _ in kept}.values())
        removed = {c.prompt.id: c for c in decontaminate(uniq, list(test_prompts), embedder, threshold=cfg.decontam_threshold).removed}
        if removed:
            keep2 = []
            for kind, p, info in kept:
                c = removed.get(p.id)
                if c is not None:
                    out.excluded.append({"prompt_id": p.id, "kind": kind, "reason":
                                         f"contamination: nearest test prompt {c.test_id}, cosine {c.cosine:.3f}"})
                else:
                    keep2.append((kind, p, info))
            kept = keep2

    # near-duplicate prompts: keep the first occurrence of each near-duplicate group per kind
    if cfg.dedup and kept:
        from banditarena.prompts.dedup import dedup_prompts

        uniq = list({p.id: p for _, p, _ in kept}.values())
        dup_of = dedup_prompts(uniq, threshold=cfg.dedup_threshold).removed
        seen: set[tuple[str, str, str]] = set()
        keep3 = []
        for kind, p, info in kept:
            canon = dup_of.get(p.id, p.id)
            key = (kind, canon, info["winner"] + "|" + info["loser"])
            if key in seen or (canon != p.id and (kind, canon, key[2]) in seen):
                out.excluded.append({"prompt_id": p.id, "kind": kind, "reason": f"near-duplicate: of prompt {canon}"})
                continue
            seen.add(key)
            keep3.append((kind, p, info))
        kept = keep3

    # identical rows (e.g. one opponent's answer beating the target under two strategies gives the same SFT
    # row twice) are kept once: a copy adds weight, not data
    row_seen: set[str] = set()
    for kind, p, info in kept:
        if kind == "sft":
            row: dict[str, Any] = {"messages": _dialogue(p, info["turns"])}
        else:
            prompt_msgs = [*[m for m in p.messages if m["role"] == "system"], {"role": "user", "content": p.user_turns[0]}]
            chosen = [{"role": "assistant", "content": info["chosen"]}]
            rejected = [{"role": "assistant", "content": info["rejected"]}]
            row = {"prompt": prompt_msgs, "chosen": chosen, "rejected": rejected}
        fingerprint = kind + json.dumps(row, sort_keys=True, ensure_ascii=False)
        if fingerprint in row_seen:
            out.excluded.append({"prompt_id": p.id, "kind": kind, "reason": f"duplicate: the same {kind} row as one "
                                 f"already kept (winner {info['winner']}, loser {info['loser']})"})
            continue
        row_seen.add(fingerprint)
        if kind == "sft":
            out.sft.append(row)
        else:
            out.dpo.append(row)
            if cfg.rm_pairs:
                out.rm.append({"chosen": prompt_msgs + chosen, "rejected": prompt_msgs + rejected})
        prov = {k: v for k, v in info.items() if k not in ("turns", "chosen", "rejected")}
        out.provenance.append({"kind": kind, **prov})
    if cfg.sft_rows is not None or cfg.dpo_rows is not None:
        _cap(out, {"sft": cfg.sft_rows, "dpo": cfg.dpo_rows}, seed)
    return out


def _cap(sel: Selection, n_by_kind: Mapping[str, int | None], seed: int) -> None:
    """Keep a seeded random subset of ``n_by_kind[kind]`` rows of each kind (the rest listed as excluded)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for kind in ("sft", "dpo"):
        rows, n = getattr(sel, kind), n_by_kind.get(kind)
        if n is None or len(rows) <= n:
            continue
        prov_idx = [i for i, pr in enumerate(sel.provenance) if pr["kind"] == kind]
        keep = {int(i) for i in rng.choice(len(rows), size=n, replace=False)}
        setattr(sel, kind, [r for i, r in enumerate(rows) if i in keep])
        if kind == "dpo" and len(sel.rm) == len(rows):  # reward-model rows are the same pairs: the same subset
            sel.rm = [r for i, r in enumerate(sel.rm) if i in keep]
        drop = {prov_idx[i] for i in range(len(rows)) if i not in keep}
        for i in sorted(drop):
            pr = sel.provenance[i]
            sel.excluded.append({"prompt_id": pr["prompt_id"], "kind": kind, "reason": f"cap: {kind}_rows {n}"})
        sel.provenance = [pr for i, pr in enumerate(sel.provenance) if i not in drop]


def export(selection: Selection, out_dir: str | Path, *, formats: Sequence[str] = ("jsonl", "parquet")) -> dict[str, Path]:
    """Write sft/dpo(/rm) in TRL's conversational formats, plus provenance and exclusions.

    Each file loads with ``datasets.load_dataset("json"|"parquet", data_files=...)``.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, rows in (("sft", selection.sft), ("dpo", selection.dpo), ("rm", selection.rm)):
        if name == "rm" and not rows:
            continue
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            if fmt == "jsonl":
                with path.open("w", encoding="utf-8") as fh:
                    for r in rows:
                        fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            elif fmt == "parquet":
                if rows:
                    pd.DataFrame(rows).to_parquet(path, index=False)
                else:
                    path.unlink(missing_ok=True)
                    continue
            written[f"{name}.{fmt}"] = path
    for name, rows in (("provenance", selection.provenance), ("excluded", selection.excluded)):
        path = out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        written[name] = path
    return written
