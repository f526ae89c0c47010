"""The cheap-first judge cascade: fixed-sequence calibration, escalation, resume, and failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from banditarena.arena.service import run_battles
from banditarena.config import ArenaRecipe
from banditarena.judges import PairwiseLLMJudge
from banditarena.judges.annotations import AnnotationJudge
from banditarena.judges.cascade import CascadeJudge, calibrate_threshold, decided_by, pair_confidence
from banditarena.judges.learned import LearnedJudge
from banditarena.judges.training import load_train_recipe, train
from banditarena.models.openai import OpenAIBackend
from banditarena.paths import data_dir
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import need

DATA = data_dir()
ANN = DATA / "alpaca_eval" / "annotations_gpt4_turbo"
MODELS = ["gpt4_1106_preview", "claude", "vicuna-7b-v1.5", "chatglm2-6b"]


# ------------------------------------------------------------------------------------------ calibration

def test_calibration_edges() -> None:
    conf = np.linspace(0, 1, 200)
    c = calibrate_threshold(conf, np.ones(200, bool), alpha=0.1, delta=0.1)
    assert c.threshold == 0.0 and c.n_trusted == 200 and c.coverage == 1.0 and c.trusted_agreement == 1.0
    c = calibrate_threshold(conf, np.zeros(200, bool), alpha=0.1, delta=0.1)
    assert c.threshold == float("inf") and c.n_trusted == 0 and c.tested == 1
    # too few pairs to prove anything at this delta: escalate everything
    assert calibrate_threshold(conf[:5], np.ones(5, bool), alpha=0.1, delta=0.1).threshold == float("inf")


def test_fixed_sequence_guarantee_holds_over_calibration_draws() -> None:
    """P(risk of the trusted pairs > alpha) <= delta, over many calibration sets (Trust or Escalate)."""
    rng = np.random.default_rng(0)
    alpha, delta, n = 0.1, 0.1, 600

    def draw(size: int) -> tuple[np.ndarray, np.ndarray]:
        conf = rng.random(size)
        agree = rng.random(size) < 0.55 + 0.45 * conf  # agreement rises with confidence
        return conf, agree

    violations = 0
    coverages = []
    for _ in range(300):
        c = calibrate_threshold(*draw(n), alpha=alpha, delta=delta)
        coverages.append(c.coverage)
        if np.isfinite(c.threshold):
            # true risk above the threshold: 1 - mean agreement prob over conf in [t, 1]
            t = c.threshold
            risk = 1 - (0.55 + 0.45 * (1 + t) / 2)
            violations += risk > alpha
    assert violations / 300 <= delta + 0.03
    # it decides a real share cheaply (the best any threshold could do here is 44% at risk exactly alpha)
    assert 0.15 < np.mean(coverages) < 0.44


def test_pair_confidence_is_symmetric() -> None:
    p, c = pair_confidence(0.8, 0.3)
    q, d = pair_confidence(0.3, 0.8)
    assert p == pytest.approx(1 - q) and c == pytest.approx(d) and p > 0.5
    assert pair_confidence(0.4, 0.4) == (pytest.approx(0.5), pytest.approx(0.0))


# ---------------------------------------------------------------------------------------------- arena

@pytest.fixture(scope="module")
def cheap_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("alpaca_eval/annotations_gpt4_turbo/claude-2.1.json", "alpaca_eval/model_outputs")
    d = tmp_path_factory.mktemp("cheap")
    (d / "r.yaml").write_text(
        "labels: {alpaca_eval: [data:alpaca_eval/annotations_gpt4_turbo/claude-2.1.json], arena_bench_v1: []}\n"
        "features: {blocks: [overlap, coverage, length, markdown, refusal]}\noutput: cheap\n")
    train(load_train_recipe(d / "r.yaml"), progress=False)
    return d / "cheap"


def _recipe(n: int = 10) -> ArenaRecipe:
    return ArenaRecipe.model_validate({
        "name": "cascade", "prompts": {"source": "alpaca_eval", "limit": n},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:alpaca_eval/model_outputs/{m}.json"}
                        for m in MODELS],
        "battle": {"pairs": "baseline", "baseline": MODELS[0]}})


def _cascade(artifact: Path, threshold: float, expensive: Any = None) -> CascadeJudge:
    return CascadeJudge(LearnedJudge(artifact), expensive or AnnotationJudge(sorted(ANN.glob("*.json"))), threshold)


def test_cascade_escalates_unsure_pairs_stores_the_decider_and_never_pays_twice(cheap_artifact: Path,
                                                                                 tmp_path: Path) -> None:
    probe = _cascade(cheap_artifact, 0.0)
    conf = sorted(probe.confidence(r) for r in _requests(probe))
    t = float(np.median(conf))
    judge = _cascade(cheap_artifact, t)
    res, store = run_battles(_recipe(), tmp_path / "run", progress=False, judge=judge)
    unsure = sum(c < t for c in conf)  # one confidence per pair
    assert len(res.battles) == 30 and judge.escalated == 2 * unsure and judge.decided_cheap == 2 * (30 - unsure)
    who = decided_by(store)
    assert (who["judge_ab"] == who["judge_ba"]).all()  # both orders of a pair: one decider
    assert (who["judge_ab"] == "gpt4_turbo-recorded").sum() == unsure and (who["judge_ab"] == "learned").sum() == 30 - unsure
    assert (who["judge"] == judge.name).all()
    # the recorded judge decided the escalated battles exactly as GPT-4 Turbo did
    pref = {(m, k): float(r["preference"]) for m in MODELS[1:] if (ANN / f"{m}.json").exists()
            for k, r in enumerate(__import__("json").loads((ANN / f"{m}.json").read_text())[:10])}
    for _, b in who[who["judge_ab"] == "gpt4_turbo-recorded"].iterrows():
        p = pref[(b["model_b"], int(b["prompt_id"].split("-")[1]))]
        assert b["winner"] == ("model_b" if p > 1.5 else "model_a")
    # resume: nothing is paid again
    again = _cascade(cheap_artifact, t)
    res2, _ = run_battles(_recipe(), tmp_path / "run", progress=False, judge=again)
    assert again.escalated == 0 and res2.paid_judgments == 0 and len(res2.battles) == 30
    # a stricter threshold escalates more pairs: only the newly escalated ones are paid
    t2 = float(np.quantile(conf, 0.8))
    stricter = _cascade(cheap_artifact, t2)
    run_battles(_recipe(), tmp_path / "run", progress=False, judge=stricter)
    assert stricter.escalated == 2 * (sum(c < t2 for c in conf) - unsure)


def _requests(cascade: CascadeJudge) -> list[Any]:
    from banditarena.judges import JudgeRequest
    from banditarena.models.replay import ReplayBackend
    from banditarena.prompts import load_pool
    from banditarena.types import Generation

    rec = _recipe()
    prompts = load_pool(rec.prompts)
    back = {m: ReplayBackend(m, DATA / "alpaca_eval" / "model_outputs" / f"{m}.json") for m in MODELS}
    out = []
    for p in prompts:
        base = Generation(MODELS[0], p.id, [back[MODELS[0]].lookup(p.id, text=p.text).text])
        for m in MODELS[1:]:
            out.append(JudgeRequest(p, base, Generation(m, p.id, [back[m].lookup(p.id, text=p.text).text])))
    return out


class GarbageJudgeServer(FakeOpenAIServer):
    """Answers judge calls with text no parser can read."""

    def answer_for(self, body: dict[str, Any]) -> str:  # type: ignore[override]
        super().answer_for(body)
        return "I would rather not say which one is better."


@pytest.mark.parametrize("failure", ["down", "unparsable"])
def test_expensive_judge_failure_is_a_recorded_resumable_failure(cheap_artifact: Path, tmp_path: Path,
                                                                 failure: str) -> None:
    import banditarena.models.openai as oa

    server = (FakeOpenAIServer(down=True) if failure == "down" else GarbageJudgeServer()).start()
    try:
        llm = PairwiseLLMJudge(OpenAIBackend("judge-1", server.base_url, timeout_s=0.5, max_retries=1), name="llm")
        judge = _cascade(cheap_artifact, float("inf"), llm)  # everything escalates
        res, store = run_battles(_recipe(3), tmp_path / "run", progress=False, judge=judge)
        assert len(res.battles) == 0 and res.n_judge_failures == 18  # never decided by the cheap judge
        fails = store.unresolved_failures()
        assert len(fails) == 18 and fails["error"].str.contains("expensive judge 'llm'").all()
        assert fails["error"].str.contains("unparsable" if failure == "unparsable" else "failed").all()
        assert store.counts()["judgments"] == 0
    finally:
        server.stop()
    oa._HEALTH.clear()
    with FakeOpenAIServer() as good:  # the expensive judge is back: the same run finishes, paying each pair once
        llm = PairwiseLLMJudge(OpenAIBackend("judge-1", good.base_url, timeout_s=5, max_retries=1), name="llm")
        judge = _cascade(cheap_artifact, float("inf"), llm)
        res, store = run_battles(_recipe(3), tmp_path / "run", progress=False, judge=judge)
        assert len(res.battles) == 9 and judge.escalated == 18 and max(good.requests.values()) == 1
        assert len(store.unresolved_failures()) == 0
