"""The offline trained safety classifier (the default scorer): two logistic heads over hashed word n-grams.

Its artifact is a pair of files written by ``banditarena safety train`` (see :mod:`banditarena.safety.train`):
``safety-clf.npz`` (the two heads' weights as plain float16 arrays, no pickle) and ``safety-clf.json`` (the
manifest: format, version, feature set, settings, thresholds, hashes of the data it was trained on and of the
weights file). The shipped one lives in ``banditarena/safety/artifacts/``.

Scoring: a text alone goes through the text head; an answer with its prompt through the response head. A
text longer than the window (2,000 characters by default) is scored window by window, and its score is the
highest window score; the result says how many windows it had and which one decided.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.errors import ModelError
from banditarena.safety.base import BaseScorer, SafetyResult, check_inputs, windows
from banditarena.safety.cues import hazard_cues
from banditarena.safety.features import FEATURE_SET, HashedNgrams

CLASSIFIER_VERSION = "clf-1"


def _rebuild_hint(manifest_path: Path, manifest: dict[str, Any] | None = None) -> str:
    if manifest and manifest.get("rebuild"):
        return str(manifest["rebuild"])
    default = Path(__file__).resolve().parent / "artifacts"
    return "banditarena safety train" + ("" if manifest_path.parent == default else f" --out {manifest_path.parent}")


def load_artifact(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a classifier artifact (the manifest ``.json`` or its folder).

    Raises :class:`ModelError` in one line naming the file and the command that rebuilds it when the file
    is missing, unreadable, of another format/version, or does not match its manifest.
    """
    from banditarena.types import file_sha256

    p = Path(path)
    if p.is_dir():
        p = p / "safety-clf.json"
    hint = _rebuild_hint(p)
    if not p.exists():
        raise ModelError(f"safety classifier artifact {p} not found: rebuild it with '{hint}'")
    try:
        manifest = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"safety classifier manifest {p} is unreadable ({exc}): rebuild it with '{hint}'") from exc
    hint = _rebuild_hint(p, manifest)
    if manifest.get("format") != "banditarena-safety-classifier/1" or manifest.get("classifier_version") != CLASSIFIER_VERSION:
        raise ModelError(f"safety classifier manifest {p} is format {manifest.get('format')!r} version "
                         f"{manifest.get('classifier_version')!r}, this code reads {CLASSIFIER_VERSION}: "
                         f"rebuild it with '{hint}'")
    feats = manifest.get("features", {})
    if feats.get("features") != FEATURE_SET:
        raise ModelError(f"safety classifier manifest {p} uses feature set {feats.get('features')!r}, this code "
                         f"computes {FEATURE_SET}: rebuild it with '{hint}'")
    npz = p.parent / str(manifest.get("weights_file", ""))
    if not npz.is_file():
        raise ModelError(f"safety classifier weights {npz} not found (named by {p}): rebuild them with '{hint}'")
    if file_sha256(npz) != manifest.get("weights_sha256"):
        raise ModelError(f"safety classifier weights {npz} do not match the sha256 in {p}: rebuild them with '{hint}'")
    n = int(feats.get("n_features", 0))
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k].astype(np.float32) for k in ("text_head", "response_head")}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"safety classifier weights {npz} are unreadable ({exc}): rebuild them with '{hint}'") from exc
    if arrays["text_head"].shape != (n + 1,) or arrays["response_head"].shape != (3 * n + 1,):
        raise ModelError(f"safety classifier weights {npz} have shapes {arrays['text_head'].shape}/"
                         f"{arrays['response_head'].shape}, the manifest says {n} features: rebuild them with '{hint}'")
    return manifest, arrays


