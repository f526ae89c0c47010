"""The learned offline judge: a small reward model scoring (instruction, answer) against a reference answer.

What it computes
    For an instruction ``q``, an answer ``a`` and a reference answer ``r`` to the same instruction (e.g. the
    AlpacaEval baseline's or GPT-4's), a feature vector ``x(q, a, r)`` built from named blocks
    (:data:`BLOCKS`) and a linear head give ``p = sigmoid(w . x + b)``: the predicted probability that a
    GPT-4-class judge prefers ``a`` over ``r``. The head is trained on real judge labels
    (:mod:`banditarena.judges.labels`) by :mod:`banditarena.judges.training`.

    Judging relative to a reference matters: a regressor on an answer's own embedding learns which *model*
    wrote it (its style), not whether it answers well; the overlap and cosine with a strong reference,
    and the differences to it, carry what a judge rewards.

Length control
    Blocks named in ``FeatureSpec.controlled`` (default: ``length``) are seen at training but neutralised at
    scoring: the answer is scored as if its length were the reference's. This is AlpacaEval's
    length-controlled win rate applied inside the judge: the head learns how much the judge rewarded
    length, and that part is removed from the score.

    Neutralising the length columns alone leaves length in the other features (overlap recall, markdown
    counts, the embedding all grow with it), so such a judge still prefers long answers. With
    ``FeatureSpec.orthogonal`` every other column is first made orthogonal to the controlled blocks: its
    linear dependence on them, fitted on the training rows (features only, no labels; :class:`Orthogonaliser`),
    is subtracted, at training and at scoring alike. The head then sees length only in the controlled
    columns, and neutralising them removes length's linear effect from the score as a whole.

Pointwise and content-addressed
    Each (instruction, reference, answer) is scored once; :class:`LearnedJudge` keeps the scores keyed by the
    judge identity and the three texts' hashes, so a pair (in both orders) and every other pairing of the
    same answer reuse them: an all-pairs arena over 27 models x 805 instructions costs 27 x 805 scorings.
    The two orders of a pair get the same two scores: the position-flip rate is 0 by construction. An
    answer identical to the reference ties with it (0.5), as GPT-4 Turbo's own annotations of identical
    answers do, so the model that wrote the references is rated like the others, not as a sure winner.

The artifact
    Plain arrays (``.npz``, written deterministically) plus a JSON manifest (feature spec, embedder, head
    settings, sha256 of every training file, label counts, seed, package version). Never pickle.
    :func:`load_artifact` checks the format, the feature version this code computes and, when asked, the
    feature blocks and embedder a recipe expects; a mismatch or a missing file is one line naming the file
    and the command that rebuilds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import math
import re
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.errors import JudgeError
from banditarena.judges.base import Judge, JudgeRequest, ReferenceAnswers
from banditarena.paths import write_text_atomic
from banditarena.text import MARKDOWN_BOLD as _BOLD
from banditarena.text import MARKDOWN_HEADER as _HEADER
from banditarena.text import MARKDOWN_LIST as _LIST
from banditarena.types import Judgment, stable_hash

FEATURES_VERSION = "ref-features-1"
"""Changes whenever a block's computation changes: an artifact trained on other features is refused."""

ARTIFACT_FORMAT = "banditarena-learned-judge"
DEFAULT_ARTIFACT = "judge-learned"
"""Name of the artifact shipped as package data (``banditarena/data/judge-learned.{npz,json}``)."""
FAST_ARTIFACT = "judge-learned-fast"
"""The packaged fast variant (static MiniLM token embeddings instead of the MiniLM encoder)."""
REBUILD_HINT = "banditarena judge train src/banditarena/recipes/judge-learned.yaml"

_WORD = re.compile(r"\w+")
_CODE_FENCE = re.compile(r"```")
_REFUSAL = re.compile(
    r"\b(?:I'?m sorry|I am sorry|I apologi[sz]e|as an AI|I cannot|I can'?t|I'?m (?:not |un)able|I am (?:not |un)able)\b",
    re.IGNORECASE,
)

#: Feature blocks: name -> (width, needs embeddings, description).
BLOCKS: dict[str, tuple[int, bool, str]] = {
    "overlap": (6, False, "word and bigram F1 / precision / recall of the answer against the reference"),
    "coverage": (3, False, "share of the instruction's words the answer / the reference use, and the difference"),
    "length": (3, False, "log words of the answer, of the reference, and their difference"),
    "markdown": (8, False, "log counts of headers, list items, bold spans, code blocks; differences to the reference"),
    "refusal": (3, False, "refusal/apology phrase at the start of the answer, of the reference, difference"),
    "cosine": (4, True, "embedding cosines answer-reference, answer-instruction, reference-instruction, difference"),
    "delta": (0, True, "answer embedding minus reference embedding (the embedder's width)"),
}
#: Columns of a controlled block set at scoring: (column, source column or None for 0).
_CONTROL: dict[str, list[tuple[int, int | None]]] = {
    "length": [(0, 1), (2, None)],
    "markdown": [(0, None), (1, None), (2, None), (3, None), (4, None), (5, None), (6, None), (7, None)],
    "refusal": [(0, 1), (2, None)],
}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _prf(x: set[Any], y: set[Any]) -> list[float]:
    inter = len(x & y)
    p = inter / max(1, len(x))
    r = inter / max(1, len(y))
    return [2 * p * r / max(1e-9, p + r), p, r]


