"""The learned judge: training from real labels, the artifact, scoring, and its use in an arena."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from banditarena.errors import JudgeError
from banditarena.judges import JudgeRequest
from banditarena.judges.learned import FeatureSpec, Featurizer, LearnedJudge, fit_head, load_artifact
from banditarena.judges.training import load_train_recipe, train
from banditarena.types import Generation, Prompt
from tests.support.shared import need, requires

ROOT = Path(__file__).resolve().parents[2]
LEXICAL = ["overlap", "coverage", "length", "markdown", "refusal"]  # no embedding model needed: fast
# the shared data sets RECIPE trains on, and the AlpacaEval outputs (with human Elo) it is validated and used on
LABELS = ("alpaca_eval/annotations_gpt4_turbo", "arena_bench_v1/model_judgment")
OUTPUTS = ("alpaca_eval/model_outputs", "alpaca_eval/benchmarks.csv")

RECIPE = """
name: tiny-judge
seed: 0
labels:
  alpaca_eval: [data:alpaca_eval/annotations_gpt4_turbo/claude.json, data:alpaca_eval/annotations_gpt4_turbo/vicuna-7b-v1.5.json]
  arena_bench_v1: [data:arena_bench_v1/model_judgment/claude-1.jsonl]
features: {blocks: [overlap, coverage, length, markdown, refusal], controlled: [length]}
head: {l2: 1.0}
output: artifact/tiny
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(*LABELS, *OUTPUTS)
    d = tmp_path_factory.mktemp("judge")
    (d / "judge.yaml").write_text(RECIPE)
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", "judge", "train", str(d / "judge.yaml"),
                          "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    assert "trained on" in out.stdout and "alpaca_eval 1607" in out.stdout and "identical_answers 3" in out.stdout
    return d


def test_fit_head_recovers_a_known_soft_label_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 3))
    src = np.where(rng.random(6000) < 0.5, "a", "b")
    z = X @ np.array([1.5, -0.7, 0.0]) + np.where(src == "a", 0.3, -0.4)
    y = 1 / (1 + np.exp(-z))  # soft labels: the probabilities themselves
    h = fit_head(X, y, src.tolist(), l2=0.0, primary="a")
    assert np.allclose(h.coef / h.scale, [1.5, -0.7, 0.0], atol=0.02)
    assert abs(h.logit(np.zeros((1, 3)))[0] - 0.3) < 0.02 and abs(h.logit(np.zeros((1, 3)), "b")[0] + 0.4) < 0.02


def test_train_writes_a_reproducible_provenanced_artifact(trained: Path, tmp_path: Path) -> None:
    npz, js = trained / "artifact" / "tiny.npz", trained / "artifact" / "tiny.json"
    man = json.loads(js.read_text())
    assert man["features"]["blocks"] == LEXICAL and man["features"]["controlled"] == ["length"]
    assert set(man["data"]) == {"alpaca_eval/claude.json", "alpaca_eval/vicuna-7b-v1.5.json", "arena_bench_v1/claude-1.jsonl"}
    assert man["labels"]["by_source"] == {"alpaca_eval": 1607, "arena_bench_v1": 298}
    assert man["labels"]["skipped"] == {"nan": 0, "out_of_range": 2, "identical_answers": 3, "unparsable": 0}
    assert man["npz_sha256"] and man["dim"] == 23
    assert npz.stat().st_size < 10_000
    # same recipe, same data: byte-identical arrays
    again = train(load_train_recipe(trained / "judge.yaml"), out=tmp_path / "again", progress=False)
    assert again.npz.read_bytes() == npz.read_bytes() and again.artifact.digest == man["digest"]


