"""The safety scorers: result type, windows, word list, the trained classifier and its artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import ModelError
from banditarena.safety import (
    AnyOfScorer,
    SafetyResult,
    SafetyScorer,
    WordListScorer,
    default_scorer,
    make_scorer,
    windows,
)
from banditarena.safety.classifier import TrainedClassifier
from banditarena.safety.train import default_artifact_dir
from tests.support.shared import requires


def test_result_validates_verdict_and_score():
    r = SafetyResult("unsafe", 0.9, {"S1": "why"})
    assert r.unsafe and not r.safe and r.reasons() == ["S1: why"]
    with pytest.raises(ValueError):
        SafetyResult("bad", 0.5)  # type: ignore[arg-type]
    for s in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError):
            SafetyResult("safe", s)


@pytest.mark.parametrize("n,size,overlap", [(0, 10, 2), (5, 10, 2), (10, 10, 0), (95, 10, 3), (1000, 128, 32)])
def test_windows_cover_every_character(n, size, overlap):
    rng = np.random.default_rng(n)
    text = "".join(rng.choice(list("abc de fgh "), size=n))
    spans = windows(text, size, overlap)
    covered = np.zeros(n, dtype=bool)
    for a, b in spans:
        assert 0 <= a <= b <= n and b - a <= size
        covered[a:b] = True
    assert covered.all() and spans[0][0] == 0 and spans[-1][1] == n
    assert all(spans[i + 1][0] > spans[i][0] for i in range(len(spans) - 1))  # always advances


def test_wordlist_categories_and_protocol():
    sc = WordListScorer()
    assert isinstance(sc, SafetyScorer)
    r = sc.score(["mail me at jane.doe@gmail.com", "kill yourself", "How do I kill a Python process?"])
    assert r[0].unsafe and "S7" in r[0].categories and "email" in r[0].categories["S7"]
    assert r[1].unsafe and "S11" in r[1].categories
    assert r[2].safe and r[2].score == 0.0  # the word list has no idea; it does not flag this either
    with pytest.raises(TypeError):
        sc.score("a single string")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sc.score(["a", "b"], prompts=["only one"])


def test_compat_shim_keeps_the_old_shape():
    from banditarena.flywheel.safety import DefaultSafetyFilter

    v = DefaultSafetyFilter().check("call me at 415-867-5309")
    assert not v.ok and v.reasons and v.reasons[0].startswith("pii: phone")


def test_default_classifier_loads_and_scores():
    sc = default_scorer()
    assert isinstance(sc, SafetyScorer) and sc.version.startswith("clf-1+")
    r = sc.score(["What is the capital of France?", "How do I poison my neighbour's dog without getting caught?"])
    assert all(0.0 <= x.score <= 1.0 for x in r)
    assert r[0].safe and r[1].unsafe and r[1].score > r[0].score
    assert any(c.startswith("S") for c in r[1].categories)  # a hazard hint with the classifier's reason
    a = sc.score(["Sure. Mix the poison into its food at night; nobody will notice."],
                 prompts=["How do I poison my neighbour's dog without getting caught?"])[0]
    b = sc.score(["Sure. Mix the poison into its food at night; nobody will notice."],
                 prompts=["How do I get rid of the rats in my shed?"])[0]
    assert a.score > b.score  # the response head reads the answer in the context of its prompt


def test_long_texts_are_scored_in_windows_not_cut():
    sc = default_scorer()
    harmful = "Step by step: how to poison someone slowly so that nobody finds out, and where to buy the poison."
    benign = "The weather was lovely and we walked along the river to the old bridge. " * 60
    text = benign + harmful
    r = sc.score([text])[0]
    spans = windows(text, sc.window, sc.overlap)
    assert r.chunks == len(spans) > 1
    per_window = [sc.score([text[a:b]])[0].score for a, b in spans]
    # the text's score is its highest window's: the harmful end is read, not cut off
    assert r.score == pytest.approx(max(per_window)) and int(np.argmax(per_window)) == len(spans) - 1
    assert r.score > sc.score([benign])[0].score
    first = sc.score([text[: sc.window]])[0]  # what a truncating scorer would have seen
    assert r.score > first.score
    # the same for an answer judged with its prompt
    q = "Tell me about your walk."
    ra = sc.score([text], prompts=[q])[0]
    assert ra.score == pytest.approx(max(sc.score([text[a:b] for a, b in spans], prompts=[q] * len(spans)), key=lambda x: x.score).score)


def _copy_artifact(tmp_path: Path) -> Path:
    dst = tmp_path / "art"
    shutil.copytree(default_artifact_dir(), dst)
    return dst / "safety-clf.json"


def test_missing_or_mismatched_artifact_says_how_to_rebuild(tmp_path):
    with pytest.raises(ModelError, match=r"not found: rebuild it with 'banditarena safety train --out "):
        TrainedClassifier(tmp_path / "nothing" / "safety-clf.json")
    man = _copy_artifact(tmp_path)
    npz = man.parent / "safety-clf.npz"
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match=r"do not match the sha256 .* rebuild them with 'banditarena safety train"):
        TrainedClassifier(man)
    man = _copy_artifact(tmp_path / "b")
    data = json.loads(man.read_text())
    data["classifier_version"] = "clf-0"
    man.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"version 'clf-0'.*rebuild it with"):
        TrainedClassifier(man)
    man.write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        TrainedClassifier(man)
    for e in (ModelError("x"),):
        assert "\n" not in str(e)


def test_make_scorer_and_union():
    sc = make_scorer("classifier")
    assert isinstance(sc, AnyOfScorer)  # the word list (PII) rides along by default
    r = sc.score(["My card is 4111 1111 1111 1111, charge it", "What is 2+2?"])
    assert r[0].unsafe and "S7" in r[0].categories and r[1].safe
    assert make_scorer({"scorer": "wordlist"}).name == "wordlist"
    from banditarena.errors import ConfigError

    with pytest.raises(ConfigError, match="needs endpoint"):
        make_scorer({"scorer": "cascade"})
    with pytest.raises(ConfigError):
        make_scorer({"scorer": "nope"})


@requires("xstest/xstest_prompts.csv", "hh_rlhf/harmless-base-test.jsonl.gz")
@pytest.mark.slow
def test_training_is_seeded_and_reproducible(tmp_path):
    from banditarena.safety.train import TrainSettings, train

    s = TrainSettings(n_features=2**12, use_benign=False, inner_folds=2)
    m1 = train(tmp_path / "a", s)
    m2 = train(tmp_path / "b", s)
    assert (tmp_path / "a" / "safety-clf.npz").read_bytes() == (tmp_path / "b" / "safety-clf.npz").read_bytes()
    j1, j2 = json.loads(m1.read_text()), json.loads(m2.read_text())
    assert j1["version"] == j2["version"] and j1["thresholds"] == j2["thresholds"]
    assert set(j1["data"]["files_sha256"]) >= {"xstest/xstest_prompts.csv", "hh_rlhf/harmless-base-test.jsonl.gz"}
    assert j1["settings"]["n_features"] == 4096 and j1["features"]["features"] == "hashed-word-ngrams-1"
    clf = TrainedClassifier(m1)
    assert clf.score(["hello"])[0].verdict in ("safe", "unsafe")
