"""The labelled safety data: XSTest prompts and answers, HH-RLHF harmless pairs, benign instruction data.

Every loader reads the real public files under :func:`banditarena.paths.data_dir` (``../shared/data``) and
raises :class:`~banditarena.errors.DataError` naming the file when one is missing or malformed.

* :func:`xstest_prompts` - 450 prompts, 250 safe ones that look unsafe and 200 unsafe contrasts.
* :func:`xstest_answers` - three models' answers to them with the final human label (compliance / refusal).
  An answer is *harmful* when it fully complies with an unsafe prompt (``harmful`` column; partial refusals
  to unsafe prompts are ``None``: neither clearly harmful nor clearly safe).
* :func:`hh_pairs` - 2,312 HH-RLHF red-team dialogues ending in two replies; people judged ``chosen`` the
  less harmful one. Each pair keeps the dialogue before the reply (``context``) and its last human turn.
* :func:`benign_instructions` - AlpacaEval's 805 instructions with answers of a few chat models: ordinary
  assistant traffic, used as safe examples (no person labelled them; they are curated benign tasks).

Splits are by hash of a group key (the XSTest prompt, the HH dialogue's first human turn) so no group is on
both sides of a split: :func:`fold_of`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from banditarena.errors import DataError
from banditarena.paths import data_dir
from banditarena.text import iter_jsonl
from banditarena.types import stable_hash

XSTEST_MODELS = ("llama2new", "llama2orig", "mistralinstruct")
#: AlpacaEval generators whose answers serve as benign examples (strong and weak, short and long).
BENIGN_GENERATORS = ("Mixtral-8x7B-Instruct-v0.1", "Mistral-7B-Instruct-v0.2", "vicuna-7b-v1.5",
                     "oasst-sft-pythia-12b")


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path}: safety data file not found (set BANDITARENA_DATA to the shared data folder)")
    return path


def fold_of(key: str, k: int, seed: int = 0) -> int:
    """The fold (0..k-1) of a group key: a stable hash, the same on every machine."""
    return int(stable_hash({"g": key, "seed": seed}, 8), 16) % k


@dataclass
class XSTestPrompt:
    id: str
    prompt: str
    type: str
    label: str  # "safe" | "unsafe"
    focus: str
    note: str


@dataclass
class XSTestAnswer:
    prompt_id: str
    model: str
    type: str
    prompt: str
    completion: str
    prompt_label: str  # safe | unsafe
    final_label: str  # 1_full_compliance | 2_full_refusal | 3_partial_refusal

    @property
    def complies(self) -> bool:
        return self.final_label.startswith("1_")

    @property
    def harmful(self) -> bool | None:
        """True: complies with an unsafe prompt; False: any answer to a safe prompt or a refusal; None:
        a partial refusal of an unsafe prompt (not a clear label either way)."""
        if self.prompt_label == "safe":
            return False
        if self.final_label.startswith("1_"):
            return True
        if self.final_label.startswith("2_"):
            return False
        return None


def xstest_prompts(root: Path | None = None) -> list[XSTestPrompt]:
    path = _need((root or data_dir()) / "xstest" / "xstest_prompts.csv")
    out = []
    with path.open(encoding="utf-8", newline="") as fh:
        for i, r in enumerate(csv.DictReader(fh), start=2):
            try:
                label = r["label"].strip()
                if label not in ("safe", "unsafe"):
                    raise ValueError(f"label {label!r}")
                out.append(XSTestPrompt(r["id"].strip(), r["prompt"], r["type"].strip(), label,
                                        (r.get("focus") or "").strip(), (r.get("note") or "").strip()))
            except (KeyError, ValueError) as exc:
                raise DataError(f"{path}:{i}: bad XSTest row ({exc})") from exc
    return out


def xstest_answers(root: Path | None = None, models: tuple[str, ...] = XSTEST_MODELS) -> list[XSTestAnswer]:
    """Every model's answer to every XSTest prompt with its human label (``prompt_id`` = the prompts file's id)."""
    root = root or data_dir()
    prompts = {p.id: p for p in xstest_prompts(root)}
    out = []
    for m in models:
        path = _need(root / "xstest" / "model_completions" / f"{m}.csv")
        with path.open(encoding="utf-8", newline="") as fh:
            for i, r in enumerate(csv.DictReader(fh), start=2):
                # ids are "v2-<id of xstest_prompts.csv>"; one prompt was reworded later ("my enemy's death"
                # -> "someone's death"): the answer keeps the wording its model saw
                p = prompts.get((r.get("id") or "").strip().removeprefix("v2-"))
                if p is None or p.type != (r.get("type") or "").strip():
                    raise DataError(f"{path}:{i}: id {r.get('id')!r} does not match a prompt of xstest_prompts.csv")
                label = (r.get("final_label") or "").strip()
                if label[:2] not in ("1_", "2_", "3_"):
                    raise DataError(f"{path}:{i}: final_label {label!r} is not 1_/2_/3_")
                out.append(XSTestAnswer(p.id, m, p.type, r.get("prompt") or p.prompt, r.get("completion") or "", p.label,
                                        label))
    return out


@dataclass
class HHPair:
    index: int
    context: str  # the dialogue before the final reply
    prompt: str  # the last human turn
    first_turn: str  # the first human turn (the group key)
    chosen: str  # the final reply people judged less harmful
    rejected: str


def _split_dialogue(text: str) -> tuple[str, str, str, str]:
    """(context, last human turn, first human turn, final assistant reply) of an HH transcript."""
    cut = text.rfind("\n\nAssistant:")
    if cut < 0:
        raise ValueError("no assistant turn")
    context, reply = text[:cut], text[cut + len("\n\nAssistant:"):].strip()
    h = context.rfind("\n\nHuman:")
    if h < 0:
        raise ValueError("no human turn")
    last = context[h + len("\n\nHuman:"):].strip()
    f = context.find("\n\nHuman:")
    rest = context[f + len("\n\nHuman:"):]
    first = rest.split("\n\nAssistant:")[0].strip()
    return context, last, first, reply


def hh_pairs(root: Path | None = None) -> list[HHPair]:
    """HH-RLHF harmless-base test pairs whose chosen and rejected replies follow the same dialogue and differ."""
    path = _need((root or data_dir()) / "hh_rlhf" / "harmless-base-test.jsonl.gz")
    out = []
    try:
        for lineno, r in iter_jsonl(path):
            cc, cp, cf, creply = _split_dialogue(r["chosen"])
            rc, _, _, rreply = _split_dialogue(r["rejected"])
            if cc != rc or creply == rreply:
                continue  # not a comparable pair (a handful differ earlier in the dialogue or not at all)
            out.append(HHPair(lineno - 1, cc, cp, cf, creply, rreply))
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: unreadable HH-RLHF file ({exc})") from exc
    return out


def benign_instructions(root: Path | None = None, generators: tuple[str, ...] = BENIGN_GENERATORS
                        ) -> list[tuple[str, str]]:
    """(instruction, answer) pairs from AlpacaEval model outputs (ordinary, benign assistant traffic)."""
    root = root or data_dir()
    out = []
    for g in generators:
        path = _need(root / "alpaca_eval" / "model_outputs" / f"{g}.json")
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
            out.extend((str(r["instruction"]), str(r["output"])) for r in rows)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not an AlpacaEval model-output file ({exc})") from exc
    return out


def source_files(root: Path | None = None) -> dict[str, Path]:
    """The files the trained classifier is built from (their hashes go into its manifest)."""
    root = root or data_dir()
    files = {"xstest/xstest_prompts.csv": root / "xstest" / "xstest_prompts.csv"}
    for m in XSTEST_MODELS:
        files[f"xstest/model_completions/{m}.csv"] = root / "xstest" / "model_completions" / f"{m}.csv"
    files["hh_rlhf/harmless-base-test.jsonl.gz"] = root / "hh_rlhf" / "harmless-base-test.jsonl.gz"
    for g in BENIGN_GENERATORS:
        files[f"alpaca_eval/model_outputs/{g}.json"] = root / "alpaca_eval" / "model_outputs" / f"{g}.json"
    return files
