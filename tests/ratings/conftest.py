from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared import need


@pytest.fixture
def shared_data() -> Path:
    return need("arena_hard_v0.1/judge_battles.jsonl")
