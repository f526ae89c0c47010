"""FastChat vote logs in and out: the cleaning rules, one count per reason, no address stored, exact round trips."""

from __future__ import annotations

import json

from banditarena.store import RunStore
from banditarena.votes.fastchat import export_clean, export_conv, import_logs
from banditarena.votes.service import VoteService
from tests.votes.conftest import MODELS, SECRET, fill_store, make_prompts

IP = "203.0.113.77"


def state(model, turns, conv_id, offset=0, system=None):
    msgs = [["SYSTEM", system]] if system else []
    for u, a in turns:
        msgs += [["USER", u], ["ASSISTANT", a]]
    return {"template_name": "vicuna_v1.1", "system_message": "", "roles": ["USER", "ASSISTANT"],
            "messages": msgs, "offset": offset + (1 if system else 0), "conv_id": conv_id, "model_name": model}


def line(t, type_, a, b, ua, ub=None, models=("", ""), ip=IP, ts=1700000000.0, conv=("ca", "cb")):
    ub = ub if ub is not None else ua
    return json.dumps({"tstamp": ts, "type": type_, "models": list(models),
                       "states": [state(a, ua, conv[0]), state(b, ub, conv[1])], "ip": ip})


def native_log(path):
    q = [("How do I sort a list in Python?", "Use sorted().")]
    q2 = [("Name a prime.", "7 is prime."), ("And another?", "11.")]
    qb = [("How do I sort a list in Python?", "Call list.sort() on it.")]
    good = [
        line(1, "leftvote", "alpha-7b", "beta-13b", q, qb, ts=1700000001.5, conv=("c1a", "c1b")),
        line(2, "rightvote", "beta-13b", "gamma-70b", q2, [("Name a prime.", "2."), ("And another?", "3.")],
             models=("Model A", "Model B"), ts=1700000002.25, conv=("c2a", "c2b"), ip="198.51.100.3"),
        line(3, "tievote", "gamma-70b", "alpha-7b", q, qb, ts=1700000003.0, conv=("c3a", "c3b")),
        line(4, "bothbad_vote", "alpha-7b", "gamma-70b", q, qb, ts=1700000004.0, conv=("c4a", "c4b")),
    ]
    bad = [
        json.dumps({"tstamp": 1.0, "type": "chat", "model": "alpha-7b", "state": {}, "ip": IP}),  # not a battle vote
        json.dumps({"tstamp": 1.0, "type": "upvote", "model": "alpha-7b", "state": {}, "ip": IP}),  # not a battle vote
        line(5, "superlike", "alpha-7b", "beta-13b", q, qb),                                          # unknown vote type
        '{"tstamp": 17000, "type": "leftvote", "models": ["", ""', # malformed (cut line)
        json.dumps({"tstamp": 1.0, "type": "leftvote", "models": ["", ""], "states": "nope", "ip": IP}),  # malformed
        line(6, "leftvote", "alpha-7b", "beta-13b", q, qb, models=("alpha-7b", "beta-13b")),          # not anonymous
        line(7, "leftvote", "alpha-7b", "beta-13b", [("Who made you?", "I am ChatGPT, trained by OpenAI.")],
             [("Who made you?", "A team.")]),                                                        # identity words
        line(8, "leftvote", "alpha-7b", "beta-13b", [("Hi", "")], [("Hi", "Hello!")]),               # empty turn
        line(9, "leftvote", "alpha-7b", "delta-1b", q, qb),                                          # model not in recipe
        line(10, "leftvote", "alpha-7b", "beta-13b", q, [("Something else?", "Yes.")]),              # different prompts
        line(11, "leftvote", "alpha-7b", "beta-13b", q, qb, models=("", "beta-13b")),                # invalid models
        line(12, "rightvote", "alpha-7b", "beta-13b", q, qb, ts=1700000001.5, conv=("c1a", "c1b")),  # duplicate vote
    ]
    path.write_text("\n".join(good[:2] + bad[:6] + good[2:] + bad[6:]) + "\n", encoding="utf-8")
    return good


def test_import_applies_fastchat_cleaning_and_counts_every_reason(tmp_path):
    log = tmp_path / "2024-01-01-conv.json"
    good = native_log(log)
    with RunStore(tmp_path / "run") as store:
        rep = import_logs(store, [log], key=SECRET, models=MODELS)
        assert rep.imported == 4 and rep.read == 16
        assert dict(rep.skipped) == {"not a battle vote": 2, "unknown vote type": 1, "malformed": 2,
                                     "not anonymous": 1, "identity words": 1, "empty turn": 1,
                                     "model not in recipe": 1, "different prompts": 1, "invalid models": 1,
                                     "duplicate vote": 1}
        assert rep.first_skip["malformed"] == f"{log.name}:6"
        summary = rep.summary()
        assert "\n" not in summary and summary.startswith("read 16 records, imported 4 votes; skipped ")
        votes = store.votes()
        assert list(votes["type"]) == ["leftvote", "rightvote", "tievote", "bothbad_vote"]
        assert list(votes["model_a"]) == ["alpha-7b", "beta-13b", "gamma-70b", "alpha-7b"]
        assert votes["voter"].str.match(r"^v_[0-9a-f]{16}$").all() and votes["voter"].nunique() == 2
        b = store.battles(judge="human")
        assert list(b["winner"]) == ["model_a", "model_b", "tie", "tie (bothbad)"]
        # importing the same log again stores nothing twice
        again = import_logs(store, [log], key=SECRET, models=MODELS)
        assert again.imported == 0 and again.skipped["duplicate vote"] == 5
    raw = (tmp_path / "run" / "run.sqlite").read_bytes() + (tmp_path / "run" / "run.sqlite-wal").read_bytes() \
        if (tmp_path / "run" / "run.sqlite-wal").exists() else (tmp_path / "run" / "run.sqlite").read_bytes()
    assert IP.encode() not in raw and b"198.51.100.3" not in raw          # no address is ever stored
    # the export holds every field FastChat's cleaning reads, as it was in the log (the address replaced)
    out = tmp_path / "conv.jsonl"
    with RunStore(tmp_path / "run", create=False) as store:
        assert export_conv(store, out) == (4, 0)
    for mine, theirs in zip(out.read_text().splitlines(), good, strict=True):
        m, t = json.loads(mine), json.loads(theirs)
        assert (m["tstamp"], m["type"]) == (t["tstamp"], t["type"])
        for sm, st in zip(m["states"], t["states"], strict=True):
            assert (sm["conv_id"], sm["model_name"]) == (st["conv_id"], st["model_name"])
            assert [x[1] for x in sm["messages"]] == [x[1] for x in st["messages"][st["offset"]:]]
        assert m["ip"].startswith("v_") and m["models"] == ["", ""]


