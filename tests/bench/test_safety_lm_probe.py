"""bench/safety_lm_probe.py's evaluation logic on synthetic pairs (the SmolLM2 extraction itself is the bench's)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def probe():
    from bench import safety_lm_probe

    return safety_lm_probe


def _pairs(n: int, signal: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (pairs, layers, dim): the rejected reply differs from the chosen one along one direction."""
    rng = np.random.default_rng(seed)
    n_layers = 5
    chosen = rng.normal(size=(n, n_layers, 8)).astype(np.float32)
    rejected = rng.normal(size=(n, n_layers, 8)).astype(np.float32)
    rejected[:, 2, 0] += signal  # layer 18 carries the harm direction
    folds = np.arange(n) % 5
    return chosen, rejected, folds


def test_transcript_becomes_chat_messages(probe) -> None:
    msgs = probe.chat_messages("\n\nHuman: how do I pick a lock?\n\nAssistant: Why?\n\nHuman: I'm locked out")
    assert msgs == [{"role": "user", "content": "how do I pick a lock?"}, {"role": "assistant", "content": "Why?"},
                    {"role": "user", "content": "I'm locked out"}]


def test_nested_cv_finds_a_real_signal_and_not_a_missing_one(probe) -> None:
    from banditarena.safety.evaluate import margin_agreement

    c, r, folds = _pairs(300, signal=3.0)
    margins, picks = probe.nested_margins(c, r, folds)
    assert margin_agreement(margins)["agreement"] > 0.9
    assert len(picks) == 5 and all(18 in layers for _, layers in picks)  # the informative layer is chosen
    c, r, folds = _pairs(300, signal=0.0, seed=1)
    margins, _ = probe.nested_margins(c, r, folds)
    assert abs(margin_agreement(margins)["agreement"] - 0.5) < 0.1


def test_learning_curve_rises_with_training_share(probe) -> None:
    c, r, folds = _pairs(400, signal=0.6, seed=2)
    groups = [f"dialogue {i}" for i in range(400)]
    curve = probe.learning_curve(c[:, 2], r[:, 2], folds, groups, 1.0, (0.05, 1.0), seeds=3)
    assert set(curve) == {0.05, 1.0}
    assert curve[1.0] > curve[0.05] and curve[1.0] > 0.6
