"""Who battles in the flywheel: the target's checkpoints under each strategy or persona, and the opponents."""

from __future__ import annotations

from typing import Any

from banditarena.config import EndpointConfig, StrategyConfig, build_contestant
from banditarena.flywheel.recipe import FlywheelRecipe
from banditarena.types import Contestant

#: options that change how requests are sent, not what is answered
_TRANSPORT = frozenset({"batch_size", "max_batch_tokens", "base_url", "concurrency", "timeout_s", "max_retries",
                        "eject_after", "api_key_env"})


def same_model(a: Contestant, b: Contestant) -> bool:
    """Same backend, model, request strategy and options (transport aside): the same answers."""
    def opts(c: Contestant) -> dict[str, Any]:
        return {k: v for k, v in c.options if k not in _TRANSPORT}

    return (a.backend, a.model, a.strategy.cache_identity(), opts(a)) == (
        b.backend, b.model, b.strategy.cache_identity(), opts(b))


class Roster:
    """The contestants of a :class:`FlywheelRecipe`.

    The target of iteration *i* is ``<target>-it<i>`` (its checkpoint after *i* trainings); under a strategy
    arm it is ``<target>-it<i>/<strategy>``, under a persona arm (simulated-user conversations) it uses the
    default strategy and is named after the persona.
    """

    def __init__(self, recipe: FlywheelRecipe) -> None:
        self.recipe = recipe
        self.opponents: list[Contestant] = recipe.opponent_contestants()
        self.eval_opponents: list[str] = recipe.eval.opponents or [o.name for o in self.opponents]
        self.personas: dict[str, str] = dict(recipe.user_simulator.personas) if recipe.user_simulator else {}
        self.serving: dict[str, tuple[str, str]] = {}  # checkpoint -> (base_url, served name) while it is served

    @property
    def strategy_arms(self) -> list[str]:
        """The strategies dimension's arms: the recipe's strategies, then the personas."""
        return [*self.recipe.strategies, *self.personas]

    def target_name(self, it: int, arm: str | None = None) -> str:
        base = f"{self.recipe.target.name}-it{it}"
        return f"{base}/{arm}" if arm else base

    def target(self, it: int, model: str, arm: str | None = None) -> Contestant:
        """The target at iteration ``it`` (checkpoint ``model``) under strategy or persona ``arm``."""
        strategies = self.recipe.strategies
        default = next(iter(strategies))
        sc: StrategyConfig = strategies[arm] if arm in strategies else strategies[default]
        t = self.recipe.target
        if model in self.serving:  # the checkpoint behind its server: an OpenAI-compatible endpoint
            url, served = self.serving[model]
            ep = EndpointConfig(backend="openai", model=served, base_url=url, concurrency=t.concurrency,
                                timeout_s=t.timeout_s, max_retries=t.max_retries)
            return build_contestant(ep, sc, self.recipe.base_dir, name=self.target_name(it, arm))
        return build_contestant(t, sc, self.recipe.base_dir, name=self.target_name(it, arm), model=model)

    def served_name(self, it: int, model: str) -> str:
        """The name a served checkpoint answers to: the target's name and the checkpoint's fingerprint, so the
        fingerprint is part of every cache key as for an in-process checkpoint."""
        from pathlib import Path

        from banditarena.models.hub import resolve_llm
        from banditarena.models.local import checkpoint_fingerprint

        return f"{self.recipe.target.name}-{checkpoint_fingerprint(Path(resolve_llm(model)))}"

    def targets(self, it: int, model: str) -> dict[str, Contestant]:
        """Every arm of the strategies dimension -> the target contestant that plays it."""
        return {arm: self.target(it, model, arm) for arm in self.strategy_arms}