def _markdown(text: str) -> list[float]:
    return [math.log1p(len(_HEADER.findall(text))), math.log1p(len(_LIST.findall(text))),
            math.log1p(len(_BOLD.findall(text))), math.log1p(len(_CODE_FENCE.findall(text)) // 2)]


def lexical_blocks(q: str, a: str, r: str) -> dict[str, list[float]]:
    """The text-only blocks of one (instruction, answer, reference) triple."""
    wa, wr, wq = _words(a), _words(r), _words(q)
    sa, sr, sq = set(wa), set(wr), set(wq)
    overlap = _prf(sa, sr) + _prf(set(itertools.pairwise(wa)), set(itertools.pairwise(wr)))
    cov = [len(sq & sa) / max(1, len(sq)), len(sq & sr) / max(1, len(sq))]
    la, lr = math.log1p(len(wa)), math.log1p(len(wr))
    ma, mr = _markdown(a), _markdown(r)
    fa, fr = float(bool(_REFUSAL.search(a[:300]))), float(bool(_REFUSAL.search(r[:300])))
    return {
        "overlap": overlap,
        "coverage": [*cov, cov[0] - cov[1]],
        "length": [la, lr, la - lr],
        "markdown": [*ma, *(x - y for x, y in zip(ma, mr))],
        "refusal": [fa, fr, fa - fr],
    }


@dataclass(frozen=True)
class FeatureSpec:
    """Which blocks make the feature vector, the embedder they use and which blocks are controlled."""

    blocks: tuple[str, ...] = ("overlap", "coverage", "length", "markdown", "refusal", "cosine", "delta")
    embedder: str = "all-MiniLM-L6-v2"
    max_seq_length: int | None = None
    controlled: tuple[str, ...] = ("length",)
    orthogonal: bool = False
    """Make every other column orthogonal to the controlled blocks (on the training rows) before the head."""
    version: str = FEATURES_VERSION
    length_band: float | None = None
    """Bounded length control (log-length units): at scoring, an answer's log length is moved toward the
    reference's by at most this much, so answers within ``exp(band)`` times the reference's length are scored
    as if exactly as long, and what lies beyond keeps its length penalty (or bonus). ``None``: always
    neutralised completely, which lets an answer cut to a few words score like a full one. Like AlpacaEval
    LC's bounded ``tanh`` length term, it controls length without making truncation free."""

    def __post_init__(self) -> None:
        unknown = [b for b in (*self.blocks, *self.controlled) if b not in BLOCKS]
        if unknown:
            raise ValueError(f"unknown feature block '{unknown[0]}' (known: {', '.join(BLOCKS)})")
        bad = [b for b in self.controlled if b not in _CONTROL or b not in self.blocks]
        if bad:
            raise ValueError(f"controlled block '{bad[0]}' must be one of the blocks and one of {sorted(_CONTROL)}")
        if not self.blocks:
            raise ValueError("a feature spec needs at least one block")
        if self.orthogonal and not self.controlled:
            raise ValueError("orthogonal: true needs at least one controlled block to be orthogonal to")
        if self.length_band is not None and (not self.length_band >= 0 or "length" not in self.controlled):
            raise ValueError("length_band needs length among the controlled blocks and a value >= 0")

    @property
    def needs_embeddings(self) -> bool:
        return any(BLOCKS[b][1] for b in self.blocks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"], d["controlled"] = list(self.blocks), list(self.controlled)
        if not self.orthogonal:
            del d["orthogonal"]  # artifacts made before the option existed keep their digest
        if self.length_band is None:
            del d["length_band"]  # likewise
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        return cls(blocks=tuple(d["blocks"]), embedder=str(d["embedder"]), max_seq_length=d.get("max_seq_length"),
                   controlled=tuple(d.get("controlled", ())), orthogonal=bool(d.get("orthogonal", False)),
                   version=str(d.get("version", "")),
                   length_band=None if d.get("length_band") is None else float(d["length_band"]))

    def columns(self, total: int) -> dict[str, np.ndarray]:
        """Column indices of each block in a feature matrix ``total`` wide (``delta`` takes the rest)."""
        fixed = sum(BLOCKS[b][0] for b in self.blocks)
        out, start = {}, 0
        for b in self.blocks:
            width = BLOCKS[b][0] or max(0, total - fixed)
            out[b] = np.arange(start, start + width)
            start += width
        return out

    def controlled_columns(self, total: int) -> np.ndarray:
        """Column indices of the controlled blocks, in order."""
        cols = self.columns(total)
        return np.concatenate([cols[b] for b in self.controlled]) if self.controlled else np.zeros(0, dtype=int)

    def neutralise(self, X: np.ndarray) -> np.ndarray:
        """A copy of ``X`` with the controlled blocks set as for an answer as long (as plain, ...) as the
        reference: what scoring uses."""
        X = np.array(X, dtype=np.float64, copy=True)
        cols = self.columns(X.shape[1])
        for b in self.controlled:
            if b == "length" and self.length_band is not None:
                la, lr, diff = cols[b]
                d = X[:, la] - X[:, lr]
                shift = np.clip(d, -self.length_band, self.length_band)
                X[:, la] -= shift
                X[:, diff] = d - shift
                continue
            for col, src in _CONTROL[b]:
                X[:, cols[b][col]] = 0.0 if src is None else X[:, cols[b][src]]
        return X


@dataclass
class Orthogonaliser:
    """``X - [1, C] @ coef``: removes every column's linear dependence on the controlled columns ``C``
    (least squares on the training rows; the controlled columns themselves are left as they are)."""

    controlled: np.ndarray  # column indices of C
    coef: np.ndarray  # (1 + len(controlled), d); zero in the controlled columns

    @classmethod
    def fit(cls, X: np.ndarray, spec: FeatureSpec) -> Orthogonaliser:
        X = np.asarray(X, dtype=np.float64)
        ctl = spec.controlled_columns(X.shape[1])
        C = np.c_[np.ones(len(X)), X[:, ctl]]
        coef = np.linalg.lstsq(C, X, rcond=None)[0]
        coef[:, ctl] = 0.0
        return cls(ctl, coef)

    def apply(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return X - np.c_[np.ones(len(X)), X[:, self.controlled]] @ self.coef


class Featurizer:
    """Computes feature matrices for a :class:`FeatureSpec`. Embeddings come from ``embedder`` (default: a
    MiniLM :class:`~banditarena.models.embed.Embedder` with its on-disk cache, loaded on first use)."""

    def __init__(self, spec: FeatureSpec, embedder: Any | None = None) -> None:
        self.spec = spec
        self._embedder = embedder
        self._local = threading.local()

    @property
    def embedder(self) -> Any:
        """The given embedder, or the default one: one per thread (its on-disk cache is a SQLite connection,
        which may only be used by the thread that opened it; the model itself is shared)."""
        if self._embedder is not None:
            return self._embedder
        emb = getattr(self._local, "embedder", None)
        if emb is None:
            from banditarena.models.embed import make_embedder
            from banditarena.models.hub import cache_dir

            emb = self._local.embedder = make_embedder(self.spec.embedder, cache_dir=cache_dir() / "embeddings",
                                                       max_seq_length=self.spec.max_seq_length)
        return emb

    def names(self, total: int | None = None) -> list[str]:
        """Column names; ``total`` (the matrix width) sizes the embedding-wide ``delta`` block."""
        fixed = sum(BLOCKS[b][0] for b in self.spec.blocks)
        dim = max(0, (total or fixed) - fixed)
        out: list[str] = []
        for b in self.spec.blocks:
            out.extend(f"{b}[{i}]" for i in range(BLOCKS[b][0] or dim))
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        uniq = list(dict.fromkeys(texts))
        vecs = np.asarray(self.embedder.encode(uniq), dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[0] != len(uniq):
            raise JudgeError(f"embedder '{self.spec.embedder}' returned shape {vecs.shape} for {len(uniq)} texts")
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(norms > 0, norms, 1.0)
        row = {t: i for i, t in enumerate(uniq)}
        return vecs[[row[t] for t in texts]]

    def transform(self, instructions: Sequence[str], answers: Sequence[str], references: Sequence[str],
                  *, control: bool = False, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Feature matrix (n, d). ``control=True`` neutralises the controlled blocks (what scoring does when
        the spec is not ``orthogonal``; :meth:`JudgeArtifact.proba` does both steps from the raw matrix)."""
        n = len(answers)
        if not len(instructions) == n == len(references):
            raise ValueError("instructions, answers and references must have the same length")
        parts: list[np.ndarray] = []
        lex = [lexical_blocks(q, a, r) for q, a, r in zip(instructions, answers, references)]
        emb: dict[str, np.ndarray] = {}
        if self.spec.needs_embeddings and n:
            eq = self._encode(list(instructions))
            ea = self._encode(list(answers))
            er = self._encode(list(references))
            ca, cq, crq = (ea * er).sum(1), (ea * eq).sum(1), (er * eq).sum(1)
            emb = {"cosine": np.c_[ca, cq, crq, cq - crq], "delta": ea - er}
        for b in self.spec.blocks:
            if BLOCKS[b][1]:
                block = emb[b].astype(np.float64) if n else np.zeros((0, BLOCKS[b][0]))
            else:
                block = np.asarray([row[b] for row in lex], dtype=np.float64).reshape(n, BLOCKS[b][0])
            parts.append(block)
        if progress:
            progress(n)
        X = np.hstack(parts) if parts else np.zeros((n, 0))
        return self.spec.neutralise(X) if control else X


# ------------------------------------------------------------------------------------------------ the head


@dataclass
class LinearHead:
    """``logit = ((x - mean) / scale) . coef + intercept[source]`` (soft-label logistic regression)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercepts: dict[str, float]
    primary: str = "alpaca_eval"  # the source whose intercept scores answers ("P(beats the reference)")

    def logit(self, X: np.ndarray, source: str | None = None) -> np.ndarray:
        b = self.intercepts[source or self.primary]
        return ((X - self.mean) / self.scale) @ self.coef + b

    def proba(self, X: np.ndarray, source: str | None = None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(X, source)))


def _newton_logistic(A: np.ndarray, y: np.ndarray, w: np.ndarray, lam: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Minimise ``sum_i w_i * BCE(y_i, sigmoid(A_i . theta)) + 0.5 * sum_k lam_k theta_k^2`` from ``theta`` by
    Newton's method (exact Hessian, step halving). Deterministic."""

    def loss(th: np.ndarray) -> float:
        z = A @ th
        return float((w * (np.logaddexp(0.0, z) - y * z)).sum() + 0.5 * (lam * th * th).sum())

    f = loss(theta)
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (A @ theta)))
        g = A.T @ (w * (p - y)) + lam * theta
        H = (A * (w * p * (1.0 - p))[:, None]).T @ A + np.diag(lam)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        for _ in range(40):
            f_new = loss(theta - t * step)
            if f_new <= f + 1e-15:
                break
            t *= 0.5
        theta, f = theta - t * step, min(f, f_new)
        if np.abs(t * step).max() < 1e-9:
            break
    return theta


def fit_head(X: np.ndarray, y: np.ndarray, sources: Sequence[str], *, l2: float = 1.0,
             weights: Mapping[str, float] | None = None, primary: str = "alpaca_eval",
             init: LinearHead | None = None) -> LinearHead:
    """Soft-label logistic regression with one intercept per label source and an L2 penalty on ``coef``.

    Minimises ``sum_i w_i * BCE(y_i, sigmoid(z_i)) / sum_i w_i + l2 / (2 n) * |coef|^2`` by Newton's method
    (exact Hessian, step halving), where ``w_i`` is the weight of row i's source (sources weigh equally in
    total by default) and features are standardised on the training rows. Deterministic: same inputs, same
    head. ``init``: a head to start from (e.g. the fit on all rows when fitting cross-validation folds);
    the optimum is the same, it is reached in fewer steps.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    if n == 0:
        raise JudgeError("no training labels left to fit the learned judge")
    names = sorted(set(sources))
    src = np.array([names.index(s) for s in sources])
    counts = np.bincount(src, minlength=len(names)).astype(np.float64)
    wmap = dict(weights or {})
    w = np.array([wmap.get(names[k], 1.0) / counts[k] for k in src])
    w = w / w.sum()
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    A = np.hstack([(X - mean) / scale, np.eye(len(names))[src]])
    lam = np.r_[np.full(d, float(l2) / n), np.full(len(names), 1e-10)]

    theta = np.zeros(d + len(names))
    if init is not None and init.coef.shape == (d,) and set(names) <= set(init.intercepts):
        v = init.coef / init.scale  # the same logits, re-expressed in this fit's standardisation
        theta[:d] = v * scale
        theta[d:] = [init.intercepts[k] - float(init.mean @ v) + float(mean @ v) for k in names]
    theta = _newton_logistic(A, y, w, lam, theta)
    coef, b = theta[:d], theta[d:]
    return LinearHead(mean, scale, coef, {k: float(v) for k, v in zip(names, b)},
                      primary if primary in names else names[0])


def fit_judge(spec: FeatureSpec, X: np.ndarray, y: np.ndarray, sources: Sequence[str], *, l2: float = 1.0,
              weights: Mapping[str, float] | None = None, init: LinearHead | None = None,
              manifest: dict[str, Any] | None = None) -> JudgeArtifact:
    """Fit the head (and, for an ``orthogonal`` spec, the :class:`Orthogonaliser`) on a raw training feature
    matrix; score with :meth:`JudgeArtifact.proba`."""
    ortho = Orthogonaliser.fit(X, spec) if spec.orthogonal else None
    head = fit_head(ortho.apply(X) if ortho is not None else X, y, sources, l2=l2, weights=weights, init=init)
    return JudgeArtifact(spec, head, dict(manifest or {}), ortho=ortho)


GATE_BLOCKS: tuple[str, ...] = ("overlap", "coverage", "cosine")
"""What the relevance gate reads: how much of the instruction and the reference an answer covers, not its
length or style (so a short on-topic answer is not gated)."""


@dataclass
class RelevanceGate:
    """``P(the answer addresses its instruction)``: a logistic model on the :data:`GATE_BLOCKS` columns of the
    raw feature matrix, trained self-supervised (no judge labels): real answers against answers to another
    instruction. Scoring multiplies the head's ``P(beats the reference)`` by it, because an answer that does
    not address the instruction never beats one that does, however fluent or long (a junk string, a
    prompt injection, an answer to another question)."""

    blocks: tuple[str, ...]
    head: LinearHead

    def proba(self, spec: FeatureSpec, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return self.head.proba(X[:, _block_columns(spec, X.shape[1], self.blocks)])


def _block_columns(spec: FeatureSpec, total: int, blocks: Sequence[str]) -> np.ndarray:
    cols = spec.columns(total)
    return np.concatenate([cols[b] for b in blocks])


def fit_gate(spec: FeatureSpec, X_on: np.ndarray, X_off: np.ndarray, *, l2: float = 1.0) -> RelevanceGate:
    """Fit the :class:`RelevanceGate` on raw feature rows of real answers (``X_on``) and of answers to
    another instruction (``X_off``), the two classes weighed equally. Deterministic."""
    missing = [b for b in GATE_BLOCKS if b not in spec.blocks]
    if missing:
        raise JudgeError(f"the relevance gate needs the feature block '{missing[0]}' (features.blocks)")
    if not len(X_on) or not len(X_off):
        raise JudgeError("the relevance gate needs real and off-topic rows to fit")
    cols = _block_columns(spec, np.asarray(X_on).shape[1], GATE_BLOCKS)
    X = np.vstack([np.asarray(X_on, dtype=np.float64)[:, cols], np.asarray(X_off, dtype=np.float64)[:, cols]])
    y = np.r_[np.ones(len(X_on)), np.zeros(len(X_off))]
    w = np.r_[np.full(len(X_on), 0.5 / len(X_on)), np.full(len(X_off), 0.5 / len(X_off))]
    return RelevanceGate(GATE_BLOCKS, _weighted_logistic(X, y, w, l2=l2))


def _weighted_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, *, l2: float) -> LinearHead:
    """Row-weighted logistic regression (standardised features, one intercept): Newton's method with step
    halving, as :func:`fit_head`."""
    n, d = X.shape
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    A = np.c_[(X - mean) / scale, np.ones(n)]
    w = w / w.sum()
    lam = np.r_[np.full(d, float(l2) / n), 1e-10]
    theta = _newton_logistic(A, y, w, lam, np.zeros(d + 1))
    return LinearHead(mean, scale, theta[:d], {"gate": float(theta[d])}, "gate")


# ---------------------------------------------------------------------------------------------- artifacts


@dataclass
class JudgeArtifact:
    """A trained learned judge: its feature spec, head and manifest (provenance)."""

    spec: FeatureSpec
    head: LinearHead
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    ortho: Orthogonaliser | None = None  # present exactly when ``spec.orthogonal``
    gate: RelevanceGate | None = None  # P(on topic), multiplied into the score (recipe ``gate``)

    def arrays(self) -> dict[str, np.ndarray]:
        sources = sorted(self.head.intercepts)
        out = {"mean": self.head.mean, "scale": self.head.scale, "coef": self.head.coef,
               "intercepts": np.array([self.head.intercepts[s] for s in sources])}
        if self.ortho is not None:
            out["ortho"] = self.ortho.coef
        if self.gate is not None:
            g = self.gate.head
            out |= {"gate_mean": g.mean, "gate_scale": g.scale, "gate_coef": g.coef,
                    "gate_intercept": np.array([g.intercepts["gate"]])}
        return out

    def proba(self, X: np.ndarray) -> np.ndarray:
        """``P(answer beats the reference)`` from a raw feature matrix (``Featurizer.transform`` without
        control): orthogonalised (when the spec says so), controlled blocks neutralised, then the head."""
        gate = self.gate.proba(self.spec, X) if self.gate is not None else None
        if self.ortho is not None:
            X = self.ortho.apply(X)
        p = self.head.proba(self.spec.neutralise(X))
        return p if gate is None else p * gate

    @property
    def digest(self) -> str:
        """sha256 of the arrays and the spec: what makes the scores (part of the judge identity)."""
        h = hashlib.sha256(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
        for k, v in sorted(self.arrays().items()):
            h.update(k.encode())
            h.update(np.ascontiguousarray(v, dtype="<f8").tobytes())
        h.update(json.dumps(sorted(self.head.intercepts), sort_keys=True).encode())
        return h.hexdigest()


def _artifact_paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


PACKAGED_ARTIFACTS = {
    DEFAULT_ARTIFACT: REBUILD_HINT,
    FAST_ARTIFACT: "banditarena judge train src/banditarena/recipes/judge-learned-fast.yaml",
}
"""The artifacts shipped as package data, each with the command that rebuilds it."""


def packaged_artifact(name: str = DEFAULT_ARTIFACT) -> Path:
    """Prefix of an artifact shipped inside the package (``banditarena/data/<name>``)."""
    return Path(str(resources.files("banditarena") / "data" / name))


def resolve_artifact(path: str | Path | None) -> Path:
    """``None``/``"default"``/``"judge-learned"`` -> the packaged default artifact; ``"judge-learned-fast"`` ->
    the packaged fast one (:data:`PACKAGED_ARTIFACTS`); anything else -> that path."""
    if path is None or str(path) == "default":
        return packaged_artifact()
    if str(path) in PACKAGED_ARTIFACTS:
        return packaged_artifact(str(path))
    from banditarena.paths import resolve_path

    return resolve_path(str(path))


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An ``.npz`` whose bytes depend only on the arrays (fixed zip timestamps), written atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name], dtype="<f8"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def save_artifact(art: JudgeArtifact, path: str | Path) -> tuple[Path, Path]:
    """Write ``PATH.npz`` (arrays) and ``PATH.json`` (manifest). Returns both paths."""
    npz, js = _artifact_paths(path)
    npz.parent.mkdir(parents=True, exist_ok=True)
    _write_npz(npz, art.arrays())
    manifest = {
        **art.manifest,
        "format": ARTIFACT_FORMAT,
        "format_version": 1,
        "features": art.spec.to_dict(),
        "sources": sorted(art.head.intercepts),
        "primary_source": art.head.primary,
        "dim": int(art.head.coef.shape[0]),
        **({"gate": {"blocks": list(art.gate.blocks)}} if art.gate is not None else {}),
        "digest": art.digest,
        "npz_sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
    }
    write_text_atomic(js, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    art.manifest, art.path = manifest, npz.with_suffix("")
    return npz, js


def load_artifact(path: str | Path | None = None, *, expect_blocks: Sequence[str] | None = None,
                  expect_embedder: str | None = None, rebuild: str = REBUILD_HINT) -> JudgeArtifact:
    """Load an artifact (``None``: the packaged one). Raises :class:`JudgeError` (one line naming the file
    and ``rebuild``) when it is missing, unreadable, of another format or feature version, or when it was
    trained with other feature blocks or another embedder than the recipe expects."""
    prefix = resolve_artifact(path)
    if rebuild == REBUILD_HINT and str(path) in PACKAGED_ARTIFACTS:
        rebuild = PACKAGED_ARTIFACTS[str(path)]
    npz, js = _artifact_paths(prefix)
    for f in (js, npz):
        if not f.is_file():
            raise JudgeError(f"{f}: learned-judge artifact not found; build it with `{rebuild}`")
    try:
        manifest = json.loads(js.read_text(encoding="utf-8"))
        spec = FeatureSpec.from_dict(manifest["features"])
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float64) for k in ("mean", "scale", "coef", "intercepts")}
            if spec.orthogonal:
                arrays["ortho"] = np.asarray(z["ortho"], dtype=np.float64)
            gate_blocks = tuple(manifest["gate"]["blocks"]) if "gate" in manifest else None
            if gate_blocks is not None:
                arrays |= {k: np.asarray(z[k], dtype=np.float64)
                           for k in ("gate_mean", "gate_scale", "gate_coef", "gate_intercept")}
        sources = list(manifest["sources"])
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise JudgeError(f"{js}: not a usable learned-judge artifact ({type(exc).__name__}: {exc}); "
                         f"rebuild it with `{rebuild}`") from exc
    if manifest.get("format") != ARTIFACT_FORMAT:
        raise JudgeError(f"{js}: not a learned-judge manifest (format {manifest.get('format')!r}); rebuild it with `{rebuild}`")
    if spec.version != FEATURES_VERSION:
        raise JudgeError(f"{js}: trained on feature version '{spec.version}' but this banditarena computes "
                         f"'{FEATURES_VERSION}'; rebuild it with `{rebuild}`")
    if expect_blocks is not None and tuple(expect_blocks) != spec.blocks:
        raise JudgeError(f"{js}: trained with feature blocks {list(spec.blocks)}, the recipe expects "
                         f"{list(expect_blocks)}; rebuild it with `{rebuild}`")
    if expect_embedder is not None and expect_embedder != spec.embedder:
        raise JudgeError(f"{js}: trained with embedder '{spec.embedder}', the recipe expects '{expect_embedder}'; "
                         f"rebuild it with `{rebuild}`")
    d = arrays["coef"].shape[0]
    if arrays["mean"].shape != (d,) or arrays["scale"].shape != (d,) or len(sources) != arrays["intercepts"].shape[0]:
        raise JudgeError(f"{npz}: arrays do not match the manifest; rebuild it with `{rebuild}`")
    ortho = None
    if spec.orthogonal:
        ctl = spec.controlled_columns(d)
        if arrays["ortho"].shape != (1 + len(ctl), d):
            raise JudgeError(f"{npz}: arrays do not match the manifest; rebuild it with `{rebuild}`")
        ortho = Orthogonaliser(ctl, arrays["ortho"])
    head = LinearHead(arrays["mean"], arrays["scale"], arrays["coef"],
                      {s: float(v) for s, v in zip(sources, arrays["intercepts"])},
                      str(manifest.get("primary_source", sources[0])))
    gate = None
    if gate_blocks is not None:
        gd = len(_block_columns(spec, d, gate_blocks)) if set(gate_blocks) <= set(spec.blocks) else -1
        if not (arrays["gate_coef"].shape == arrays["gate_mean"].shape == arrays["gate_scale"].shape == (gd,)
                and arrays["gate_intercept"].shape == (1,)):
            raise JudgeError(f"{npz}: gate arrays do not match the manifest; rebuild it with `{rebuild}`")
        gate = RelevanceGate(gate_blocks, LinearHead(arrays["gate_mean"], arrays["gate_scale"], arrays["gate_coef"],
                                                     {"gate": float(arrays["gate_intercept"][0])}, "gate"))
    art = JudgeArtifact(spec, head, manifest, prefix, ortho, gate)
    if manifest.get("digest") and manifest["digest"] != art.digest:
        raise JudgeError(f"{npz}: arrays do not match the manifest's digest (edited?); rebuild it with `{rebuild}`")
    return art


# --------------------------------------------------------------------------------------------- the judge


class LearnedScorer:
    """Pointwise scores ``P(answer beats the reference)`` with a content-addressed in-memory cache."""

    def __init__(self, artifact: JudgeArtifact, embedder: Any | None = None) -> None:
        self.artifact = artifact
        self.featurizer = Featurizer(artifact.spec, embedder)
        self._cache: dict[str, float] = {}
        self.n_scored = 0  # triples actually featurised (cache misses)

    def key(self, instruction: str, reference: str, answer: str) -> str:
        return stable_hash([self.artifact.digest, instruction, reference, answer])

    def score(self, instructions: Sequence[str], answers: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """``P(answer beats the reference)`` per triple (length-controlled). An answer identical to its
        reference ties with it: exactly 0.5 (so the reference's own model is scored like any other)."""
        keys = [self.key(q, r, a) for q, a, r in zip(instructions, answers, references)]
        for k, a, r in zip(keys, answers, references):
            if k not in self._cache and a.strip() == r.strip():
                self._cache[k] = 0.5
        todo = {k: i for i, k in enumerate(keys) if k not in self._cache}
        if todo:
            idx = list(todo.values())
            X = self.featurizer.transform([instructions[i] for i in idx], [answers[i] for i in idx],
                                          [references[i] for i in idx])
            p = self.artifact.proba(X)
            for k, v in zip(todo, p):
                self._cache[k] = float(v)
            self.n_scored += len(idx)
        return np.array([self._cache[k] for k in keys])


def pair_probability(p_first: float, p_second: float, eps: float = 1e-6) -> float:
    """``P(first beats second)`` from two answers' probabilities of beating the same reference:
    ``sigmoid(logit p_first - logit p_second)`` (Bradley-Terry through the reference)."""
    a = min(max(float(p_first), eps), 1 - eps)
    b = min(max(float(p_second), eps), 1 - eps)
    d = math.log(a / (1 - a)) - math.log(b / (1 - b))
    return 1.0 / (1.0 + math.exp(-d))


def _failed(judge: Judge, r: JudgeRequest, why: str, retryable: bool = False) -> Judgment:
    from banditarena.judges.llm import RETRYABLE_PREFIX

    return Judgment(judge=judge.name, prompt_id=r.prompt.id, first=r.first.contestant, second=r.second.contestant,
                    ok=False, raw=why, error=(RETRYABLE_PREFIX + why) if retryable else why, attempts=0)


class LearnedJudge(ReferenceAnswers, Judge):
    """The learned offline judge (see the module docstring).

    Parameters
    ----------
    artifact:
        A path prefix (``PATH`` for ``PATH.npz`` + ``PATH.json``), ``None``/``"default"`` for the packaged
        artifact, or a loaded :class:`JudgeArtifact`.
    reference_contestant, references:
        Where reference answers come from, as for the similarity judge: that contestant's answers (feed
        them with :meth:`set_references`), a ``prompt_id -> text`` mapping, and otherwise ``Prompt.reference``.
    scale:
        Judgment scores are ``scale * P(answer beats the reference)`` (default 10, the LLM judges' range).
    tie_margin:
        Probability difference below which the two answers tie (default 0: only equal scores tie).
    expect_blocks, expect_embedder:
        What the recipe expects the artifact to have been trained with (checked at load).
    """

    batch_size = 512

    def __init__(self, artifact: str | Path | JudgeArtifact | None = None, reference_contestant: str | None = None,
                 *, references: Mapping[str, str] | None = None, embedder: Any | None = None,
                 scale: float = 10.0, tie_margin: float = 0.0, name: str | None = None,
                 expect_blocks: Sequence[str] | None = None, expect_embedder: str | None = None) -> None:
        if tie_margin < 0 or scale <= 0:
            raise ValueError("need tie_margin >= 0 and scale > 0")
        self.artifact = artifact if isinstance(artifact, JudgeArtifact) else load_artifact(
            artifact, expect_blocks=expect_blocks, expect_embedder=expect_embedder)
        self.scorer = LearnedScorer(self.artifact, embedder)
        self.reference_contestant = reference_contestant
        self.references: dict[str, str] = dict(references or {})
        self.scale = float(scale)
        self.tie_margin = float(tie_margin)
        self.name = name or "learned"
        self.version = f"learned-1:{self.artifact.digest[:16]}"

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "scale": self.scale, "tie_margin": self.tie_margin,
                "reference_contestant": self.reference_contestant}

    @staticmethod
    def instruction_of(request: JudgeRequest) -> str:
        turns = request.prompt.user_turns
        return turns[-1] if turns else ""

    def cache_key(self, request: JudgeRequest) -> str:
        p = request.prompt
        return stable_hash({"id": self.identity(), "messages": p.messages, "reference": self.reference_for(request),
                            "first": request.first.turns, "second": request.second.turns})

    def win_probabilities(self, requests: Sequence[JudgeRequest]) -> list[tuple[float, float] | None]:
        """``(P(first beats ref), P(second beats ref))`` per request; None where it cannot be scored."""
        rows: list[tuple[str, str, str]] = []
        where: list[int] = []
        for i, r in enumerate(requests):
            ref = self.reference_for(r)
            if ref and ref.strip() and r.first.ok and r.second.ok:
                q = self.instruction_of(r)
                rows += [(q, r.first.text, ref), (q, r.second.text, ref)]
                where.append(i)
        out: list[tuple[float, float] | None] = [None] * len(requests)
        if rows:
            p = self.scorer.score([q for q, _, _ in rows], [a for _, a, _ in rows], [x for _, _, x in rows])
            for k, i in enumerate(where):
                out[i] = (float(p[2 * k]), float(p[2 * k + 1]))
        return out

    def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        from banditarena.judges.reference import _failed_generation

        probs = self.win_probabilities(requests)
        out: list[Judgment] = []
        for r, pr in zip(requests, probs):
            key = self.cache_key(r)
            failed = _failed_generation(self, r, key)
            if failed is not None:
                out.append(failed)
                continue
            if pr is None:
                why = f"prompt '{r.prompt.id}' has no reference answer" + (
                    f" from '{self.reference_contestant}'" if self.reference_contestant else "")
                out.append(_failed(self, r, why))
                continue
            pa, pb = pr
            sa, sb = round(self.scale * pa, 6), round(self.scale * pb, 6)
            prob = pair_probability(pa, pb)
            if abs(pa - pb) < self.tie_margin:
                sa = sb = round((sa + sb) / 2, 6)
                prob = 0.5
            why = f"learned judge: P(beats the reference) A {pa:.4f}, B {pb:.4f} (length-controlled)"
            out.append(Judgment(judge=self.name, prompt_id=r.prompt.id, first=r.first.contestant,
                                second=r.second.contestant, score_first=sa, score_second=sb, rationale=why,
                                raw=json.dumps({"p_first": round(pa, 6), "p_second": round(pb, 6)}), ok=True,
                                cache_key=key, prob_first=round(prob, 6)))
        return out

    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        out = await asyncio.to_thread(self.judge_batch, requests)
        if progress and out:
            progress(len(out))
        return out
