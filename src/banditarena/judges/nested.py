"""Nested validation of the learned judge: every choice made inside the training folds, adversarial and
known-gap checks, a label learning curve and the length-steered twins.

**Why nested.** The plain grouped CV (:func:`banditarena.judges.training.cross_validate`) scores a fixed
configuration; if that configuration was picked by comparing variants' Spearman with Chatbot Arena Elo on
the same 27 models, the figure is optimistic. Here the variants (``orthogonal`` length control on or off,
``length_band`` none / log 2 / log 4) are compared *inside* each outer training fold:

* **outer folds** cross ``model_groups`` groups of the 27 Elo models (seeded) with the recipe's instruction
  folds. Cell ``(g, k)`` scores the models of group ``g`` on the instructions of fold ``k`` with a head
  trained without fold ``k``'s instructions and without any label of ``g``'s models (or their aliases);
* **inside the cell** each variant is fitted on the cell's training labels with one more instruction fold
  held out at a time, scores the *other* models (not ``g``) on that fold, and is graded by the Spearman of
  their graded all-pairs leaderboard with Elo. The best variant (the first of the grid on a tie) is refit on
  the cell's training labels and scores ``g`` on ``k``. The held-out models' Elo is never looked at before
  their scores exist. (Inner folds hold out instructions only: the models scored there may have their own
  labels in the inner training set; this favours no variant in particular.)

The outer Spearman is computed once over all 27 models' out-of-fold scores. The configuration to ship is
the one the same inner procedure picks on all the data (:attr:`NestedResult.final`).

**Checks** (:func:`adversarial_checks`), on answers no label was made from: ``NullModel`` (one crafted junk
string for every instruction, which GPT-4 Turbo prefers 84% of the time) must rank below every real model,
``gpt4_gamed`` (GPT-4's answers cut to a few words) below ``gpt4_0613``. **Twins**: the length-steered twins
of one model (``_concise`` / ``_verbose``) should get close ratings; the gap is reported beside a
length-controlled win rate refitted from GPT-4 Turbo's own annotations (AlpacaEval LC's GLM per model,
without its instruction-difficulty term).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from banditarena.errors import DataError
from banditarena.judges.learned import Featurizer, JudgeArtifact, fit_gate, fit_judge
from banditarena.judges.training import (
    ALPACA_EVAL,
    ArenaData,
    JudgeTrainRecipe,
    _chunked_transform,
    _fold_of,
    arena_elo,
    arena_metrics,
    gate_pairs,
    gate_rows,
    label_metrics,
    load_arena_data,
    load_labels,
    load_train_recipe,
    offtopic_negatives,
    style_controlled_leaderboard,
)


@dataclass(frozen=True)
class Variant:
    """One configuration the inner folds choose among."""

    orthogonal: bool
    length_band: float | None

    @property
    def name(self) -> str:
        band = "none" if self.length_band is None else f"{math.exp(self.length_band):.0f}x"
        return f"orthogonal={'on' if self.orthogonal else 'off'}, length band={band}"


DEFAULT_GRID: tuple[Variant, ...] = tuple(Variant(o, b) for o in (True, False) for b in (None, math.log(2), math.log(4)))
"""The variants compared in the inner folds (the shipped one before this search first: orthogonal, no band)."""

ADVERSARIAL = ("NullModel", "gpt4_gamed")
TWINS = {"gpt-3.5-turbo-1106": ("gpt-3.5-turbo-1106_concise", "gpt-3.5-turbo-1106_verbose"),
         "alpaca-7b": ("alpaca-7b_concise", "alpaca-7b_verbose")}
#: models whose labels must be held out with an Elo model: the same model steered or served elsewhere
TWIN_ALIASES: dict[str, list[str]] = {
    "claude-2.1": ["claude-2.1_concise"],
    "Mixtral-8x7B-Instruct-v0.1": ["Mixtral-8x7B-Instruct-v0.1_concise"],
    "vicuna-13b-v1.5": ["vicuna-13b-v1.5-togetherai"],
    "gpt-3.5-turbo-0613": ["gpt-3.5-turbo-1106_concise", "gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-0301"],
}


@dataclass
class Prepared:
    """Labels, the validation arena and their raw feature matrices (computed once, embeddings cached)."""

    recipe: JudgeTrainRecipe
    labels: Any
    arena: ArenaData
    elo: pd.Series
    X_lab: np.ndarray
    X_arena: dict[str, np.ndarray]
    y: np.ndarray
    src: np.ndarray
    lab_model: np.ndarray
    inst_fold: np.ndarray
    lab_fold: np.ndarray
    featurizer: Featurizer
    extra: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)  # adversarial: (X, answers)
    # the relevance gate's off-topic rows (recipe ``gate.negatives``): features, and the label row each is
    # drawn from (held out with it); ``gate_on``: the real AlpacaEval label rows (the gate's positives)
    X_gate: np.ndarray | None = None
    gate_from: np.ndarray | None = None
    gate_on: np.ndarray | None = None

    def excluded(self, models: Sequence[str]) -> np.ndarray:
        """Label rows of these models and of their aliases (recipe aliases and :data:`TWIN_ALIASES`)."""
        names: set[str] = set()
        for m in models:
            names |= {m, *self.recipe.validation.aliases.get(m, []), *TWIN_ALIASES.get(m, [])}
        return np.isin(self.lab_model, sorted(names))

    def score(self, art: JudgeArtifact, model: str, rows: np.ndarray) -> np.ndarray:
        X = self.extra[model][0] if model in self.extra else self.X_arena[model]
        return art.proba(X[rows])


def prepare(recipe: JudgeTrainRecipe | str | Path, *, embedder: Any | None = None, progress: bool = True,
            adversarial: str | Path | None = None) -> Prepared:
    """Featurise the recipe's labels and validation arena once (and the adversarial answers when their
    folder is given: ``NullModel.json.gz`` / ``gpt4_gamed.json.gz`` annotation files)."""
    from banditarena.judges.annotations import load_annotations, text_key
    from banditarena.progress import rich_progress

    if not isinstance(recipe, JudgeTrainRecipe):
        recipe = load_train_recipe(recipe)
    labels = load_labels(recipe, offtopic=False)
    gate_on = np.array([s == ALPACA_EVAL for s in labels.source])
    pairs = gate_pairs(labels, recipe)
    if recipe.labels.offtopic > 0:
        labels.extend(offtopic_negatives(labels, recipe.labels.offtopic, recipe.validation.folds, recipe.seed))
    gate_on = np.r_[gate_on, np.zeros(len(labels) - len(gate_on), dtype=bool)]
    arena = load_arena_data(recipe)
    elo = arena_elo(recipe.resolve(recipe.validation.elo))
    featurizer = Featurizer(recipe.features.spec(), embedder)
    models = sorted(arena.answers)
    n = len(arena.instructions)
    extra_answers: dict[str, list[str]] = {}
    if adversarial is not None:
        pos = {text_key(q): i for i, q in enumerate(arena.instructions)}
        for name in ADVERSARIAL:
            f = Path(adversarial) / f"{name}.json.gz"
            if not f.exists():
                raise DataError(f"{f}: adversarial answers not found")
            col = [""] * n
            for a in load_annotations([f]).annotations:
                k = pos.get(text_key(a.instruction))
                if k is not None:
                    col[k] = a.output_2
            extra_answers[name] = col
    with rich_progress(progress) as prog:
        X_lab = _chunked_transform(featurizer, labels.instruction, labels.answer, labels.reference, control=False,
                                   progress=prog, stage="labels")
        X_gate = _chunked_transform(featurizer, *gate_rows(labels, pairs), control=False, progress=prog,
                                    stage="gate") if pairs else None
        names = [*models, *extra_answers]
        cols = {**arena.answers, **extra_answers}
        X_all = _chunked_transform(featurizer, [q for _ in names for q in arena.instructions],
                                   [a for m in names for a in cols[m]],
                                   [r for _ in names for r in arena.references], control=False, progress=prog,
                                   stage="arena")
    X_by = {m: X_all[k * n:(k + 1) * n] for k, m in enumerate(names)}
    fold = _fold_of([text_key(q) for q in arena.instructions], recipe.validation.folds, recipe.seed)
    inst_fold = np.array([fold[text_key(q)] for q in arena.instructions])
    lab_fold = np.array([fold.get(text_key(q), -1) if s == ALPACA_EVAL else -1
                         for q, s in zip(labels.instruction, labels.source)])
    return Prepared(recipe, labels, arena, elo, X_lab, {m: X_by[m] for m in models}, labels.y(),
                    np.array(labels.source), np.array(labels.model), inst_fold, lab_fold, featurizer,
                    {m: (X_by[m], extra_answers[m]) for m in extra_answers}, X_gate,
                    np.array([i for i, _ in pairs], dtype=int) if pairs else None, gate_on)


def _fits(prep: Prepared, keep: np.ndarray, grid: Sequence[Variant]) -> dict[Variant, JudgeArtifact]:
    """One head per ``orthogonal`` setting on the rows ``keep``; the length band only changes scoring."""
    base = prep.recipe.features.spec()
    heads: dict[bool, JudgeArtifact] = {}
    out = {}
    gate = None
    if prep.X_gate is not None and prep.gate_from is not None and prep.gate_on is not None:
        gate = fit_gate(base, prep.X_lab[keep & prep.gate_on], prep.X_gate[keep[prep.gate_from]],
                        l2=prep.recipe.gate.l2)
    for v in grid:
        if v.orthogonal not in heads:
            spec = dataclasses.replace(base, orthogonal=v.orthogonal, length_band=None)
            heads[v.orthogonal] = fit_judge(spec, prep.X_lab[keep], prep.y[keep], prep.src[keep].tolist(),
                                            l2=prep.recipe.head.l2, weights=prep.recipe.labels.weights)
        art = heads[v.orthogonal]
        out[v] = dataclasses.replace(art, spec=dataclasses.replace(art.spec, length_band=v.length_band), gate=gate)
    return out


def _finish(prep: Prepared, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for m, s in scores.items():
        ans = prep.arena.answers[m] if m in prep.arena.answers else prep.extra[m][1]
        same = np.array([a.strip() == r.strip() for a, r in zip(ans, prep.arena.references)])
        empty = np.array([not a.strip() for a in ans])
        s[same] = 0.5
        s[empty] = np.nan
    return scores


def _spearman_of(prep: Prepared, scores: dict[str, np.ndarray], rows: np.ndarray) -> float:
    from banditarena.judges.pointwise import pointwise_leaderboard
    from banditarena.ratings import spearman

    lb = pointwise_leaderboard({m: s[rows] for m, s in scores.items()}, bootstrap=0, graded=True)
    return float(spearman(lb, pd.DataFrame({"rating": prep.elo})))


def select_variant(prep: Prepared, keep_labels: np.ndarray, models: Sequence[str], folds: Sequence[int],
                   grid: Sequence[Variant]) -> tuple[Variant, dict[str, float]]:
    """The inner procedure: for each instruction fold in ``folds``, fit every variant without that fold (and
    only on ``keep_labels``), score ``models`` on it; grade each variant by the Spearman with Elo of
    ``models``' graded all-pairs leaderboard over those folds' instructions. Returns the best and all grades."""
    n = len(prep.arena.instructions)
    sc = {v: _finish(prep, {m: np.full(n, np.nan) for m in models}) for v in grid}
    for k in folds:
        arts = _fits(prep, keep_labels & (prep.lab_fold != k), grid)
        rows = prep.inst_fold == k
        for v, art in arts.items():
            for m in models:
                sc[v][m][rows] = prep.score(art, m, rows)
    rows = np.isin(prep.inst_fold, list(folds))
    grades = {v.name: _spearman_of(prep, _finish(prep, sc[v]), rows) for v in grid}
    best = max(grid, key=lambda v: (grades[v.name], -list(grid).index(v)))
    return best, grades


@dataclass
class NestedResult:
    scores: dict[str, np.ndarray]  # model -> outer out-of-fold P(beats the reference)
    choices: pd.DataFrame  # one row per outer cell: group, fold, chosen variant, its inner grade
    metrics: dict[str, float]
    leaderboard: pd.DataFrame
    final: Variant  # what the inner procedure picks on all the data: the configuration to ship
    final_grades: dict[str, float]
    fits: int
    seconds: float
    checks: dict[str, Any] = field(default_factory=dict)


def model_groups(models: Sequence[str], groups: int, seed: int) -> list[list[str]]:
    perm = np.random.default_rng(seed + 1).permutation(len(models))
    return [sorted(models[i] for i in perm[g::groups]) for g in range(groups)]


def nested_cross_validate(prep: Prepared, *, grid: Sequence[Variant] = DEFAULT_GRID, groups: int = 3,
                          progress: Any = None) -> NestedResult:
    """Nested grouped CV (see the module docstring)."""
    from banditarena.judges.pointwise import pointwise_leaderboard
    from banditarena.ratings import spearman

    t0 = time.perf_counter()
    rec = prep.recipe
    models = sorted(prep.arena.answers)
    n = len(prep.arena.instructions)
    folds = list(range(rec.validation.folds))
    scores = {m: np.full(n, np.nan) for m in models}
    rows_out = []
    fits = 0
    cells = [(gi, g, k) for gi, g in enumerate(model_groups(models, groups, rec.seed)) for k in folds]
    for gi, g, k in cells:
        keep = ~prep.excluded(g) & (prep.lab_fold != k)
        others = [m for m in models if m not in g]
        best, grades = select_variant(prep, keep, others, [f for f in folds if f != k], grid)
        fits += (len(folds) - 1) * len({v.orthogonal for v in grid})
        art = _fits(prep, keep, [best])[best]
        fits += 1
        rows = prep.inst_fold == k
        for m in g:
            scores[m][rows] = prep.score(art, m, rows)
        rows_out.append({"group": gi, "fold": k, "chosen": best.name, "inner_spearman": grades[best.name],
                         **{f"inner[{v}]": s for v, s in grades.items()}})
        if progress is not None:
            progress(len(rows_out), len(cells))
    scores = _finish(prep, scores)
    lb = pointwise_leaderboard(scores, bootstrap=rec.validation.bootstrap, seed=rec.seed, graded=True)
    ref = pd.DataFrame({"rating": prep.elo})
    style = style_controlled_leaderboard(scores, prep.arena.answers, graded=True)
    base = pointwise_leaderboard(scores, pairs="baseline", baseline=prep.arena.reference_model, bootstrap=0,
                                 graded=True)
    metrics = {**arena_metrics(lb, prep.elo), "spearman_style": spearman(style, ref),
               "spearman_vs_baseline": spearman(base.drop(index=[prep.arena.reference_model], errors="ignore"), ref),
               **label_metrics(scores, prep.arena, prep.labels)}
    everyone = np.ones(len(prep.y), dtype=bool)
    final, final_grades = select_variant(prep, everyone, models, folds, grid)
    fits += len(folds) * len({v.orthogonal for v in grid})
    return NestedResult(scores, pd.DataFrame(rows_out), metrics, lb, final, final_grades, fits,
                        time.perf_counter() - t0)


def instruction_oof(prep: Prepared, variant: Variant, models: Sequence[str], *,
                    hold_out: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Scores of ``models`` (arena or adversarial) by ``variant`` with each instruction fold held out, and
    the labels of ``hold_out`` models (and their aliases) left out of every fit."""
    n = len(prep.arena.instructions)
    out = {m: np.full(n, np.nan) for m in models}
    excl = prep.excluded(hold_out) if hold_out else np.zeros(len(prep.y), dtype=bool)
    for k in range(prep.recipe.validation.folds):
        art = _fits(prep, ~excl & (prep.lab_fold != k), [variant])[variant]
        rows = prep.inst_fold == k
        for m in models:
            out[m][rows] = prep.score(art, m, rows)
    return _finish(prep, out)


