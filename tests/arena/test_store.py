import sqlite3

import pytest

from banditarena.errors import StoreError
from banditarena.store import RunStore
from banditarena.types import Battle, Completion, Generation, Judgment, Prompt


def test_roundtrip_and_wal(tmp_path):
    s = RunStore(tmp_path / "run")
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    p = Prompt("p1", [{"role": "user", "content": "hi"}, {"role": "user", "content": "more"}], "cat", "c1", "ref")
    s.add_prompts([p])
    s.put_completions([("k1", Completion("hello", 3, 0.1), "m", "p1"), ("k2", Completion(error="boom"), "m", "p1")])
    assert s.get_completions(["k1", "k2"]) == {"k1": Completion("hello", 3, 0.1)}
    assert len(s.unresolved_failures()) == 1
    s.put_generation(Generation("m", "p1", ["a", "b"], 5, 0.2, "g1"))
    j = Judgment("j", "p1", "m", "n", 7.0, 5.0, None, "why", "raw", True, 1, "jk")
    s.put_judgment(j)
    s.put_battle("b1", Battle("p1", "m", "n", "model_a", 2.0, False, "j"), tag="t", seq=0, keys=("jk", "jk2", "g1", "g2"))
    s.close()

    s2 = RunStore(tmp_path / "run", create=False)
    assert s2.prompts()[0] == p
    assert s2.get_generations(["g1"])["g1"].turns == ["a", "b"]
    assert s2.get_judgments(["jk"])["jk"].score_first == 7.0
    b = s2.battles("t")
    assert list(b["winner"]) == ["model_a"] and list(b["margin"]) == [2.0]
    c = s2.counts()
    assert c["battles"] == 1 and c["completions"] == 1 and c["unresolved_failures"] == 1


def test_failure_resolved_by_later_success(tmp_path):
    s = RunStore(tmp_path)
    s.put_completions([("k", Completion(error="down"), "m", "p")])
    assert len(s.unresolved_failures()) == 1
    s.put_completions([("k", Completion("ok"), "m", "p")])
    assert len(s.unresolved_failures()) == 0
    assert len(s.failures()) == 1  # the history is kept


def test_chunk_is_atomic(tmp_path):
    s = RunStore(tmp_path)

    class Boom(Completion):
        @property
        def ok(self):  # raises while writing the second row
            raise RuntimeError("crash mid-chunk")

    with pytest.raises(RuntimeError):
        s.put_completions([("a", Completion("x"), "m", "p"), ("b", Boom("y"), "m", "p")])
    assert s.get_completions(["a", "b"]) == {}


def test_missing_and_corrupt_store(tmp_path):
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "nothing", create=False)
    d = tmp_path / "bad"
    d.mkdir()
    (d / "run.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="run.sqlite"):
        RunStore(d)


def test_decisions(tmp_path):
    s = RunStore(tmp_path)
    s.put_decision("r", 0, "clusters", policy="ucb1", arm="c1", propensity=0.5)
    s.set_reward("r", 0, "clusters", 1.0)
    s.put_decision("r", 0, "clusters", policy="ucb1", arm="c1", propensity=0.5, reward=1.0)  # idempotent replay
    d = s.decisions("r")
    assert len(d) == 1 and d.loc[0, "reward"] == 1.0 and d.loc[0, "propensity"] == 0.5
    assert isinstance(s.conn, sqlite3.Connection)


def test_battles_reads_only_the_columns_asked_for(tmp_path):
    s = RunStore(tmp_path / "run")
    s.put_battle("b1", Battle("p1", "m", "n", "model_a", 2.0, True, "j"), tag="t", seq=0, keys=("ja", "jb", "g1", "g2"))
    s.put_battle("b2", Battle("p1", "n", "m", None, None, False, "j"), tag="t", seq=1, keys=("jc", "jd", "g2", "g1"))
    full = s.battles("t")
    assert full["inconsistent"].tolist() == [True, False] and "j_ab" in full.columns
    few = s.battles("t", valid_only=True, columns=("model_a", "winner"))
    assert list(few.columns) == ["model_a", "winner"] and few.to_dict("records") == [{"model_a": "m", "winner": "model_a"}]
    with pytest.raises(ValueError, match="unknown column.*nope"):
        s.battles(columns=("model_a", "nope"))
    with pytest.raises(ValueError, match="none given"):
        s.battles(columns=())


def test_state_entries_can_be_deleted_through_the_fairness_cache(tmp_path):
    from banditarena.audits.fairness import StateCache

    s = RunStore(tmp_path / "run")
    cache = StateCache(s)
    cache["a"] = {"v": 1}
    cache["b"] = 2
    assert dict(cache) == {"a": {"v": 1}, "b": 2}
    del cache["a"]
    assert "a" not in cache and list(cache) == ["b"] and s.get_state("fairness:a") is None
    with pytest.raises(KeyError):
        del cache["a"]
    assert cache.pop("b") == 2 and len(cache) == 0