def test_bad_artifacts_are_one_line_naming_the_file_and_the_fix(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match=r"nope\.json: learned-judge artifact not found; build it with `banditarena judge train"):
        load_artifact(tmp_path / "nope")
    with pytest.raises(JudgeError, match=r"trained with feature blocks .*the recipe expects .*cosine.*rebuild it with"):
        load_artifact(trained / "artifact" / "tiny", expect_blocks=[*LEXICAL, "cosine"])
    with pytest.raises(JudgeError, match=r"trained with embedder 'all-MiniLM-L6-v2', the recipe expects 'other'"):
        load_artifact(trained / "artifact" / "tiny", expect_embedder="other")
    for edit, needle in ((lambda m: m["features"].update(version="ref-features-0"), "feature version 'ref-features-0'"),
                         (lambda m: m.update(digest="0" * 64), "do not match the manifest's digest"),
                         (lambda m: m.pop("sources"), "not a usable learned-judge artifact")):
        d = tmp_path / "edited"
        d.mkdir(exist_ok=True)
        man = json.loads((trained / "artifact" / "tiny.json").read_text())
        edit(man)
        (d / "a.json").write_text(json.dumps(man))
        (d / "a.npz").write_bytes((trained / "artifact" / "tiny.npz").read_bytes())
        with pytest.raises(JudgeError, match=needle) as exc:
            load_artifact(d / "a")
        assert "\n" not in str(exc.value)


def test_scores_are_pointwise_order_free_and_paid_once(trained: Path) -> None:
    judge = LearnedJudge(trained / "artifact" / "tiny")
    rows = json.loads((need(*OUTPUTS) / "alpaca_eval" / "model_outputs" / "claude.json").read_text())
    p = Prompt("p", [{"role": "user", "content": rows[0]["instruction"]}], reference="A reference answer about actors.")
    a = Generation("a", "p", [rows[0]["output"]])
    b = Generation("b", "p", ["Short."])
    c = Generation("c", "p", ["Hugh Jackman, Meryl Streep and many other famous actors began on Broadway stages."])
    j = judge.judge([JudgeRequest(p, a, b), JudgeRequest(p, b, a), JudgeRequest(p, a, c), JudgeRequest(p, c, b)])
    assert (j[0].score_first, j[0].score_second) == (j[1].score_second, j[1].score_first)
    assert j[0].score_first == j[2].score_first and j[2].score_second == j[3].score_first
    assert judge.scorer.n_scored == 3  # three distinct answers: each scored once, reused by every pairing
    assert all(0 <= s <= 10 for x in j for s in (x.score_first, x.score_second))
    nore = judge.judge([JudgeRequest(Prompt("q", [{"role": "user", "content": "x"}]), a, b)])[0]
    assert not nore.ok and "no reference answer" in nore.error


def test_length_control_scores_as_if_as_long_as_the_reference() -> None:
    f = Featurizer(FeatureSpec(blocks=("length", "overlap"), controlled=("length",)))
    q, r = "Name three colours.", "Red, green and blue are three colours."
    short, long = "Red, green, blue.", "Red, green, blue. " + "These are colours. " * 30
    raw = f.transform([q, q], [short, long], [r, r])
    ctl = f.transform([q, q], [short, long], [r, r], control=True)
    assert raw[0, 0] < raw[1, 0] and raw[0, 2] != raw[1, 2]
    assert np.allclose(ctl[:, 0], ctl[:, 1]) and np.allclose(ctl[:, 2], 0)  # length columns neutralised
    assert np.allclose(ctl[:, 3:], raw[:, 3:])  # the rest untouched


def _lexical_labels(tmp: Path) -> tuple[FeatureSpec, np.ndarray, Any]:
    from banditarena.judges.training import load_labels

    (tmp / "judge.yaml").write_text(RECIPE)
    labels = load_labels(load_train_recipe(tmp / "judge.yaml"))
    spec = FeatureSpec(blocks=tuple(LEXICAL), controlled=("length",), orthogonal=True)
    return spec, Featurizer(spec).transform(labels.instruction, labels.answer, labels.reference), labels