def adversarial_checks(prep: Prepared, variant: Variant, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """Rank ``NullModel`` and ``gpt4_gamed`` among the arena's models (graded all pairs): their scores come
    from heads that never saw their instructions (they have no labels at all)."""
    from banditarena.judges.pointwise import pointwise_leaderboard

    adv = instruction_oof(prep, variant, [m for m in ADVERSARIAL if m in prep.extra])
    lb = pointwise_leaderboard({**scores, **adv}, bootstrap=0, graded=True)
    order = list(lb.index)
    real = [m for m in order if m not in ADVERSARIAL]
    out: dict[str, Any] = {"models": len(order)}
    if "NullModel" in adv:
        out["nullmodel_rank"] = order.index("NullModel") + 1
        out["nullmodel_last"] = order[-1] == "NullModel" or all(order.index(m) < order.index("NullModel") for m in real)
        out["nullmodel_mean_p"] = float(np.nanmean(adv["NullModel"]))
    if "gpt4_gamed" in adv and "gpt4_0613" in order:
        out["gpt4_gamed_rank"] = order.index("gpt4_gamed") + 1
        out["gpt4_0613_rank"] = order.index("gpt4_0613") + 1
        out["gamed_below_gpt4_0613"] = order.index("gpt4_gamed") > order.index("gpt4_0613")
    return out


def twin_gaps(prep: Prepared, variant: Variant, more_labels: str | Path) -> pd.DataFrame:
    """The length-steered twins: win rate against the reference (mean graded P) by the judge, with every twin's
    and its base model's labels held out, beside GPT-4 Turbo's raw win rate and a length-controlled one."""
    from banditarena.judges.annotations import load_annotations, text_key

    rows = []
    pos = {text_key(q): i for i, q in enumerate(prep.arena.instructions)}
    n = len(prep.arena.instructions)
    for base, pair in TWINS.items():
        answers: dict[str, list[str]] = {}
        prefs: dict[str, np.ndarray] = {}
        lens: dict[str, np.ndarray] = {}
        for t in pair:
            f = Path(more_labels) / f"{t}.json.gz"
            if not f.exists():
                continue
            col, pref, ln = [""] * n, np.full(n, np.nan), np.full(n, np.nan)
            for a in load_annotations([f]).annotations:
                k = pos.get(text_key(a.instruction))
                if k is not None:
                    col[k], pref[k] = a.output_2, a.win_2
                    ln[k] = len(a.output_2.split()) - len(a.output_1.split())
            answers[t], prefs[t], lens[t] = col, pref, ln
        if len(answers) != 2:
            continue
        X = prep.featurizer.transform([q for _ in pair for q in prep.arena.instructions],
                                      [a for t in pair for a in answers[t]],
                                      [r for _ in pair for r in prep.arena.references], control=False)
        for i, t in enumerate(pair):
            prep.extra[t] = (X[i * n:(i + 1) * n], answers[t])
        sc = instruction_oof(prep, variant, list(pair), hold_out=[base, *pair])
        for t in pair:
            rows.append({"twin": t, "judge_win_rate": float(np.nanmean(sc[t])),
                         "gpt4_turbo_win_rate": float(np.nanmean(prefs[t])),
                         "gpt4_turbo_lc_win_rate": lc_win_rate(prefs[t], lens[t]),
                         "mean_words": float(np.mean([len(a.split()) for a in answers[t]]))})
            del prep.extra[t]
    return pd.DataFrame(rows)


def lc_win_rate(pref: np.ndarray, len_diff: np.ndarray) -> float:
    """A length-controlled win rate from one model's annotations: the GLM ``logit p = theta + phi *
    tanh(len_diff / sd)`` fitted on the soft preferences, evaluated at zero length difference (AlpacaEval
    LC's model per answer, without its instruction-difficulty term)."""
    from scipy.optimize import minimize

    ok = np.isfinite(pref) & np.isfinite(len_diff)
    y, d = pref[ok], len_diff[ok]
    x = np.tanh(d / max(float(np.std(d)), 1e-9))

    def nll(w: np.ndarray) -> float:
        z = w[0] + w[1] * x
        return float(np.sum(np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y)))

    w = minimize(nll, np.zeros(2), method="L-BFGS-B").x
    return float(1 / (1 + math.exp(-w[0])))


