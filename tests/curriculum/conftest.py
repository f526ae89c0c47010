"""Fixtures for the tutoring tests: the built-in curricula, a small recipe, fake hint backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from banditarena.curriculum.spec import load_curriculum
from banditarena.models.base import Backend
from banditarena.types import Completion


@pytest.fixture(scope="session")
def arith():
    return load_curriculum("arith")


@pytest.fixture()
def small_recipe(tmp_path: Path) -> Path:
    rec = {
        "name": "tiny", "seed": 3, "curriculum": "arith",
        "simulate": {"n_learners": 60, "n_steps": 40, "baseline": "expert", "mastery_levels": [0.5],
                     "populations": [{"name": "mixed", "learner": "bkt", "mix": {"average": 0.5, "fast": 0.5}},
                                     {"name": "irt", "learner": "irt", "mix": {"average": 1.0}}],
                     "policies": [{"kind": "zpdes"}, {"kind": "expert"}, {"kind": "random"}]},
        "serve": {"policy": {"kind": "zpdes"}, "grade": 2},
        "hints": {"enabled": False},
    }
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(rec), encoding="utf-8")
    return p


class ScriptedBackend(Backend):
    """A backend that answers from a list of texts (cycled), or fails with ``error``; counts its calls."""

    kind = "scripted"

    def __init__(self, texts: list[str] | None = None, error: str | None = None, delay_s: float = 0.0) -> None:
        super().__init__("scripted")
        self.texts = texts or ["Add the ones first."]
        self.error = error
        self.delay_s = delay_s
        self.calls = 0
        self.seen: list[Any] = []

    async def acomplete(self, requests, strategy, progress=None):
        import asyncio

        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for r in requests:
            self.seen.append(r)
            if self.error:
                out.append(Completion(error=self.error))
            else:
                out.append(Completion(text=self.texts[self.calls % len(self.texts)], tokens=5))
            self.calls += 1
        return out


@pytest.fixture()
def scripted():
    return ScriptedBackend
