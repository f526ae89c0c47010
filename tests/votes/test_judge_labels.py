"""Human votes as a label source of `banditarena judge train` (labels.human_votes)."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from banditarena.cli import app
from banditarena.judges.labels import HUMAN_VOTES, human_vote_labels
from tests.votes.conftest import make_service


def _voted_run(tmp_path, n=12):
    svc = make_service(tmp_path / "run")
    for i in range(n):
        o = svc.pick(f"v_{i:016x}")
        svc.vote(f"v_{i:016x}", o.ticket, ("a", "b", "tie", "bothbad")[i % 4])
    votes = svc.store.votes()
    answers = {g.cache_key: "\n\n".join(g.turns) for g in svc.answers.values()}
    svc.store.close()
    return tmp_path / "run", votes, answers


def test_each_vote_gives_two_rows_with_the_winner_at_one(tmp_path):
    run, votes, answers = _voted_run(tmp_path)
    labels = human_vote_labels([run])
    assert len(labels) == 2 * len(votes) and set(labels.source) == {HUMAN_VOTES}
    want = {"leftvote": (1.0, 0.0), "rightvote": (0.0, 1.0), "tievote": (0.5, 0.5), "bothbad_vote": (0.5, 0.5)}
    for k, v in enumerate(votes.itertuples()):
        a, b = 2 * k, 2 * k + 1
        assert (labels.answer[a], labels.reference[a]) == (answers[v.gen_a], answers[v.gen_b])
        assert (labels.answer[b], labels.reference[b]) == (answers[v.gen_b], answers[v.gen_a])
        assert (labels.target[a], labels.target[b]) == want[v.type]
        assert (labels.model[a], labels.model[b]) == (v.model_a, v.model_b)
        assert labels.group[a] == labels.group[b]                      # one instruction: held out together


def test_judge_train_on_human_votes(tmp_path):
    run, votes, _ = _voted_run(tmp_path, n=18)
    recipe = tmp_path / "judge.yaml"
    rec = {"name": "judge-human", "labels": {"alpaca_eval": [], "arena_bench_v1": [], "human_votes": [str(run)],
                                             "weights": {"human_votes": 1.0}},
           "features": {"blocks": ["overlap", "coverage", "length", "markdown", "refusal"]},
           "output": str(tmp_path / "judge-human")}
    recipe.write_text(yaml.safe_dump(rec))
    r = CliRunner().invoke(app, ["judge", "train", str(recipe), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert f"trained on {2 * len(votes)} labels (human_votes {2 * len(votes)})" in r.output
    assert (tmp_path / "judge-human.npz").is_file()
    rec["labels"]["human_votes"] = [str(tmp_path / "nowhere")]
    recipe.write_text(yaml.safe_dump(rec))
    r = CliRunner().invoke(app, ["judge", "train", str(recipe), "--no-progress"])
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        f"error: labels.human_votes: {tmp_path / 'nowhere'} is not a run directory (no run.sqlite)"]
    rec["labels"]["human_votes"], rec["labels"]["weights"] = [str(run)], {"people": 1.0}
    recipe.write_text(yaml.safe_dump(rec))
    r = CliRunner().invoke(app, ["judge", "train", str(recipe), "--no-progress"])
    assert r.exit_code == 2 and "unknown label source 'people'" in r.output and "human_votes" in r.output