def learning_curve(prep: Prepared, variant: Variant, *, fractions: Sequence[float] = (0.125, 0.25, 0.5, 1.0),
                   draws: int = 2, groups: int = 3) -> pd.DataFrame:
    """Out-of-fold Spearman (graded all pairs, instruction and model groups held out, ``variant`` fixed) when
    each fit keeps a seeded share of the label *instructions* of every model."""
    from banditarena.judges.annotations import text_key

    models = sorted(prep.arena.answers)
    n = len(prep.arena.instructions)
    inst = np.array([text_key(q) for q in prep.labels.instruction])
    uniq = np.unique(inst)
    rows = []
    for frac in fractions:
        for d in range(draws if frac < 1 else 1):
            rng = np.random.default_rng(1000 + d)
            chosen = set(rng.choice(uniq, size=max(1, round(frac * len(uniq))), replace=False).tolist())
            keep_rows = np.isin(inst, sorted(chosen))
            scores = {m: np.full(n, np.nan) for m in models}
            for g in model_groups(models, groups, prep.recipe.seed):
                for k in range(prep.recipe.validation.folds):
                    art = _fits(prep, keep_rows & ~prep.excluded(g) & (prep.lab_fold != k), [variant])[variant]
                    rows_k = prep.inst_fold == k
                    for m in g:
                        scores[m][rows_k] = prep.score(art, m, rows_k)
            scores = _finish(prep, scores)
            rows.append({"fraction": frac, "draw": d, "labels": int(keep_rows.sum()),
                         "spearman": _spearman_of(prep, scores, np.ones(n, dtype=bool))})
    return pd.DataFrame(rows)
