"""Training and honest validation of the learned judge: ``banditarena judge train`` / ``judge eval``.

A training recipe (YAML, :class:`JudgeTrainRecipe`) names the label files, the feature blocks, the head's
L2 strength and where the artifact goes. :func:`train` reads the labels (NaN and out-of-range ones counted
and skipped), featurises them, fits the head on all of them and writes the artifact with a manifest that
records the sha256 of every label file, the settings and the label counts. Seeded and deterministic: the
same recipe and data give the same artifact.

:func:`cross_validate` measures what the judge is worth on data it never saw, in three modes:

* ``instruction``: K folds of AlpacaEval instructions (seeded); a model's answers to the instructions of
  fold k are scored by a head trained on the other folds only (all label models);
* ``model``: every model's answers are scored by a head trained without that model's labels and without
  the labels of its aliases (e.g. arena_bench_v1's ``claude-1`` for AlpacaEval's ``claude``), on all
  instructions;
* ``both`` (the headline): fold x model, so no instruction and no model a score is given for was in the
  head's training labels.

Each mode scores every model of the validation outputs (27 AlpacaEval models), builds the all-pairs
pointwise arena from those out-of-fold scores (:mod:`banditarena.judges.pointwise`) and compares its
Bradley-Terry leaderboard with Chatbot Arena's human-vote Elo (``benchmarks.csv``), and the out-of-fold
scores of the annotated models with GPT-4 Turbo's own labels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from banditarena.config import Model as _Strict
from banditarena.errors import DataError
from banditarena.judges.labels import (
    ALPACA_EVAL,
    ARENA_BENCH,
    HUMAN_VOTES,
    LabelSet,
    alpaca_eval_labels,
    arena_bench_labels,
    human_vote_labels,
)
from banditarena.judges.learned import (
    FeatureSpec,
    Featurizer,
    JudgeArtifact,
    fit_gate,
    fit_judge,
    save_artifact,
)

DEFAULT_ALIASES: dict[str, list[str]] = {
    # AlpacaEval model -> arena_bench_v1 models that are the same model or the same model's other snapshot
    "claude": ["claude-1"],
    "claude-instant-1.2": ["claude-instant-1"],
    "claude-2.1": ["claude-2"],
    "gpt-3.5-turbo-0613": ["gpt-3.5-turbo", "gpt-3.5-turbo-1106"],
    "gpt4_0613": ["gpt-4-0314"],
    "gpt4_1106_preview": ["gpt-4-0314"],
    "gpt-4-turbo-2024-04-09": ["gpt-4-0314"],
    "vicuna-33b-v1.3": ["vicuna-33b-v1.3"],
    "Mistral-7B-Instruct-v0.2": ["mistralai/Mistral-7B-Instruct-v0.1"],
}
MODES = ("instruction", "model", "both")


class LabelsConfig(_Strict):
    alpaca_eval: list[str] = ["data:alpaca_eval/annotations_gpt4_turbo"]  # files or folders of *.json
    arena_bench_v1: list[str] = ["data:arena_bench_v1/model_judgment"]  # files or folders of *.jsonl
    human_votes: list[str] = []  # run directories holding human votes (banditarena vote serve / vote import)
    weights: dict[str, float] = {}  # total weight per source (default: equal)
    # off-topic negatives: this share of the AlpacaEval rows again, each with the same model's answer to
    # another instruction of the same CV fold, labelled a loss (target 0): teaches the judge that an answer
    # that does not address the instruction loses, however fluent (see offtopic_negatives)
    offtopic: float = Field(0.0, ge=0, le=1)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        for k, w in v.items():
            if k not in (ALPACA_EVAL, ARENA_BENCH, HUMAN_VOTES):
                raise ValueError(f"unknown label source '{k}' (known: {ALPACA_EVAL}, {ARENA_BENCH}, {HUMAN_VOTES})")
            if not w > 0:
                raise ValueError(f"weight of '{k}' must be > 0")
        return v


class FeaturesConfig(_Strict):
    blocks: list[str] = list(FeatureSpec().blocks)
    embedder: str = "all-MiniLM-L6-v2"
    max_seq_length: int | None = Field(None, ge=8)
    controlled: list[str] = ["length"]
    orthogonal: bool = False  # the other features made orthogonal to the controlled blocks (see learned.py)
    # bounded length control: answers within exp(band) x the reference's length score as if as long; beyond,
    # the length penalty stays (None: full neutralisation; see FeatureSpec.length_band)
    length_band: float | None = Field(None, ge=0)

    def spec(self) -> FeatureSpec:
        return FeatureSpec(blocks=tuple(self.blocks), embedder=self.embedder, max_seq_length=self.max_seq_length,
                           controlled=tuple(self.controlled), orthogonal=self.orthogonal,
                           length_band=self.length_band)

    @field_validator("controlled")
    @classmethod
    def _spec_ok(cls, v: list[str], info: Any) -> list[str]:
        FeatureSpec(blocks=tuple(info.data.get("blocks") or FeatureSpec().blocks), controlled=tuple(v))
        return v

    @field_validator("orthogonal")
    @classmethod
    def _orthogonal_ok(cls, v: bool, info: Any) -> bool:
        if v and not info.data.get("controlled"):
            raise ValueError("orthogonal: true needs at least one controlled block (e.g. controlled: [length])")
        return v


class HeadConfig(_Strict):
    l2: float = Field(1.0, ge=0)


class GateConfig(_Strict):
    """The relevance gate (``banditarena.judges.learned.RelevanceGate``): P(the answer addresses its
    instruction), trained without judge labels on the real answers against ``negatives`` x as many answers to
    another instruction (same model, same CV fold); the score is multiplied by it. 0: no gate."""

    negatives: float = Field(0.0, ge=0, le=1)
    l2: float = Field(1.0, ge=0)


class ValidationConfig(_Strict):
    folds: int = Field(5, ge=2, le=100)
    outputs: str = "data:alpaca_eval/model_outputs"  # AlpacaEval outputs of the models to rank
    reference: str = "gpt4_1106_preview"  # whose answers are the references
    elo: str = "data:alpaca_eval/benchmarks.csv"
    aliases: dict[str, list[str]] = DEFAULT_ALIASES
    bootstrap: int = Field(100, ge=0)
    # how battles become ratings in the validation arenas: graded (P(A beats B), as `banditarena battle`
    # stores for the learned judge) or winner (win/loss/tie)
    outcomes: Literal["graded", "winner"] = "graded"
    # nested validation (`judge eval`, banditarena.judges.nested): groups of Elo models held out in the outer
    # folds, the adversarial answers (NullModel, gpt4_gamed) and the length-steered twins' annotations
    model_groups: int = Field(3, ge=2, le=27)
    adversarial: str | None = "data:alpaca_eval/adversarial"
    twins: str | None = "data:alpaca_eval/annotations_gpt4_turbo_more"


class JudgeTrainRecipe(_Strict):
    name: str = "judge-learned"
    seed: int = 0
    labels: LabelsConfig = LabelsConfig()
    features: FeaturesConfig = FeaturesConfig()
    head: HeadConfig = HeadConfig()
    gate: GateConfig = GateConfig()
    validation: ValidationConfig = ValidationConfig()
    output: str = "../data/judge-learned"  # artifact path prefix, relative to the recipe's folder
    base_dir: Path | None = Field(None, exclude=True)

    def resolve(self, value: str) -> Path:
        from banditarena.paths import resolve_path

        return resolve_path(value, self.base_dir)

    @model_validator(mode="after")
    def _gate_blocks(self) -> JudgeTrainRecipe:
        from banditarena.judges.learned import GATE_BLOCKS

        missing = [b for b in GATE_BLOCKS if b not in self.features.blocks]
        if self.gate.negatives > 0 and missing:
            raise ValueError(f"gate.negatives needs the feature block '{missing[0]}' in features.blocks")
        return self


def load_train_recipe(path: str | Path) -> JudgeTrainRecipe:
    """Load and validate a learned-judge training recipe; errors name the file and the field."""
    from banditarena.config import load_yaml, validate

    data = load_yaml(path)
    return validate(JudgeTrainRecipe, data, path, base_dir=Path(path).resolve().parent)


# ------------------------------------------------------------------------------------------------- labels


def _files(recipe: JudgeTrainRecipe, entries: list[str], suffix: str | tuple[str, ...], field_name: str) -> list[Path]:
    out: list[Path] = []
    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    for e in entries:
        p = recipe.resolve(e)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.name.endswith(suffixes))
            if not found:
                raise DataError(f"labels.{field_name}: no {' or '.join('*' + x for x in suffixes)} files in {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"labels.{field_name}: {p} does not exist")
    return out


def load_labels(recipe: JudgeTrainRecipe, *, offtopic: bool = True) -> LabelSet:
    """Every training label the recipe names (see :mod:`banditarena.judges.labels`); ``offtopic=False``
    leaves out the ``labels.offtopic`` negatives."""
    labels = LabelSet()
    if recipe.labels.alpaca_eval:
        from banditarena.judges.annotations import ANNOTATION_SUFFIXES

        labels.extend(alpaca_eval_labels(_files(recipe, recipe.labels.alpaca_eval, ANNOTATION_SUFFIXES, "alpaca_eval")))
    if recipe.labels.arena_bench_v1:
        labels.extend(arena_bench_labels(_files(recipe, recipe.labels.arena_bench_v1, ".jsonl", "arena_bench_v1")))
    if recipe.labels.human_votes:
        dirs = [recipe.resolve(d) for d in recipe.labels.human_votes]
        for d in dirs:
            if not (d / "run.sqlite").is_file():
                raise DataError(f"labels.human_votes: {d} is not a run directory (no run.sqlite)")
        labels.extend(human_vote_labels(dirs))
    if not len(labels):
        raise DataError("the recipe's label files hold no usable labels")
    if offtopic and recipe.labels.offtopic > 0:
        labels.extend(offtopic_negatives(labels, recipe.labels.offtopic, recipe.validation.folds, recipe.seed))
    return labels


def offtopic_pairs(labels: LabelSet, share: float, folds: int, seed: int) -> list[tuple[int, int]]:
    """``(i, j)`` pairs: ``share`` of the AlpacaEval rows ``i``, each with a row ``j`` of the same model for a
    different instruction **of the same CV fold** (so holding a fold out drops every text of it). Seeded."""
    from banditarena.judges.annotations import text_key

    rng = np.random.default_rng(seed + 7)
    idx = np.array([i for i, s in enumerate(labels.source) if s == ALPACA_EVAL])
    out: list[tuple[int, int]] = []
    if idx.size < 2:
        return out
    # the folds of cross-validation: the same instruction set (AlpacaEval's), the same seed
    fold = _fold_of([text_key(labels.instruction[i]) for i in idx], folds, seed)
    pick = rng.choice(idx, size=round(share * idx.size), replace=False)
    by: dict[tuple[str, int], list[int]] = {}
    for i in idx:
        by.setdefault((labels.model[i], fold[text_key(labels.instruction[i])]), []).append(int(i))
    for i in sorted(pick.tolist()):
        pool = by[(labels.model[i], fold[text_key(labels.instruction[i])])]
        others = [j for j in pool if labels.instruction[j] != labels.instruction[i]]
        if not others:
            continue
        out.append((int(i), others[int(rng.integers(len(others)))]))
    return out


def gate_pairs(labels: LabelSet, recipe: JudgeTrainRecipe) -> list[tuple[int, int]]:
    """The relevance gate's off-topic rows (``recipe.gate.negatives``), drawn from the real labels only, with
    another seed than ``labels.offtopic``'s."""
    if recipe.gate.negatives <= 0:
        return []
    return offtopic_pairs(labels, recipe.gate.negatives, recipe.validation.folds, recipe.seed + 1000)


