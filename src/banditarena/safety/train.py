"""Training the offline safety classifier (``banditarena safety train``): seeded, reproducible, versioned.

Two logistic heads over hashed word n-grams (:mod:`banditarena.safety.features`):

* the **text head** scores a text on its own (a prompt, or an answer without its prompt);
* the **response head** scores an answer in the context of its prompt (``[f(a), f(p), f(p) * f(a)]``).

Real labels, each with its own loss:

* XSTest prompts (safe / unsafe) -> text head;
* XSTest answers: harmful = fully complies with an unsafe prompt; not harmful = any answer to a safe prompt
  or a full refusal (partial refusals of unsafe prompts are left out) -> both heads (text head without the
  prompt, response head with it);
* HH-RLHF harmless pairs: the reply people judged more harmful should score higher than the other, a
  pairwise logistic loss on the feature difference (the same weights, no intercept) -> both heads;
* AlpacaEval instructions and answers of four chat models: ordinary traffic, safe -> both heads.

Every group (an XSTest prompt with its answers, an HH dialogue by its first human turn, an AlpacaEval
instruction) sits in one of ``k`` folds by a stable hash, so cross-validation never has a group on both
sides. :func:`cross_validate` gives out-of-fold scores for every XSTest item and HH pair (what
``bench/safety.py`` reports); :func:`train` fits on everything and writes the artifact.

Decision thresholds are chosen *inside* the training data by an inner cross-validation: the response head's
threshold keeps ``keep`` of the complying answers to safe prompts, the text head's keeps ``keep`` of the safe
prompts. The uncertain band (what a cascade escalates) runs from the score that keeps ``band_keep[0]`` to the
one that keeps ``band_keep[1]`` of those safe examples.

Long texts are cut into windows of ``window`` characters (``overlap`` shared); a text's score is the highest
of its windows' scores, so nothing is silently cut off. In training every window of a text carries the text's
label with weight 1/windows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from banditarena.config import Model
from banditarena.errors import ConfigError
from banditarena.safety.base import windows
from banditarena.safety.features import HashedNgrams
from banditarena.types import file_sha256

ProgressFn = Callable[[str], None]

ARTIFACT_NAME = "safety-clf"
ARTIFACT_FORMAT = "banditarena-safety-classifier/1"


class TrainSettings(Model):
    """Everything that determines the trained classifier (recorded in its manifest)."""

    seed: int = 0
    folds: int = Field(5, ge=2)
    inner_folds: int = Field(3, ge=2)
    n_features: int = Field(2**17, ge=16)
    ngram_max: int = Field(2, ge=1, le=3)
    C: float = Field(10.0, gt=0)
    window: int = Field(2000, ge=100)
    overlap: int = Field(200, ge=0)
    benign_weight: float = Field(0.5, ge=0)  # total weight of the AlpacaEval examples, relative to the XSTest ones
    hh_weight: float = Field(0.3, ge=0)  # total weight of the HH-RLHF pairs, relative to the XSTest examples
    keep: float = Field(0.92, gt=0, lt=1)  # share of safe examples (inner CV) the decision threshold keeps
    band_keep: tuple[float, float] = (0.75, 0.99)  # the uncertain band, as shares of safe examples kept
    use_xstest: bool = True
    use_hh: bool = True
    use_benign: bool = True

    @model_validator(mode="after")
    def _check(self) -> TrainSettings:
        if self.overlap >= self.window:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than window ({self.window})")
        lo, hi = self.band_keep
        if not 0 < lo <= hi < 1:
            raise ValueError(f"band_keep must be two shares 0 < low <= high < 1, got {self.band_keep}")
        if self.n_features & (self.n_features - 1):
            raise ValueError(f"n_features must be a power of two, got {self.n_features}")
        return self


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Example:
    text: str
    prompt: str | None  # None: scored on its own (text head)
    label: float | None  # 1 unsafe, 0 safe; None for a pairwise example
    group: str
    source: str  # xstest-prompt, xstest-answer, benign-prompt, benign-answer
    other: str | None = None  # pairwise: the less harmful reply (``text`` is the more harmful one)
    complies: bool = False  # an XSTest answer that fully complies with its prompt


@dataclass
class SafetyData:
    """Every labelled example of both heads, with its group key."""

    text_points: list[Example] = field(default_factory=list)
    text_pairs: list[Example] = field(default_factory=list)
    resp_points: list[Example] = field(default_factory=list)
    resp_pairs: list[Example] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"text_points": len(self.text_points), "text_pairs": len(self.text_pairs),
                "response_points": len(self.resp_points), "response_pairs": len(self.resp_pairs)}


def load_data(settings: TrainSettings, root: Path | None = None) -> SafetyData:
    from banditarena.safety import data as d

    out = SafetyData()
    files = d.source_files(root)
    if settings.use_xstest:
        for p in d.xstest_prompts(root):
            out.text_points.append(Example(p.prompt, None, float(p.label == "unsafe"), "xstest:" + p.id, "xstest-prompt"))
        for a in d.xstest_answers(root):
            if a.harmful is None:
                continue
            y = float(a.harmful)
            g = "xstest:" + a.prompt_id
            out.text_points.append(Example(a.completion, None, y, g, "xstest-answer", complies=a.complies))
            out.resp_points.append(Example(a.completion, a.prompt, y, g, "xstest-answer", complies=a.complies))
    if settings.use_benign:
        for instr, ans in d.benign_instructions(root):
            g = "alpaca:" + instr
            out.text_points.append(Example(instr, None, 0.0, g, "benign-prompt"))
            out.text_points.append(Example(ans, None, 0.0, g, "benign-answer"))
            out.resp_points.append(Example(ans, instr, 0.0, g, "benign-answer"))
    if settings.use_hh:
        for h in d.hh_pairs(root):
            g = "hh:" + h.first_turn
            out.text_pairs.append(Example(h.rejected, None, None, g, "hh-pair", other=h.chosen))
            out.resp_pairs.append(Example(h.rejected, h.prompt, None, g, "hh-pair", other=h.chosen))
    used = [k for k in files if (settings.use_xstest and k.startswith("xstest")) or (settings.use_hh and k.startswith("hh"))
            or (settings.use_benign and k.startswith("alpaca"))]
    out.hashes = {k: file_sha256(files[k]) for k in used}
    if not (out.text_points or out.text_pairs):
        raise ConfigError("safety training: no data source enabled (use_xstest / use_hh / use_benign)")
    return out


# ------------------------------------------------------------------------------------------------ design
class Design:
    """Feature matrices of one head: pointwise rows and pairwise difference rows, with groups and weights."""

    def __init__(self, feats: HashedNgrams, points: list[Example], pairs: list[Example], settings: TrainSettings,
                 response: bool) -> None:
        from scipy import sparse

        self.response = response
        self.point_of, weights = [], []
        w_texts: list[str] = []
        w_prompts: list[str] = []
        for i, ex in enumerate(points):
            spans = windows(ex.text, settings.window, settings.overlap)
            for s, e in spans:
                w_texts.append(ex.text[s:e])
                w_prompts.append(ex.prompt or "")
                self.point_of.append(i)
                weights.append(1.0 / len(spans))
        self.point_of = np.asarray(self.point_of, dtype=np.int64)
        Xp = self._block(feats, w_prompts, w_texts)
        self.point_weight = np.asarray(weights, dtype=np.float64)
        self.y = np.array([points[i].label for i in self.point_of], dtype=np.float64)
        self.point_group = [points[i].group for i in self.point_of]
        self.point_source = [points[i].source for i in self.point_of]
        # pairs: the mean of each reply's window vectors (replies are short; long ones are averaged, not cut)
        if pairs:
            more = self._mean_windows(feats, [p.text for p in pairs], [p.prompt or "" for p in pairs], settings)
            less = self._mean_windows(feats, [p.other or "" for p in pairs], [p.prompt or "" for p in pairs], settings)
            self.D = (more - less).tocsr()
        else:
            self.D = sparse.csr_matrix((0, Xp.shape[1]), dtype=np.float32)
        self.pair_group = [p.group for p in pairs]
        self.X = Xp
        self.n_points = len(points)
        self.points = points

    def _block(self, feats: HashedNgrams, prompts: list[str], texts: list[str]) -> Any:
        return feats.response_block(prompts, texts) if self.response else feats.text_block(texts)

    def _mean_windows(self, feats: HashedNgrams, texts: list[str], prompts: list[str], settings: TrainSettings) -> Any:
        from scipy import sparse

        idx, wt, wp, ww = [], [], [], []
        for i, (t, p) in enumerate(zip(texts, prompts)):
            spans = windows(t, settings.window, settings.overlap)
            for s, e in spans:
                idx.append(i)
                wt.append(t[s:e])
                wp.append(p)
                ww.append(1.0 / len(spans))
        X = self._block(feats, wp, wt)
        M = sparse.csr_matrix((np.asarray(ww, dtype=np.float32), (np.asarray(idx), np.arange(len(idx)))),
                              shape=(len(texts), len(idx)))
        return (M @ X).tocsr()


def _fit(design: Design, point_mask: np.ndarray, pair_mask: np.ndarray, settings: TrainSettings) -> np.ndarray:
    """Weights (features..., bias) of one head fitted on the selected rows."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    X = design.X[point_mask]
    y = design.y[point_mask]
    w = design.point_weight[point_mask].copy()
    src = np.asarray(design.point_source)[point_mask]
    benign = np.char.startswith(src.astype(str), "benign")
    D = design.D[pair_mask]
    n_pairs = D.shape[0]
    # the reference mass the other sources are weighted against: the XSTest examples, or (trained without
    # them) the HH pairs, or the benign examples
    n_core = float(w[~benign].sum()) or float(n_pairs) or float(w.sum()) or 1.0
    if benign.any():
        w[benign] *= settings.benign_weight * n_core / w[benign].sum()
    ones = np.ones((X.shape[0], 1), dtype=np.float32)
    zeros = np.zeros((n_pairs, 1), dtype=np.float32)
    A = sparse.vstack([sparse.hstack([X, ones]), sparse.hstack([D, zeros]), sparse.hstack([-D, zeros])], format="csr")
    yy = np.r_[y, np.ones(n_pairs), np.zeros(n_pairs)]
    pw = settings.hh_weight * n_core / (2 * n_pairs) if n_pairs else 0.0
    ww = np.r_[w, np.full(2 * n_pairs, pw)]
    if len(np.unique(yy)) < 2:
        raise ConfigError("safety training: the selected data has a single class; enable more sources")
    m = LogisticRegression(C=settings.C, fit_intercept=False, max_iter=3000, tol=1e-5, solver="lbfgs",
                           random_state=settings.seed)
    m.fit(A, yy, sample_weight=ww)
    return m.coef_[0].astype(np.float32)