def test_round_trips_are_exact(tmp_path):
    log = tmp_path / "conv.json"
    native_log(log)
    with RunStore(tmp_path / "a") as a:
        import_logs(a, [log], key=SECRET, models=MODELS)
        export_conv(a, tmp_path / "a.jsonl")
        export_clean(a, tmp_path / "a.json")
    with RunStore(tmp_path / "b") as b:                      # another run, another secret: the pseudonyms stay
        rep = import_logs(b, [tmp_path / "a.jsonl"], key=b"w" * 32, models=MODELS)
        assert rep.imported == 4 and not rep.skipped
        export_conv(b, tmp_path / "b.jsonl")
        export_clean(b, tmp_path / "b.json")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    with RunStore(tmp_path / "c") as c:                      # clean_battle in, clean_battle out
        rep = import_logs(c, [tmp_path / "a.json"], key=b"x" * 32, models=MODELS)
        assert rep.imported == 4 and not rep.skipped
        export_clean(c, tmp_path / "c.json")
        assert list(c.battles(judge="human")["winner"]) == ["model_a", "model_b", "tie", "tie (bothbad)"]
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "a.json").read_bytes()
    entries = json.loads((tmp_path / "a.json").read_text())
    assert [e["winner"] for e in entries] == ["model_a", "model_b", "tie", "tie (bothbad)"]
    assert entries[1]["turn"] == 2 and entries[1]["conversation_a"][2] == {"role": "user", "content": "And another?"}


def test_served_votes_round_trip_and_line_up_with_the_pool(tmp_path):
    prompts = make_prompts(4)
    store = RunStore(tmp_path / "served")
    svc = VoteService(store, prompts, fill_store(store, prompts), SECRET, seed=3)
    for i in range(9):
        o = svc.pick(f"v_{i:016x}")
        svc.vote(f"v_{i:016x}", o.ticket, ("a", "b", "tie", "bothbad")[i % 4])
    export_conv(store, tmp_path / "s.jsonl")
    export_clean(store, tmp_path / "s.json")
    served = store.votes()
    store.close()
    with RunStore(tmp_path / "again") as again:
        fill_store(again, prompts)                            # the same answers already stored (e.g. by battle)
        rep = import_logs(again, [tmp_path / "s.jsonl"], key=b"z" * 32, models=MODELS, pool=prompts)
        assert rep.imported == 9
        back = again.votes()
        # the prompt ids of the pool and the stored answers' generation keys are reused: the imported votes
        # meet the same battles an AI judge fights on this pool
        cols = ["voter", "tstamp", "type", "prompt_id", "model_a", "model_b", "gen_a", "gen_b", "matchup"]
        assert back[cols].equals(served[cols])
        export_conv(again, tmp_path / "t.jsonl")
        export_clean(again, tmp_path / "t.json")
    assert (tmp_path / "s.jsonl").read_bytes() == (tmp_path / "t.jsonl").read_bytes()
    assert (tmp_path / "s.json").read_bytes() == (tmp_path / "t.json").read_bytes()


def test_clean_battle_without_conversations_is_rated_without_style(tmp_path):
    p = tmp_path / "clean_battle_20240101.json"
    p.write_text(json.dumps([
        {"model_a": "alpha-7b", "model_b": "beta-13b", "winner": "model_a", "judge": "arena_user_10.0.0.1",
         "turn": 1, "anony": True, "language": "English", "tstamp": 1.5},
        {"model_a": "alpha-7b", "model_b": "beta-13b", "winner": "model_a", "judge": "arena_user_10.0.0.1",
         "turn": 1, "anony": False, "language": "English", "tstamp": 2.5},
        {"model_a": "alpha-7b", "model_b": "beta-13b", "winner": "draw", "judge": "u", "tstamp": 3.5},
    ]))
    with RunStore(tmp_path / "run") as store:
        rep = import_logs(store, [p], key=SECRET)
        assert rep.imported == 1 and rep.no_conversation == 1
        assert dict(rep.skipped) == {"not anonymous": 1, "unknown vote type": 1}
        assert "10.0.0.1" not in store.votes().to_json()