@requires(*LABELS)
def test_an_orthogonal_judge_leaves_no_linear_length_effect_that_a_plain_controlled_one_keeps(tmp_path: Path) -> None:
    """Neutralising the length columns alone lets length leak back through overlap and markdown counts; with
    ``orthogonal`` the scored logit has no linear dependence on the answer's length once the reference's
    length is given (on the rows it was fitted on), and the orthogonaliser keeps the controlled columns."""
    from banditarena.judges.learned import fit_judge

    spec, X, labels = _lexical_labels(tmp_path)
    plain = FeatureSpec(blocks=spec.blocks, controlled=("length",))
    la, lr = X[:, spec.columns(X.shape[1])["length"][0]], X[:, spec.columns(X.shape[1])["length"][1]]
    slope = {}
    for name, sp in (("plain", plain), ("orthogonal", spec)):
        art = fit_judge(sp, X, labels.y(), labels.source)
        Xs = art.ortho.apply(X) if art.ortho is not None else X
        logit = art.head.logit(sp.neutralise(Xs))
        slope[name] = np.linalg.lstsq(np.c_[np.ones(len(X)), la, lr], logit, rcond=None)[0][1]
        if art.ortho is not None:
            ctl = spec.columns(X.shape[1])["length"]
            assert np.allclose(Xs[:, ctl], X[:, ctl])  # controlled columns as they were
            other = np.setdiff1d(np.arange(X.shape[1]), ctl)
            assert np.abs(np.c_[np.ones(len(X)), X[:, ctl]].T @ Xs[:, other]).max() < 1e-6 * len(X)
    assert abs(slope["orthogonal"]) < 1e-8
    assert slope["plain"] > 0.05  # the leak it removes: longer answers still score higher


@requires(*LABELS, *OUTPUTS)
def test_an_orthogonal_artifact_round_trips_and_refuses_a_bad_recipe_or_array(tmp_path: Path) -> None:
    from banditarena.judges.learned import Orthogonaliser, save_artifact

    d = tmp_path / "o"
    d.mkdir()
    (d / "judge.yaml").write_text(RECIPE.replace("controlled: [length]}", "controlled: [length], orthogonal: true}"))
    res = train(load_train_recipe(d / "judge.yaml"), progress=False)
    assert res.artifact.manifest["features"]["orthogonal"] is True and isinstance(res.artifact.ortho, Orthogonaliser)
    back = load_artifact(d / "artifact" / "tiny")
    assert back.digest == res.artifact.digest and np.allclose(back.ortho.coef, res.artifact.ortho.coef)
    judge = LearnedJudge(d / "artifact" / "tiny")
    f = Featurizer(back.spec)
    q, r = "Name three colours.", "Red, green and blue are three colours."
    answers = ["Red, green, blue.", "Red, green, blue. " + "These are colours. " * 30]
    got = judge.scorer.score([q, q], answers, [r, r])
    assert np.allclose(got, back.proba(f.transform([q, q], answers, [r, r])))
    # an ortho array of the wrong shape: one line naming the file
    bad = tmp_path / "bad"
    bad.mkdir()
    back.ortho = Orthogonaliser(back.ortho.controlled, back.ortho.coef[:, :-1])
    save_artifact(back, bad / "a")
    with pytest.raises(JudgeError, match=r"a\.npz: arrays do not match the manifest; rebuild it with") as exc:
        load_artifact(bad / "a")
    assert "\n" not in str(exc.value)
    (d / "bad.yaml").write_text(RECIPE.replace("controlled: [length]}", "controlled: [], orthogonal: true}"))
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", "judge", "train", str(d / "bad.yaml"), "--no-progress"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert out.returncode == 2 and "orthogonal" in out.stderr and "controlled" in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_recipes_name_the_learned_judge_and_bad_artifacts_fail_in_one_line(trained: Path, tmp_path: Path) -> None:
    from banditarena.arena.service import run_battles
    from banditarena.config import load_recipe

    def recipe(judge: str) -> Path:
        p = tmp_path / "r.yaml"
        p.write_text(f"""
name: ae
prompts: {{source: alpaca_eval, limit: 4}}
contestants:
  - {{name: base, backend: replay, path: "data:alpaca_eval/model_outputs/gpt4_1106_preview.json"}}
  - {{name: claude, backend: replay, path: "data:alpaca_eval/model_outputs/claude.json"}}
  - {{name: vicuna, backend: replay, path: "data:alpaca_eval/model_outputs/vicuna-7b-v1.5.json"}}
judge: {judge}
""")
        return p

    res, store = run_battles(load_recipe(recipe(f"{{kind: learned, artifact: {trained / 'artifact' / 'tiny'}}}")),
                             tmp_path / "run", progress=False)
    assert len(res.battles) == 12 and res.n_invalid == 0 and store.get_meta("judge") == "learned"
    b = store.battles()
    # the baseline's answers are the references: identical texts tie with them (0.5 each)
    j = store.judgments()
    assert (j[j["first"] == "base"]["score_first"] == 5.0).all()
    for judge, needle in ((f"{{kind: learned, artifact: {tmp_path / 'missing'}}}", "missing.json: learned-judge artifact not found"),
                          (f"{{kind: learned, artifact: {trained / 'artifact' / 'tiny'}, features: [overlap, cosine]}}",
                           "trained with feature blocks")):
        out = subprocess.run([sys.executable, "-m", "banditarena.cli", "battle", str(recipe(judge)), "--run-dir",
                              str(tmp_path / "bad"), "--no-progress"], capture_output=True, text=True, cwd=ROOT,
                             timeout=600, check=False)
        assert out.returncode == 2 and needle in out.stderr and "banditarena judge train" in out.stderr
        assert out.stderr.strip().count("\n") == 0
    assert len(b) == 12