def _point_scores(design: Design, coef: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-example score (max over its windows' probabilities) for the examples whose rows are in ``mask``."""
    idx = np.arange(design.X.shape[0]) if mask is None else np.flatnonzero(mask)
    z = design.X[idx] @ coef[:-1] + coef[-1]
    p = 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))
    out = np.full(design.n_points, np.nan)
    ex = design.point_of[idx]
    np.fmax.at(out, ex, p)
    return out


def _pair_margin(design: Design, coef: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.asarray(design.D[mask] @ coef[:-1], dtype=np.float64)


def _fold_arrays(design: Design, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from banditarena.safety.data import fold_of

    cache: dict[str, int] = {}

    def f(g: str) -> int:
        if g not in cache:
            cache[g] = fold_of(g, k, seed)
        return cache[g]

    return (np.array([f(g) for g in design.point_group], dtype=np.int64),
            np.array([f(g) for g in design.pair_group], dtype=np.int64))


def _thresholds(design: Design, row_mask: np.ndarray, pair_mask: np.ndarray, settings: TrainSettings,
                negatives: Callable[[Example], bool]) -> dict[str, float]:
    """Decision threshold and uncertain band from an inner CV over the rows in ``row_mask``."""
    fr, fp = _fold_arrays(design, settings.inner_folds, settings.seed + 1)
    oof = np.full(design.n_points, np.nan)
    for k in range(settings.inner_folds):
        coef = _fit(design, row_mask & (fr != k), pair_mask & (fp != k), settings)
        s = _point_scores(design, coef, row_mask & (fr == k))
        oof = np.where(np.isnan(s), oof, s)
    neg = np.array([negatives(e) for e in design.points]) & ~np.isnan(oof)
    if neg.sum() < 5:  # too few of the reference negatives: fall back on every safe example
        neg = np.array([e.label == 0.0 for e in design.points]) & ~np.isnan(oof)
    vals = oof[neg]
    lo, hi = settings.band_keep
    return {"threshold": float(np.quantile(vals, settings.keep)), "band_low": float(np.quantile(vals, lo)),
            "band_high": float(np.quantile(vals, hi)), "n_reference_negatives": int(neg.sum())}


def _is_xstest_safe_prompt(e: Example) -> bool:
    return e.source == "xstest-prompt" and e.label == 0.0


def _is_complying_safe_answer(e: Example) -> bool:
    # answers that comply with safe XSTest prompts (refusals are easy to keep; these are the hard ones)
    return e.source == "xstest-answer" and e.label == 0.0 and e.complies


@dataclass
class Heads:
    text: np.ndarray
    response: np.ndarray
    text_thresholds: dict[str, float]
    response_thresholds: dict[str, float]


def fit_heads(data: SafetyData, settings: TrainSettings, *, exclude_fold: int | None = None,
              designs: tuple[Design, Design] | None = None, progress: ProgressFn | None = None) -> Heads:
    """Fit both heads (and their thresholds) on every group not in ``exclude_fold`` (of ``settings.folds``)."""
    say = progress or (lambda s: None)
    feats = HashedNgrams(settings.n_features, settings.ngram_max)
    td, rd = designs or make_designs(data, settings, feats)
    out = []
    for name, design, negatives in (("text", td, _is_xstest_safe_prompt), ("response", rd, _is_complying_safe_answer)):
        if exclude_fold is None:
            rm = np.ones(design.X.shape[0], dtype=bool)
            pm = np.ones(design.D.shape[0], dtype=bool)
        else:
            fr, fp = _fold_arrays(design, settings.folds, settings.seed)
            rm, pm = fr != exclude_fold, fp != exclude_fold
        say(f"{name} head: thresholds by inner {settings.inner_folds}-fold CV")
        th = _thresholds(design, rm, pm, settings, negatives)
        say(f"{name} head: fit on {int(rm.sum())} windows and {int(pm.sum())} pairs")
        out.append((_fit(design, rm, pm, settings), th))
    return Heads(out[0][0], out[1][0], out[0][1], out[1][1])


def make_designs(data: SafetyData, settings: TrainSettings, feats: HashedNgrams | None = None) -> tuple[Design, Design]:
    feats = feats or HashedNgrams(settings.n_features, settings.ngram_max)
    return (Design(feats, data.text_points, data.text_pairs, settings, response=False),
            Design(feats, data.resp_points, data.resp_pairs, settings, response=True))


# ------------------------------------------------------------------------------------------------ CV
@dataclass
class CVResult:
    """Out-of-fold scores: every example scored by the fold model that did not see its group."""

    text_scores: np.ndarray  # per text point (data.text_points order)
    text_unsafe: np.ndarray  # verdict unsafe under that fold's own threshold
    text_uncertain: np.ndarray
    response_scores: np.ndarray
    response_unsafe: np.ndarray
    response_uncertain: np.ndarray
    text_pair_margin: np.ndarray  # per HH pair: score(more harmful) - score(less harmful), logit scale
    response_pair_margin: np.ndarray
    folds: int
    settings: TrainSettings


def cross_validate(data: SafetyData, settings: TrainSettings, progress: ProgressFn | None = None) -> CVResult:
    say = progress or (lambda s: None)
    td, rd = make_designs(data, settings)
    res: dict[str, np.ndarray] = {}
    for name, d in (("text", td), ("response", rd)):
        res[name + "_scores"] = np.full(d.n_points, np.nan)
        res[name + "_unsafe"] = np.zeros(d.n_points, dtype=bool)
        res[name + "_uncertain"] = np.zeros(d.n_points, dtype=bool)
        res[name + "_pair_margin"] = np.full(d.D.shape[0], np.nan)
    for k in range(settings.folds):
        say(f"fold {k + 1}/{settings.folds}")
        heads = fit_heads(data, settings, exclude_fold=k, designs=(td, rd), progress=say)
        for name, d, coef, th in (("text", td, heads.text, heads.text_thresholds),
                                  ("response", rd, heads.response, heads.response_thresholds)):
            fr, fp = _fold_arrays(d, settings.folds, settings.seed)
            s = _point_scores(d, coef, fr == k)
            have = ~np.isnan(s)
            res[name + "_scores"][have] = s[have]
            res[name + "_unsafe"][have] = s[have] >= th["threshold"]
            res[name + "_uncertain"][have] = (s[have] >= th["band_low"]) & (s[have] <= th["band_high"])
            if (fp == k).any():
                res[name + "_pair_margin"][fp == k] = _pair_margin(d, coef, fp == k)
    return CVResult(folds=settings.folds, settings=settings, **res)


# ------------------------------------------------------------------------------------------------ artifact
def default_artifact_dir() -> Path:
    return Path(__file__).resolve().parent / "artifacts"


def train(out_dir: str | Path | None = None, settings: TrainSettings | None = None, *, root: Path | None = None,
          progress: ProgressFn | None = None, name: str = ARTIFACT_NAME) -> Path:
    """Fit on all the data and write ``<name>.npz`` + ``<name>.json`` (the manifest) into ``out_dir``.

    Same settings and data, same bytes: no timestamps, seeded solver, weights rounded to float16.
    Returns the manifest's path.
    """
    import sklearn

    from banditarena.safety.classifier import CLASSIFIER_VERSION

    settings = settings or TrainSettings()
    say = progress or (lambda s: None)
    out = Path(out_dir) if out_dir is not None else default_artifact_dir()
    t0 = time.perf_counter()
    say("loading data")
    data = load_data(settings, root)
    heads = fit_heads(data, settings, progress=say)
    feats = HashedNgrams(settings.n_features, settings.ngram_max)
    arrays = {"text_head": heads.text.astype(np.float16), "response_head": heads.response.astype(np.float16)}
    out.mkdir(parents=True, exist_ok=True)
    npz = out / f"{name}.npz"
    tmp = out / f".{name}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(npz)


    manifest = {
        "format": ARTIFACT_FORMAT,
        "name": name,
        "version": f"{CLASSIFIER_VERSION}+{file_sha256(npz)[:12]}",
        "classifier_version": CLASSIFIER_VERSION,
        "weights_file": npz.name,
        "weights_sha256": file_sha256(npz),
        "features": feats.identity(),
        "settings": json.loads(settings.model_dump_json()),
        "data": {"files_sha256": data.hashes, "counts": data.counts()},
        "thresholds": {"text": heads.text_thresholds, "response": heads.response_thresholds},
        "window": {"chars": settings.window, "overlap": settings.overlap, "aggregate": "max over windows"},
        "trained_with": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "rebuild": "banditarena safety train" + ("" if out_dir is None else f" --out {out}"),
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    say(f"wrote {npz} and {path} in {time.perf_counter() - t0:.0f} s")
    return path


def settings_from_overrides(overrides: Sequence[str]) -> TrainSettings:
    """``["C=3", "keep=0.9"]`` -> TrainSettings (each value parsed as JSON, else kept as a string)."""
    vals: dict[str, Any] = {}
    for o in overrides:
        k, sep, v = o.partition("=")
        if not sep:
            raise ConfigError(f"setting '{o}': expected NAME=VALUE (names: {', '.join(TrainSettings.model_fields)})")
        try:
            vals[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            vals[k.strip()] = v
    from banditarena.config import validate

    return validate(TrainSettings, vals, "safety train --set")
