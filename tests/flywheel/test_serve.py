"""target.serve: each checkpoint is served by a command (here the project's small CPU server) while the
flywheel battles and evaluates it; a server that never gets ready is one line naming the command and log."""

from __future__ import annotations

import pytest

from banditarena.errors import ModelError
from banditarena.flywheel.loop import Flywheel
from tests.flywheel.test_flywheel_loop import judge, recipe

SERVE = "{python} -m banditarena.models.serve_local {checkpoint} --port {port} --served-name {served_name}"


@pytest.mark.slow
def test_each_checkpoint_is_served_battled_and_stopped(tiny_llama, tmp_path):
    rec = recipe(tiny_llama, iterations=1, battles_per_iteration=4,
                 target={"name": "tiny", "backend": "local", "model": str(tiny_llama), "serve": {"command": SERVE}},
                 training={"epochs": 1, "batch_size": 4, "max_length": 96, "max_steps": 1})
    fw = Flywheel(rec, tmp_path / "run", judge=judge())
    res = fw.run()
    assert [s.battles for s in res.iterations] == [4]
    for it in (0, 1):  # iteration 0's model and the trained checkpoint, each behind its own server
        log = (tmp_path / "run" / "logs" / f"serve-it{it}.log").read_text()
        assert log.startswith("$ ") and "serve_local" in log and "--served-name tiny-" in log
    assert not fw.roster.serving  # every server was stopped
    ev = fw.store.battles("eval")
    assert {"tiny-it0", "tiny-it1"} <= set(ev["model_a"]) | set(ev["model_b"])
    # the served model answers like the same checkpoint in-process (greedy decoding)
    from banditarena.models import LocalBackend
    from banditarena.models.base import ChatRequest

    g = fw.store.generations().set_index(["contestant", "prompt_id"])
    pid = next(p for c, p in g.index if c == "tiny-it0")
    prompt = next(p for p in fw.test if p.id == pid)
    strat = rec.strategies[next(iter(rec.strategies))].build()
    (c,) = LocalBackend(str(tiny_llama)).complete([ChatRequest(pid, 0, prompt.messages)], strat)
    assert g.loc[("tiny-it0", pid), "text"] == c.text


def test_a_server_that_never_gets_ready_is_one_line(tiny_llama, tmp_path):
    never = "{python} -c 'import sys, time; print(\"loading\", sys.argv, flush=True); time.sleep(60)' {port} {checkpoint}"
    rec = recipe(tiny_llama, iterations=1, training={"enabled": False},
                 target={"name": "tiny", "backend": "local", "model": str(tiny_llama),
                         "serve": {"command": never, "ready_timeout_s": 1.5}})
    with pytest.raises(ModelError) as err:
        Flywheel(rec, tmp_path / "run", judge=judge()).run()
    msg = str(err.value)
    assert "\n" not in msg and "not ready after 1.5s" in msg and "time.sleep(60)" in msg
    log = tmp_path / "run" / "logs" / "serve-it0.log"
    assert f"log: {log}" in msg and "loading" in log.read_text()
