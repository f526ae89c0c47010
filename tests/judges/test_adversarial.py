"""The packaged judges against answers made to fool them and against a gap no person misses (issue 27, item 5),
on small fixtures of the real data, through the code `banditarena battle` runs.

- ``NullModel`` (one junk string with a prompt injection for every instruction, which GPT-4 Turbo prefers to
  its own answer on 84% of AlpacaEval) ranks below every real model, and ``gpt4_gamed`` (GPT-4's answers cut
  to a few words) below ``gpt4_0613``: neither has a single training label.
- gpt-4-0314 beats SmolLM2-135M-Instruct's own answers (greedy, 80 tokens, as the flywheel demo's target;
  generated once by ``bench/judge_checks.py --write-fixture``) on the flywheel demo's prompts. The issue's
  target is 95% of the decided battles; the packaged judges reach 84.7% (default) and 89.3% (fast) on these
  150 prompts (docs/judging.md), so this guards the measured level (>= 80%), not the target, which is missed.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from banditarena.paths import data_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "smollm2-arena-hard.jsonl"
ARTIFACTS = ["judge-learned-fast", pytest.param("judge-learned", marks=pytest.mark.slow)]


def _alpaca() -> Path:
    d = data_dir() / "alpaca_eval"
    if not (d / "model_outputs").is_dir() or not (d / "adversarial").is_dir():
        pytest.skip(f"shared data: {d} (model_outputs, adversarial) not found")
    return d


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_junk_and_truncated_answers_rank_below_the_real_models(artifact: str) -> None:
    from banditarena.judges.learned import LearnedScorer, load_artifact
    from banditarena.judges.pointwise import pointwise_leaderboard

    d = _alpaca()
    outputs = {p.stem: {r["instruction"]: r["output"] for r in json.loads(p.read_text(encoding="utf-8"))}
               for p in sorted((d / "model_outputs").glob("*.json"))}
    for name in ("NullModel", "gpt4_gamed"):
        with gzip.open(d / "adversarial" / f"{name}.json.gz", "rt", encoding="utf-8") as fh:
            rows = json.load(fh)
        outputs[name] = {r["instruction"]: r["output_2"] for r in rows}
    ref = outputs["gpt4_1106_preview"]
    instructions = [q for q in list(ref)[::16] if all(q in o for o in outputs.values())]
    assert len(instructions) >= 45
    scorer = LearnedScorer(load_artifact(artifact))
    scores = {m: scorer.score(instructions, [o[q] for q in instructions], [ref[q] for q in instructions])
              for m, o in outputs.items()}
    lb = pointwise_leaderboard(scores, bootstrap=0, graded=True)
    order = list(lb.sort_values("rating", ascending=False).index)
    assert order[-1] == "NullModel", order
    assert order.index("gpt4_gamed") > order.index("gpt4_0613"), order
    assert float(np.mean(scores["NullModel"])) < 0.5 * min(float(np.mean(s)) for m, s in scores.items()
                                                             if m not in ("NullModel", "gpt4_gamed"))


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_gpt4_beats_smollm2_in_at_least_80_percent_of_decided_battles(artifact: str, tmp_path: Path) -> None:
    from banditarena.arena.service import run_battles
    from banditarena.config import load_recipe

    gpt4 = data_dir() / "arena_hard_v0.1" / "model_answer" / "gpt-4-0314.jsonl"
    if not gpt4.is_file():
        pytest.skip(f"shared data: {gpt4} not found")
    assert FIXTURE.is_file(), f"{FIXTURE} missing: run bench/judge_checks.py --only gap --write-fixture"
    ids = [json.loads(line)["uid"] for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(ids) >= 100
    recipe = tmp_path / "gap.yaml"
    recipe.write_text(
        (ROOT / "bench" / "recipes" / "known-gap-smollm2.yaml").read_text(encoding="utf-8")
        .replace("{name: smollm2, backend: local, model: smollm2-135m-instruct, batch_size: 16}",
                 f"{{name: smollm2, backend: replay, path: {FIXTURE}}}")
        .replace("kind: learned", f"kind: learned\n  artifact: {artifact}"), encoding="utf-8")
    rec = load_recipe(recipe)
    assert [c.backend for c in rec.contestants] == ["replay", "replay"]
    _, store = run_battles(rec, tmp_path / "run", progress=False)
    b = store.battles(valid_only=True, columns=("model_a", "model_b", "winner"))
    assert len(b) >= 100
    gpt_a = b["model_a"] == "gpt-4-0314"
    won = (gpt_a & (b["winner"] == "model_a")) | (~gpt_a & (b["winner"] == "model_b"))
    decided = b["winner"] != "tie"
    assert decided.sum() >= 100
    assert float(won[decided].mean()) >= 0.80, f"gpt-4-0314 wins {float(won[decided].mean()):.3f} of decided"
