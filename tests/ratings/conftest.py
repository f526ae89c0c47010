from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    path = SHARED_DATA.resolve()
    if not (path / "arena_hard_v0.1" / "judge_battles.jsonl").exists():
        pytest.skip(f"shared data not found at {path}")
    return path