def gate_rows(labels: LabelSet, pairs: list[tuple[int, int]]) -> tuple[list[str], list[str], list[str]]:
    """(instructions, answers, references) of the gate's off-topic rows: row i's instruction and reference
    with row j's answer."""
    return ([labels.instruction[i] for i, _ in pairs], [labels.answer[j] for _, j in pairs],
            [labels.reference[i] for i, _ in pairs])


def offtopic_negatives(labels: LabelSet, share: float, folds: int, seed: int) -> LabelSet:
    """Off-topic negatives: row ``i``'s instruction and reference with row ``j``'s answer for each pair of
    :func:`offtopic_pairs`, target 0, same source (the head's features, not a separate intercept, must learn
    it)."""
    out = LabelSet()
    for i, j in offtopic_pairs(labels, share, folds, seed):
        out.instruction.append(labels.instruction[i])
        out.answer.append(labels.answer[j])
        out.reference.append(labels.reference[i])
        out.target.append(0.0)
        out.source.append(ALPACA_EVAL)
        out.model.append(labels.model[i])
    return out


def _chunked_transform(featurizer: Featurizer, q: list[str], a: list[str], r: list[str], *, control: bool,
                       progress: Callable[[str, int, int], None], stage: str, chunk: int = 512) -> np.ndarray:
    progress(stage, 0, len(a))
    parts = []
    for s in range(0, len(a), chunk):
        parts.append(featurizer.transform(q[s:s + chunk], a[s:s + chunk], r[s:s + chunk], control=control))
        progress(stage, len(a[s:s + chunk]), len(a))
    return np.vstack(parts) if parts else np.zeros((0, 0))


