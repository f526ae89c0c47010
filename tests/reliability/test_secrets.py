"""An API key never reaches the store or the console, even when a gateway echoes it back."""

from __future__ import annotations

from pathlib import Path

from tests.arena.test_arena_endpoints import recipe_text, write_recipe
from tests.reliability.test_commands import cli
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires

KEY = "sk-test-4f9a1c7e2b8d6a03"


@requires("mt_bench/question.jsonl")
def test_a_key_echoed_by_the_server_is_redacted_everywhere(tmp_path: Path) -> None:
    with FakeOpenAIServer(faults={"key_echo": 1.0}) as srv:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=2, key_env="BA_TEST_SECRET_KEY"))
        out = cli("battle", p, "--run-dir", tmp_path / "run", "--no-progress", env={"BA_TEST_SECRET_KEY": KEY})
        assert srv.counts["key_echo"] > 0
    assert out.returncode == 1  # every request failed (401 is not retried)
    assert KEY not in out.stdout + out.stderr
    assert "invalid credentials: Bearer ***" in out.stdout  # the error is still useful
    for f in (tmp_path / "run").iterdir():
        assert KEY.encode() not in f.read_bytes(), f.name