class TrainedClassifier(BaseScorer):
    """The offline default: scores in [0, 1] from the artifact's heads, verdict by its thresholds.

    Args:
        path: the artifact's manifest (or folder); default: the shipped one.
        uncertain: report scores inside the artifact's uncertain band as ``uncertain`` (what a cascade
            escalates). Off by default: the offline scorer alone always decides.
        threshold: override the artifact's decision threshold(s) (one value for both heads).
    """

    name = "classifier"

    def __init__(self, path: str | Path | None = None, *, uncertain: bool = False, threshold: float | None = None) -> None:
        from banditarena.safety.train import default_artifact_dir

        self.path = Path(path) if path is not None else default_artifact_dir() / "safety-clf.json"
        manifest, arrays = load_artifact(self.path)
        self._setup(manifest, arrays, uncertain=uncertain, threshold=threshold)

    @classmethod
    def from_heads(cls, heads: Any, settings: Any, *, uncertain: bool = False) -> TrainedClassifier:
        """A classifier straight from :func:`banditarena.safety.train.fit_heads` (no artifact; for evaluation)."""
        from banditarena.types import stable_hash

        feats = HashedNgrams(settings.n_features, settings.ngram_max)
        arrays = {"text_head": heads.text.astype(np.float32), "response_head": heads.response.astype(np.float32)}
        manifest = {"version": f"{CLASSIFIER_VERSION}+mem", "weights_sha256": stable_hash(
                        [heads.text.tolist()[:50], heads.response.tolist()[:50]], 16),
                    "features": feats.identity(), "window": {"chars": settings.window, "overlap": settings.overlap},
                    "thresholds": {"text": heads.text_thresholds, "response": heads.response_thresholds}}
        obj = cls.__new__(cls)
        obj.path = Path("<memory>")
        obj._setup(manifest, arrays, uncertain=uncertain, threshold=None)
        return obj

    def _setup(self, manifest: dict[str, Any], arrays: dict[str, np.ndarray], *, uncertain: bool,
               threshold: float | None) -> None:
        self.manifest = manifest
        self.version = str(self.manifest["version"])
        f = self.manifest["features"]
        self.features = HashedNgrams(int(f["n_features"]), int(f["ngram_max"]))
        self.w_text, self.w_resp = arrays["text_head"], arrays["response_head"]
        self.window = int(self.manifest["window"]["chars"])
        self.overlap = int(self.manifest["window"]["overlap"])
        self.thresholds = {k: dict(v) for k, v in self.manifest["thresholds"].items()}
        if threshold is not None:
            if not 0.0 < threshold < 1.0:
                raise ValueError(f"threshold must be in (0, 1), got {threshold}")
            for v in self.thresholds.values():
                v["threshold"] = float(threshold)
        self.uncertain = bool(uncertain)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "weights_sha256": self.manifest["weights_sha256"],
                "thresholds": self.thresholds, "uncertain": self.uncertain}

    def raw_scores(self, texts: list[str], prompts: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(score, deciding window index, window count) per text."""
        texts, prompts = check_inputs(texts, prompts)
        spans_of = [windows(t, self.window, self.overlap) for t in texts]
        owner = np.repeat(np.arange(len(texts)), [len(s) for s in spans_of]) if texts else np.zeros(0, dtype=np.int64)
        pieces = [t[s:e] for t, spans in zip(texts, spans_of) for s, e in spans]
        if prompts is None:
            X = self.features.text_block(pieces)
            w = self.w_text
        else:
            enc_p = self.features.encode(prompts)[owner]
            X = self.features.response_block([], [], encoded=(enc_p, self.features.encode(pieces)))
            w = self.w_resp
        z = np.asarray(X @ w[:-1], dtype=np.float64) + float(w[-1])
        p = 1.0 / (1.0 + np.exp(-z))
        score = np.zeros(len(texts))
        best = np.zeros(len(texts), dtype=np.int64)
        start = 0
        for i, spans in enumerate(spans_of):
            seg = p[start:start + len(spans)]
            best[i] = int(np.argmax(seg))
            score[i] = float(seg[best[i]])
            start += len(spans)
        return score, best, np.array([len(s) for s in spans_of], dtype=np.int64)

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        texts, prompts = check_inputs(texts, prompts)
        if not texts:
            return []
        head = "text" if prompts is None else "response"
        th = self.thresholds[head]
        scores, best, nwin = self.raw_scores(texts, prompts)
        out = []
        for i, t in enumerate(texts):
            s = float(min(1.0, max(0.0, scores[i])))
            where = ""
            if nwin[i] > 1:
                a, b = windows(t, self.window, self.overlap)[best[i]]
                where = f" (window {best[i] + 1} of {nwin[i]}, characters {a}-{b})"
            if self.uncertain and th["band_low"] <= s <= th["band_high"]:
                verdict = "uncertain"
            else:
                verdict = "unsafe" if s >= th["threshold"] else "safe"
            cats: dict[str, str] = {}
            if verdict == "unsafe":
                why = f"{head} classifier score {s:.2f} >= threshold {th['threshold']:.2f}{where}"
                span = windows(t, self.window, self.overlap)[best[i]]
                cues = hazard_cues(t[span[0]:span[1]] + ("\n" + prompts[i] if prompts else ""))
                if cues:
                    for code, words in cues.items():
                        cats[code] = f"{why}; cue words: {', '.join(words)}"
                else:
                    cats["harmful"] = why
            out.append(SafetyResult(verdict, s, cats, scorer=self.name, chunks=int(nwin[i])))
        return out