# -------------------------------------------------------------------------------------------------- train


@dataclass
class TrainResult:
    artifact: JudgeArtifact
    labels: dict[str, Any]
    npz: Path
    manifest: Path
    seconds: float


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("banditarena")
    except Exception:  # noqa: BLE001 - not installed: no version to record
        return "unknown"


def train(recipe: JudgeTrainRecipe | str | Path, *, out: str | Path | None = None, progress: bool = True,
          embedder: Any | None = None) -> TrainResult:
    """Fit the learned judge on all of the recipe's labels and write its artifact (``out`` overrides
    ``recipe.output``). Shows a progress bar while featurising (embeddings come from the on-disk cache)."""
    from banditarena.progress import rich_progress
    from banditarena.types import stable_hash

    if not isinstance(recipe, JudgeTrainRecipe):
        recipe = load_train_recipe(recipe)
    t0 = time.perf_counter()
    labels = load_labels(recipe, offtopic=False)
    real = np.array([s == ALPACA_EVAL for s in labels.source])
    pairs = gate_pairs(labels, recipe)
    if recipe.labels.offtopic > 0:
        labels.extend(offtopic_negatives(labels, recipe.labels.offtopic, recipe.validation.folds, recipe.seed))
    spec = recipe.features.spec()
    featurizer = Featurizer(spec, embedder)
    with rich_progress(progress) as prog:
        X = _chunked_transform(featurizer, labels.instruction, labels.answer, labels.reference, control=False,
                               progress=prog, stage="features")
        X_off = _chunked_transform(featurizer, *gate_rows(labels, pairs), control=False, progress=prog,
                                   stage="gate") if pairs else None
    emb_id = featurizer.embedder.identity() if spec.needs_embeddings and hasattr(featurizer.embedder, "identity") \
        else {"model": spec.embedder}
    manifest = {
        "name": recipe.name,
        "created_by": "banditarena judge train",
        "banditarena_version": _package_version(),
        "seed": recipe.seed,
        "settings": {"head": recipe.head.model_dump(), "label_weights": recipe.labels.weights,
                     **({"gate": recipe.gate.model_dump()} if pairs else {})},
        "embedder": emb_id,
        "data": dict(sorted(labels.files.items())),
        "labels": labels.summary(),
        "recipe_sha": stable_hash(recipe.model_dump(mode="json", exclude={"output"}), 16),
        "feature_names": featurizer.names(total=int(X.shape[1])),
    }
    art = fit_judge(spec, X, labels.y(), labels.source, l2=recipe.head.l2, weights=recipe.labels.weights,
                    manifest=manifest)
    if X_off is not None:
        art.gate = fit_gate(spec, X[:len(real)][real], X_off, l2=recipe.gate.l2)
    target = (Path(out) if out is not None else recipe.resolve(recipe.output)).resolve()
    npz, js = save_artifact(art, target)
    return TrainResult(art, labels.summary(), npz, js, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------ validation


def arena_elo(path: str | Path) -> pd.Series:
    """Chatbot Arena Elo per model from AlpacaEval's ``benchmarks.csv``: the April 18, 2024 column, and the
    Feb 2, 2024 column for the models the April column leaves blank (14 of the 27)."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read the benchmarks table ({exc})") from exc
    cols = {" ".join(str(c).split()): c for c in df.columns}
    apr, feb = cols.get("Arena Elo [April 18, 2024]"), cols.get("Arena Elo [Feb 2, 2024]")
    if apr is None or "Model" not in df.columns:
        raise DataError(f"{p}: no 'Model' and 'Arena Elo [April 18, 2024]' columns")
    elo = df[apr] if feb is None else df[apr].fillna(df[feb])
    out = pd.Series(elo.to_numpy(dtype=float), index=df["Model"].astype(str), name="arena_elo").dropna()
    return out.sort_values(ascending=False)


@dataclass
class ArenaData:
    """The validation arena: every model's answers to the same instructions, and the references."""

    instructions: list[str]
    references: list[str]
    answers: dict[str, list[str]]  # model -> answers aligned with ``instructions`` ("" when missing)
    missing: dict[str, int] = field(default_factory=dict)
    reference_model: str = ""


def load_arena_data(recipe: JudgeTrainRecipe) -> ArenaData:
    from banditarena.judges.annotations import text_key
    from banditarena.models.replay import alpaca_outputs

    outs = alpaca_outputs(recipe.resolve(recipe.validation.outputs))
    ref = recipe.validation.reference
    if ref not in outs:
        raise DataError(f"validation.reference '{ref}' has no outputs in {recipe.validation.outputs} "
                        f"(models: {', '.join(sorted(outs)[:8])} ...)")
    instructions = [q for q, _ in outs[ref]]
    references = [a for _, a in outs[ref]]
    pos = {text_key(q): i for i, q in enumerate(instructions)}
    answers: dict[str, list[str]] = {}
    missing: dict[str, int] = {}
    for m, rows in outs.items():
        col = [""] * len(instructions)
        got = 0
        for q, a in rows:
            k = pos.get(text_key(q))
            if k is not None:
                col[k] = a
                got += 1
        answers[m] = col
        if got < len(instructions):
            missing[m] = len(instructions) - got
    return ArenaData(instructions, references, answers, missing, ref)


@dataclass
class ModeResult:
    mode: str
    scores: dict[str, np.ndarray]  # model -> out-of-fold P(beats the reference) per instruction
    leaderboard: pd.DataFrame
    metrics: dict[str, float]
    fits: int


@dataclass
class CVResult:
    modes: dict[str, ModeResult]
    elo: pd.Series
    labels: dict[str, Any]
    arena: ArenaData
    seconds: float
    length_bias: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        rows = []
        for name, r in self.modes.items():
            rows.append({"mode": name, **{k: v for k, v in r.metrics.items()}, "fits": r.fits})
        return pd.DataFrame(rows).set_index("mode")


def _fold_of(groups: list[str], folds: int, seed: int) -> dict[str, int]:
    uniq = sorted(set(groups))
    perm = np.random.default_rng(seed).permutation(len(uniq))
    return {g: int(perm[k] % folds) for k, g in enumerate(uniq)}


def label_metrics(scores: dict[str, np.ndarray], arena: ArenaData, labels: LabelSet) -> dict[str, float]:
    """Out-of-fold scores of the annotated models against GPT-4 Turbo's own labels (AlpacaEval rows)."""
    from scipy.stats import spearmanr

    from banditarena.judges.annotations import text_key

    pos = {text_key(q): i for i, q in enumerate(arena.instructions)}
    by_model: dict[str, dict[int, float]] = {}
    for q, m, y, s in zip(labels.instruction, labels.model, labels.target, labels.source):
        if s == ALPACA_EVAL and m in scores and text_key(q) in pos:
            by_model.setdefault(m, {})[pos[text_key(q)]] = y
    agree = n = 0
    base_agree = 0
    pair_ok = pair_n = 0
    pred_wr, true_wr = [], []
    for m, ys in by_model.items():
        idx = np.array(sorted(ys))
        y = np.array([ys[i] for i in idx])
        p = scores[m][idx]
        keep = np.abs(y - 0.5) > 1e-9
        agree += int(((p[keep] > 0.5) == (y[keep] > 0.5)).sum())
        base_agree += int((y[keep] < 0.5).sum())
        n += int(keep.sum())
        pred_wr.append(float(np.mean(p)))
        true_wr.append(float(np.mean(y)))
    models = sorted(by_model)
    for a_i, a in enumerate(models):
        for b in models[a_i + 1:]:
            common = sorted(set(by_model[a]) & set(by_model[b]))
            if not common:
                continue
            ya = np.array([by_model[a][i] for i in common])
            yb = np.array([by_model[b][i] for i in common])
            dp = scores[a][common] - scores[b][common]
            sure = np.abs(ya - yb) > 0.1
            pair_ok += int((np.sign(dp[sure]) == np.sign(ya[sure] - yb[sure])).sum())
            pair_n += int(sure.sum())
    return {
        "label_agreement": agree / max(1, n),
        "label_agreement_always_reference": base_agree / max(1, n),
        "within_instruction_pair_accuracy": pair_ok / max(1, pair_n),
        "annotated_winrate_spearman": float(spearmanr(pred_wr, true_wr).statistic) if len(models) > 2 else math.nan,
    }


def style_controlled_leaderboard(scores: dict[str, np.ndarray], answers: dict[str, list[str]], *,
                                 tie: float = 0.0, bootstrap: int = 0, seed: int = 0,
                                 graded: bool = False) -> pd.DataFrame:
    """Style-controlled Bradley-Terry leaderboard of the all-pairs pointwise arena (answer length and markdown
    as covariates; each answer's style counted once)."""
    from banditarena.judges.pointwise import pair_tensor
    from banditarena.ratings import STYLE_FEATURES, fit_style_bt, style_counts

    models, ii, jj, T = pair_tensor(scores, tie=tie)
    counts = {m: np.array([[style_counts(t)[f] for f in STYLE_FEATURES] for t in answers[m]], dtype=np.float64)
              for m in models}
    q, k = np.nonzero(T.sum(axis=2) > 0)  # valid battles: (instruction, pair)
    outcome = T[q, k].argmax(axis=1)
    ca = np.stack([counts[m] for m in models])[ii[k], q]  # (battles, features)
    cb = np.stack([counts[m] for m in models])[jj[k], q]
    frame = {"model_a": np.array(models)[ii[k]], "model_b": np.array(models)[jj[k]],
             "winner": np.array(["model_a", "model_b", "tie"])[outcome]}
    if graded:
        frame["outcome"] = pair_tensor(scores, graded=True)[3][q, k, 0]
    for c, f in enumerate(STYLE_FEATURES):
        frame[f"{f}_a"], frame[f"{f}_b"] = ca[:, c], cb[:, c]
    return fit_style_bt(pd.DataFrame(frame), bootstrap=bootstrap, seed=seed).leaderboard


def arena_metrics(lb: pd.DataFrame, elo: pd.Series) -> dict[str, float]:
    from banditarena.ratings import agreement_with_ci, kendall, separability, spearman

    ref = pd.DataFrame({"rating": elo})
    common = [m for m in lb.index if m in elo.index]
    return {"models": float(len(common)), "spearman": spearman(lb, ref), "kendall": kendall(lb, ref),
            "agreement_with_ci": agreement_with_ci(lb, ref), "separability": separability(lb.loc[common])}


def cross_validate(recipe: JudgeTrainRecipe | str | Path, *, modes: tuple[str, ...] = MODES, progress: bool = True,
                   embedder: Any | None = None, tie: float = 0.0) -> CVResult:
    """Grouped cross-validation of the recipe's learned judge (see the module docstring)."""
    from banditarena.judges.annotations import text_key
    from banditarena.judges.pointwise import pointwise_leaderboard
    from banditarena.progress import rich_progress

    if not isinstance(recipe, JudgeTrainRecipe):
        recipe = load_train_recipe(recipe)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise DataError(f"unknown validation mode '{unknown[0]}' (known: {', '.join(MODES)})")
    t0 = time.perf_counter()
    labels = load_labels(recipe)
    arena = load_arena_data(recipe)
    elo = arena_elo(recipe.resolve(recipe.validation.elo))
    spec = recipe.features.spec()
    featurizer = Featurizer(spec, embedder)
    models = sorted(arena.answers)
    n = len(arena.instructions)
    with rich_progress(progress) as prog:
        X_lab = _chunked_transform(featurizer, labels.instruction, labels.answer, labels.reference, control=False,
                                   progress=prog, stage="labels")
        q_all = [q for _ in models for q in arena.instructions]
        a_all = [a for m in models for a in arena.answers[m]]
        r_all = [r for _ in models for r in arena.references]
        X_ar = _chunked_transform(featurizer, q_all, a_all, r_all, control=False, progress=prog, stage="arena")
    X_arena = {m: X_ar[k * n:(k + 1) * n] for k, m in enumerate(models)}
    empty = {m: np.array([not a.strip() for a in arena.answers[m]]) for m in models}
    same = {m: np.array([a.strip() == r.strip() for a, r in zip(arena.answers[m], arena.references)]) for m in models}
    y = labels.y()
    src = np.array(labels.source)
    lab_model = np.array(labels.model)
    fold = _fold_of([text_key(q) for q in arena.instructions], recipe.validation.folds, recipe.seed)
    inst_fold = np.array([fold[text_key(q)] for q in arena.instructions])
    lab_fold = np.array([fold.get(text_key(q), -1) if s == ALPACA_EVAL else -1
                         for q, s in zip(labels.instruction, labels.source)])
    label_models = set(labels.model)
    aliases = recipe.validation.aliases
    results: dict[str, ModeResult] = {}
    full = fit_judge(spec, X_lab, y, src.tolist(), l2=recipe.head.l2, weights=recipe.labels.weights).head  # warm start
    for mode in modes:
        scores = {m: np.full(n, np.nan) for m in models}
        fits = 0
        folds = range(recipe.validation.folds) if mode in ("instruction", "both") else [None]
        groups: dict[frozenset[str], list[str]] = {}
        for m in models:
            excl = frozenset(({m} | set(aliases.get(m, []))) & label_models) if mode in ("model", "both") \
                else frozenset()
            groups.setdefault(excl, []).append(m)
        for k in folds:
            test = np.ones(n, dtype=bool) if k is None else inst_fold == k
            for excl, members in groups.items():
                keep = ~np.isin(lab_model, list(excl)) if excl else np.ones(len(y), dtype=bool)
                if k is not None:
                    keep &= lab_fold != k
                fitted = fit_judge(spec, X_lab[keep], y[keep], src[keep].tolist(), l2=recipe.head.l2,
                                   weights=recipe.labels.weights, init=full)
                fits += 1
                for m in members:
                    scores[m][test] = fitted.proba(X_arena[m][test])
        for m in models:
            scores[m][same[m]] = 0.5  # an answer identical to the reference ties with it (as LearnedScorer)
            scores[m][empty[m]] = np.nan  # no answer: no battle
        graded = recipe.validation.outcomes == "graded"
        lb = pointwise_leaderboard(scores, tie=tie, bootstrap=recipe.validation.bootstrap, seed=recipe.seed,
                                   graded=graded)
        from banditarena.ratings import spearman

        style_lb = style_controlled_leaderboard(scores, arena.answers, tie=tie, graded=graded)
        vs_ref = pd.DataFrame({"rating": elo})
        base_lb = pointwise_leaderboard(scores, tie=tie, pairs="baseline", baseline=arena.reference_model, bootstrap=0,
                                        graded=graded)
        metrics = {**arena_metrics(lb, elo), "spearman_style": spearman(style_lb, vs_ref),
                   "spearman_vs_baseline": spearman(base_lb.drop(index=[arena.reference_model], errors="ignore"), vs_ref),
                   **label_metrics(scores, arena, labels)}
        results[mode] = ModeResult(mode, scores, lb, metrics, fits)
    out = CVResult(results, elo, labels.summary(), arena, time.perf_counter() - t0)
    if "both" in results:
        out.length_bias = length_bias(results["both"].scores, arena, labels)
    return out


def _longer_wins(len_a: np.ndarray, len_b: np.ndarray, a_wins: np.ndarray, decided: np.ndarray) -> float:
    keep = decided & (len_a != len_b)
    if not keep.any():
        return math.nan
    return float(((len_a > len_b) == a_wins)[keep].mean())


def balanced_longer_wins(len_a: np.ndarray, len_b: np.ndarray, a_wins: np.ndarray) -> float:
    """Share won by the longer answer, averaged over the two cases "a is longer" and "b is longer": 0.5 when
    length decides nothing, whatever the base rate. (The plain share is mostly the base rate when one side
    is usually both longer and the winner, as AlpacaEval's baseline is: a judge that always picks the
    baseline scores 0.91 on it.)"""
    len_a, len_b, a_wins = np.asarray(len_a), np.asarray(len_b), np.asarray(a_wins, dtype=bool)
    a_long, b_long = len_a > len_b, len_b > len_a
    if not a_long.any() or not b_long.any():
        return math.nan
    return 0.5 * (float(a_wins[a_long].mean()) + float((~a_wins[b_long]).mean()))


def length_bias(scores: dict[str, np.ndarray], arena: ArenaData, labels: LabelSet) -> dict[str, dict[str, float]]:
    """Length bias of GPT-4 Turbo's labels and of the judge's out-of-fold scores on the same pairs (each
    annotated model's answer against the reference): the share of pairs won by the longer answer and the
    slope of a logistic regression of "the answer wins" on the normalised length difference."""
    from banditarena.judges.annotations import text_key
    from banditarena.ratings.stats import logistic_fit

    pos = {text_key(q): i for i, q in enumerate(arena.instructions)}
    la, lr, yj, pj = [], [], [], []
    for q, m, a, r, y, s in zip(labels.instruction, labels.model, labels.answer, labels.reference, labels.target,
                                labels.source):
        i = pos.get(text_key(q))
        if s != ALPACA_EVAL or i is None or m not in scores or abs(y - 0.5) < 1e-9 or not np.isfinite(scores[m][i]):
            continue
        la.append(len(a))
        lr.append(len(r))
        yj.append(y > 0.5)
        pj.append(scores[m][i] > 0.5)
    la_, lr_ = np.array(la, float), np.array(lr, float)
    d = (la_ - lr_) / np.maximum(la_ + lr_, 1)
    out = {}
    for name, wins in (("gpt4_turbo", np.array(yj)), ("learned", np.array(pj))):
        fit = logistic_fit(d, wins.astype(float))
        out[name] = {"pairs": float(len(wins)), "answer_win_rate": float(wins.mean()) if len(wins) else math.nan,
                     "longer_win_rate": _longer_wins(la_, lr_, wins, np.ones(len(wins), bool)),
                     "longer_win_rate_balanced": balanced_longer_wins(la_, lr_, wins),
                     "length_slope": fit["slope"] if fit else math.nan,
                     "length_slope_ci_low": fit["ci_low"] if fit else math.nan,
                     "length_slope_ci_high": fit["ci_high"] if fit else math.nan}
    return out
