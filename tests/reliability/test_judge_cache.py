"""Every raw judge reply (both of a format retry) is committed as it returns and never paid for again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from banditarena.judges import PairwiseLLMJudge, is_retryable
from banditarena.store import RunStore
from banditarena.types import Completion
from tests.judges.test_llm_judge import GOOD, ScriptedBackend, _request


def test_a_kill_between_a_format_retry_and_its_reply_repays_only_the_retry(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    # first process: an unparsable reply, then the endpoint fails on the retry (or the process dies)
    first = ScriptedBackend(["I think A is better, honestly.", Completion(error="connection reset")])
    judge = PairwiseLLMJudge(first)
    judge.attach_store(store)
    (j,) = asyncio.run(judge.ajudge([_request()]))
    assert is_retryable(j)
    stored = store.conn.execute("SELECT text FROM completions").fetchall()
    assert stored == [("I think A is better, honestly.",)]  # the first raw reply is kept

    # the resumed process: the first reply comes from the store; only the retry is sent
    second = ScriptedBackend([GOOD])
    judge2 = PairwiseLLMJudge(second)
    judge2.attach_store(store)
    (j2,) = asyncio.run(judge2.ajudge([_request()]))
    assert j2.ok and j2.attempts == 2 and j2.score_first == 9
    assert len(second.calls) == 1 and second.calls[0][0][0].messages[-1]["role"] == "user"  # the reminder
    assert "I think A is better" in j2.raw
    assert store.conn.execute("SELECT COUNT(*) FROM completions").fetchone()[0] == 2


def test_a_remote_judge_is_fed_one_request_at_a_time(tmp_path: Path) -> None:
    """So each judgment is stored the moment it is made, not when a chunk of 16 returns."""
    judge = PairwiseLLMJudge(ScriptedBackend([]))
    assert judge.batch_size == 1
    judge.attach_store(RunStore(tmp_path))
    assert judge.batch_size == 1 and judge.backend.kind == "scripted"
