"""The flywheel recipe (YAML, validated by pydantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from banditarena.config import (
    ContestantConfig,
    EndpointConfig,
    JudgeConfig,
    PromptsConfig,
    StrategyConfig,
    _Model,
    load_yaml,
    validate,
)
from banditarena.flywheel.data import SelectionConfig
from banditarena.safety import SafetyConfig
from banditarena.types import Contestant


class DimensionPolicy(_Model):
    policy: Literal["uniform", "epsilon_greedy", "ucb1", "klucb", "ucbv", "thompson", "exp3", "sw_ucb",
                    "discounted_thompson"] = "thompson"
    params: dict[str, Any] = {}


class PromptPolicy(_Model):
    """How the prompt inside the chosen cluster is picked (see flywheel.allocation.PromptPicker)."""

    policy: Literal["uniform", "thompson"] = "thompson"
    prior_strength: float = Field(1.0, gt=0)  # weight of the cluster's mean, in pseudo-battles


class BanditConfig(_Model):
    reward: Literal["yield", "progress"] = "yield"
    clusters: DimensionPolicy = DimensionPolicy()
    opponents: DimensionPolicy = DimensionPolicy()
    strategies: DimensionPolicy = DimensionPolicy()
    prompts: PromptPolicy = PromptPolicy()
    batch: int = Field(8, ge=1)  # battles chosen per bandit round (a batched select)


class TrainingConfig(_Model):
    enabled: bool = True  # false: battle and mine data only (e.g. a replayed target)
    sft: bool = True
    dpo: bool = True
    lora: bool = True
    epochs: float = 1.0
    dpo_epochs: float | None = None  # default: epochs
    learning_rate: float = 2e-4
    dpo_learning_rate: float = 5e-5
    batch_size: int = 4
    max_length: int = 512
    beta: float = 0.1
    nll_alpha: float = 0.0
    max_steps: int = -1
    completion_only: bool = True  # SFT loss on the winner's final answer only (False: the whole dialogue)


class UserSimulatorConfig(_Model):
    """Simulated user that continues a conversation; its persona is a strategy arm."""

    endpoint: EndpointConfig = EndpointConfig()
    personas: dict[str, str] = {}
    turns: int = Field(2, ge=2)
    max_tokens: int = 96


class EvalConfig(_Model):
    testset: PromptsConfig = PromptsConfig()
    opponents: list[str] | None = None  # default: every opponent
    bootstrap: int = Field(200, ge=0)
    # each new checkpoint also battles the earlier ones (their answers are stored: judge calls only)
    snapshots: bool = True
    # the Elo scale's fixed point: an opponent's name (that model at 1000), or None (mean of all at 1000)
    anchor: str | None = None


class FlywheelRecipe(_Model):
    name: str = "flywheel"
    seed: int = 0
    target: ContestantConfig
    opponents: list[ContestantConfig]
    strategies: dict[str, StrategyConfig] = {"default": StrategyConfig()}
    pool: PromptsConfig = PromptsConfig()
    cluster_field: str = "cluster"  # a Prompt field (cluster/category), or "kmeans:K"
    judge: JudgeConfig = JudgeConfig()
    iterations: int = Field(2, ge=1)
    battles_per_iteration: int = Field(64, ge=1)
    bandit: BanditConfig = BanditConfig()
    selection: SelectionConfig = SelectionConfig()
    safety: SafetyConfig = SafetyConfig()  # the scorer of the selection's safety screen (selection.safety: on/off)
    training: TrainingConfig = TrainingConfig()
    user_simulator: UserSimulatorConfig | None = None
    eval: EvalConfig = EvalConfig()
    base_dir: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> FlywheelRecipe:
        names = [o.name for o in self.opponents]
        if not names:
            raise ValueError("at least one opponent is needed")
        if len(set(names)) != len(names) or self.target.name in names:
            raise ValueError(f"contestant names must be unique (target '{self.target.name}', opponents {names})")
        for n in self.eval.opponents or []:
            if n not in names:
                raise ValueError(f"eval.opponents: unknown opponent '{n}' (known: {names})")
        if self.eval.anchor is not None and self.eval.anchor not in (self.eval.opponents or names):
            raise ValueError(f"eval.anchor: '{self.eval.anchor}' is not an evaluation opponent "
                             f"(known: {self.eval.opponents or names})")
        for o in self.opponents:
            # "default" is the built-in default strategy unless the recipe defines one of that name
            if isinstance(o.strategy, str) and o.strategy != "default" and o.strategy not in self.strategies:
                raise ValueError(f"opponents: '{o.name}' names unknown strategy '{o.strategy}' "
                                 f"(known: {sorted(self.strategies)})")
        if not (self.cluster_field in ("cluster", "category") or self.cluster_field.startswith("kmeans:")):
            raise ValueError(f"cluster_field '{self.cluster_field}': use cluster, category or kmeans:K")
        if self.target.backend == "replay" and self.training.enabled:
            raise ValueError("a replay target cannot be retrained: set training.enabled: false")
        if self.user_simulator and self.user_simulator.personas:
            clash = set(self.user_simulator.personas) & set(self.strategies)
            if clash:
                raise ValueError(f"persona names clash with strategy names: {sorted(clash)}")
        return self

    def opponent_contestants(self) -> list[Contestant]:
        out = []
        for c in self.opponents:
            opts = tuple(sorted((k, v) for k, v in c.options(self.base_dir).items() if v is not None))
            strat = c.strategy if isinstance(c.strategy, StrategyConfig) else self.strategies.get(c.strategy, StrategyConfig())
            out.append(Contestant(c.name, c.backend, c.model, strat.build(), opts))
        return out


def load_flywheel_recipe(path: str | Path) -> FlywheelRecipe:
    data = load_yaml(path)
    return validate(FlywheelRecipe, data, path, base_dir=Path(path).resolve().parent)
