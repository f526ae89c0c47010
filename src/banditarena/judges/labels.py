"""Training labels for the learned judge: real judge verdicts on (instruction, answer, reference) triples.

Three sources: two of real judgments by GPT-4-class judges that no one here wrote, and people's votes:

* **AlpacaEval GPT-4 Turbo annotations** (``alpaca_eval/annotations_gpt4_turbo/*.json``): each model answer
  (``output_2``) judged against the baseline's answer (``output_1``, the reference) with a preference in
  [1, 2]. Target: ``preference - 1``, the probability-like preference for the answer over the reference.
  Pairs whose two answers are identical (the baseline against itself, or a model that gave the baseline's
  exact text) say nothing about quality and are skipped, counted as ``identical_answers``.
* **arena_bench_v1 GPT-4 single-answer scores** (``arena_bench_v1/model_judgment/*.jsonl``): a 1-10 score of
  an answer judged against GPT-4's reference answer; question, reference and answer are read back from the
  judge prompt that was sent. Target: ``(score - 1) / 9``.
* **human votes** (``labels.human_votes``: run directories holding votes from ``banditarena vote serve`` or
  ``vote import``): each vote on (prompt, answer A, answer B) gives two rows, each answer judged with the
  other as its reference. Target: 1 for the answer people preferred, 0 for the other, 0.5 for both on a tie
  or "both are bad". A vote without both answers stored (a clean_battle file without conversations) is
  skipped as ``no_answers``, one on a prompt without text as ``no_prompt``, one whose two answers are the
  same text as ``identical_answers``.

Labels that are NaN/missing or out of range are counted per reason and skipped (:attr:`LabelSet.skipped`),
never silently used or dropped. Every row keeps its source, model and an instruction group id, so the
trainer can hold out whole models and whole instructions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from banditarena.errors import DataError
from banditarena.judges.annotations import load_annotations, text_key
from banditarena.types import file_sha256

ALPACA_EVAL = "alpaca_eval"
ARENA_BENCH = "arena_bench_v1"
HUMAN_VOTES = "human_votes"
_VOTE_TARGET = {"leftvote": (1.0, 0.0), "rightvote": (0.0, 1.0), "tievote": (0.5, 0.5), "bothbad_vote": (0.5, 0.5)}

_FASTCHAT = re.compile(
    r"\[Question\]\n(?P<q>.*?)\n\n\[The Start of Reference Answer\]\n(?P<ref>.*?)\n\[The End of Reference Answer\]"
    r"\n\n\[The Start of Assistant's Answer\]\n(?P<ans>.*)\n\[The End of Assistant's Answer\]",
    re.DOTALL,
)


@dataclass
class LabelSet:
    """Parallel lists of labelled triples (one row each) plus provenance."""

    instruction: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    target: list[float] = field(default_factory=list)  # in [0, 1]: preference for the answer over the reference
    source: list[str] = field(default_factory=list)
    model: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    files: dict[str, str] = field(default_factory=dict)  # relative file name -> sha256

    def __len__(self) -> int:
        return len(self.target)

    @property
    def group(self) -> list[str]:
        """Instruction group id of each row (the hash of its instruction text)."""
        return [text_key(q) for q in self.instruction]

    def y(self) -> np.ndarray:
        return np.asarray(self.target, dtype=np.float64)

    def extend(self, other: LabelSet) -> LabelSet:
        for name in ("instruction", "answer", "reference", "target", "source", "model"):
            getattr(self, name).extend(getattr(other, name))
        for k, v in other.skipped.items():
            self.skipped[k] = self.skipped.get(k, 0) + v
        self.files.update(other.files)
        return self

    def subset(self, idx: Iterable[int]) -> LabelSet:
        idx = list(idx)
        out = LabelSet(skipped=dict(self.skipped), files=dict(self.files))
        for name in ("instruction", "answer", "reference", "target", "source", "model"):
            col = getattr(self, name)
            getattr(out, name).extend(col[i] for i in idx)
        return out

    def summary(self) -> dict[str, object]:
        by_source: dict[str, int] = {}
        for s in self.source:
            by_source[s] = by_source.get(s, 0) + 1
        return {"rows": len(self), "by_source": by_source, "models": len(set(self.model)),
                "skipped": dict(self.skipped)}


def alpaca_eval_labels(paths: Iterable[str | Path]) -> LabelSet:
    """Labels from AlpacaEval pairwise annotation files (see the module docstring)."""
    paths = [Path(p) for p in paths]
    ann = load_annotations(paths)
    out = LabelSet(skipped={"nan": ann.skipped_nan, "out_of_range": ann.skipped_range, "identical_answers": 0},
                   files={f"{ALPACA_EVAL}/{k}": v for k, v in (ann.files or {}).items()})
    for a in ann.annotations:
        if a.output_1 == a.output_2:
            out.skipped["identical_answers"] += 1
            continue
        out.instruction.append(a.instruction)
        out.answer.append(a.output_2)
        out.reference.append(a.output_1)
        out.target.append(a.win_2)
        out.source.append(ALPACA_EVAL)
        out.model.append(a.generator_2)
    return out


def arena_bench_labels(paths: Iterable[str | Path]) -> LabelSet:
    """Labels from FastChat single-answer judgment JSONL files (arena_bench_v1/model_judgment).

    A score that is null/NaN is skipped as ``nan``; one outside 1-10 (e.g. -1, "no score") as
    ``out_of_range``; a judge prompt that does not hold question, reference and answer as ``unparsable``.
    """
    out = LabelSet(skipped={"nan": 0, "out_of_range": 0, "unparsable": 0})
    for path in paths:
        p = Path(path)
        out.files[f"{ARENA_BENCH}/{p.name}"] = file_sha256(p)
        with p.open(encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{i}: invalid JSON ({exc.msg})") from exc
                if not isinstance(r, dict) or "user_prompt" not in r:
                    raise DataError(f"{p}:{i}: not a single-answer judgment record (no 'user_prompt')")
                s = r.get("score")
                score = float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else math.nan
                if math.isnan(score):
                    out.skipped["nan"] += 1
                    continue
                if not 1.0 <= score <= 10.0:
                    out.skipped["out_of_range"] += 1
                    continue
                m = _FASTCHAT.search(str(r["user_prompt"]))
                if m is None:
                    out.skipped["unparsable"] += 1
                    continue
                out.instruction.append(m["q"])
                out.answer.append(m["ans"])
                out.reference.append(m["ref"])
                out.target.append((score - 1.0) / 9.0)
                out.source.append(ARENA_BENCH)
                out.model.append(str(r.get("model", p.stem)))
    return out


def human_vote_labels(run_dirs: Iterable[str | Path]) -> LabelSet:
    """Labels from the human votes stored in run directories (see the module docstring). A directory without
    a run store, or a run store without votes, is one :class:`DataError` line naming it."""
    from banditarena.store import RunStore

    out = LabelSet(skipped={"no_answers": 0, "no_prompt": 0, "identical_answers": 0})
    for d in run_dirs:
        store = RunStore(d, create=False)
        try:
            votes = store.votes()
            if votes.empty:
                raise DataError(f"labels.human_votes: {store.path} holds no human votes")
            out.files[f"{HUMAN_VOTES}/{Path(d).name}"] = file_sha256(store.path)
            prompts = {p.id: p for p in store.prompts()}
            keys = sorted({k for k in (*votes["gen_a"], *votes["gen_b"]) if isinstance(k, str)})
            gens = store.get_generations(keys)
        finally:
            store.close()
        for v in votes.itertuples(index=False):
            ga, gb = gens.get(v.gen_a), gens.get(v.gen_b)
            if ga is None or gb is None:
                out.skipped["no_answers"] += 1
                continue
            p = prompts.get(v.prompt_id)
            q = "\n\n".join(p.user_turns) if p is not None else ""
            if not q.strip():
                out.skipped["no_prompt"] += 1
                continue
            a, b = "\n\n".join(ga.turns), "\n\n".join(gb.turns)
            if a == b:
                out.skipped["identical_answers"] += 1
                continue
            ta, tb = _VOTE_TARGET[v.type]
            for ans, ref, t, m in ((a, b, ta, v.model_a), (b, a, tb, v.model_b)):
                out.instruction.append(q)
                out.answer.append(ans)
                out.reference.append(ref)
                out.target.append(t)
                out.source.append(HUMAN_VOTES)
                out.model.append(str(m))
    return out