def _without_claude_and_fold0(rec: Any, res: Any) -> tuple[Any, Any, list[int]]:
    """The labels, the subset a fold-0 head for claude may train on (no claude or claude-1 labels, no fold-0
    instruction), and the arena rows of fold 0."""
    from banditarena.judges.annotations import text_key
    from banditarena.judges.training import _fold_of, load_labels

    labels = load_labels(rec)
    fold = _fold_of([text_key(q) for q in res.arena.instructions], rec.validation.folds, rec.seed)
    keep = [i for i, (m, q, s) in enumerate(zip(labels.model, labels.instruction, labels.source))
            if m not in ("claude", "claude-1") and not (s == "alpaca_eval" and fold[text_key(q)] == 0)]
    test = [i for i, q in enumerate(res.arena.instructions) if fold[text_key(q)] == 0]
    return labels, labels.subset(keep), test


def test_cross_validation_never_scores_with_the_model_or_instruction_it_trained_on(trained: Path) -> None:
    from banditarena.judges.learned import Featurizer, fit_head
    from banditarena.judges.training import cross_validate

    rec = load_train_recipe(trained / "judge.yaml")
    res = cross_validate(rec, modes=("both",), progress=False)
    both = res.modes["both"]
    assert len(both.scores) == 27 and all(np.isfinite(s).all() for s in both.scores.values())
    assert both.scores["gpt4_1106_preview"].tolist() == [0.5] * 805  # the references' own answers tie
    assert -1 <= both.metrics["spearman"] <= 1 and both.metrics["models"] == 27
    # claude's score on fold 0 by hand: a head fitted without claude's labels (nor claude-1's, its alias)
    # and without fold 0's instructions
    _, sub, test = _without_claude_and_fold0(rec, res)
    f = Featurizer(rec.features.spec())
    head = fit_head(f.transform(sub.instruction, sub.answer, sub.reference), sub.y(), sub.source, l2=rec.head.l2)
    X = f.transform([res.arena.instructions[i] for i in test], [res.arena.answers["claude"][i] for i in test],
                    [res.arena.references[i] for i in test], control=True)
    assert np.allclose(head.proba(X), both.scores["claude"][test], atol=1e-6)
    assert res.length_bias["gpt4_turbo"]["pairs"] > 1000


@requires(*OUTPUTS)
@pytest.mark.slow
def test_the_packaged_judge_in_an_arena_with_minilm_and_its_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped artifact end to end: real MiniLM, the on-disk embedding cache used from the arena's threads."""
    from banditarena.arena.service import run_battles
    from banditarena.config import ArenaRecipe

    monkeypatch.setenv("BANDITARENA_CACHE", str(tmp_path / "cache"))
    rec = ArenaRecipe.model_validate({
        "name": "ae", "prompts": {"source": "alpaca_eval", "limit": 3},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:alpaca_eval/model_outputs/{m}.json"}
                        for m in ("gpt4_1106_preview", "claude", "chatglm2-6b")],
        "judge": {"kind": "learned"}})
    res, _ = run_battles(rec, tmp_path / "run", progress=False)
    assert len(res.battles) == 9 and res.n_invalid == 0 and res.n_inconsistent == 0
    assert any((tmp_path / "cache" / "embeddings").glob("*.sqlite"))
    res2, _ = run_battles(rec, tmp_path / "run", progress=False)
    assert res2.paid_judgments == 0 and len(res2.battles) == 9


@requires(*OUTPUTS)
def test_the_packaged_fast_judge_uses_the_static_table_and_names_its_recipe(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``artifact: judge-learned-fast`` is the packaged static-MiniLM judge: it scores without running MiniLM,
    order-free, and a mismatch or a missing file names the fast recipe that rebuilds it."""
    from banditarena.judges import learned as learned_mod
    from banditarena.prompts import StaticEmbedder

    monkeypatch.setenv("BANDITARENA_CACHE", str(tmp_path / "cache"))
    art = load_artifact("judge-learned-fast")
    assert art.spec.embedder == "static:all-MiniLM-L6-v2" and art.manifest["embedder"]["embedder"] == "static"
    judge = LearnedJudge("judge-learned-fast")
    assert isinstance(judge.scorer.featurizer.embedder, StaticEmbedder)
    p = Prompt("q", [{"role": "user", "content": "Name three primary colours."}],
               reference="The three primary colours are red, blue and yellow.")
    good, bad = "Red, blue and yellow are the three primary colours.", "I like turtles."
    fwd, rev = judge.judge([JudgeRequest(p, Generation("a", "q", [good]), Generation("b", "q", [bad])),
                            JudgeRequest(p, Generation("b", "q", [bad]), Generation("a", "q", [good]))])
    assert fwd.ok and rev.ok and fwd.preferred == "first" and rev.preferred == "second"
    assert fwd.score_first == rev.score_second and fwd.score_second == rev.score_first  # pointwise: no position effect
    # named in a recipe, in an arena: every battle decided, a rerun pays nothing
    from banditarena.arena.service import run_battles
    from banditarena.config import ArenaRecipe

    rec = ArenaRecipe.model_validate({
        "name": "ae-fast", "prompts": {"source": "alpaca_eval", "limit": 2},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:alpaca_eval/model_outputs/{m}.json"}
                        for m in ("gpt4_1106_preview", "claude", "chatglm2-6b")],
        "judge": {"kind": "learned", "artifact": "judge-learned-fast"}})
    res, _ = run_battles(rec, tmp_path / "run", progress=False)
    assert len(res.battles) == 6 and res.n_invalid == 0 and res.n_inconsistent == 0
    assert run_battles(rec, tmp_path / "run", progress=False)[0].paid_judgments == 0
    with pytest.raises(JudgeError, match="trained with embedder 'static:all-MiniLM-L6-v2'.*judge-learned.yaml"):
        load_artifact("judge-learned-fast", expect_embedder="all-MiniLM-L6-v2", rebuild=learned_mod.REBUILD_HINT + " ")
    monkeypatch.setattr(learned_mod, "packaged_artifact", lambda name="": tmp_path / "nowhere" / name)
    with pytest.raises(JudgeError, match=r"nowhere/judge-learned-fast\.json: .*judge-learned-fast\.yaml"):
        load_artifact("judge-learned-fast")


@requires(*LABELS, *OUTPUTS)
def test_orthogonal_cross_validation_fits_the_orthogonaliser_on_the_folds_training_rows_only(tmp_path: Path) -> None:
    """An orthogonal judge's out-of-fold score of claude on fold 0 equals a judge (orthogonaliser and head)
    fitted by hand without claude's labels and without fold 0's instructions, and differs from one whose
    orthogonaliser saw every label row."""
    from banditarena.judges.learned import Orthogonaliser, fit_judge
    from banditarena.judges.training import cross_validate

    (tmp_path / "judge.yaml").write_text(RECIPE.replace("controlled: [length]}", "controlled: [length], orthogonal: true}"))
    rec = load_train_recipe(tmp_path / "judge.yaml")
    res = cross_validate(rec, modes=("both",), progress=False)
    labels, sub, test = _without_claude_and_fold0(rec, res)
    f = Featurizer(rec.features.spec())
    X_sub = f.transform(sub.instruction, sub.answer, sub.reference)
    art = fit_judge(rec.features.spec(), X_sub, sub.y(), sub.source, l2=rec.head.l2)
    X = f.transform([res.arena.instructions[i] for i in test], [res.arena.answers["claude"][i] for i in test],
                    [res.arena.references[i] for i in test])
    got = res.modes["both"].scores["claude"][test]
    assert np.allclose(art.proba(X), got, atol=1e-6)
    X_all = f.transform(labels.instruction, labels.answer, labels.reference)
    art.ortho = Orthogonaliser.fit(X_all, rec.features.spec())  # leaks the held-out rows' features
    assert not np.allclose(art.proba(X), got, atol=1e-6)


GATED = RECIPE.replace("features: {blocks: [overlap, coverage, length, markdown, refusal], controlled: [length]}",
                       "features: {blocks: [overlap, coverage, length, markdown, refusal, cosine], "
                       "embedder: 'static:all-MiniLM-L6-v2', controlled: [length], orthogonal: true}\n"
                       "gate: {negatives: 1.0}")


@requires(*LABELS, *OUTPUTS)
def test_the_relevance_gate_sinks_junk_and_off_topic_answers_and_round_trips(tmp_path: Path) -> None:
    """The gate is fitted without judge labels (real answers against answers to another instruction); it
    keeps an on-topic answer's score and sinks a junk string or an answer to another question, which the
    ungated head alone scores like a real answer; the artifact round-trips with its gate."""
    import dataclasses

    from banditarena.judges.learned import RelevanceGate

    (tmp_path / "judge.yaml").write_text(GATED)
    res = train(load_train_recipe(tmp_path / "judge.yaml"), progress=False)
    art = res.artifact
    assert isinstance(art.gate, RelevanceGate) and res.artifact.manifest["gate"] == {"blocks": list(art.gate.blocks)}
    assert res.artifact.manifest["settings"]["gate"]["negatives"] == 1.0
    back = load_artifact(tmp_path / "artifact" / "tiny")
    assert back.gate is not None and back.digest == art.digest
    q = "Explain how photosynthesis turns light into chemical energy in plants."
    r = ("Photosynthesis happens in the chloroplasts of plant cells. Chlorophyll absorbs light energy, which "
         "splits water into oxygen, protons and electrons; the energy is stored as ATP and NADPH, and the "
         "Calvin cycle then uses them to fix carbon dioxide into glucose.")
    on = ("In photosynthesis, chlorophyll in the chloroplasts absorbs light. That energy splits water, "
          "releasing oxygen, and makes ATP and NADPH, which the Calvin cycle uses to turn carbon dioxide into sugar.")
    junk = " } } } verify }:param } withObject }pressive } browsInput sett(query176 }summer }findById } } " * 6
    other = ("The French Revolution began in 1789 with the storming of the Bastille and ended the monarchy, "
             "leading to the rise of Napoleon Bonaparte and the spread of revolutionary ideas across Europe.")
    X = Featurizer(back.spec).transform([q] * 3, [on, junk, other], [r] * 3)
    g = back.gate.proba(back.spec, X)
    assert g[0] > 0.8 and g[1] < 0.2 and g[2] < 0.2
    ungated = dataclasses.replace(back, gate=None).proba(X)
    assert np.allclose(back.proba(X), ungated * g)
    assert back.proba(X)[0] > 5 * max(back.proba(X)[1:])
    # a gate needs the blocks it reads: one line naming the field, exit 2, nothing written
    (tmp_path / "bad.yaml").write_text(GATED.replace("refusal, cosine]", "refusal]").replace(
        "embedder: 'static:all-MiniLM-L6-v2', ", "").replace("output: artifact/tiny", "output: artifact/bad"))
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", "judge", "train", str(tmp_path / "bad.yaml"),
                          "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert out.returncode == 2 and "gate.negatives" in out.stderr and "cosine" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and not (tmp_path / "artifact" / "bad.npz").exists()

